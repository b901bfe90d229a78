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
