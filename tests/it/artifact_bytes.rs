//! Checks of what artifacts hold (SPEC section 10), each with a fixture:
//! the message, the artifact's place, exit 1 and nothing written (the
//! `invalid!` rules), and the same checks on real files: Debian's installer
//! kernels, ISOs made by xorriso, a download checked by `check --online`.

use std::fs;
use std::process::Command;

use crate::boot_support::{Nginx, need, need_file};
use crate::harness::{Site, bootc, bzimage, cpio, pe, sparse_disk};

const DI: &str = "/usr/lib/debian-installer/images/12";

invalid!(
    a_text_file_is_not_a_kernel,
    "the kernel of image `linux` cannot boot",
    "images/linux.toml:2:10",
    |s| {
        s.write("artifacts/vmlinuz", "not a kernel\n");
    }
);

invalid!(
    an_arm64_kernel_on_an_x86_image,
    "the kernel of image `linux` cannot boot",
    "images/linux.toml:2:10",
    |s| {
        fs::write(s.path("artifacts/vmlinuz"), pe(0xaa64, false)).unwrap();
    }
);

invalid!(
    a_kernel_cut_short,
    "the kernel of image `linux` cannot boot",
    "images/linux.toml:2:10",
    |s| {
        let mut k = bzimage(&[7; 4096]);
        k.truncate(3000);
        fs::write(s.path("artifacts/vmlinuz"), k).unwrap();
    }
);

invalid!(
    a_junk_initrd,
    "initrd `artifacts/initrd.img` is not an initramfs",
    "images/linux.toml:3:11",
    |s| {
        s.write("artifacts/initrd.img", "junk, not compressed\n");
    }
);

invalid!(
    a_sanboot_file_that_is_no_disc,
    "the ISO of image `disk` cannot boot",
    "images/disk.toml:1:7",
    |s| {
        s.write("artifacts/cd.iso", "not an ISO\n");
        s.write(
            "images/disk.toml",
            "iso = { path = \"artifacts/cd.iso\" }\n",
        );
    }
);

invalid!(
    memdisk_under_uefi,
    "image `disk` is arm64 and boots through memdisk, which runs under BIOS only",
    "images/disk.toml:3:11",
    |s| {
        let iso = crate::harness::fixtures().join("forms/artifacts/tools.iso");
        fs::copy(iso, s.path("artifacts/cd.iso")).unwrap();
        fs::write(s.path("artifacts/memdisk"), bzimage(b"memdisk")).unwrap();
        s.write(
            "images/disk.toml",
            "iso = { path = \"artifacts/cd.iso\" }\nmethod = \"memdisk\"\nmemdisk = { path = \"artifacts/memdisk\" }\narch = \"arm64\"\n",
        );
    }
);

invalid!(
    a_kernel_command_line_over_2048_bytes,
    "the kernel command line of machine node01 is longer than 2048 bytes",
    "machines/rack1.toml:",
    |s| {
        let long = format!("bootc.pad={}", "x".repeat(2000));
        s.edit(
            "machines/rack1.toml",
            "name = \"node01\"\n",
            &format!("name = \"node01\"\nkernel-args = [\"{long}\"]\n"),
        );
    }
);

/// Whatever the image's arch, the message says what the kernel is.
#[test]
fn the_message_says_what_the_kernel_is() {
    let s = Site::fixture("basic");
    fs::write(s.path("artifacts/vmlinuz"), pe(0xaa64, false)).unwrap();
    let r = s.run(&["check", "."]);
    assert!(
        r.stderr
            .contains("it is an arm64 PE/EFI kernel, the image is x86_64"),
        "{}",
        r.stderr
    );
    s.edit(
        "images/linux.toml",
        "kernel-args",
        "arch = \"arm64\"\nkernel-args",
    );
    let r = s.run(&["check", "."]);
    assert!(!r.stderr.contains("cannot boot"), "{}", r.stderr);
}

/// Debian's installer kernels: the arm64 one on an x86 image and the amd64
/// one cut short are caught; whole, on the right image, they pass.
#[test]
fn debian_installer_kernels() {
    let amd64 = format!("{DI}/amd64/text/debian-installer/amd64/linux");
    let arm64 = format!("{DI}/arm64/text/debian-installer/arm64/linux");
    if !need_file(&amd64, "debian-installer-12-netboot-amd64")
        || !need_file(&arm64, "debian-installer-12-netboot-arm64")
    {
        return;
    }
    let s = Site::fixture("basic");
    let check = |kernel: &[u8]| {
        fs::write(s.path("artifacts/vmlinuz"), kernel).unwrap();
        s.run(&["check", "."])
    };
    let amd = fs::read(&amd64).unwrap();
    assert_eq!(check(&amd).code, 0);
    let r = check(&fs::read(&arm64).unwrap());
    assert_eq!(r.code, 1);
    assert!(
        r.errors()
            .contains("it is an arm64 PE/EFI kernel, the image is x86_64"),
        "{}",
        r.stderr
    );
    let r = check(&amd[..amd.len() - 4096]);
    assert_eq!(r.code, 1);
    assert!(r.errors().contains("it is cut short"), "{}", r.stderr);
}

