//! `bootc templates`: the built-in templates, the variables each sees (as
//! src/context.rs defines them), and `show NAME` to copy one.

use crate::harness::{Site, bootc};
use bootc::context::{builtin, paths};
use bootc::templates::BUILTINS;

fn run(args: &[&str]) -> crate::harness::Run {
    bootc()
        .arg("templates")
        .args(args)
        .output()
        .expect("bootc runs")
        .into()
}

#[test]
fn lists_every_builtin_and_its_variables() {
    let r = run(&[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (name, _) in BUILTINS {
        assert!(r.stdout.contains(&format!("\n{name}\n")) || r.stdout.starts_with(name));
    }
    insta::assert_snapshot!("templates_list", r.stdout);
}

#[test]
fn show_prints_the_builtin_source() {
    for (name, src) in BUILTINS {
        let r = run(&["show", name]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, *src, "{name}");
    }
}

#[test]
fn show_unknown_name_is_a_usage_error() {
    let r = run(&["show", "machine.ipxe"]);
    assert_eq!(r.code, 2);
    assert_eq!(r.stdout, "");
    insta::assert_snapshot!("templates_show_unknown", r.stderr);
}

/// Template lines that print MISSING for each listed variable (always
/// present, outside lists) that is not defined when rendering.
fn probe(name: &str) -> (String, usize) {
    let (_, fields) = builtin(name).expect("described");
    let vars: Vec<String> = paths(&fields)
        .into_iter()
        .filter(|v| !v.maybe_absent && !v.path.contains("[]"))
        .map(|v| v.path)
        .collect();
    let text = vars
        .iter()
        .map(|p| format!("{{% if {p} is not defined %}}MISSING {p}\n{{% endif %}}"))
        .collect();
    (text, vars.len())
}

#[test]
fn listed_variables_are_defined_when_rendering() {
    // Overrides print MISSING for a listed variable the render lacks; every
    // output they make must be free of it.
    let outputs = [
        ("boot.ipxe.j2", "http/boot.ipxe"),
        ("fallback.ipxe.j2", "http/fallback.ipxe"),
        ("machine.ipxe.j2", "http/machines/52-54-00-aa-bb-01.ipxe"),
        ("report.html.j2", "report/index.html"),
        ("dhcpd.conf.j2", "dhcp/dhcpd.conf"),
        ("kea-dhcp4.json.j2", "dhcp/kea-dhcp4.json"),
        ("dnsmasq.conf.j2", "dhcp/dnsmasq.conf"),
    ];
    let s = Site::fixture("basic");
    let mut probed = Vec::new();
    for (name, _) in outputs {
        let (text, n) = probe(name);
        probed.push((name, n));
        let head = if name.ends_with(".ipxe.j2") {
            "#!ipxe\n"
        } else {
            ""
        };
        s.write(&format!("templates/{name}"), &format!("{head}{text}"));
    }
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    for (name, out) in outputs {
        let text = s.out(out);
        assert!(!text.contains("MISSING"), "{name}: {text}");
    }
    // machine.ipxe.j2 sees site, machine, role, image, vars and boot.
    let machine = probed
        .iter()
        .find(|(n, _)| *n == "machine.ipxe.j2")
        .unwrap();
    assert!(machine.1 >= 20, "{probed:?}");
}

#[test]
fn a_variable_not_listed_is_undefined() {
    // The probe itself can fail: a made-up variable is reported missing.
    let s = Site::fixture("basic");
    s.write(
        "templates/boot.ipxe.j2",
        "#!ipxe\n{% if site.nickname is not defined %}MISSING site.nickname\n{% endif %}",
    );
    assert_eq!(s.build().code, 0);
    assert!(s.out("http/boot.ipxe").contains("MISSING site.nickname"));
}
