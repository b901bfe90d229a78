//! End-to-end check of `boot_support` without bootc: a hand-written
//! `boot.ipxe`, a real Debian kernel and the busybox initramfs, served by
//! nginx and network-booted by QEMU under BIOS and UEFI.

use std::fs;
use std::path::Path;

use crate::boot_support::{
    Firmware, Nginx, busybox_initramfs, debian_kernel, default_boot_timeout, need_boot_tools,
    qemu_boot,
};

const MAC: &str = "52:54:00:aa:bb:01";

/// Writes the kernel, the initramfs and `script` as `boot.ipxe` into `dir`.
/// None (after a skip message) when a tool or the kernel is missing.
fn boot_dir(dir: &Path, firmware: Firmware, script: &str) -> Option<()> {
    if !need_boot_tools(firmware) {
        return None;
    }
    let kernel = debian_kernel()?;
    fs::copy(&kernel, dir.join("vmlinuz")).expect("copy kernel");
    busybox_initramfs(dir);
    fs::write(dir.join("boot.ipxe"), script).expect("write boot.ipxe");
    Some(())
}

fn boot_reaches_marker(firmware: Firmware) {
    let dir = tempfile::tempdir().unwrap();
    let script = "#!ipxe\n\
                  kernel vmlinuz initrd=initrd.img console=ttyS0 bootc.test=1\n\
                  initrd initrd.img\n\
                  boot\n";
    if boot_dir(dir.path(), firmware, script).is_none() {
        return;
    }
    let nginx = Nginx::start(dir.path());
    let result = qemu_boot(nginx.port(), &[MAC], firmware, default_boot_timeout());
    let cmdline = result.cmdline();
    eprintln!(
        "{firmware:?} boot (-accel {}) reached the marker in {:.1?}",
        crate::boot_support::accel(),
        result.elapsed
    );
    assert!(
        cmdline.split_whitespace().any(|a| a == "bootc.test=1"),
        "marker without bootc.test=1: {cmdline:?}\n{}",
        result.diagnostics()
    );
    let fetched: Vec<String> = nginx.served();
    for uri in ["/boot.ipxe", "/vmlinuz", "/initrd.img"] {
        assert!(
            fetched.iter().any(|u| u == uri),
            "{uri} not fetched; access log:\n{}",
            nginx.access_log()
        );
    }
}

#[test]
fn bios_boot_reaches_marker() {
    boot_reaches_marker(Firmware::Bios);
}

#[test]
fn uefi_boot_reaches_marker() {
    boot_reaches_marker(Firmware::Uefi);
}
