//! Assembling a boot image from its two programs with Debian's tools:
//! ISOLINUX and ipxe.lkrn (BIOS), grub-mkimage (UEFI), mkfs.vfat and
//! mtools (the EFI system partition image) and xorriso (the hybrid ISO).
//! No crate writes El Torito with an isohybrid MBR and GPT; xorriso is
//! what Debian's own images are made with, so bootc drives it.
//!
//! Byte-identical for the same input: every date is fixed
//! (`SOURCE_DATE_EPOCH`, derived from the image's content), the FAT image is
//! made with `mkfs.vfat --invariant`, and the memdisk is a tar with fixed
//! headers.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Scripts;

/// A file or program an image needs, and the Debian package that has it.
struct Need {
    what: &'static str,
    package: &'static str,
}

const fn need(what: &'static str, package: &'static str) -> Need {
    Need { what, package }
}

const XORRISO: Need = need("xorriso", "xorriso");
const MKFS_VFAT: Need = need("mkfs.vfat", "dosfstools");
const MMD: Need = need("mmd", "mtools");
const MCOPY: Need = need("mcopy", "mtools");
const GRUB_MKIMAGE: Need = need("grub-mkimage", "grub-common");
const ISOLINUX_BIN: Need = need("/usr/lib/ISOLINUX/isolinux.bin", "isolinux");
const ISOHDPFX: Need = need("/usr/lib/ISOLINUX/isohdpfx.bin", "isolinux");
const LDLINUX: Need = need(
    "/usr/lib/syslinux/modules/bios/ldlinux.c32",
    "syslinux-common",
);
const GRUB_EFI_MODULES: Need = need("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin");

/// The GRUB modules of the UEFI image: its memdisk, the script engine, the
/// network (EFI cards, DHCP, HTTP) and the Linux loader.
const GRUB_MODULES: &[&str] = &[
    "memdisk",
    "tar",
    "normal",
    "configfile",
    "echo",
    "test",
    "regexp",
    "sleep",
    "net",
    "efinet",
    "http",
    "linux",
    "minicmd",
    "loadenv",
];

/// GRUB's first config: the memdisk holds the real one.
const GRUB_EARLY: &str = "set root=(memdisk)\nset prefix=(memdisk)\n";

const ISOLINUX_CFG: &str = "\
# bootc boot media: ISOLINUX starts iPXE, which runs bootc/boot.ipxe (its
# initrd). No APPEND: a command line would reach iPXE as commands.
DEFAULT bootc
PROMPT 0
TIMEOUT 0
LABEL bootc
  KERNEL /bootc/ipxe.lkrn
  INITRD /bootc/boot.ipxe
