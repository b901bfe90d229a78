//! Real boots: the `basic` fixture with a real Debian kernel and a busybox
//! initramfs, built by bootc, served by nginx, network-booted by QEMU's iPXE
//! under BIOS and UEFI. The initramfs prints /proc/cmdline, so each test sees
//! exactly which kernel arguments the machine got.

use std::fs;

use crate::boot_support::{
    Firmware, Nginx, busybox_initramfs, debian_kernel, default_boot_timeout, need_boot_tools,
    qemu_boot,
};
use crate::harness::Site;

/// The fixture with real artifacts, built. None (skipped) without the tools.
pub(crate) fn bootable_site(firmware: Firmware, edit: impl FnOnce(&Site)) -> Option<Site> {
    if !need_boot_tools(firmware) {
        return None;
    }
    let kernel = debian_kernel()?;
    let s = Site::fixture("basic");
    fs::copy(&kernel, s.path("artifacts/vmlinuz")).unwrap();
    let initrd = busybox_initramfs(&s.path("artifacts"));
    assert_eq!(initrd, s.path("artifacts/initrd.img"));
    edit(&s);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    Some(s)
}

fn args(cmdline: &str) -> Vec<&str> {
    cmdline.split_whitespace().collect()
}

/// Boots `macs` (the first one is the booting NIC) and returns the kernel
/// command line and the paths nginx served.
fn boot(s: &Site, firmware: Firmware, macs: &[&str]) -> (String, Vec<String>) {
    let nginx = Nginx::start(&s.path("public/http"));
    let result = qemu_boot(nginx.port(), macs, firmware, default_boot_timeout());
    let cmdline = result.cmdline().to_string();
    let served = nginx.served();
    (cmdline, served)
}

/// cloud-init NoCloud's argument: `;` inside one word is no separator for
/// iPXE, so it must reach the kernel whole.
const NOCLOUD: &str = "ds=nocloud-net;s=http://10.0.2.2/ci/";

fn known_machine(firmware: Firmware) {
    let Some(s) = bootable_site(firmware, |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"",
            &format!("ip = \"10.77.0.11\"\nkernel-args = [\"{NOCLOUD}\"]"),
        );
    }) else {
        return;
    };
    let (cmdline, served) = boot(&s, firmware, &["52:54:00:aa:bb:01"]);
    let a = args(&cmdline);
    for want in [
        "console=ttyS0",
        "bootc.role=worker",
        "worker.tier=gold",
        NOCLOUD,
    ] {
        assert!(a.contains(&want), "{want} missing from {cmdline:?}");
    }
    assert!(
        !a.contains(&"nomodeset"),
        "node02's argument reached node01: {cmdline:?}"
    );
    assert!(
        served.contains(&"/machines/52-54-00-aa-bb-01.ipxe".to_string()),
        "{served:?}"
    );
    assert!(
        !served.iter().any(|u| u == "/fallback.ipxe"),
        "a known machine must not fetch the fallback: {served:?}"
    );
}

#[test]
fn bios_known_machine_gets_its_role_args() {
    known_machine(Firmware::Bios);
}

#[test]
fn uefi_known_machine_gets_its_role_args() {
    known_machine(Firmware::Uefi);
}

fn second_nic(firmware: Firmware) {
    let Some(s) = bootable_site(firmware, |_| {}) else {
        return;
    };
    // node02's second NIC boots: its script is machines/52-54-00-aa-bb-12.ipxe.
    let (cmdline, served) = boot(&s, firmware, &["52:54:00:aa:bb:12", "52:54:00:aa:bb:02"]);
    let a = args(&cmdline);
    for want in [
        "console=ttyS0",
        "bootc.role=worker",
        "worker.tier=silver",
        "nomodeset",
    ] {
        assert!(a.contains(&want), "{want} missing from {cmdline:?}");
    }
    // machine args come last, after the image's and the roles'
    assert_eq!(a.last(), Some(&"nomodeset"), "{cmdline:?}");
    assert!(
        served.contains(&"/machines/52-54-00-aa-bb-12.ipxe".to_string()),
        "{served:?}"
    );
}

#[test]
fn uefi_second_nic_of_a_multi_nic_machine() {
    second_nic(Firmware::Uefi);
}

#[test]
fn bios_second_nic_of_a_multi_nic_machine() {
    second_nic(Firmware::Bios);
}

fn unknown_machine(firmware: Firmware) {
    let Some(s) = bootable_site(firmware, |s| {
        s.edit("bootc.toml", "fallback = \"local\"", "fallback = \"base\"");
    }) else {
        return;
    };
    let (cmdline, served) = boot(&s, firmware, &["52:54:00:12:34:56"]);
    let a = args(&cmdline);
    assert!(a.contains(&"bootc.role=base"), "{cmdline:?}");
    assert!(
        !a.iter().any(|x| x.starts_with("worker.tier")),
        "{cmdline:?}"
    );
    assert!(served.contains(&"/fallback.ipxe".to_string()), "{served:?}");
}

