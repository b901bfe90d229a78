//! Checks of what artifacts hold, from their bytes (SPEC section 10), with
//! the place each artifact is given: a kernel is a kernel of the image's
//! `arch`, an initrd is a (compressed) cpio archive, an ISO has the boot
//! record its method needs, memdisk boots BIOS machines only, and sizes past
//! the firmware limits warn. Local artifacts are always checked; remote ones
//! when their bytes are here (vendored, or fetched by `check --online`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Ctx, loc};
use crate::beneath::Opened;
use crate::diag::{Diag, Lint, Loc};
use crate::site::*;
use crate::sniff;

/// One file of 4 GiB or more: past what a 32-bit size field (BIOS, many
/// UEFI network stacks, iPXE's own under BIOS) can load.
const FILE_LIMIT: u64 = 4 << 30;
/// Initrds together past about 3 GiB do not fit below 4 GiB under BIOS.
const BIOS_INITRDS: u64 = 3 << 30;

/// Checks the artifacts of every image; `fetched` holds the downloads of
/// remote artifacts that stay remote (`check --online`), by URL.
pub(super) fn check(
    cx: &mut Ctx,
    images: &BTreeMap<String, Image>,
    fetched: &HashMap<String, Arc<Opened>>,
) {
    for img in images.values() {
        let Some((file, model)) = cx.loaded.images.get(&img.name) else {
            continue;
        };
        let file = *file;
        let source = |a: &Artifact| match a {
            Artifact::Local { source, .. } => Some(source.clone()),
            a => fetched.get(a.location()).cloned(),
        };
        let place = |a: &Option<crate::model::S<crate::model::Artifact>>| {
            a.as_ref()
                .map(|a| loc(file, a))
                .unwrap_or(Loc::new(file, 0..0))
        };
        let mut problems = Vec::new();
        match &img.boot {
            Boot::Kernel { kernel, initrds } => {
                let at = place(&model.kernel);
                if let Some(f) = source(kernel) {
                    problems.push(kernel_problem(img, &f, at.clone()));
                    problems.push(too_big(kernel, &f, at));
                }
                let items = model.initrd.as_ref().map(|v| v.get_ref().as_slice());
                let mut total = 0;
                for (i, initrd) in initrds.iter().enumerate() {
                    let at = items
                        .and_then(|v| v.get(i))
                        .map(|a| loc(file, a))
                        .unwrap_or(place(&model.kernel));
                    if let Some(f) = source(initrd) {
                        total += f.size;
                        problems.push(initrd_problem(initrd, &f, at.clone()));
                        problems.push(too_big(initrd, &f, at));
                    }
                }
                if total > BIOS_INITRDS && img.arch == Arch::X86_64 {
                    let at = model.initrd.as_ref().map(|i| loc(file, i));
                    problems.push(Some(
                        Diag::warning(Lint::BiosInitrdSize, format!(
                            "the initrds of image `{}` are {} in all, past what BIOS can load",
                            img.name,
                            gib(total)
                        ))
                        .at_opt(at, "about 3 GiB of initrds fit below 4 GiB")
                        .help("under BIOS, iPXE loads initrds below 4 GiB; boot these machines with UEFI, or make the initrds smaller"),
                    ));
                }
            }
            Boot::Iso { iso, method } => {
                let at = place(&model.iso);
                if let Some(f) = source(iso) {
                    problems.push(disc_problem(img, method, &f, at.clone()));
                    problems.push(too_big(iso, &f, at));
                }
                if let IsoMethod::Memdisk(m) = method {
                    let at = place(&model.memdisk);
                    if img.arch != Arch::X86_64 {
                        problems.push(Some(
                            Diag::error(format!(
                                "image `{}` is {} and boots through memdisk, which runs under BIOS only",
                                img.name, img.arch
                            ))
                            .at(at.clone(), "memdisk on a UEFI machine")
                            .help("use method = \"sanboot\" (its ISO needs an EFI boot record), or a kernel and initrd"),
                        ));
                    }
                    if let Some(f) = source(m) {
                        problems.push(memdisk_problem(&f, at));
                    }
                }
            }
            Boot::Chain(_) | Boot::Local => {}
        }
        for d in problems.into_iter().flatten() {
            cx.diags.push(d);
        }
    }
}

