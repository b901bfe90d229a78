//! `bootc test`: real boots of the `basic` fixture (a real Debian kernel and
//! a busybox initramfs) under BIOS and UEFI, broken sites validation cannot
//! catch (a remote kernel gone from its mirror, an initrd cut off, an
//! initrd without /init, args without a serial console), the JUnit report,
//! the exit code without QEMU, and a Secure Boot machine under `uefi-sb`.
//! Nine boots in all, two at a time; site.example's are in `example`.

mod example;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;

use serde_json::Value;
use sha2::Digest;

use crate::boot_support::{
    Firmware, busybox_initramfs, debian_kernel, need_boot_tools, need_signed_loaders,
};
use crate::harness::{Run, Site, bootc, cpio};

/// The `basic` fixture with a real kernel and the busybox initramfs. None
/// (skipped) without the tools.
fn bootable_site() -> Option<Site> {
    if !need_boot_tools(Firmware::Bios) {
        return None;
    }
    let kernel = debian_kernel()?;
    let s = Site::fixture("basic");
    fs::copy(&kernel, s.path("artifacts/vmlinuz")).unwrap();
    busybox_initramfs(&s.path("artifacts"));
    Some(s)
}

/// `bootc test --format json`'s report, parsed.
fn json_report(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", r.stdout, r.stderr))
}

fn rows(report: &Value) -> Vec<&Value> {
    report["boots"].as_array().unwrap().iter().collect()
}

fn row<'a>(report: &'a Value, machine: &str) -> &'a Value {
    rows(report)
        .into_iter()
        .find(|b| b["machine"] == machine)
        .unwrap_or_else(|| panic!("no row of {machine}: {report:#}"))
}

