//! images/: what each image boots. Its artifacts are checked in
//! [`super::artifacts`]; local ones are hashed once every image is known.

use std::collections::HashMap;
use std::ops::Range;

use super::artifacts::{Checked, artifact};
use super::{Ctx, description, loc, name_check, templates_list};
use crate::diag::{Diag, FileId, Loc, did_you_mean};
use crate::model;
use crate::site::*;

pub(super) fn image(
    cx: &mut Ctx,
    name: &str,
    file: FileId,
    img: &model::ImageFile,
) -> Option<Image<Checked>> {
    name_check(cx, "image", name, file);
    let form = form(cx, name, file, img)?;
    let boot = match form {
        "kernel" => kernel(cx, file, img)?,
        "iso" => iso(cx, file, img)?,
        "chain" => Boot::Chain(artifact(cx, file, img.chain.as_ref()?, true)?),
        _ => {
            let l = img.local.as_ref()?;
            if !*l.get_ref() {
                cx.diags.push(
                    Diag::error("local = false boots nothing")
                        .at(loc(file, l), "only `local = true` is meaningful")
                        .help("to boot from the local disk write local = true; otherwise give kernel, iso or chain"),
                );
                return None;
            }
            Boot::Local
        }
    };
    let arch = arch(cx, file, img, &boot);
    Some(Image {
        name: name.to_string(),
        description: description(cx, file, img.description.as_ref()),
        boot,
        arch,
        kernel_args: templates_list(&img.kernel_args, file),
        vars: img.vars.clone(),
        file,
    })
}

/// `arch =`: "x86_64" (the default) or "arm64"; a local-disk image has none.
fn arch<A>(cx: &mut Ctx, file: FileId, img: &model::ImageFile, boot: &Boot<A>) -> Arch {
    let Some(a) = &img.arch else {
        return Arch::X86_64;
    };
    match (a.get_ref().as_str(), boot) {
        (_, Boot::Local) => {
            cx.diags.push(
                Diag::error("a local-disk image has no architecture")
                    .at(loc(file, a), "remove this")
                    .help("`arch` says which loaders a kernel, ISO or chain needs; the local disk boots whatever it holds"),
            );
            Arch::X86_64
        }
        ("x86_64", _) => Arch::X86_64,
        ("arm64", _) => Arch::Arm64,
        (other, _) => {
            let hint = match other {
                "amd64" | "x86-64" | "x64" => Some("did you mean `x86_64`?".to_string()),
                "aarch64" | "arm64v8" => Some("did you mean `arm64`?".to_string()),
                _ => did_you_mean(other, ["x86_64", "arm64"]),
            };
            cx.diags.push(
                Diag::error(format!(
                    "unknown architecture `{}`",
                    crate::escape::line(other)
                ))
                .at(loc(file, a), "expected \"x86_64\" or \"arm64\"")
                .help_opt(hint),
            );
            Arch::X86_64
        }
    }
}

