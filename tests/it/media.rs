//! Boot media (SPEC section 9), for real: the generic image boots under
//! BIOS and UEFI from a CD and as a USB disk with QEMU's user network, whose
//! DHCP offers no boot file, against the tree served by nginx; a machine's
//! own image boots with its static address in a network namespace with no
//! DHCP server at all; with Secure Boot the generic image boots under OVMF
//! with Microsoft's keys to the signed kernel. Two builds give the same
//! bytes, `verify` catches a changed one, and every rule has its message.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::boot_support::{
    BootResult, Firmware, Nginx, busybox_initramfs, debian_kernel, default_boot_timeout, need,
    need_boot_tools, need_file, need_root, need_signed_loaders, qemu_run_from_disk,
};
use crate::harness::Site;
use crate::pxe_chain::{CHAIN, MAC, Netns, chain_site};

/// The files the images are made of, besides the programs.
const MEDIA_FILES: [(&str, &str); 5] = [
    ("/usr/lib/ISOLINUX/isolinux.bin", "isolinux"),
    ("/usr/lib/ISOLINUX/isohdpfx.bin", "isolinux"),
    (
        "/usr/lib/syslinux/modules/bios/ldlinux.c32",
        "syslinux-common",
    ),
    ("/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"),
    ("/usr/lib/ipxe/ipxe.lkrn", "ipxe"),
];

/// The tools `bootc` makes images with are here (else skipped, or a failure
/// under CI).
pub(crate) fn need_media_tools() -> bool {
    ["xorriso", "mkfs.vfat", "mmd", "mcopy", "grub-mkimage"]
        .iter()
        .all(|p| need(p))
        && MEDIA_FILES.iter().all(|(f, p)| need_file(f, p))
}

/// The basic fixture with [media] and this machine's iPXE.
pub(crate) fn media_site() -> Site {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "binaries = \"ipxe\"",
        "binaries = \"/usr/lib/ipxe\"",
    );
    s.append("bootc.toml", "\n[media]\n");
    s
}

/// nginx on 127.0.0.1 serving the site's http/ (built once so that it
/// exists; the test builds again with the port in base-url).
fn serve_built(s: &Site) -> Nginx {
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    Nginx::start(&s.path("public/http"))
}

/// How the image is attached: a CD drive, or a USB stick (the hybrid
/// image's MBR/GPT side). The NIC comes after it in the boot order (a
/// firmware connects only the devices in its boot order).
#[derive(Clone, Copy, Debug)]
enum Drive {
    Cd,
    Usb,
}

fn drive_args(drive: Drive, image: &Path) -> Vec<String> {
    let image = image.display();
    let a: Vec<String> = match drive {
        Drive::Cd => vec![
            "-drive".into(),
            format!("file={image},media=cdrom,if=none,id=media,readonly=on"),
            "-device".into(),
            "ide-cd,drive=media,bootindex=0".into(),
        ],
        Drive::Usb => vec![
            "-drive".into(),
            format!("file={image},format=raw,if=none,id=media,readonly=on"),
            "-device".into(),
            "qemu-xhci".into(),
            "-device".into(),
            "usb-storage,drive=media,bootindex=0".into(),
        ],
    };
    a
}

/// A NIC with no option ROM (nothing boots from the network by itself).
fn nic(netdev: &str, mac: &str) -> Vec<String> {
    vec![
        "-netdev".into(),
        netdev.into(),
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,mac={mac},romfile=,bootindex=1"),
    ]
}

fn timeout() -> Duration {
    default_boot_timeout().max(Duration::from_secs(180))
}

/// The kernel arguments of a boot that must have reached the marker.
fn booted(r: &BootResult, context: &str) -> Vec<String> {
    let Some(cmdline) = &r.marker else {
        panic!("no marker\n{}\n{context}", r.diagnostics())
    };
    cmdline.split_whitespace().map(String::from).collect()
}

