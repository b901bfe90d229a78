//! Small defects of what bootc says: counts agree with their nouns ("1
//! machine", never "1 machines"), and `explain` takes a MAC for a MAC even
//! when a machine's name looks like one.

use crate::harness::{Run, Site};

/// "1 machines", "1 files", …: a count of one with a plural noun.
fn one_plural(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    words.windows(2).find_map(|w| {
        let plural = [
            "machines", "files", "scripts", "images", "roles", "errors", "warnings", "problems",
        ];
        (w[0] == "1" && plural.contains(&w[1])).then(|| format!("{} {}", w[0], w[1]))
    })
}

fn assert_singular(what: &str, text: &str) {
    if let Some(bad) = one_plural(text) {
        panic!("{what} says `{bad}`:\n{text}");
    }
}

/// The basic fixture cut down to one machine (node01, one MAC).
fn one_machine() -> Site {
    let s = Site::fixture("basic");
    std::fs::remove_dir_all(s.path("machines/sub")).unwrap();
    let text = s.read("machines/rack1.toml");
    let cut = text.find("\n[[machine]]\nname = \"node02\"").unwrap();
    s.write("machines/rack1.toml", &text[..cut + 1]);
    s
}

#[test]
fn a_count_of_one_takes_the_singular() {
    let s = one_machine();
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("built site fixture: 1 machine, 1 per-MAC script, "),
        "{}",
        r.stdout
    );
    assert_singular("build", &r.stdout);
    assert_singular("build (stderr)", &r.stderr);

    let c = s.run(&["check", "."]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("site fixture is valid: 1 machine\n"),
        "{}",
        c.stderr
    );
    assert_singular("check", &c.stderr);

    // The HTML report, tags stripped.
    let html = s.out("report/index.html");
    let mut text = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    assert!(text.contains("1 machine "), "{text}");
    assert_singular("report/index.html", &text);

    // diff: one machine changes.
    let head = one_machine();
    head.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.11\"",
        "ip = \"10.77.0.21\"",
    );
    for format in ["human", "markdown"] {
        let r: Run = s.run(&[
            "diff",
            ".",
            head.root().to_str().unwrap(),
            "--format",
            format,
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_singular(&format!("diff --format {format}"), &r.stdout);
    }
}

#[test]
fn explain_prefers_a_mac_to_a_name_that_looks_like_one() {
    let s = Site::fixture("basic");
    // node03 renamed after node01's MAC, in both spellings explain takes.
    s.edit(
        "machines/sub/rack2.toml",
        "name = \"node03\"",
        "name = \"525400aabb01\"",
    );
    let r = s.run(&["explain", ".", "525400aabb01"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("machine    node01\n"), "{}", r.stdout);
    assert!(
        r.stderr.contains(
            "note: `525400aabb01` is the MAC of machine `node01` and the name of machine `525400aabb01`: the MAC match is shown"
        ),
        "{}",
        r.stderr
    );

    let s = Site::fixture("basic");
    s.edit(
        "machines/sub/rack2.toml",
        "name = \"node03\"",
        "name = \"52-54-00-aa-bb-01\"",
    );
    let r = s.run(&["explain", ".", "52-54-00-aa-bb-01"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("machine    node01\n"), "{}", r.stdout);
    // A name that is no machine's MAC is still found by name.
    let r = s.run(&["explain", ".", "node02"]);
    assert!(r.stdout.starts_with("machine    node02\n"), "{}", r.stdout);
}

/// An I/O error names its path and the system's reason once, not twice.
#[test]
fn an_io_error_is_said_once() {
    let s = Site::fixture("basic");
    for args in [
        &["verify", "public", "--pubkey", "/nonexistent/k.pub"][..],
        &["build", ".", "--sign-key", "/nonexistent/k.key"][..],
    ] {
        let r = s.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("/nonexistent/k."),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(
            r.stderr.matches("No such file or directory").count(),
            1,
            "{args:?}: {}",
            r.stderr
        );
    }
}
