//! `bootc import`: each format's fixture (tests/fixtures/import/, written the
//! way admins write them, and accepted by the real server's own check) gives
//! the exact machines file and the exact skip list, and the file passes
//! `bootc check` in a copy of the `basic` fixture.

use std::path::Path;
use std::process::Command;

use crate::boot_support::{find_program, need};
use crate::harness::{Run, Site, bootc, fixtures};

fn dir() -> std::path::PathBuf {
    fixtures().join("import")
}

/// `bootc import ARGS…` run in tests/fixtures/import, so messages name
/// the files as the fixtures do.
fn import(args: &[&str]) -> Run {
    bootc()
        .arg("import")
        .args(args)
        .current_dir(dir())
        .output()
        .expect("run bootc")
        .into()
}

/// The server's own syntax check of a fixture passes.
fn server_accepts(program: &str, args: &[&str]) {
    if !need(program) {
        return;
    }
    let out = Command::new(find_program(program).unwrap())
        .args(args)
        .current_dir(dir())
        .output()
        .expect("run the server's check");
    assert!(
        out.status.success(),
        "{program} {args:?} rejects the fixture:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The imported file (with `--role base`: worker's template wants a `rack` label) passes `bootc check` in a copy
/// of `basic` whose own machines are gone; its [dhcp] goes too, since the
/// fixtures have addresses in several subnets.
fn passes_check(toml: &str) {
    let s = Site::fixture("basic");
    std::fs::remove_dir_all(s.path("machines")).unwrap();
    let conf = s.read("bootc.toml");
    let start = conf.find("[dhcp]").unwrap();
    let end = conf.find("[ipxe]").unwrap();
    s.write("bootc.toml", &format!("{}{}", &conf[..start], &conf[end..]));
    s.write("machines/imported.toml", toml);
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "bootc check fails on:\n{toml}\n{}", r.stderr);
}

/// One format end to end: the server accepts the fixture, the output and
/// skip list are the snapshots, exit 0, and the result passes check.
fn format(name: &str, file: &str) -> Run {
    let r = import(&[name, file, "--role", "base"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    passes_check(&r.stdout);
    r
}

#[test]
fn dhcpd() {
    server_accepts("dhcpd", &["-4", "-t", "-cf", "dhcpd.conf"]);
    let r = format("dhcpd", "dhcpd.conf");
    insta::assert_snapshot!("dhcpd_toml", r.stdout);
    insta::assert_snapshot!("dhcpd_skipped", r.stderr);
}

#[test]
fn dnsmasq() {
    server_accepts("dnsmasq", &["--test", "--conf-file=dnsmasq.conf"]);
    let r = format("dnsmasq", "dnsmasq.conf");
    insta::assert_snapshot!("dnsmasq_toml", r.stdout);
    insta::assert_snapshot!("dnsmasq_skipped", r.stderr);
}

#[test]
fn kea() {
    server_accepts("kea-dhcp4", &["-t", "kea-dhcp4.json"]);
    let r = format("kea", "kea-dhcp4.json");
    insta::assert_snapshot!("kea_toml", r.stdout);
    insta::assert_snapshot!("kea_skipped", r.stderr);
}

/// The whole CSV, uuid and serial included, without a role (each row's
/// own role column): the output is the snapshot and passes check.
#[test]
fn csv() {
    let r = import(&["csv", "hosts.csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    insta::assert_snapshot!("csv_toml", r.stdout);
    insta::assert_snapshot!("csv_skipped", r.stderr);
    assert!(r.stdout.contains("uuid = ") && r.stdout.contains("serial = "));
    passes_check(&r.stdout);
}

#[test]
fn the_same_input_gives_the_same_bytes() {
    for (f, file) in [
        ("dhcpd", "dhcpd.conf"),
        ("dnsmasq", "dnsmasq.conf"),
        ("kea", "kea-dhcp4.json"),
        ("csv", "hosts.csv"),
    ] {
        let a = import(&[f, file]);
        let b = import(&[f, file]);
        assert_eq!(a.stdout, b.stdout, "{f}");
        assert_eq!(a.stderr, b.stderr, "{f}");
    }
}

#[test]
fn output_file_is_written_and_stdout_stays_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("machines.toml");
    let r = import(&["kea", "kea-dhcp4.json", "-o", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let want = import(&["kea", "kea-dhcp4.json"]).stdout;
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    assert!(r.stderr.contains("imported 8 machines, skipped 5 entries"));
}

#[test]
fn nothing_to_import_is_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.conf");
    std::fs::write(
        &file,
        "host printer {\n  fixed-address 10.77.0.50;\n}\nhost \"x\" { hardware ethernet 01:00:5e:00:00:01; }\n",
    )
    .unwrap();
    let r: Run = bootc()
        .args(["import", "dhcpd", "bad.conf"])
        .current_dir(tmp.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    insta::assert_snapshot!(r.stderr, @r#"
    skipped: bad.conf:1: host "printer": no hardware ethernet
    skipped: bad.conf:4: host "x": MAC 01:00:5e:00:00:01 is a group (multicast) address
    error: no machine could be imported from bad.conf
    "#);
}

#[test]
fn a_broken_file_is_exit_1_with_its_line() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("broken.conf"), "group {\n  host a {\n}\n").unwrap();
    let r: Run = bootc()
        .args(["import", "dhcpd", "broken.conf"])
        .current_dir(tmp.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "error: broken.conf:1: `{` never closed; nothing was imported\n"
    );
}

#[test]
fn a_missing_file_is_exit_2() {
    let r = import(&["dhcpd", "no-such.conf"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot read no-such.conf"),
        "{}",
        r.stderr
    );
    assert!(!Path::new(&dir().join("no-such.conf")).exists());
}
