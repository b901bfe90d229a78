//! Incremental builds are correct by construction: after each kind of
//! change, a rebuild over the previous tree is byte-identical to a clean
//! build in a new folder, and a previous tree whose files were edited in
//! place (same size and mtime: a corrupted cache) is detected, not reused.

use std::fs;

use crate::harness::{Site, bzimage, tree};

/// Rebuilds `s` over its previous public/ and into a new folder; the two
/// trees must be the same bytes (the marker and manifest included).
fn same_as_clean(s: &Site, what: &str) {
    let r = s.build();
    assert_eq!(r.code, 0, "{what}: {}", r.stderr);
    let clean = s.path(&format!("clean-{}", what.replace(' ', "-")));
    let r = s.run(&["build", ".", "-o", clean.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{what}: {}", r.stderr);
    let (a, b) = (tree(&s.path("public")), tree(&clean));
    let differ: Vec<&String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: the incremental build differs in {differ:?}"
    );
    fs::remove_dir_all(&clean).unwrap();
}

#[test]
fn every_kind_of_change_rebuilds_like_a_clean_build() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    s.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.11\"",
        "ip = \"10.77.0.21\"",
    );
    same_as_clean(&s, "one machine");
    s.edit(
        "roles/worker.toml",
        "worker.tier={{ vars.tier }}",
        "worker.tier={{ vars.tier }}-x",
    );
    same_as_clean(&s, "one role");
    fs::write(s.path("artifacts/vmlinuz"), bzimage(b"a new kernel")).unwrap();
    same_as_clean(&s, "one image artifact");
    s.append("templates/cloud-init.yaml.j2", "# changed\n");
    same_as_clean(&s, "one template");
    s.edit("bootc.toml", "fallback = \"local\"", "fallback = \"base\"");
    same_as_clean(&s, "the bootc.toml");
}

/// Files of the previous tree changed in place, keeping their size and
/// modification time (what a cache keyed on stat would trust): the
/// rebuild writes them afresh.
#[test]
fn a_corrupted_previous_tree_is_not_trusted() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let old = tree(&s.path("public"));
    for rel in ["http/machines/52-54-00-aa-bb-01.ipxe", "report/machines.js"] {
        let p = s.path(&format!("public/{rel}"));
        let meta = fs::metadata(&p).unwrap();
        let mut bytes = fs::read(&p).unwrap();
        bytes[10] ^= 0x20;
        fs::write(&p, &bytes).unwrap();
        filetime::set_file_mtime(&p, filetime::FileTime::from_last_modification_time(&meta))
            .unwrap();
    }
    assert_eq!(s.build().code, 0);
    assert_eq!(
        tree(&s.path("public")),
        old,
        "the corrupted files were written again"
    );
}
