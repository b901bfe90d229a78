//! `bootc test` on site.example: one boot per boot path of the example,
//! every row passing, with Debian's real files (the installer, the iPXE
//! ISO, memdisk, the signed installer kernel, shim and GRUB).
//!
//! site.example fetches its remote artifacts from the lab's mirror
//! (mirror.lab.internal) and chains the lab's menu service
//! (netboot.lab.internal), hosts that exist only in that lab: there a
//! machine (and `bootc test`) reaches them; here they are stood in by nginx
//! on 127.0.0.1, serving Debian's package files, whose hashes are the
//! example's pins, at the same paths. The copy changes those two hosts and
//! nothing else.

use std::fs;
use std::os::unix::fs::symlink;

use crate::boot_support::{Firmware, Nginx, need_boot_tools, need_file, need_signed_loaders};
use crate::harness::Site;

const DI: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
const NETBOOT: &str = "debian/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64";

/// The lab's mirror and menu service: Debian's files at the example's
/// URL paths, and a menu that only says it was reached.
fn lab_hosts(root: &std::path::Path) {
    for (at, file) in [
        (format!("{NETBOOT}/linux"), format!("{DI}/linux")),
        (format!("{NETBOOT}/initrd.gz"), format!("{DI}/initrd.gz")),
        (
            "ipxe/ipxe.iso".to_string(),
            "/usr/lib/ipxe/ipxe.iso".to_string(),
        ),
        (
            "syslinux/memdisk".to_string(),
            "/usr/lib/syslinux/memdisk".to_string(),
        ),
    ] {
        let p = root.join(at);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(file, p).unwrap();
    }
    fs::write(
        root.join("menu.ipxe"),
        "#!ipxe\necho the lab menu service (a stand-in)\n",
    )
    .unwrap();
}

/// Machines of site.example, one per boot path: the remote installer
/// (k8s-worker; installer and storage boot the same image with their own
/// args), the local disk, a local chained menu, an ISO over sanboot, the
/// ISO through memdisk (BIOS only), the lab's menu service, the signed
/// installer under Secure Boot, and the arm64 machine (left out).
const MACHINES: [&str; 8] = [
    "k8s-w1", "mgmt1", "lab-02", "lab-03", "lab-04", "kiosk-01", "sb-01", "arm-01",
];

#[test]
fn boottest_site_example_every_boot_path_passes() {
    if !(need_boot_tools(Firmware::Uefi)
        && need_boot_tools(Firmware::UefiSecureBoot)
        && need_signed_loaders()
        && need_file(&format!("{DI}/linux"), "debian-installer-12-netboot-amd64")
        && need_file("/usr/lib/ipxe/ipxe.iso", "ipxe")
        && need_file("/usr/lib/syslinux/memdisk", "syslinux-common"))
    {
        return;
    }
    let s = Site::fixture("../../site.example");
    let _ = fs::remove_dir_all(s.path("public"));
    let mirror = tempfile::tempdir().unwrap();
    lab_hosts(mirror.path());
    let nginx = Nginx::start(mirror.path());
    let here = format!("http://10.0.2.2:{}/", nginx.port());
    for f in fs::read_dir(s.path("images")).unwrap() {
        let f = f.unwrap().path();
        let text = fs::read_to_string(&f).unwrap();
        let text = text
            .replace("http://mirror.lab.internal/", &here)
            .replace("http://netboot.lab.internal/", &here);
        fs::write(&f, text).unwrap();
    }
    let mut args = vec!["test", ".", "--machine"];
    args.extend(MACHINES);
    args.extend([
        "--jobs",
        "2",
        "--accel",
        crate::boot_support::accel(),
        "--format",
        "json",
    ]);
    let started = std::time::Instant::now();
    let r = s.run(&args);
    eprintln!("bootc test of site.example: {:.1?}", started.elapsed());
    let report = super::json_report(&r);
    let context = format!("{report:#}\n{}\nnginx:\n{}", r.stderr, nginx.access_log());
    assert_eq!(r.code, 0, "{context}");

    // Each machine under BIOS and its own UEFI chain.
    let mut rows: Vec<(String, String, String)> = report["boots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            assert_eq!(b["passed"], true, "{b:#}");
            (
                b["machine"].as_str().unwrap().to_string(),
                b["firmware"].as_str().unwrap().to_string(),
                b["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    rows.sort();
    let kernel = "kernel started with the expected command line";
    let mut want = vec![
        ("k8s-w1", "bios", kernel),
        ("k8s-w1", "uefi", kernel),
        (
            "kiosk-01",
            "bios",
            "fetch chain only (an image of kind chain)",
        ),
        (
            "kiosk-01",
            "uefi",
            "fetch chain only (an image of kind chain)",
        ),
        (
            "lab-02",
            "bios",
            "fetch chain only (an image of kind chain)",
        ),
        (
            "lab-02",
            "uefi",
            "fetch chain only (an image of kind chain)",
        ),
        ("lab-03", "bios", "fetch chain only (an image of kind iso)"),
        ("lab-03", "uefi", "fetch chain only (an image of kind iso)"),
        ("lab-04", "bios", "fetch chain only (an image of kind iso)"),
        (
            "mgmt1",
            "bios",
            "boots from the local disk (fetch chain only)",
        ),
        (
            "mgmt1",
            "uefi",
            "boots from the local disk (fetch chain only)",
        ),
        ("sb-01", "bios", kernel),
        (
            "sb-01",
            "uefi-sb",
            "kernel started with the expected command line under Secure Boot (TFTP fetch chain not recorded)",
        ),
    ];
    want.sort();
    let want: Vec<(String, String, String)> = want
        .into_iter()
        .map(|(m, f, v)| (m.to_string(), f.to_string(), v.to_string()))
        .collect();
    assert_eq!(rows, want, "{context}");
    assert_eq!(report["passed"], 13);
    assert_eq!(
        report["skipped"],
        serde_json::json!([
            "lab-04 under uefi: its image boots memdisk, which runs under BIOS only",
            "arm-01: arm64 machines are not booted by bootc test yet",
        ])
    );
    // The installer's args reached its kernel, the preseed URL included.
    let k8s = report["boots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["machine"] == "k8s-w1" && b["firmware"] == "bios")
        .unwrap();
    assert!(
        k8s["cmdline"]
            .as_str()
            .unwrap()
            .contains("url=http://10.77.0.1:8080/machines/k8s-w1/preseed.cfg hostname=k8s-w1"),
        "{k8s:#}"
    );
    // The stand-ins were reached: the installer, the ISO, memdisk, the menu.
    let log = nginx.access_log();
    for path in [
        format!("/{NETBOOT}/linux"),
        format!("/{NETBOOT}/initrd.gz"),
        "/ipxe/ipxe.iso".to_string(),
        "/syslinux/memdisk".to_string(),
        "/menu.ipxe".to_string(),
    ] {
        assert!(
            log.contains(&format!(" {path} ")),
            "{path} not fetched\n{log}"
        );
    }
}
