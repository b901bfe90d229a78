//! `[uefi]` and the rules of SPEC section 8: the signed loaders (artifacts,
//! or Debian's files by default), checked to be PE files of their machine
//! type; every image booted through shim and GRUB is a kernel and initrds,
//! all local (GRUB fetches them over TFTP from the tree), the kernel with an
//! Authenticode signature under Secure Boot; an arm64 image needs arm64
//! loaders.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::artifacts::{Checked, local_artifact};
use super::{Ctx, loc};
use crate::beneath::Root;
use crate::diag::{Diag, FileId, Lint, Loc};
use crate::model::{self, S};
use crate::pe;
use crate::site::*;

/// Debian's signed loaders: the defaults of `[uefi]` for x86-64
/// (shim-signed, grub-efi-amd64-signed). arm64 has no default path: the
/// files come from debian-installer-12-netboot-arm64, whose folder differs
/// by release.
const DEFAULTS: [(EfiName, &str); 2] = [
    (EfiName::Shim, "/usr/lib/shim/shimx64.efi.signed"),
    (
        EfiName::Grub,
        "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
    ),
];

/// How the error about a missing signed loader begins.
const NO_SIGNED_LOADER: &str = "Secure Boot needs the signed ";

/// `d` is the error about a signed loader that was not found (`bootc test`
/// reports it as a missing package, exit 2).
pub fn missing_signed_loader(d: &Diag) -> bool {
    d.severity == crate::diag::Severity::Error && d.message.starts_with(NO_SIGNED_LOADER)
}

/// `[uefi]`, its loaders opened, hashed and checked.
pub(super) fn section(cx: &mut Ctx, file: FileId, u: Option<&S<model::UefiSection>>) -> Uefi {
    let none = model::UefiSection::default();
    let u = u.map(|u| u.get_ref()).unwrap_or(&none);
    let mut out = Uefi {
        secure_boot: u.secure_boot.as_ref().is_some_and(|b| *b.get_ref()),
        http_boot: u.http_boot.as_ref().is_none_or(|b| *b.get_ref()),
        loaders: BTreeMap::new(),
    };
    for name in EfiName::ALL {
        let configured = match name {
            EfiName::Shim => &u.shim,
            EfiName::Grub => &u.grub,
            EfiName::Arm64Shim => &u.arm64_shim,
            EfiName::Arm64Grub => &u.arm64_grub,
        };
        let found = match configured {
            Some(a) => configured_loader(cx, file, name, a),
            None => default_loader(name),
        };
        if let Some((source, path, at)) = found
            && let Some(f) = checked(cx, name, source, path, at)
        {
            out.loaders.insert(name, f);
        }
    }
    out
}

/// A loader given in `[uefi]`: a local artifact (served over TFTP, so never
/// a URL), with where it was written.
fn configured_loader(
    cx: &mut Ctx,
    file: FileId,
    name: EfiName,
    a: &S<model::Artifact>,
) -> Option<(Arc<crate::beneath::Opened>, String, Option<Loc>)> {
    let art = a.get_ref();
    match (&art.path, &art.url) {
        (Some(p), None) if art.sha256.is_none() && art.blake3.is_none() => {
            match local_artifact(cx, file, p)? {
                Checked::Local { source, path, .. } => Some((source, path, Some(loc(file, p)))),
                Checked::Url(..) => None,
            }
        }
        _ => {
            cx.diags.push(
                Diag::error(format!("[uefi] {} must be a local file", name.key()))
                    .at(loc(file, a), "expected { path = \"…\" }")
                    .help("loaders are served over TFTP from the tree, so bootc copies them: give the path of a file inside an artifact root"),
            );
            None
        }
    }
}

/// Debian's file for `name`, opened beneath its package folder, if installed.
fn default_loader(name: EfiName) -> Option<(Arc<crate::beneath::Opened>, String, Option<Loc>)> {
    let (_, path) = DEFAULTS.iter().find(|(n, _)| *n == name)?;
    let path = Path::new(path);
    let dir = Root::new(path.parent()?).ok()?;
    let f = dir.open(Path::new(path.file_name()?)).ok()?;
    Some((Arc::new(f), path.display().to_string(), None))
}

