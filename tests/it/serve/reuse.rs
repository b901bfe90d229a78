//! `bootc serve` compiles again only the machines whose inputs changed
//! (the others are taken from the build before): after each kind of
//! change its tree is byte for byte the one a fresh server of the same
//! site writes.

use super::*;
use crate::harness::{copy_dir, cpio, tree};

/// Both servers build with this base-url, so their trees can be compared.
const BASE: [&str; 2] = ["--base-url", "http://127.0.0.1:9/"];

/// The tree `serve` wrote, against the one a fresh server of a copy of
/// the site writes.
fn same_as_fresh(s: &Site, serve: &Serve, what: &str) {
    assert!(
        serve.status()["error"].is_null(),
        "{what}: {:#}",
        serve.status()
    );
    let copy = tempfile::tempdir().unwrap();
    copy_dir(s.root(), copy.path());
    fs::remove_dir_all(copy.path().join(".bootc-serve")).unwrap();
    let fresh = Site { dir: copy };
    let fresh_serve = Serve::start(&fresh, &BASE);
    drop(fresh_serve);
    let (a, b) = (
        tree(&s.path(".bootc-serve/tree")),
        tree(&fresh.path(".bootc-serve/tree")),
    );
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(differ.is_empty(), "{what}: the tree differs in {differ:?}");
}

/// The machines the last build took from the one before, as its log line
/// says ("N machines (M unchanged), ...").
fn unchanged(serve: &Serve) -> usize {
    let log = serve.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains(" built site "))
        .unwrap();
    line.split_once(" machines (")
        .and_then(|(_, rest)| rest.split_once(" unchanged)"))
        .map_or(0, |(n, _)| n.parse().unwrap())
}

#[test]
fn every_kind_of_change_is_served_like_a_fresh_build() {
    let s = Site::example();
    // A per-machine file that shows what the site's view derives from
    // every machine.
    s.append(
        "templates/cloud-init/meta-data.j2",
        "# looked up by UUID: {{ site.by_uuid }}\n",
    );
    let serve = Serve::start(&s, &BASE);
    let log = serve.log();
    let machines: usize = log
        .split_once("built site lab: ")
        .and_then(|(_, rest)| rest.split_once(" machines"))
        .map(|(n, _)| n.parse().unwrap())
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(unchanged(&serve), 0, "{log}");
    same_as_fresh(&s, &serve, "the first build");

    let change = |what: &str, edit: &dyn Fn(&Site)| {
        let g = serve.generation();
        edit(&s);
        serve.wait_build(g);
        same_as_fresh(&s, &serve, what);
    };
    change("one machine's args", &|s| {
        s.edit(
            "machines/rack1.toml",
            "[\"nomodeset\"]",
            "[\"nomodeset\", \"quiet\"]",
        );
    });
    assert_eq!(unchanged(&serve), machines - 1, "{}", serve.log());
    change("one machine to a Secure Boot role", &|s| {
        s.edit(
            "machines/rack1.toml",
            "name = \"k8s-w2\"\n",
            "name = \"k8s-w2\"\nrole = \"secure-installer\"\n",
        );
    });
    assert_eq!(unchanged(&serve), machines - 1, "{}", serve.log());
    change("a UUID, which the site's view shows", &|s| {
        s.edit(
            "machines/rack1.toml",
            "name = \"k8s-w1\"\n",
            "name = \"k8s-w1\"\nuuid = \"4c4c4544-0042-3510-8052-b4c04f4e4d31\"\n",
        );
    });
    change("one role", &|s| {
        s.append("roles/storage.toml", "\n# a comment\n");
    });
    change("one template", &|s| {
        s.append("templates/debian/preseed.cfg.j2", "# changed\n");
    });
    change("one image artifact", &|s| {
        let p = s.path("stand-ins/amd64/text/debian-installer/amd64/initrd.gz");
        fs::write(p, cpio("another initrd\n")).unwrap();
    });
    change("the bootc.toml", &|s| {
        s.edit("bootc.toml", "fallback = \"menu\"", "fallback = \"local\"");
    });
    assert_eq!(unchanged(&serve), 0, "{}", serve.log());
}

/// A machine file that does not parse is parsed again on every rebuild
/// (only files read without a problem are taken from the last one): its
/// error stays until it is fixed, whatever else changes.
#[test]
fn a_machine_file_with_a_problem_is_read_again_on_every_rebuild() {
    let s = Site::example();
    let serve = Serve::start(&s, &BASE);
    let g = serve.generation();
    // An unknown key: the rest of the file is read (and could be kept).
    s.append(
        "machines/rack1.toml",
        "\n[[machine]]\nname = \"k8s-w9\"\nmac = \"52:54:00:00:99:01\"\ncolour = \"red\"\n",
    );
    serve.wait_build(g);
    let problem = |serve: &Serve| serve.status()["error"]["problems"][0]["at"].clone();
    let at = problem(&serve);
    assert!(
        at.as_str()
            .is_some_and(|a| a.starts_with("machines/rack1.toml:")),
        "{:#}",
        serve.status()
    );
    let g = serve.generation();
    s.append("roles/storage.toml", "\n# a comment\n");
    serve.wait_build(g);
    assert_eq!(problem(&serve), at, "{:#}", serve.status());
}
