//! The boot of an image as scripts and plan.json see it: its artifacts'
//! URLs, its kernel command line, and what a machine fetches.

use crate::context::{BootView, Fetch};
use crate::plan::ImagePlan;
use crate::site::*;

impl ImagePlan {
    pub(super) fn new(image: &Image) -> ImagePlan {
        let method = match &image.boot {
            Boot::Iso {
                method: IsoMethod::Sanboot,
                ..
            } => Some("sanboot"),
            Boot::Iso {
                method: IsoMethod::Memdisk(_),
                ..
            } => Some("memdisk"),
            _ => None,
        };
        ImagePlan {
            kind: image.boot.kind().to_string(),
            method: method.map(str::to_string),
            artifacts: image
                .boot
                .artifacts()
                .into_iter()
                .map(|a| a.record())
                .collect(),
            extra: Default::default(),
        }
    }
}

pub(super) fn boot_view(boot: &Boot, prefix: &str, args: &[String]) -> BootView {
    let f = |a: &Artifact| Fetch {
        url: a.url_from(prefix),
        name: a.file_name().to_string(),
    };
    let mut v = BootView {
        kind: boot.kind(),
        args: args.join(" "),
        arg_list: args.to_vec(),
        ..Default::default()
    };
    match boot {
        Boot::Kernel { kernel, initrds } => {
            v.kernel = Some(f(kernel));
            v.initrds = initrds.iter().map(f).collect();
        }
        Boot::Iso { iso, method } => {
            v.iso = Some(f(iso));
            match method {
                IsoMethod::Sanboot => v.method = Some("sanboot"),
                IsoMethod::Memdisk(m) => {
                    v.method = Some("memdisk");
                    v.memdisk = Some(f(m));
                }
            }
        }
        Boot::Chain(a) => v.chain = Some(f(a)),
        Boot::Local => {}
    }
    v
}

/// The longest kernel command line (SPEC section 10; Linux's
/// COMMAND_LINE_SIZE on x86 and arm64).
pub(super) const COMMAND_LINE_MAX: usize = 2048;

/// The length of the command line iPXE gives a kernel with `initrds` and
/// `args`: `initrd=NAME ` per initrd, then the arguments with spaces.
pub(super) fn command_line_len(initrds: &[Artifact], args: &[String]) -> usize {
    let names: usize = initrds
        .iter()
        .map(|i| "initrd= ".len() + i.file_name().len())
        .sum();
    let args: usize = args.iter().map(|a| a.len() + 1).sum();
    (names + args).saturating_sub(1)
}

/// What the boot loader fetches for `v`, in order.
pub(super) fn boot_fetches(v: &BootView) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(v.kernel.iter().chain(&v.initrds).map(|x| x.url.clone()));
    out.extend(
        v.memdisk
            .iter()
            .chain(&v.iso)
            .chain(&v.chain)
            .map(|x| x.url.clone()),
    );
    out
}

/// The boot-id of a machine: a short hash of what it boots (its image's
/// artifacts and form, its kernel args, its files' hashes, its UEFI loader
/// and its script template), so it changes only when its boot does.
pub(super) fn boot_id(
    image: &Image,
    args: &[String],
    files: &std::collections::BTreeMap<String, String>,
    loader: &str,
    script: &str,
) -> String {
    let what = serde_json::json!({
        "image": ImagePlan::new(image),
        "arch": image.arch.to_string(),
        "args": args,
        "files": files,
        "loader": loader,
        "script": script,
    });
    let h = blake3::hash(what.to_string().as_bytes()).to_hex();
    h[..12].to_string()
}
