//! Secure Boot, GRUB and arm64 (SPEC section 8): the GRUB configs, the DHCP
//! configs that hand out shim, and every rule with its message and place.
//! The loaders and kernels here are small PE files made by the test (the
//! machine type and the security directory are what bootc reads), so these
//! run anywhere; the real chain is booted in pxe_chain.rs.

use crate::dhcp::checks_pass;
use crate::harness::{Site, pe};

const X64: u16 = 0x8664;
const ARM64: u16 = 0xaa64;

/// The basic fixture with Secure Boot on: stand-in iPXE binaries, signed
/// stand-in shim and GRUB, a signed kernel; node03 opts out.
pub(crate) fn secure_site() -> Site {
    let s = Site::fixture("basic");
    for name in ["undionly.kpxe", "snponly.efi", "ipxe.efi"] {
        s.write(&format!("ipxe/{name}"), &format!("stand-in {name}\n"));
    }
    std::fs::write(s.path("artifacts/shimx64.efi"), pe(X64, true)).unwrap();
    std::fs::write(s.path("artifacts/grubx64.efi"), pe(X64, true)).unwrap();
    std::fs::write(s.path("artifacts/vmlinuz"), pe(X64, true)).unwrap();
    s.append(
        "bootc.toml",
        "\n[uefi]\nsecure-boot = true\nshim = { path = \"artifacts/shimx64.efi\" }\ngrub = { path = \"artifacts/grubx64.efi\" }\n",
    );
    s.append("machines/sub/rack2.toml", "secure-boot = false\n");
    s
}

/// Builds `s` expecting failure; returns the errors (and checks that
/// nothing was written and `check` says the same).
fn refused(s: &Site, message: &str, at: &str) -> String {
    let r = s.build();
    assert_eq!(r.code, 1, "exit code; stderr:\n{}", r.stderr);
    assert!(
        !s.path("public").exists(),
        "a failed build must write nothing"
    );
    let errors = r.errors();
    assert!(
        errors.contains(&format!("error: {message}")),
        "{message:?} not in:\n{}",
        r.stderr
    );
    assert!(
        errors.contains(&format!("--> {at}")),
        "{at} not in:\n{}",
        r.stderr
    );
    assert_eq!(s.run(&["check", "."]).errors(), errors);
    errors
}