/// The one form the image takes (kernel, iso, chain or local), after
/// reporting the keys that belong to another form.
fn form(cx: &mut Ctx, name: &str, file: FileId, img: &model::ImageFile) -> Option<&'static str> {
    let forms: Vec<(&str, Range<usize>)> = [
        img.kernel.as_ref().map(|k| ("kernel", k.span())),
        img.iso.as_ref().map(|k| ("iso", k.span())),
        img.chain.as_ref().map(|k| ("chain", k.span())),
        img.local.as_ref().map(|k| ("local", k.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let whole = Loc::new(file, 0..0);
    if forms.is_empty() {
        cx.diags.push(
            Diag::error(format!("image `{name}` says nothing to boot"))
                .at(whole, "no kernel, iso, chain or local")
                .help("give exactly one of: kernel = {…} (with initrd = […]), iso = {…}, chain = {…}, local = true"),
        );
        return None;
    }
    if forms.len() > 1 {
        let mut d = Diag::error(format!(
            "image `{name}` has more than one form: {}",
            forms.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ))
        .at(
            Loc::new(file, forms[1].1.clone()),
            format!("`{}` here", forms[1].0),
        )
        .also(
            Loc::new(file, forms[0].1.clone()),
            format!("`{}` here", forms[0].0),
        );
        d = d.help("an image is exactly one of: kernel + initrd, iso, chain, local");
        cx.diags.push(d);
        return None;
    }
    let form = forms[0].0;
    // Keys that belong to another form.
    let stray: Vec<(&str, Range<usize>)> = [
        img.initrd
            .as_ref()
            .filter(|_| form != "kernel")
            .map(|x| ("initrd", x.span())),
        img.method
            .as_ref()
            .filter(|_| form != "iso")
            .map(|x| ("method", x.span())),
        img.memdisk
            .as_ref()
            .filter(|_| form != "iso")
            .map(|x| ("memdisk", x.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (key, span) in stray {
        cx.diags.push(
            Diag::error(format!("`{key}` does not go with `{form}`")).at(
                Loc::new(file, span),
                format!(
                    "only for {} images",
                    if key == "initrd" { "kernel" } else { "iso" }
                ),
            ),
        );
    }
    if form != "kernel" && !img.kernel_args.is_empty() {
        cx.diags.push(
            Diag::error(format!(
                "kernel-args need a kernel; image `{name}` is `{form}`"
            ))
            .at(loc(file, &img.kernel_args[0]), "nothing to pass these to"),
        );
    }
    Some(form)
}

/// A kernel and its initrds (which iPXE tells apart by file name).
fn kernel(cx: &mut Ctx, file: FileId, img: &model::ImageFile) -> Option<Boot<Checked>> {
    let kernel = artifact(cx, file, img.kernel.as_ref()?, false);
    let mut initrds = Vec::new();
    let mut names: HashMap<String, Loc> = HashMap::new();
    for i in img
        .initrd
        .as_ref()
        .map(|v| v.get_ref().as_slice())
        .unwrap_or(&[])
    {
        if let Some(a) = artifact(cx, file, i, false) {
            let l = loc(file, i);
            if let Some(first) = names.get(a.file_name()) {
                cx.diags.push(
                    Diag::error(format!("two initrds are named `{}`", a.file_name()))
                        .at(l, "second one")
                        .also(first.clone(), "first one")
                        .help("iPXE passes initrds to the kernel by file name: rename one"),
                );
            } else {
                names.insert(a.file_name().to_string(), l);
            }
            initrds.push(a);
        }
    }
    Some(Boot::Kernel {
        kernel: kernel?,
        initrds,
    })
}

/// An ISO, booted by sanboot or through memdisk.
fn iso(cx: &mut Ctx, file: FileId, img: &model::ImageFile) -> Option<Boot<Checked>> {
    let iso = artifact(cx, file, img.iso.as_ref()?, false);
    let method = match img.method.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "sanboot")) => {
            if let Some(md) = &img.memdisk {
                cx.diags.push(
                    Diag::error("`memdisk` is only used with method = \"memdisk\"")
                        .at(loc(file, md), "not used by sanboot"),
                );
            }
            IsoMethod::Sanboot
        }
        Some((m, "memdisk")) => match &img.memdisk {
            Some(md) => IsoMethod::Memdisk(artifact(cx, file, md, false)?),
            None => {
                cx.diags.push(
                    Diag::error("method = \"memdisk\" needs the memdisk kernel")
                        .at(loc(file, m), "memdisk is not given")
                        .help("add memdisk = { path = \"artifacts/memdisk\" } (from syslinux) or a pinned url"),
                );
                return None;
            }
        },
        Some((m, other)) => {
            cx.diags.push(
                Diag::error(format!("unknown method `{other}`"))
                    .at(loc(file, m), "expected \"sanboot\" or \"memdisk\"")
                    .help_opt(did_you_mean(other, ["sanboot", "memdisk"])),
            );
            return None;
        }
    };
    Some(Boot::Iso { iso: iso?, method })
}
