//! The operator's switches and overrides: `[site] menu` and `allow`,
//! warnings named by kind, `--deny-warnings`, `explain` of several machines
//! and as JSON, the site found from a sub-folder, `-q` and `--color`.

use crate::harness::*;

/// The basic fixture with an unused role (a warning of kind `unused-role`)
/// besides its missing iPXE binaries (`no-ipxe-binaries`).
fn with_unused_role() -> Site {
    let s = Site::fixture("basic");
    s.write("roles/spare.toml", "image = \"disk\"\n");
    s
}

#[test]
fn every_warning_shows_its_kind() {
    let s = with_unused_role();
    let r = s.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("warning[unused-role]: role `spare` is not used by any machine\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("warning[no-ipxe-binaries]: no iPXE binaries"),
        "{}",
        r.stderr
    );
    // JSON and GitHub annotations carry it too.
    let j = s.run(&["check", "--format", "json"]).json();
    let kinds: Vec<&str> = j["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["no-ipxe-binaries", "unused-role"]);
    let g = s.run(&["check", "--format", "github"]);
    assert!(
        g.stdout
            .contains("title=bootc[unused-role]::role `spare` is not used"),
        "{}",
        g.stdout
    );
}

#[test]
fn allow_silences_a_kind_by_name() {
    let s = with_unused_role();
    s.edit(
        "bootc.toml",
        "fallback = \"local\"\n",
        "fallback = \"local\"\nallow = [\"unused-role\"]\n",
    );
    let r = s.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stderr.contains("unused-role"), "{}", r.stderr);
    assert!(
        r.stderr.contains("warning[no-ipxe-binaries]"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("warning: 1 warning emitted"),
        "{}",
        r.stderr
    );
}

invalid!(
    allow_of_an_unknown_kind,
    "`unused-roles` is not a kind of warning",
    "bootc.toml:5:10",
    |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"\n",
            "fallback = \"local\"\nallow = [\"unused-roles\"]\n",
        );
    }
);

#[test]
fn allow_of_an_unknown_kind_suggests_the_near_one() {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "fallback = \"local\"\n",
        "fallback = \"local\"\nallow = [\"unused-roles\"]\n",
    );
    let r = s.run(&["check"]);
    assert!(
        r.errors().contains("help: did you mean `unused-role`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn deny_warnings_fails_check_and_build_writes_nothing() {
    let s = with_unused_role();
    let c = s.run(&["check", "--deny-warnings"]);
    assert_eq!(c.code, 1, "{}", c.stderr);
    assert!(
        c.stderr
            .contains("error: 2 warnings are left and --deny-warnings"),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("is valid"), "{}", c.stderr);
    let j = s.run(&["check", "--deny-warnings", "--format", "json"]);
    assert_eq!(j.code, 1);
    let b = s.run(&["build", "--deny-warnings"]);
    assert_eq!(b.code, 1, "{}", b.stderr);
    assert!(b.stderr.contains("nothing was written"), "{}", b.stderr);
    assert!(!s.path("public").exists(), "a denied build writes nothing");
    // Once every warning is allowed, it passes and builds.
    s.edit(
        "bootc.toml",
        "fallback = \"local\"\n",
        "fallback = \"local\"\nallow = [\"unused-role\", \"no-ipxe-binaries\"]\n",
    );
    assert_eq!(s.run(&["check", "--deny-warnings"]).code, 0);
    let b = s.run(&["build", "--deny-warnings"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(s.path("public/http/boot.ipxe").exists());
}

/// A menu of two roles out of three, in the order given.
#[test]
fn menu_chooses_the_fallback_entries() {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "fallback = \"local\"\n",
        "fallback = \"menu\"\nmenu = [\"disk\", \"base\"]\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let menu = s.out("http/fallback.ipxe");
    let items: Vec<&str> = menu
        .lines()
        .filter(|l| l.starts_with("item role-"))
        .collect();
    assert_eq!(items.len(), 2, "{menu}");
    assert!(items[0].starts_with("item role-disk "), "{menu}");
    assert!(items[1].starts_with("item role-base "), "{menu}");
    assert!(!menu.contains("role-worker"), "{menu}");
}

invalid!(
    menu_role_that_does_not_exist,
    "menu role `wroker` does not exist",
    "bootc.toml:5:9",
    |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"\n",
            "fallback = \"menu\"\nmenu = [\"wroker\"]\n",
        );
    }
);

invalid!(
    menu_without_the_menu_fallback,
    "`menu` is set, but the fallback is not the menu",
    "bootc.toml:5:9",
    |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"\n",
            "fallback = \"local\"\nmenu = [\"disk\"]\n",
        );
    }
);