fn unreadable(f: &Opened, at: Loc, e: std::io::Error) -> Diag {
    Diag::error(format!("cannot read {}: {e}", f.path.display())).at(at, "unreadable")
}

fn kernel_problem(img: &Image, f: &Opened, at: Loc) -> Option<Diag> {
    let head = match f.head() {
        Ok(h) => h,
        Err(e) => return Some(unreadable(f, at, e)),
    };
    let why = match sniff::kernel(&head, f.size) {
        Ok(k) if k.arch == img.arch => return None,
        Ok(k) => format!("it is {}, the image is {}", k.format, img.arch),
        Err(why) => why,
    };
    Some(
        Diag::error(format!("the kernel of image `{}` cannot boot", img.name))
            .at(at, why)
            .help(match img.arch {
                Arch::X86_64 => "an x86_64 kernel is a bzImage (vmlinuz) or an EFI-stub PE file; for another architecture set the image's arch",
                Arch::Arm64 => "an arm64 kernel is an Image, a gzip-compressed Image or an EFI-stub PE file",
            }),
    )
}

fn initrd_problem(a: &Artifact, f: &Opened, at: Loc) -> Option<Diag> {
    let head = match f.head() {
        Ok(h) => h,
        Err(e) => return Some(unreadable(f, at, e)),
    };
    let why = sniff::initrd(&head).err()?;
    Some(
        Diag::error(format!(
            "initrd `{}` is not an initramfs",
            crate::escape::line(a.location())
        ))
        .at(at, why)
        .help("the kernel unpacks a cpio archive, plain or compressed; files for the installer go inside the initrd, or into the image's per-machine files"),
    )
}

fn memdisk_problem(f: &Opened, at: Loc) -> Option<Diag> {
    let head = match f.head() {
        Ok(h) => h,
        Err(e) => return Some(unreadable(f, at, e)),
    };
    let why = match sniff::kernel(&head, f.size) {
        Ok(k) if k.arch == Arch::X86_64 => return None,
        Ok(k) => format!("it is {}", k.format),
        Err(why) => why,
    };
    Some(
        Diag::error("memdisk is not syslinux's memdisk")
            .at(at, why)
            .help("use /usr/lib/syslinux/memdisk (Debian package syslinux-common)"),
    )
}

fn disc_problem(img: &Image, method: &IsoMethod<Artifact>, f: &Opened, at: Loc) -> Option<Diag> {
    let d = match sniff::disc(|off, len| f.read_at(off, len)) {
        Ok(d) => d,
        Err(e) => return Some(unreadable(f, at, e)),
    };
    let arm = img.arch == Arch::Arm64;
    let why = match method {
        IsoMethod::Memdisk(_) if !d.iso9660 => "it is not an ISO 9660 image",
        IsoMethod::Memdisk(_) if !d.bios => "it has no El Torito boot record for BIOS",
        IsoMethod::Sanboot if d.iso9660 && arm && !d.efi => {
            "it has no El Torito boot record for EFI"
        }
        IsoMethod::Sanboot if d.iso9660 && !d.bios && !d.efi => "it has no El Torito boot record",
        IsoMethod::Sanboot if !d.iso9660 && !d.bios && !d.efi => {
            "it is neither an ISO 9660 image nor a disk image with a partition table"
        }
        _ => return None,
    };
    Some(
        Diag::error(format!("the ISO of image `{}` cannot boot", img.name))
            .at(at, why)
            .help("use the distribution's bootable ISO (or hybrid disk image); `xorriso -indev FILE -report_el_torito plain` lists its boot records"),
    )
}

fn too_big(a: &Artifact, f: &Opened, at: Loc) -> Option<Diag> {
    (f.size >= FILE_LIMIT).then(|| {
        Diag::warning(
            Lint::LargeFile,
            format!(
                "{} is {}: many firmwares and loaders cannot load a file of 4 GiB or more",
                crate::escape::line(a.location()),
                gib(f.size)
            ),
        )
        .at(at, "a file past 4 GiB")
    })
}

fn gib(n: u64) -> String {
    format!("{:.1} GiB", n as f64 / f64::from(1 << 30))
}