/// ISOs made by xorriso: one with no boot record fails sanboot and
/// memdisk; one with a BIOS El Torito record passes both; one with an EFI
/// record only passes sanboot and fails memdisk.
#[test]
fn el_torito_records_of_real_isos() {
    if !need("xorriso") {
        return;
    }
    let s = Site::fixture("basic");
    let tree = s.path("iso-tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("boot.img"), [0u8; 2048]).unwrap();
    let make = |name: &str, boot: &[&str]| {
        let out = s.path(&format!("artifacts/{name}.iso"));
        let o = Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-o"])
            .arg(&out)
            .args(boot)
            .arg(&tree)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    make("plain", &[]);
    make("bios", &["-b", "boot.img", "-no-emul-boot"]);
    make("efi", &["-e", "boot.img", "-no-emul-boot"]);
    fs::write(s.path("artifacts/memdisk"), bzimage(b"memdisk")).unwrap();
    let check = |iso: &str, method: &str| {
        let memdisk = if method == "memdisk" {
            "memdisk = { path = \"artifacts/memdisk\" }\n"
        } else {
            ""
        };
        s.write(
            "images/disk.toml",
            &format!(
                "iso = {{ path = \"artifacts/{iso}.iso\" }}\nmethod = \"{method}\"\n{memdisk}"
            ),
        );
        let r = s.run(&["check", "."]);
        (r.code, r.errors())
    };
    for (iso, method, why) in [
        ("plain", "sanboot", Some("it has no El Torito boot record")),
        (
            "plain",
            "memdisk",
            Some("it has no El Torito boot record for BIOS"),
        ),
        ("bios", "sanboot", None),
        ("bios", "memdisk", None),
        ("efi", "sanboot", None),
        (
            "efi",
            "memdisk",
            Some("it has no El Torito boot record for BIOS"),
        ),
    ] {
        let (code, errors) = check(iso, method);
        match why {
            None => assert_eq!(code, 0, "{iso} by {method}: {errors}"),
            Some(why) => {
                assert_eq!(code, 1, "{iso} by {method}");
                assert!(
                    errors.contains(&format!("^ {why}\n")),
                    "{iso} by {method}: {errors}"
                );
                assert!(errors.contains("--> images/disk.toml:1:7"), "{errors}");
            }
        }
    }
}

/// A file of 4 GiB or more warns (a sparse disk image: no space used).
#[test]
fn a_file_past_4_gib_warns() {
    let s = Site::fixture("basic");
    sparse_disk(&s.path("artifacts/big.img"), 5 << 30);
    s.write(
        "images/disk.toml",
        "iso = { path = \"artifacts/big.img\" }\n",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "warning[large-file]: artifacts/big.img is 5.0 GiB: many firmwares and loaders cannot load a file of 4 GiB or more"
        ),
        "{}",
        r.stderr
    );
}

/// A remote artifact is checked from its download with `check --online`
/// (not vendored) and when vendored: a pinned junk initrd is caught at its
/// place, a pinned cpio passes.
#[test]
fn remote_artifacts_are_checked_from_their_download() {
    if !need("nginx") {
        return;
    }
    let mirror = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(mirror.path());
    let s = Site::fixture("basic");
    let cache = tempfile::tempdir().unwrap();
    let check = |bytes: &[u8], vendor: bool| {
        fs::write(mirror.path().join("initrd.img"), bytes).unwrap();
        let sha256 = sha256(bytes);
        s.write(
            "images/linux.toml",
            &format!(
                "kernel = {{ path = \"artifacts/vmlinuz\" }}\n\
                 initrd = [{{ url = \"{}initrd.img\", sha256 = \"{sha256}\" }}]\n",
                nginx.url()
            ),
        );
        let vendor = if vendor { "vendor = true\n" } else { "" };
        let conf = s.read("bootc.toml").replace("vendor = true\n", "");
        s.write(
            "bootc.toml",
            &conf.replacen("[site]\n", &format!("[site]\n{vendor}"), 1),
        );
        let r = bootc()
            .args(["check", "--online", "."])
            .current_dir(s.root())
            .env("BOOTC_CACHE_DIR", cache.path())
            .output()
            .unwrap();
        let r: crate::harness::Run = r.into();
        (r.code, r.errors())
    };
    for vendor in [false, true] {
        let (code, errors) = check(b"junk, not an initrd\n", vendor);
        assert_eq!(code, 1, "vendor {vendor}: {errors}");
        assert!(
            errors.contains(&format!(
                "error: initrd `{}initrd.img` is not an initramfs",
                nginx.url()
            )),
            "{errors}"
        );
        assert!(errors.contains("--> images/linux.toml:2:11"), "{errors}");
        let (code, errors) = check(&cpio("fine"), vendor);
        assert_eq!(code, 0, "vendor {vendor}: {errors}");
    }
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f");
    fs::write(&p, bytes).unwrap();
    let o = Command::new("sha256sum").arg(&p).output().unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}