#[test]
fn boottest_every_role_boots_under_bios_and_uefi() {
    if !need_boot_tools(Firmware::Uefi) {
        return;
    }
    let Some(s) = bootable_site() else {
        return;
    };
    // The accelerator the other boot tests use (TCG unless BOOTC_TEST_ACCEL
    // asks for KVM): a nested KVM that opens but cannot run the firmware
    // would otherwise cost each boot its timeout.
    let accel = crate::boot_support::accel();
    let r = s.run(&[
        "test", ".", "--format", "json", "--jobs", "2", "--accel", accel,
    ]);
    let report = json_report(&r);
    assert_eq!(r.code, 0, "{report:#}\n{}", r.stderr);
    assert!(["kvm", "tcg"].contains(&report["accel"].as_str().unwrap()));
    // One machine per role (worker: node01, disk: node03), each firmware.
    let mut seen: Vec<(String, String)> = rows(&report)
        .iter()
        .map(|b| {
            (
                b["machine"].as_str().unwrap().to_string(),
                b["firmware"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let want = [
        ("node01", "bios"),
        ("node01", "uefi"),
        ("node03", "bios"),
        ("node03", "uefi"),
    ];
    assert_eq!(
        seen,
        want.map(|(m, f)| (m.to_string(), f.to_string())),
        "{report:#}"
    );
    assert_eq!(report["passed"], 4);
    assert_eq!(report["total"], 4);
    for b in rows(&report) {
        assert_eq!(b["passed"], true, "{b:#}");
        let requests = b["requests"].as_array().unwrap();
        assert!(
            requests
                .iter()
                .all(|q| q["status"] == 200 && q["complete"] == true),
            "{b:#}"
        );
        let paths: Vec<&str> = requests
            .iter()
            .map(|q| q["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths[0], "boot.ipxe", "{b:#}");
        let mac = b["mac"].as_str().unwrap().replace(':', "-");
        assert_eq!(paths[1], format!("machines/{mac}.ipxe"), "{b:#}");
        assert!(b["seconds"].as_f64().unwrap() > 0.0);
    }
    for fw in ["bios", "uefi"] {
        let b = rows(&report)
            .into_iter()
            .find(|b| b["machine"] == "node01" && b["firmware"] == fw)
            .unwrap();
        assert_eq!(
            b["verdict"], "kernel started with the expected command line",
            "{b:#}"
        );
        let cmdline = b["cmdline"].as_str().unwrap();
        assert!(
            cmdline.ends_with("console=ttyS0 bootc.role=worker worker.tier=gold"),
            "{cmdline}"
        );
        let paths: Vec<&str> = b["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths.len(), 5, "{b:#}");
        assert!(
            paths[2].ends_with("/vmlinuz") && paths[3].ends_with("/initrd.img"),
            "{b:#}"
        );
        // The beacon, just before the kernel starts.
        assert!(
            paths[4].starts_with("machines/52-54-00-aa-bb-01.ipxe?booting="),
            "{b:#}"
        );
    }
    let local = row(&report, "node03");
    assert_eq!(
        local["verdict"],
        "boots from the local disk (fetch chain only)"
    );
}

/// An HTTP server on 127.0.0.1 for remote artifacts: `/vmlinuz` is gone
/// (404), `/initrd.img` is announced whole and cut off halfway.
fn mirror(initrd: Vec<u8>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for sock in l.incoming() {
            let Ok(mut sock) = sock else { continue };
            let initrd = initrd.clone();
            thread::spawn(move || {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && sock.read(&mut b).is_ok_and(|n| n == 1) {
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head);
                if head.starts_with("GET /initrd.img ") {
                    let _ = write!(
                        sock,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        initrd.len()
                    );
                    let _ = sock.write_all(&initrd[..initrd.len() / 2]);
                } else {
                    let _ = sock.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            });
        }
    });
    port
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

#[test]
fn boottest_broken_sites_name_where_the_boot_stopped() {
    let Some(s) = bootable_site() else {
        return;
    };
    let kernel = fs::read(s.path("artifacts/vmlinuz")).unwrap();
    let initrd = fs::read(s.path("artifacts/initrd.img")).unwrap();
    let port = mirror(initrd.clone());
    fs::write(s.path("artifacts/noinit.img"), cpio("no init here\n")).unwrap();
    let images = [
        (
            "gone",
            format!(
                "kernel = {{ url = \"http://10.0.2.2:{port}/vmlinuz\", sha256 = \"{}\" }}\ninitrd = [{{ path = \"artifacts/initrd.img\" }}]\nkernel-args = [\"console=ttyS0\"]\n",
                sha256(&kernel)
            ),
        ),
        (
            "cut",
            format!(
                "kernel = {{ path = \"artifacts/vmlinuz\" }}\ninitrd = [{{ url = \"http://10.0.2.2:{port}/initrd.img\", sha256 = \"{}\" }}]\nkernel-args = [\"console=ttyS0\"]\n",
                sha256(&initrd)
            ),
        ),
        (
            "noinit",
            "kernel = { path = \"artifacts/vmlinuz\" }\ninitrd = [{ path = \"artifacts/noinit.img\" }]\nkernel-args = [\"console=ttyS0\"]\n".to_string(),
        ),
        (
            "silent",
            "kernel = { path = \"artifacts/vmlinuz\" }\ninitrd = [{ path = \"artifacts/initrd.img\" }]\n".to_string(),
        ),
    ];
    let mut machines = String::new();
    for (i, (name, image)) in images.iter().enumerate() {
        s.write(&format!("images/{name}.toml"), image);
        s.write(
            &format!("roles/{name}.toml"),
            &format!("image = \"{name}\"\n"),
        );
        machines.push_str(&format!(
            "\n[[machine]]\nname = \"{name}\"\nmac = \"52:54:00:aa:cc:0{i}\"\nrole = \"{name}\"\n"
        ));
    }
    s.append("machines/rack1.toml", &machines);
    let junit = s.path("junit.xml");
    let r = s.run(&[
        "test",
        ".",
        "--machine",
        "gone",
        "cut",
        "noinit",
        "silent",
        "--firmware",
        "bios",
        "--jobs",
        "2",
        "--accel",
        crate::boot_support::accel(),
        "--format",
        "json",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let report = json_report(&r);
    assert_eq!(r.code, 1, "{report:#}\n{}", r.stderr);
    assert_eq!(report["total"], 4, "{report:#}");
    assert_eq!(report["passed"], 1, "{report:#}");

    let gone = row(&report, "gone");
    assert_eq!(gone["passed"], false);
    assert_eq!(gone["stopped-at"], "kernel fetch failed", "{gone:#}");
    // The remote kernel never reaches bootc's server; the chain stops there.
    let paths: Vec<&str> = gone["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["boot.ipxe", "machines/52-54-00-aa-cc-00.ipxe"],
        "{gone:#}"
    );

    let cut = row(&report, "cut");
    assert_eq!(cut["stopped-at"], "initrd fetch failed", "{cut:#}");

    let noinit = row(&report, "noinit");
    assert_eq!(noinit["stopped-at"], "kernel panicked", "{noinit:#}");
    assert!(
        noinit["cmdline"]
            .as_str()
            .unwrap()
            .contains("console=ttyS0"),
        "{noinit:#}"
    );

    let silent = row(&report, "silent");
    assert_eq!(silent["passed"], true, "{silent:#}");
    assert_eq!(
        silent["verdict"],
        "fetch chain only (no serial console in the args)"
    );
    // boot.ipxe, its script, kernel, initrd and the beacon.
    assert_eq!(
        silent["requests"].as_array().unwrap().len(),
        5,
        "{silent:#}"
    );

    // The JUnit report of the same run: valid XML, the same counts.
    let xml = fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("4"));
    assert_eq!(suite.attribute("failures"), Some("3"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 4);
    let failed: Vec<&str> = cases
        .iter()
        .filter_map(|c| {
            c.children()
                .find(|n| n.has_tag_name("failure"))
                .and_then(|f| f.attribute("type"))
        })
        .collect();
    assert_eq!(failed.len(), 3, "{xml}");
    assert!(failed.contains(&"kernel panicked"), "{xml}");
}

#[test]
fn boottest_without_qemu_exits_2_naming_the_packages() {
    let s = Site::fixture("basic");
    let empty = tempfile::tempdir().unwrap();
    let r = bootc()
        .args(["test", "."])
        .current_dir(s.root())
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("qemu-system-x86"), "{stderr}");
    assert!(
        stderr.contains("ovmf") && stderr.contains("ipxe-qemu"),
        "{stderr}"
    );
}

/// A Secure Boot machine under `uefi-sb`: OVMF with Microsoft's keys and
/// Secure Boot enforced, its PXE -> Debian's signed shim -> signed GRUB ->
/// the machine's GRUB config -> the signed Debian kernel and the busybox
/// initramfs, all over QEMU's TFTP server. The row proves the command line
/// and says the TFTP chain was not recorded; a machine without Secure Boot
/// is left out of uefi-sb, and the Secure Boot one out of plain uefi.
#[test]
fn boottest_secure_boot_machine_boots_under_uefi_sb() {
    if !(need_boot_tools(Firmware::UefiSecureBoot) && need_signed_loaders()) {
        return;
    }
    let Some(s) = bootable_site() else {
        return;
    };
    s.write(
        "roles/secure.toml",
        "extends = \"worker\"\nsecure-boot = true\n",
    );
    s.append(
        "machines/rack1.toml",
        "\n[[machine]]\nname = \"sb01\"\nmac = \"52:54:00:aa:cc:20\"\nip = \"10.77.0.40\"\nrole = \"secure\"\n",
    );
    let r = s.run(&[
        "test",
        ".",
        "--machine",
        "sb01",
        "node03",
        "--firmware",
        "uefi-sb",
        "--accel",
        crate::boot_support::accel(),
        "--format",
        "json",
    ]);
    let report = json_report(&r);
    assert_eq!(r.code, 0, "{report:#}\n{}", r.stderr);
    assert_eq!(report["total"], 1, "{report:#}");
    let b = row(&report, "sb01");
    assert_eq!(b["firmware"], "uefi-sb");
    assert_eq!(b["passed"], true, "{b:#}");
    assert_eq!(
        b["verdict"],
        "kernel started with the expected command line under Secure Boot (TFTP fetch chain not recorded)"
    );
    assert_eq!(b["recorded"], false);
    assert_eq!(b["requests"].as_array().unwrap().len(), 0, "{b:#}");
    // GRUB's `linux` put the kernel's TFTP path first.
    let cmdline = b["cmdline"].as_str().unwrap();
    assert!(
        cmdline.starts_with("BOOT_IMAGE=/images/")
            && cmdline.ends_with("/vmlinuz console=ttyS0 bootc.role=secure worker.tier=gold"),
        "{cmdline}"
    );
    assert_eq!(
        report["skipped"],
        serde_json::json!([
            "node03 under uefi-sb: Secure Boot is off for it (its UEFI firmware gets iPXE, which Secure Boot refuses)"
        ])
    );

    // Under plain uefi it is left out, with what to ask for; nothing boots.
    let r = s.run(&[
        "test",
        ".",
        "--machine",
        "sb01",
        "--firmware",
        "uefi",
        "--format",
        "json",
    ]);
    let report = json_report(&r);
    assert_eq!(r.code, 0, "{report:#}\n{}", r.stderr);
    assert_eq!(report["total"], 0, "{report:#}");
    assert_eq!(
        report["skipped"],
        serde_json::json!([
            "sb01 under uefi: Secure Boot is on for it (its UEFI firmware gets shim and GRUB): add uefi-sb to --firmware"
        ])
    );
}