invalid!(
    menu_role_that_needs_a_machine,
    "menu role `custom` cannot boot without a machine",
    "bootc.toml:5:17",
    |s| {
        s.edit(
            "bootc.toml",
            "fallback = \"local\"\n",
            "fallback = \"menu\"\nmenu = [\"disk\", \"custom\"]\n",
        );
        s.write(
            "roles/custom.toml",
            "image = \"linux\"\nkernel-args = [\"host={{ machine.name }}\"]\n",
        );
    }
);

#[test]
fn explain_several_machines_as_json() {
    let s = Site::fixture("basic");
    let r = s.run(&["explain", "node01", "52:54:00:aa:bb:03", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let j = r.json();
    let list = j.as_array().expect("an array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["name"], "node01");
    assert_eq!(list[0]["query"], "node01");
    assert_eq!(list[0]["role-chain"], serde_json::json!(["worker", "base"]));
    assert_eq!(list[0]["ip"], "10.77.0.11");
    assert!(list[0]["files"]["user-data"].is_string());
    let chains = list[0]["boot-chains"].as_array().unwrap();
    assert!(!chains.is_empty());
    assert!(chains[0]["steps"].as_array().is_some_and(|s| !s.is_empty()));
    assert_eq!(list[1]["name"], "node03");
    assert_eq!(list[1]["boot"], "local");
    // The same with the site named first, and as text: both, in order.
    let t = bootc()
        .args(["explain", s.root().to_str().unwrap(), "node02", "node01"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&t.stdout);
    assert!(t.status.success());
    let (a, b) = (
        text.find("machine    node02").unwrap(),
        text.find("machine    node01").unwrap(),
    );
    assert!(a < b, "{text}");
}

#[test]
fn explain_of_a_missing_machine_fails_but_shows_the_others() {
    let s = Site::fixture("basic");
    let r = s.run(&["explain", "node01", "node09", "--format", "json"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("error: no machine named `node09`"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json().as_array().unwrap().len(), 1);
}

#[test]
fn commands_find_the_site_from_a_sub_folder() {
    let s = Site::fixture("basic");
    let sub = s.path("machines/sub");
    let run = |args: &[&str]| -> Run {
        bootc()
            .args(args)
            .current_dir(&sub)
            .output()
            .expect("run bootc")
            .into()
    };
    let c = run(&["check"]);
    assert_eq!(c.code, 0, "{}", c.stderr);
    assert!(
        c.stderr.contains("site fixture is valid: 3 machines"),
        "{}",
        c.stderr
    );
    let e = run(&["explain", "node01"]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(e.stdout.contains("machine    node01"));
    let b = run(&["build"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(s.path("public/http/boot.ipxe").exists(), "{}", b.stdout);
    assert!(!sub.join("public").exists());
}

#[test]
fn quiet_prints_only_errors() {
    let s = with_unused_role();
    let c = s.run(&["-q", "check"]);
    assert_eq!(c.code, 0);
    assert_eq!(c.stderr, "", "warnings and the summary are left out");
    let b = s.run(&["build", "--quiet"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!((b.stdout.as_str(), b.stderr.as_str()), ("", ""));
    // Errors are still shown.
    s.write("roles/broken.toml", "image = \"nope\"\n");
    let c = s.run(&["-q", "check"]);
    assert_eq!(c.code, 1);
    assert!(
        c.stderr.contains("error: image `nope` does not exist"),
        "{}",
        c.stderr
    );
    assert!(!c.stderr.contains("warning"), "{}", c.stderr);
}

#[test]
fn color_always_and_never() {
    let s = with_unused_role();
    // NO_COLOR is set by the harness: --color always still colors.
    let r = s.run(&["check", "--color", "always"]);
    assert!(r.stderr.contains("\x1b["), "{}", r.stderr);
    let r = s.run(&["--color", "never", "check"]);
    assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);
    // auto on a pipe: none.
    let r = s.run(&["check"]);
    assert!(!r.stderr.contains('\x1b'), "{}", r.stderr);
}