/// The basic fixture with [media], real artifacts, and `edit`, built and
/// served at 10.0.2.2 (QEMU's user network reaches nginx on 127.0.0.1
/// there). None (skipped) without the tools.
fn served_media_site(firmware: Firmware, edit: impl FnOnce(&Site)) -> Option<(Site, Nginx)> {
    if !(need_boot_tools(firmware) && need_media_tools()) {
        return None;
    }
    let kernel = debian_kernel()?;
    let s = media_site();
    fs::copy(&kernel, s.path("artifacts/vmlinuz")).unwrap();
    busybox_initramfs(&s.path("artifacts"));
    edit(&s);
    let nginx = serve_built(&s);
    s.edit(
        "bootc.toml",
        "base-url = \"http://10.77.0.1:8080/boot/\"",
        &format!("base-url = \"http://10.0.2.2:{}/\"", nginx.port()),
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    Some((s, nginx))
}

/// Boots `mac` from the site's generic image on `drive`, with user
/// networking: its DHCP server offers an address and no boot file.
fn boot_generic(s: &Site, firmware: Firmware, drive: Drive, mac: &str) -> BootResult {
    let mut args = drive_args(drive, &s.path("public/http/media/boot.iso"));
    args.extend(nic("user,id=n0", mac));
    qemu_run_from_disk(&[], &args, firmware, timeout())
}

/// The generic image boots node01 from `drive`: its own args, fetched
/// through its MAC's script or config.
fn generic(firmware: Firmware, drive: Drive) {
    let Some((s, nginx)) = served_media_site(firmware, |_| {}) else {
        return;
    };
    let result = boot_generic(&s, firmware, drive, MAC);
    let context = format!("--- nginx ---\n{}", nginx.access_log());
    let a = booted(&result, &context);
    for want in ["bootc.role=worker", "worker.tier=gold"] {
        assert!(
            a.iter().any(|x| x == want),
            "{want} missing: {a:?}\n{context}"
        );
    }
    // The MAC's own program ran: the iPXE script (BIOS) or the GRUB config
    // (UEFI), fetched over HTTP.
    let own = match firmware {
        Firmware::Bios => "/machines/52-54-00-aa-bb-01.ipxe",
        _ => "/grub/grub.cfg-01-52-54-00-aa-bb-01",
    };
    assert!(
        nginx.served().iter().any(|u| u == own),
        "{own} not fetched\n{context}"
    );
    // Its loader (iPXE or GRUB) fetched the beacon: status says so.
    let node01 = &crate::status::status(&s, &nginx.combined_log())["node01"];
    assert_eq!(node01["current"], true, "{node01}\n{context}");
    eprintln!("{firmware:?} {drive:?}: booted in {:.1?}", result.elapsed);
}

#[test]
fn bios_boots_the_generic_image_from_a_cd() {
    generic(Firmware::Bios, Drive::Cd);
}

#[test]
fn uefi_boots_the_generic_image_from_a_cd() {
    generic(Firmware::Uefi, Drive::Cd);
}

#[test]
fn bios_boots_the_generic_image_from_a_usb_disk() {
    generic(Firmware::Bios, Drive::Usb);
}

#[test]
fn uefi_boots_the_generic_image_from_a_usb_disk() {
    generic(Firmware::Uefi, Drive::Usb);
}

/// An unknown MAC gets the fallback through the media's GRUB. Over HTTP
/// GRUB would run the server's 404 page of the missing config as a script;
/// the entry reads a config only when its environment block exists.
#[test]
fn uefi_unknown_machine_gets_the_fallback_from_the_generic_image() {
    let Some((s, nginx)) = served_media_site(Firmware::Uefi, |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"",
            "fallback = \"worker\"",
        );
    }) else {
        return;
    };
    let result = boot_generic(&s, Firmware::Uefi, Drive::Cd, "52:54:00:99:99:99");
    let context = format!(
        "{}\n--- nginx ---\n{}",
        result.diagnostics(),
        nginx.access_log()
    );
    let a = booted(&result, &context);
    assert!(
        a.iter().any(|x| x == "bootc.role=worker"),
        "{a:?}\n{context}"
    );
    assert!(
        !result.output.contains("syntax error"),
        "GRUB ran an error page as a script\n{context}"
    );
    let served = nginx.served();
    assert!(
        served.iter().any(|u| u == "/grub/fallback.cfg"),
        "{context}"
    );
    assert!(
        !served.iter().any(|u| u.starts_with("/grub/grub.cfg-01-")),
        "{context}"
    );
}