/// A machine whose NIC was swapped (an unknown MAC) is found by its SMBIOS
/// UUID, and one with neither by its serial number: each boots its own role
/// (node01's worker args), not the fallback.
#[test]
fn bios_machines_found_by_uuid_and_by_serial() {
    const UUID: &str = "6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2";
    let Some(s) = bootable_site(Firmware::Bios, |s| {
        s.edit("bootc.toml", "fallback = \"local\"", "fallback = \"base\"");
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"",
            &format!("ip = \"10.77.0.11\"\nuuid = \"{}\"", UUID.to_uppercase()),
        );
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.12\"",
            "ip = \"10.77.0.12\"\nserial = \"SN-0002\"",
        );
    }) else {
        return;
    };
    let nginx = Nginx::start(&s.path("public/http"));
    let run = |smbios: &str| {
        let nics: Vec<String> = [
            "-netdev".to_string(),
            format!(
                "user,id=n0,bootfile=http://10.0.2.2:{}/boot.ipxe",
                nginx.port()
            ),
            "-device".into(),
            "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56".into(),
            "-smbios".into(),
            smbios.to_string(),
        ]
        .into();
        let r = crate::boot_support::qemu_run(&[], &nics, Firmware::Bios, default_boot_timeout());
        (r.cmdline().to_string(), r.diagnostics())
    };
    let (cmdline, why) = run(&format!("type=1,uuid={UUID}"));
    let a = args(&cmdline);
    assert!(
        a.contains(&"worker.tier=gold"),
        "node01 by UUID: {cmdline:?}\n{why}"
    );
    let (cmdline, why) = run("type=1,serial=SN-0002");
    let a = args(&cmdline);
    assert!(
        a.contains(&"nomodeset"),
        "node02 by serial: {cmdline:?}\n{why}"
    );
    let served = nginx.served();
    for path in [
        format!("/machines/uuid-{UUID}.ipxe"),
        "/machines/serial-SN-0002.ipxe".to_string(),
    ] {
        assert!(served.contains(&path), "{path} not in {served:?}");
    }
    assert!(!served.iter().any(|u| u == "/fallback.ipxe"), "{served:?}");
}

#[test]
fn bios_unknown_mac_boots_the_fallback() {
    unknown_machine(Firmware::Bios);
}

#[test]
fn uefi_unknown_mac_boots_the_fallback() {
    unknown_machine(Firmware::Uefi);
}

/// The real Debian 12 installer kernel and initrd, referenced by pinned URLs
/// (the `forms` fixture's `installer` image) and fetched from a local mirror
/// (nginx on 127.0.0.1, QEMU's 10.0.2.2): iPXE boots it and the kernel starts
/// with the role's arguments.
#[test]
fn bios_debian_installer_from_pinned_urls() {
    use crate::boot_support::{qemu_run_until, unavailable};
    const DI: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
    const MIRROR_PATH: &str = "debian/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64";
    if !need_boot_tools(Firmware::Bios) {
        return;
    }
    if !std::path::Path::new(DI).is_dir()
        && unavailable(
            "the Debian installer netboot files",
            "apt-get install debian-installer-12-netboot-amd64",
        )
    {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let mirror = root.path().join("mirror").join(MIRROR_PATH);
    fs::create_dir_all(&mirror).unwrap();
    for f in ["linux", "initrd.gz"] {
        fs::copy(format!("{DI}/{f}"), mirror.join(f)).unwrap();
    }
    let nginx = Nginx::start(root.path());
    let s = Site::fixture("forms");
    let image = s.read("images/installer.toml");
    // The pins in the fixture are those of the real files.
    for (f, pin) in [
        (
            "linux",
            "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d",
        ),
        (
            "initrd.gz",
            "cb24a28a5ba13dfb22e6e75bdd8ab997dbdee6e3ec6c1102f6c7f93044bd817d",
        ),
    ] {
        assert!(image.contains(pin));
        let out = std::process::Command::new("sha256sum")
            .arg(mirror.join(f))
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with(pin),
            "{f} is not the pinned file"
        );
    }
    s.write(
        "images/installer.toml",
        &image
            .replace(
                "http://mirror.lab.internal",
                &format!("http://10.0.2.2:{}/mirror", nginx.port()),
            )
            .replace("\"auto=true\"]", "\"auto=true\", \"console=ttyS0\"]"),
    );
    let out = root.path().join("out");
    let r = s.run(&["build", ".", "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nics = vec![
        "-netdev".to_string(),
        format!(
            "user,id=n0,bootfile=http://10.0.2.2:{}/out/http/boot.ipxe",
            nginx.port()
        ),
        "-device".to_string(),
        "virtio-net-pci,netdev=n0,mac=02:00:00:00:00:01".to_string(),
    ];
    let result = qemu_run_until(
        &[],
        &nics,
        Firmware::Bios,
        default_boot_timeout(),
        "Kernel command line: ",
    );
    let cmdline = result.cmdline();
    for want in [
        "initrd=initrd.gz",
        "priority=critical",
        "auto=true",
        "console=ttyS0",
    ] {
        assert!(
            args(cmdline).contains(&want),
            "{want} missing from {cmdline:?}"
        );
    }
    let served: Vec<String> = nginx.served();
    for f in ["linux", "initrd.gz"] {
        let uri = format!("/mirror/{MIRROR_PATH}/{f}");
        assert!(served.contains(&uri), "{uri} not fetched: {served:?}");
    }
}
