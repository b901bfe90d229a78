//! DHCP configurations: snapshots, and every generated file passes its
//! server's own check (`dhcpd -t`, `kea-dhcp4 -t`, `dnsmasq --test`).

use std::path::Path;
use std::process::Command;

use crate::boot_support::need;
use crate::harness::Site;

/// Fake chainloaders (names matter, content does not) so every branch of the
/// configs is rendered, whatever this machine has installed.
fn with_all_loaders(s: &Site) {
    for name in [
        "undionly.kpxe",
        "snponly.efi",
        "ipxe.efi",
        "snponly-arm64.efi",
    ] {
        s.write(
            &format!("ipxe/{name}"),
            &format!("test stand-in for {name}\n"),
        );
    }
}

pub(crate) fn checks_pass(dir: &Path) {
    let dhcp = dir.join("dhcp");
    configs_pass(
        &dhcp.join("dhcpd.conf"),
        &dhcp.join("kea-dhcp4.json"),
        &dhcp.join("dnsmasq.conf"),
    );
}

/// Each server's own check passes on its config (a file that may include
/// bootc's fragments).
pub(crate) fn configs_pass(dhcpd: &Path, kea: &Path, dnsmasq: &Path) {
    let mut ran = 0;
    if need("dhcpd") {
        let o = Command::new("dhcpd")
            .arg("-t")
            .arg("-cf")
            .arg(dhcpd)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dhcpd -t failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    if need("kea-dhcp4") {
        let o = Command::new("kea-dhcp4")
            .arg("-t")
            .arg(kea)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "kea-dhcp4 -t failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    if need("dnsmasq") {
        let o = Command::new("dnsmasq")
            .arg("--test")
            .arg(format!("--conf-file={}", dnsmasq.display()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "dnsmasq --test failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    eprintln!("{ran} of 3 DHCP servers checked {}", dhcpd.display());
}

fn build(s: &Site) {
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for f in ["dhcpd.conf", "kea-dhcp4.json", "dnsmasq.conf"] {
        assert!(
            s.path(&format!("public/dhcp/{f}")).is_file(),
            "dhcp/{f} missing"
        );
    }
}

#[test]
fn one_subnet_snapshots_and_checks() {
    let s = Site::fixture("basic");
    with_all_loaders(&s);
    build(&s);
    insta::assert_snapshot!("dhcpd.conf", s.out("dhcp/dhcpd.conf"));
    insta::assert_snapshot!("kea-dhcp4.json", s.out("dhcp/kea-dhcp4.json"));
    insta::assert_snapshot!("dnsmasq.conf", s.out("dhcp/dnsmasq.conf"));
    let kea: serde_json::Value =
        serde_json::from_str(&s.out("dhcp/kea-dhcp4.json")).expect("Kea config is JSON");
    assert_eq!(
        kea["Dhcp4"]["interfaces-config"]["interfaces"],
        serde_json::json!(["*"])
    );
    // The two NICs of node02 both get its address.
    let res = &kea["Dhcp4"]["subnet4"][0]["reservations"];
    let node02: Vec<&serde_json::Value> = res
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["hostname"] == "node02")
        .collect();
    assert_eq!(node02.len(), 2);
    assert!(node02.iter().all(|r| r["ip-address"] == "10.77.0.12"));
    assert!(
        s.out("dhcp/dnsmasq.conf")
            .contains("dhcp-host=52:54:00:aa:bb:02,52:54:00:aa:bb:12,10.77.0.12,node02")
    );
    // The chainloaders are in tftp/, the EFI one in http/ for UEFI HTTP Boot.
    for f in [
        "tftp/undionly.kpxe",
        "tftp/snponly.efi",
        "tftp/ipxe.efi",
        "tftp/snponly-arm64.efi",
        "http/snponly.efi",
    ] {
        assert!(s.path(&format!("public/{f}")).is_file(), "{f} missing");
    }
    checks_pass(&s.path("public"));
}

#[test]
fn several_subnets_and_an_interface() {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "next-server = \"10.77.0.1\"",
        "next-server = \"10.77.0.1\"\ninterface = \"eth1\"",
    );
    s.append(
        "bootc.toml",
        "\n[[dhcp.subnet]]\ncidr = \"10.78.0.0/16\"\npool = [\"10.78.1.0\", \"10.78.1.255\"]\ngateway = \"10.78.0.1\"\n\n[[dhcp.subnet]]\ncidr = \"192.168.50.0/24\"\n",
    );
    s.edit("machines/sub/rack2.toml", "10.77.0.13", "10.78.0.13");
    build(&s);
    let kea: serde_json::Value = serde_json::from_str(&s.out("dhcp/kea-dhcp4.json")).unwrap();
    assert_eq!(kea["Dhcp4"]["subnet4"].as_array().unwrap().len(), 3);
    assert_eq!(
        kea["Dhcp4"]["interfaces-config"]["interfaces"],
        serde_json::json!(["eth1"])
    );
    assert_eq!(
        kea["Dhcp4"]["subnet4"][1]["reservations"][0]["ip-address"],
        "10.78.0.13"
    );
    let dhcpd = s.out("dhcp/dhcpd.conf");
    assert!(
        dhcpd.contains("subnet 10.78.0.0 netmask 255.255.0.0 {\n  range 10.78.1.0 10.78.1.255;"),
        "{dhcpd}"
    );
    assert!(
        dhcpd.contains("subnet 192.168.50.0 netmask 255.255.255.0 {\n  option broadcast-address"),
        "{dhcpd}"
    );
    // kea-dhcp4 -t fails on an interface this machine lacks (SPEC section 7):
    // check the same config with "*".
    let text = s
        .out("dhcp/kea-dhcp4.json")
        .replace("[\"eth1\"]", "[\"*\"]");
    s.write("public/dhcp/kea-dhcp4.json", &text);
    checks_pass(&s.path("public"));
}

#[test]
fn no_fixed_addresses() {
    let s = Site::fixture("basic");
    for (f, ip) in [
        ("machines/rack1.toml", "10.77.0.11"),
        ("machines/rack1.toml", "10.77.0.12"),
        ("machines/sub/rack2.toml", "10.77.0.13"),
    ] {
        s.edit(f, &format!("ip = \"{ip}\"\n"), "");
    }
    build(&s);
    assert!(!s.out("dhcp/dhcpd.conf").contains("host "));
    assert!(!s.out("dhcp/dnsmasq.conf").contains("dhcp-host"));
    checks_pass(&s.path("public"));
}

#[test]
fn proxy_mode() {
    let s = Site::fixture("basic");
    with_all_loaders(&s);
    s.edit(
        "bootc.toml",
        "next-server = \"10.77.0.1\"",
        "next-server = \"10.77.0.1\"\nmode = \"proxy\"",
    );
    build(&s);
    let dnsmasq = s.out("dhcp/dnsmasq.conf");
    insta::assert_snapshot!("dnsmasq-proxy.conf", dnsmasq);
    assert!(dnsmasq.contains("dhcp-range=set:sn1,10.77.0.0,proxy,255.255.255.0"));
    assert!(!dnsmasq.contains("dhcp-authoritative"));
    assert!(
        !dnsmasq.contains("dhcp-host"),
        "a proxy hands out no addresses"
    );
    assert!(!s.out("dhcp/dhcpd.conf").contains("authoritative;"));
    checks_pass(&s.path("public"));
}

#[test]
fn site_example_configs_pass_their_checks() {
    let s = Site::example();
    build(&s);
    checks_pass(&s.path("public"));
}

#[test]
fn no_dhcp_section_no_dhcp_output() {
    let s = Site::fixture("forms");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!s.path("public/dhcp").exists());
}

#[test]
fn report_shows_addresses() {
    let s = Site::fixture("basic");
    build(&s);
    let index = crate::build::report_index(&s);
    let ips: Vec<&str> = index["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[2].as_str().unwrap())
        .collect();
    assert_eq!(
        ips,
        ["10.77.0.11", "10.77.0.12", "10.77.0.13"],
        "the report's addresses"
    );
}

#[test]
fn a_new_chainloader_of_the_same_size_is_copied() {
    let s = Site::fixture("basic");
    with_all_loaders(&s);
    build(&s);
    // Same size, other bytes: an upgraded iPXE package.
    let old = s.read("ipxe/undionly.kpxe");
    let new = old.replace("test", "TEST");
    assert_eq!(old.len(), new.len());
    s.write("ipxe/undionly.kpxe", &new);
    build(&s);
    assert_eq!(s.out("tftp/undionly.kpxe"), new);
}