";

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot make boot media: {}", missing_list(.0))]
    Missing(Vec<(String, &'static str)>),
    #[error("cannot make boot media: {program} failed ({status}): {output}")]
    Tool {
        program: String,
        status: String,
        output: String,
    },
    #[error("cannot make boot media: {what}: {error}")]
    Io { what: String, error: io::Error },
}

fn missing_list(m: &[(String, &'static str)]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for (_, p) in m {
        if !packages.contains(p) {
            packages.push(p);
        }
    }
    format!(
        "{} not found (apt-get install {})",
        m.iter()
            .map(|(w, _)| w.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        packages.join(" ")
    )
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> MediaError {
    let what = what.into();
    move |error| MediaError::Io { what, error }
}

/// A program on PATH (or in the sbin folders, where mkfs.vfat lives).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The programs an image is made with.
struct Tools {
    xorriso: PathBuf,
    mkfs_vfat: PathBuf,
    mmd: PathBuf,
    mcopy: PathBuf,
    /// None for a Secure Boot image (its GRUB is Debian's signed one).
    grub_mkimage: Option<PathBuf>,
}

/// The tools an image needs (GRUB's only without Secure Boot), or every
/// one missing with its package.
fn tools(have_lkrn: bool, secure_boot: bool) -> Result<Tools, MediaError> {
    let grub = [&GRUB_MKIMAGE, &GRUB_EFI_MODULES];
    let mut missing = Vec::new();
    let mut need = |n: &Need, found: bool| {
        let needed = !(secure_boot && grub.iter().any(|g| g.what == n.what));
        if needed && !found {
            missing.push((n.what.to_string(), n.package));
        }
    };
    let mut program = |n: &Need| {
        let p = find_program(n.what);
        need(n, p.is_some());
        p
    };
    let tools = (
        program(&XORRISO),
        program(&MKFS_VFAT),
        program(&MMD),
        program(&MCOPY),
        program(&GRUB_MKIMAGE),
    );
    for n in [&ISOLINUX_BIN, &ISOHDPFX, &LDLINUX, &GRUB_EFI_MODULES] {
        need(n, Path::new(n.what).exists());
    }
    if !have_lkrn {
        missing.push(("ipxe.lkrn (of the iPXE binaries)".to_string(), "ipxe"));
    }
    match tools {
        (Some(xorriso), Some(mkfs_vfat), Some(mmd), Some(mcopy), grub_mkimage)
            if missing.is_empty() =>
        {
            Ok(Tools {
                xorriso,
                mkfs_vfat,
                mmd,
                mcopy,
                grub_mkimage,
            })
        }
        _ => Err(MediaError::Missing(missing)),
    }
}

fn run(program: &Path, args: &[&std::ffi::OsStr], epoch: u64) -> Result<(), MediaError> {
    let out = Command::new(program)
        .args(args)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("MTOOLSRC", "/dev/null")
        .env("LC_ALL", "C")
        .output()
        .map_err(io_err(format!("running {}", program.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    Err(MediaError::Tool {
        program: program.display().to_string(),
        status: out.status.to_string(),
        output: tail.into_iter().rev().collect::<Vec<_>>().join(" / "),
    })
}

/// The memdisk of the GRUB image: a tar holding `grub.cfg`, with fixed
/// headers.
fn memdisk(config: &str) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    tar.append_data(&mut h, "grub.cfg", config.as_bytes())?;
    tar.into_inner()
}

/// The loaders an image holds besides the tools' files.
#[derive(Default)]
pub struct Loaders {
    /// The site's `ipxe.lkrn` (None: reported missing).
    pub lkrn: Option<Vec<u8>>,
    /// Debian's signed shim and GRUB, for a Secure Boot image.
    pub shim: Vec<u8>,
    pub grub: Vec<u8>,
}

/// The image of `scripts`, padded with zeros to at least `pad_to` bytes
/// (rounded up to whole 2048-byte sectors).
pub fn image(scripts: &Scripts, pad_to: u64, loaders: &Loaders) -> Result<Vec<u8>, MediaError> {
    let tools = tools(loaders.lkrn.is_some(), scripts.secure_boot)?;
    let lkrn = loaders.lkrn.as_deref().unwrap_or_default();
    // Every date in the image: a function of what it holds.
    let mut h = blake3::Hasher::new();
    for part in [
        scripts.ipxe.as_bytes(),
        scripts.grub.as_bytes(),
        lkrn,
        &loaders.shim,
        &loaders.grub,
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    let id = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().expect("8 bytes"));
    // 2020-01-01 plus up to about ten years.
    let epoch = 1_577_836_800 + id % 315_360_000;

    let work = tempfile::tempdir().map_err(io_err("creating a work folder"))?;
    let w = work.path();
    let iso = w.join("iso");
    let write = |rel: &str, bytes: &[u8]| -> Result<(), MediaError> {
        let p = iso.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(io_err(format!("creating {rel}")))?;
        }
        std::fs::write(&p, bytes).map_err(io_err(format!("writing {rel}")))
    };
    let read = |p: &str| std::fs::read(p).map_err(io_err(format!("reading {p}")));
    write("isolinux/isolinux.bin", &read(ISOLINUX_BIN.what)?)?;
    write("isolinux/ldlinux.c32", &read(LDLINUX.what)?)?;
    write("isolinux/isolinux.cfg", ISOLINUX_CFG.as_bytes())?;
    write("bootc/ipxe.lkrn", lkrn)?;
    write("bootc/boot.ipxe", scripts.ipxe.as_bytes())?;

    // UEFI: the EFI system partition, a FAT image.
    let esp_files = if scripts.secure_boot {
        // shim loads grubx64.efi from its own folder; Debian's signed GRUB
        // reads $prefix/grub.cfg, /grub on the device it came from (the
        // ISO 9660 file system, or the partition).
        write("grub/grub.cfg", scripts.grub.as_bytes())?;
        let dir = w.join("esp");
        std::fs::create_dir_all(&dir).map_err(io_err("creating the ESP's files"))?;
        let put = |name: &str, bytes: &[u8]| -> Result<PathBuf, MediaError> {
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(io_err(format!("writing {name}")))?;
            set_mtime(&p, epoch)?;
            Ok(p)
        };
        vec![
            (
                put("shimx64.efi", &loaders.shim)?,
                "::/EFI/BOOT/BOOTX64.EFI",
            ),
            (
                put("grubx64.efi", &loaders.grub)?,
                "::/EFI/BOOT/grubx64.efi",
            ),
            (
                put("grub.cfg", scripts.grub.as_bytes())?,
                "::/grub/grub.cfg",
            ),
        ]
    } else {
        vec![(
            grub_image(&tools, scripts, w, epoch)?,
            "::/EFI/BOOT/BOOTX64.EFI",
        )]
    };
    let mut kib = 256;
    for (p, _) in &esp_files {
        let len = std::fs::metadata(p)
            .map_err(io_err("reading the ESP's files"))?
            .len();
        kib += len.div_ceil(1024) + 4;
    }
    // FAT12/16 with room for the files and the file system itself.
    let kib = kib.div_ceil(64) * 64;
    let esp = iso.join("efiboot.img");
    run(
        &tools.mkfs_vfat,
        &[
            "--invariant".as_ref(),
            "-n".as_ref(),
            "BOOTC_EFI".as_ref(),
            "-C".as_ref(),
            esp.as_os_str(),
            kib.to_string().as_ref(),
        ],
        epoch,
    )?;
    run(
        &tools.mmd,
        &[
            "-i".as_ref(),
            esp.as_os_str(),
            "::/EFI".as_ref(),
            "::/EFI/BOOT".as_ref(),
            "::/grub".as_ref(),
        ],
        epoch,
    )?;
    for (p, to) in &esp_files {
        run(
            &tools.mcopy,
            &[
                "-m".as_ref(),
                "-i".as_ref(),
                esp.as_os_str(),
                p.as_os_str(),
                to.as_ref(),
            ],
            epoch,
        )?;
    }

    // Every file of the ISO gets the same date.
    for e in walkdir::WalkDir::new(&iso) {
        let e = e.map_err(|e| MediaError::Io {
            what: "listing the image's files".into(),
            error: e.into(),
        })?;
        set_mtime(e.path(), epoch)?;
    }
    let out = w.join("boot.iso");
    run(
        &tools.xorriso,
        &[
            "-as".as_ref(),
            "mkisofs".as_ref(),
            "-quiet".as_ref(),
            "-o".as_ref(),
            out.as_os_str(),
            "-V".as_ref(),
            "BOOTC".as_ref(),
            "-isohybrid-mbr".as_ref(),
            ISOHDPFX.what.as_ref(),
            "-b".as_ref(),
            "isolinux/isolinux.bin".as_ref(),
            "-c".as_ref(),
            "isolinux/boot.cat".as_ref(),
            "-no-emul-boot".as_ref(),
            "-boot-load-size".as_ref(),
            "4".as_ref(),
            "-boot-info-table".as_ref(),
            "-eltorito-alt-boot".as_ref(),
            "-e".as_ref(),
            "efiboot.img".as_ref(),
            "-no-emul-boot".as_ref(),
            "-isohybrid-gpt-basdat".as_ref(),
            iso.as_os_str(),
        ],
        epoch,
    )?;
    let mut bytes = std::fs::read(&out).map_err(io_err("reading the image"))?;
    let padded = pad_to.div_ceil(2048) * 2048;
    if (bytes.len() as u64) < padded {
        bytes.resize(padded as usize, 0);
    }
    Ok(bytes)
}

/// The UEFI GRUB of an image without Secure Boot: `grub-mkimage` with the
/// config in its memdisk. Returns the file made.
fn grub_image(
    tools: &Tools,
    scripts: &Scripts,
    w: &Path,
    epoch: u64,
) -> Result<PathBuf, MediaError> {
    let early = w.join("early.cfg");
    std::fs::write(&early, GRUB_EARLY).map_err(io_err("writing GRUB's early config"))?;
    let tar = w.join("memdisk.tar");
    let tar_bytes = memdisk(&scripts.grub).map_err(io_err("making GRUB's memdisk"))?;
    std::fs::write(&tar, tar_bytes).map_err(io_err("writing GRUB's memdisk"))?;
    let efi = w.join("bootx64.efi");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-O".as_ref(),
        "x86_64-efi".as_ref(),
        "-d".as_ref(),
        GRUB_EFI_MODULES.what.as_ref(),
        "-p".as_ref(),
        "(memdisk)".as_ref(),
        "-c".as_ref(),
        early.as_os_str(),
        "-m".as_ref(),
        tar.as_os_str(),
        "-o".as_ref(),
        efi.as_os_str(),
    ];
    args.extend(GRUB_MODULES.iter().map(std::ffi::OsStr::new));
    let mkimage = tools.grub_mkimage.as_deref().ok_or_else(|| {
        MediaError::Missing(vec![(GRUB_MKIMAGE.what.into(), GRUB_MKIMAGE.package)])
    })?;
    run(mkimage, &args, epoch)?;
    set_mtime(&efi, epoch)?;
    Ok(efi)
}

fn set_mtime(p: &Path, epoch: u64) -> Result<(), MediaError> {
    let t = filetime::FileTime::from_unix_time(epoch as i64, 0);
    filetime::set_symlink_file_times(p, t, t).map_err(io_err(format!("dating {}", p.display())))
}