/// Hashes a loader and checks it is a PE file of its architecture.
fn checked(
    cx: &mut Ctx,
    name: EfiName,
    source: Arc<crate::beneath::Opened>,
    path: String,
    at: Option<Loc>,
) -> Option<EfiFile> {
    let problem = |why: String| {
        let d = Diag::error(format!(
            "[uefi] {} `{}` is not a {} UEFI loader",
            name.key(),
            crate::escape::line(&path),
            name.arch()
        ));
        match &at {
            Some(l) => d.at(l.clone(), why),
            None => d.note(why),
        }
    };
    // Its headers: the rest of the file is only hashed.
    let bytes = match source.head() {
        Ok(b) => b,
        Err(e) => {
            cx.diags.push(problem(format!("it cannot be read: {e}")));
            return None;
        }
    };
    match pe::inspect(&bytes, source.size) {
        Err(why) => {
            cx.diags.push(problem(why));
            return None;
        }
        Ok(p) if p.arch != Some(name.arch()) => {
            cx.diags.push(problem(format!(
                "it is built for {}",
                pe::machine_name(p.machine)
            )));
            return None;
        }
        Ok(_) => {}
    }
    // Hashed from the same descriptor (the copy checks the hash again).
    let (size, blake3) = match crate::hashcache::hash(&source) {
        Ok(h) => h,
        Err(e) => {
            cx.diags.push(problem(format!("it cannot be read: {e}")));
            return None;
        }
    };
    Some(EfiFile {
        source,
        path,
        size,
        blake3,
    })
}

/// The rules that need the whole site: which machines boot through shim and
/// GRUB, and whether what they boot can be booted that way.
pub(super) fn check(cx: &mut Ctx, site: &Site, uefi_at: Option<Loc>) {
    // Image name -> the machines booting it through GRUB, and whether one
    // of them has Secure Boot (then its kernel must be signed).
    let mut through_grub: BTreeMap<&str, (Vec<&str>, bool)> = BTreeMap::new();
    let mut arm64_without: BTreeMap<&str, &str> = BTreeMap::new();
    let mut shim_needed: Option<&Machine> = None;
    for m in &site.machines {
        let Some(img) = site.image_for(m) else {
            continue;
        };
        let image = img.name.as_str();
        let sb = site.secure_boot(site.boot_role(m), m.secure_boot);
        let grub = site.uefi_loader(img.arch, sb) == UefiLoader::ShimGrub;
        if grub {
            let e = through_grub.entry(image).or_default();
            e.0.push(&m.name);
            e.1 |= sb;
        }
        if sb && img.arch == Arch::X86_64 {
            shim_needed.get_or_insert(m);
        }
        if site.dhcp.is_some()
            && m.ip.is_none()
            && img.arch == Arch::X86_64
            && sb != site.uefi.secure_boot
        {
            // Its own loader goes into its DHCP reservation; it has none.
            cx.diags.push(
                Diag::warning(Lint::SecureBootWithoutIp, format!(
                    "machine `{}` has Secure Boot {}, unlike the site, but no ip",
                    m.name,
                    if sb { "on" } else { "off" }
                ))
                .at(m.loc.clone(), "no DHCP reservation")
                .help("the generated DHCP configs hand a machine a loader other than the site's in its reservation: give it an ip, or configure your DHCP server for it"),
            );
        }
        if grub && img.arch == Arch::Arm64 {
            arm64_without.entry(image).or_insert(&m.name);
        }
    }
    for (image, machine) in arm64_without {
        arm64_loaders(cx, site, image, machine);
    }
    // Unknown UEFI machines of a Secure Boot site get the fallback through GRUB.
    if site.uefi.secure_boot
        && let Fallback::Role(r) = &site.fallback
        && let Some(img) = site.image_of(r)
    {
        through_grub.entry(img.name.as_str()).or_default().1 = true;
    }
    if site.uefi.secure_boot || shim_needed.is_some() {
        for name in [EfiName::Shim, EfiName::Grub] {
            if !site.uefi.loaders.contains_key(&name) {
                let who = match shim_needed {
                    Some(m) => format!("machine `{}` boots with Secure Boot", m.name),
                    None => "[uefi] secure-boot = true".to_string(),
                };
                let d = Diag::error(format!("{NO_SIGNED_LOADER}{}, and it was not found", name.key()))
                .note(who)
                .help(format!(
                    "install Debian's signed loaders (apt-get install shim-signed grub-efi-amd64-signed), or set [uefi] {} = {{ path = \"…\" }}",
                    name.key()
                ));
                // At the site's setting, else at the machine that needs it.
                cx.diags.push(match (&uefi_at, shim_needed) {
                    (Some(l), _) => d.at(l.clone(), "Secure Boot is set here"),
                    (None, Some(m)) => d.at(m.loc.clone(), "boots with Secure Boot"),
                    (None, None) => d,
                });
            }
        }
    }
    for (image, (machines, signed)) in through_grub {
        if let Some(img) = site.images.get(image) {
            grub_image(cx, img, &machines, signed);
        }
    }
}