#[test]
fn grub_configs_and_dhcp_under_secure_boot() {
    let s = secure_site();
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("grub.cfg", s.out("tftp/grub/grub.cfg"));
    insta::assert_snapshot!(
        "grub_node01",
        s.out("tftp/grub/grub.cfg-01-52-54-00-aa-bb-01")
    );
    insta::assert_snapshot!("grub_fallback", s.out("tftp/grub/fallback.cfg"));
    // node02's second NIC has its config too; node03 opted out: iPXE only.
    assert!(
        s.path("public/tftp/grub/grub.cfg-01-52-54-00-aa-bb-12")
            .is_file()
    );
    assert!(
        !s.path("public/tftp/grub/grub.cfg-01-52-54-00-aa-bb-03")
            .exists()
    );
    assert!(
        s.path("public/http/machines/52-54-00-aa-bb-03.ipxe")
            .is_file()
    );
    // shim, GRUB, and the kernel GRUB fetches over TFTP, content-addressed.
    let kernel = blake3::hash(&pe(X64, true)).to_hex().to_string();
    for f in [
        "tftp/shimx64.efi".to_string(),
        "tftp/grubx64.efi".to_string(),
        format!("tftp/images/{kernel}/vmlinuz"),
    ] {
        assert!(s.path(&format!("public/{f}")).is_file(), "{f}");
    }
    let node01 = s.out("tftp/grub/grub.cfg-01-52-54-00-aa-bb-01");
    assert!(
        node01.contains(&format!("linux '/images/{kernel}/vmlinuz' '")),
        "{node01}"
    );
    // The plan records who boots how.
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    let by_name = |n: &str| {
        plan["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("node01")["secure-boot"], true);
    assert_eq!(by_name("node01")["uefi-loader"], "shim-grub");
    assert!(by_name("node03").get("secure-boot").is_none());
    // DHCP: shim for x86-64 UEFI, node03's own entry hands it iPXE.
    let dhcpd = s.out("dhcp/dhcpd.conf");
    insta::assert_snapshot!("dhcpd_secure_boot", dhcpd);
    insta::assert_snapshot!("kea_secure_boot", s.out("dhcp/kea-dhcp4.json"));
    insta::assert_snapshot!("dnsmasq_secure_boot", s.out("dhcp/dnsmasq.conf"));
    checks_pass(&s.path("public"));
}

#[test]
fn a_kernel_without_a_signature_is_refused_at_its_line() {
    let s = secure_site();
    std::fs::write(s.path("artifacts/vmlinuz"), pe(X64, false)).unwrap();
    let errors = refused(
        &s,
        "kernel `artifacts/vmlinuz` of image `linux` cannot boot under Secure Boot",
        "images/linux.toml:2:10",
    );
    assert!(
        errors.contains("it has no Authenticode signature"),
        "{errors}"
    );
    insta::assert_snapshot!(errors);
}

#[test]
fn a_kernel_that_is_no_pe_file_is_refused() {
    let s = secure_site();
    s.write("artifacts/vmlinuz", "not a kernel\n");
    let errors = refused(
        &s,
        "kernel `artifacts/vmlinuz` of image `linux` cannot boot under Secure Boot",
        "images/linux.toml:2:10",
    );
    assert!(errors.contains("no `MZ` header"), "{errors}");
}

#[test]
fn an_iso_under_secure_boot_is_refused() {
    let s = secure_site();
    s.write("artifacts/cd.iso", "iso\n");
    s.write("images/cd.toml", "iso = { path = \"artifacts/cd.iso\" }\n");
    s.edit(
        "roles/worker.toml",
        "extends = \"base\"",
        "extends = \"base\"\nimage = \"cd\"",
    );
    let errors = refused(
        &s,
        "image `cd` boots an ISO, which shim and GRUB cannot",
        "images/cd.toml:1:7",
    );
    insta::assert_snapshot!(errors);
}

#[test]
fn a_loader_of_the_wrong_machine_type_is_refused() {
    let s = secure_site();
    std::fs::write(s.path("artifacts/shimx64.efi"), pe(ARM64, true)).unwrap();
    let errors = refused(
        &s,
        "[uefi] shim `artifacts/shimx64.efi` is not a x86_64 UEFI loader",
        "bootc.toml:",
    );
    assert!(errors.contains("it is built for arm64"), "{errors}");
}

#[test]
fn a_value_grub_cannot_quote_is_refused() {
    let s = secure_site();
    s.edit(
        "roles/worker.toml",
        "worker.tier={{ vars.tier }}",
        "worker.tier='{{ vars.tier }}'",
    );
    let r = s.build();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!s.path("public").exists());
    assert!(
        r.stderr
            .contains("cannot be written into a GRUB config: it contains `'`"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_arm64_image_needs_arm64_loaders() {
    let s = secure_site();
    s.append("images/linux.toml", "arch = \"arm64\"\n");
    std::fs::write(s.path("artifacts/vmlinuz"), pe(ARM64, true)).unwrap();
    let errors = refused(
        &s,
        "image `linux` is arm64, and no arm64 loader is set",
        "images/linux.toml:",
    );
    assert!(errors.contains("arm64-shim and arm64-grub"), "{errors}");
    // With Debian's arm64 loaders set it builds, and arm64's GRUB finds
    // the same entry at its own prefix.
    std::fs::write(s.path("artifacts/bootnetaa64.efi"), pe(ARM64, true)).unwrap();
    std::fs::write(s.path("artifacts/grubaa64.efi"), pe(ARM64, true)).unwrap();
    s.edit(
        "bootc.toml",
        "[uefi]\n",
        "[uefi]\narm64-shim = { path = \"artifacts/bootnetaa64.efi\" }\narm64-grub = { path = \"artifacts/grubaa64.efi\" }\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        s.out("tftp/debian-installer/arm64/grub/grub.cfg"),
        s.out("tftp/grub/grub.cfg")
    );
    assert!(s.path("public/tftp/bootnetaa64.efi").is_file());
    assert!(
        s.out("dhcp/dnsmasq.conf")
            .contains(",bootnetaa64.efi,,10.77.0.1")
    );
}

#[test]
fn an_unknown_architecture_is_refused_with_a_hint() {
    let s = secure_site();
    s.append("images/linux.toml", "arch = \"aarch64\"\n");
    let errors = refused(&s, "unknown architecture `aarch64`", "images/linux.toml:");
    assert!(errors.contains("did you mean `arm64`?"), "{errors}");
}

#[test]
fn explain_shows_each_firmware_chain() {
    let s = secure_site();
    let r = s.run(&["explain", ".", "node01"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("explain_secure_boot", r.stdout);
    let r = s.run(&["explain", ".", "node03"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("  UEFI HTTP Boot\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("shimx64.efi"), "{}", r.stdout);
}

#[test]
fn diff_reports_a_changed_uefi_loader() {
    let base = secure_site();
    let head = secure_site();
    head.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.11\"",
        "ip = \"10.77.0.11\"\nsecure-boot = false",
    );
    let r = head.run(&[
        "diff",
        &base.root().display().to_string(),
        ".",
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(j["summary"]["loader"], 1, "{}", r.stdout);
    assert_eq!(
        j["machines"][0]["changes"][0],
        serde_json::json!({"kind": "loader", "old": "shim and GRUB, Secure Boot", "new": "iPXE"})
    );
    let human = head.run(&["diff", &base.root().display().to_string(), "."]);
    assert!(
        human
            .stdout
            .contains("UEFI boot shim and GRUB, Secure Boot -> iPXE"),
        "{}",
        human.stdout
    );
}

/// site.example as it is, with Debian's real files: the signed installer
/// kernel passes the signature check, the loaders their machine types.
#[test]
fn site_example_builds_with_debian_files() {
    use crate::boot_support::{need_file, need_signed_loaders};
    let di = "/usr/lib/debian-installer/images/12";
    if !(need_file(
        &format!("{di}/amd64/text/debian-installer/amd64/linux"),
        "debian-installer-12-netboot-amd64",
    ) && need_file(
        &format!("{di}/arm64/text/debian-installer/arm64/linux"),
        "debian-installer-12-netboot-arm64",
    ) && need_signed_loaders())
    {
        return;
    }
    let s = Site::fixture("../../site.example");
    let _ = std::fs::remove_dir_all(s.path("public"));
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        s.path("public/tftp/grub/grub.cfg-01-52-54-00-77-02-20")
            .is_file()
    );
    assert!(
        s.path("public/tftp/grub/grub.cfg-01-52-54-00-77-02-30")
            .is_file()
    );
    crate::dhcp::checks_pass(&s.path("public"));
}

#[test]
fn a_machine_that_differs_without_an_ip_is_warned_about() {
    let s = secure_site();
    s.edit("machines/sub/rack2.toml", "ip = \"10.77.0.13\"\n", "");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning[secure-boot-without-ip]: machine `node03` has Secure Boot off, unlike the site, but no ip"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_arm64_image_through_grub_must_be_local() {
    let s = secure_site();
    std::fs::write(s.path("artifacts/bootnetaa64.efi"), pe(ARM64, true)).unwrap();
    std::fs::write(s.path("artifacts/grubaa64.efi"), pe(ARM64, true)).unwrap();
    s.edit(
        "bootc.toml",
        "[uefi]\n",
        "[uefi]\narm64-shim = { path = \"artifacts/bootnetaa64.efi\" }\narm64-grub = { path = \"artifacts/grubaa64.efi\" }\n",
    );
    s.write(
        "images/arm.toml",
        "arch = \"arm64\"\nkernel = { url = \"http://mirror/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n",
    );
    s.write("roles/arm.toml", "image = \"arm\"\n");
    // No Secure Boot for it: GRUB is still the way, and GRUB has no HTTP.
    s.append(
        "machines/sub/rack2.toml",
        "\n[[machine]]\nname = \"arm01\"\nmac = \"52:54:00:aa:bb:21\"\nip = \"10.77.0.21\"\nrole = \"arm\"\nsecure-boot = false\n",
    );
    let errors = refused(
        &s,
        "image `arm` fetches a remote file, which GRUB cannot",
        "images/arm.toml:2:10",
    );
    assert!(
        errors.contains("machine `arm01` boots it through shim and GRUB"),
        "{errors}"
    );
}
