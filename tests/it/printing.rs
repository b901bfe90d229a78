//! What a hostile site can put in front of a terminal or a CI log: control
//! characters in values, template text and file names are printed as
//! escapes, never raw, and can never start a line of their own (a forged
//! GitHub workflow command).

use crate::harness::Site;

/// The fixture with terminal escapes and a forged workflow command in a
/// machine name, a template and a file name.
fn hostile() -> Site {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "name = \"node01\"",
        "name = \"node01\\u001b[2J\\n::warning::forged\"",
    );
    s.edit(
        "templates/cloud-init.yaml.j2",
        "#cloud-config",
        "#cloud-config \u{1b}]0;title\u{7} \u{202e}{{ nope(",
    );
    s.write(
        "machines/evil\n::error file=x::forged\r.toml",
        "[[machine]]\nname = \"evil\"\nmac = \"zz\"\n",
    );
    s
}

fn assert_clean(out: &str) {
    for bad in ['\u{1b}', '\u{7}', '\r', '\u{202e}'] {
        assert!(!out.contains(bad), "raw {bad:?} printed:\n{out}");
    }
    for l in out.lines() {
        assert!(
            !l.starts_with("::warning::forged") && !l.starts_with("::error file=x"),
            "a forged line: {l:?}\n{out}"
        );
    }
}

#[test]
fn human_output_escapes_control_characters() {
    let s = hostile();
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_clean(&r.stderr);
    assert_clean(&r.stdout);
    assert!(
        r.stderr.contains("node01\\u{1b}[2J\\n::warning::forged"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("machines/evil\\n::error file=x::forged\\r.toml"),
        "{}",
        r.stderr
    );
}

#[test]
fn github_annotations_escape_control_characters() {
    let s = hostile();
    let r = s.run(&["check", ".", "--format", "github"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_clean(&r.stdout);
    for l in r.stdout.lines() {
        assert!(
            ["::error ", "::warning ", "::notice "]
                .iter()
                .any(|p| l.starts_with(p)),
            "every line is one annotation: {l:?}"
        );
    }
}

#[test]
fn a_label_with_control_characters_is_refused_at_its_place() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "labels = { rack = \"r1\" }",
        "labels = { rack = \"r1\\u001b]0;PWN\\u0007\\nFAKE\" }",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_clean(&r.stderr);
    assert!(
        r.stderr.contains("--> machines/rack1.toml:3:19"),
        "{}",
        r.stderr
    );
    insta::assert_snapshot!(r.errors());
}

/// A built tree's plan.json and manifest are not validated input: what
/// they hold reaches the terminal escaped (diff, verify).
#[test]
fn tampered_trees_print_escaped() {
    let s = Site::fixture("basic");
    assert_eq!(s.run(&["build", ".", "-o", "base"]).code, 0);
    assert_eq!(s.run(&["build", ".", "-o", "head"]).code, 0);
    let plan = s.read("head/plan.json");
    s.write(
        "head/plan.json",
        &plan.replace("\"node01\"", "\"node01\\u001b[2J\\nverified OK\""),
    );
    for format in ["human", "markdown"] {
        let r = s.run(&["diff", "base", "head", "--format", format]);
        assert_eq!(r.code, 2, "not a plan bootc wrote: {}", r.stderr);
        assert!(r.stderr.contains("control characters"), "{}", r.stderr);
        assert_clean(&r.stdout);
        assert_clean(&r.stderr);
        assert!(
            !r.stderr.lines().any(|l| l.starts_with("verified OK")),
            "{}",
            r.stderr
        );
    }
    let manifest = s.read("head/http/manifest.json");
    s.write(
        "head/http/manifest.json",
        &manifest.replace("\"plan.json\"", "\"plan.json\\u001b[2J\\nverified OK\""),
    );
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("k");
    let k = s.run(&["keygen", "--unencrypted", "-o", prefix.to_str().unwrap()]);
    assert_eq!(k.code, 0, "{}", k.stderr);
    let r = s.run(&[
        "verify",
        "head",
        "--pubkey",
        &format!("{}.pub", prefix.display()),
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_clean(&r.stderr);
    assert_clean(&r.stdout);
    assert!(
        !r.stderr.lines().any(|l| l.starts_with("verified OK")),
        "{}",
        r.stderr
    );
}