/// node01's own image, in a namespace whose bridge has no DHCP server: the
/// image finds node01's card (behind another machine's), gives it its fixed
/// address (10.77.0.11/24 from its subnet) and enters the site at
/// http://10.77.0.1:8080/ through that MAC's own script or config.
fn static_address(firmware: Firmware) {
    if !(need_root() && need_boot_tools(firmware) && need_media_tools() && need("ip")) {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());
    let s = chain_site(Some(&kernel));
    s.append("bootc.toml", "\n[media]\n");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let image = s.path("node01.iso");
    let r = s.run(&["media", ".", "--machine", "node01", "-o", "node01.iso"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("node01"), "{}", r.stdout);

    let ns = Netns::new();
    let nginx = Nginx::start_in_netns(&s.path("public/http"), &ns.name, "10.77.0.1:8080");
    let mut args = drive_args(Drive::Cd, &image);
    // A card of another machine comes first: the image must find node01's.
    args.extend([
        "-netdev".into(),
        "user,id=other,restrict=on".into(),
        "-device".into(),
        "virtio-net-pci,netdev=other,mac=52:54:00:99:99:99,romfile=".into(),
    ]);
    args.extend(nic("tap,id=n0,ifname=tap0,script=no,downscript=no", MAC));
    let result = qemu_run_from_disk(
        &["ip", "netns", "exec", &ns.name],
        &args,
        firmware,
        timeout(),
    );
    let context = format!("--- nginx ---\n{}", nginx.access_log());
    let a = booted(&result, &context);
    assert!(
        a.iter().any(|x| x == "worker.tier=gold"),
        "{a:?}\n{context}"
    );
    // nginx saw the machine's fixed address.
    assert!(
        nginx.access_log().contains(" 10.77.0.11\n"),
        "no request from 10.77.0.11\n{context}"
    );
    eprintln!("{firmware:?} static: booted in {:.1?}", result.elapsed);
}

#[test]
fn bios_boots_a_machine_image_without_dhcp() {
    static_address(Firmware::Bios);
}

#[test]
fn uefi_boots_a_machine_image_without_dhcp() {
    static_address(Firmware::Uefi);
}

/// With `[uefi] secure-boot`, the generic image's UEFI side is Debian's
/// signed shim and GRUB: under OVMF with Microsoft's keys it reaches the
/// signed kernel, over TFTP (QEMU's user network serves tftp/).
#[test]
fn secure_boot_generic_image() {
    if !(need_boot_tools(Firmware::UefiSecureBoot) && need_media_tools() && need_signed_loaders()) {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let s = media_site();
    fs::copy(&kernel, s.path("artifacts/vmlinuz")).unwrap();
    busybox_initramfs(&s.path("artifacts"));
    s.append("bootc.toml", "\n[uefi]\nsecure-boot = true\n");
    let nginx = serve_built(&s);
    s.edit(
        "bootc.toml",
        "base-url = \"http://10.77.0.1:8080/boot/\"",
        &format!("base-url = \"http://10.0.2.2:{}/\"", nginx.port()),
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let image = s.path("public/http/media/boot.iso");
    let tftp = s.path("public/tftp");
    let mut args = drive_args(Drive::Cd, &image);
    args.extend(nic(&format!("user,id=n0,tftp={}", tftp.display()), MAC));
    let result = qemu_run_from_disk(&[], &args, Firmware::UefiSecureBoot, timeout());
    let a = booted(&result, "");
    assert!(a.iter().any(|x| x == "worker.tier=gold"), "{a:?}");
    assert!(
        result.output.contains("Secure boot enabled"),
        "the kernel did not run under Secure Boot\n{}",
        result.diagnostics()
    );
    eprintln!("Secure Boot: booted in {:.1?}", result.elapsed);
}