/// An arm64 image on a machine that has no way to boot it.
fn arm64_loaders(cx: &mut Ctx, site: &Site, image: &str, machine: &str) {
    let missing: Vec<&str> = [EfiName::Arm64Shim, EfiName::Arm64Grub]
        .iter()
        .filter(|n| !site.uefi.loaders.contains_key(n))
        .map(|n| n.key())
        .collect();
    if missing.is_empty() {
        return;
    }
    let at = cx
        .loaded
        .images
        .get(image)
        .and_then(|(f, i)| i.arch.as_ref().map(|a| loc(*f, a)));
    let d = Diag::error(format!(
        "image `{image}` is arm64, and no arm64 loader is set (machine `{machine}` boots it)"
    ))
    .help(format!(
        "set [uefi] {} (Debian's signed bootnetaa64.efi and grubaa64.efi, from debian-installer-12-netboot-arm64), or give [ipxe] binaries a snponly-arm64.efi",
        missing.join(" and ")
    ));
    cx.diags.push(match at {
        Some(l) => d.at(l, "needs arm64 loaders"),
        None => d,
    });
}

/// Through GRUB, an image is a kernel and initrds, all local (GRUB fetches
/// them over TFTP); under Secure Boot (`signed`) the kernel is signed.
fn grub_image(cx: &mut Ctx, img: &Image, machines: &[&str], signed: bool) {
    let Some((file, model)) = cx.loaded.images.get(&img.name) else {
        return;
    };
    let file = *file;
    let how = if signed {
        "with Secure Boot"
    } else {
        "through shim and GRUB"
    };
    let who = match machines {
        [] => format!("the fallback boots it {how}"),
        [m] => format!("machine `{m}` boots it {how}"),
        [m, rest @ ..] => format!("machine `{m}` and {} more boot it {how}", rest.len()),
    };
    let (kernel, initrds) = match &img.boot {
        Boot::Kernel { kernel, initrds } => (kernel, initrds),
        // GRUB leaves, the firmware boots the disk (and checks its loader).
        Boot::Local => return,
        _ => {
            let key = model
                .iso
                .as_ref()
                .or(model.chain.as_ref())
                .map(|a| loc(file, a))
                .unwrap_or(Loc::new(file, 0..0));
            cx.diags.push(
            Diag::error(format!(
                "image `{}` boots {}, which shim and GRUB cannot",
                img.name,
                if img.boot.kind() == "iso" { "an ISO" } else { "an iPXE chain" }
            ))
            .at(key, "not a kernel")
            .note(who)
            .help("shim and GRUB boot a kernel and its initrds (signed, under Secure Boot): give the machine another image, or, for Secure Boot, `secure-boot = false`"),
        );
            return;
        }
    };
    let kernel_at = model
        .kernel
        .as_ref()
        .map(|k| loc(file, k))
        .unwrap_or(Loc::new(file, 0..0));
    let remote = |a: &Artifact| !matches!(a, Artifact::Local { .. });
    if remote(kernel) || initrds.iter().any(remote) {
        let at = if remote(kernel) {
            kernel_at.clone()
        } else {
            model
                .initrd
                .as_ref()
                .map(|i| loc(file, i))
                .unwrap_or(kernel_at.clone())
        };
        cx.diags.push(
            Diag::error(format!(
                "image `{}` fetches a remote file, which GRUB cannot",
                img.name
            ))
            .at(at, "a URL")
            .note(who.clone())
            .help("Debian's signed GRUB has no HTTP: it fetches the kernel and initrds over TFTP from the tree, so they must be local artifacts ({ path = \"…\" }) or vendored ([site] vendor = true)"),
        );
    }
    if let Artifact::Local { source, path, .. } = kernel {
        let verdict = source
            .head()
            .map_err(|e| e.to_string())
            .and_then(|b| pe::inspect(&b, source.size));
        let why = match verdict {
            _ if !signed => None,
            Ok(p) if p.arch != Some(img.arch) => Some(format!(
                "it is a {} kernel, the image is {}",
                pe::machine_name(p.machine),
                img.arch
            )),
            Ok(p) if !p.signed => Some("it has no Authenticode signature".to_string()),
            Ok(_) => None,
            Err(why) => Some(why),
        };
        if let Some(why) = why {
            cx.diags.push(
                Diag::error(format!(
                    "kernel `{}` of image `{}` cannot boot under Secure Boot",
                    crate::escape::line(path),
                    img.name
                ))
                .at(kernel_at, why)
                .note(who)
                .help("shim boots only kernels signed by a key it trusts: use your distribution's signed kernel (Debian's linux-image-amd64, or the installer's `linux`)"),
            );
        }
    }
}
