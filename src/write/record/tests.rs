//! The build record's own tests.

use super::*;
use crate::tree::Tree;

/// The record a build of `tree` into `out` makes, its tree swapped in as
/// the folder `root`.
fn made(out: &Path, root: (u64, u64), tree: &Tree) -> io::Result<Record> {
    let summary = Summary {
        site: "lab".into(),
        machines: 0,
        scripts: 0,
    };
    let written = crate::write::Stats {
        root,
        folders: crate::write::folders(tree),
        ..Default::default()
    };
    let files = tree
        .files
        .iter()
        .map(|(path, content)| (path.clone(), content.blake3().to_string()))
        .collect();
    Record::make(
        out,
        &written,
        files,
        String::new(),
        summary,
        Diags::default(),
    )
}

/// A build stamps the folder it swapped in, not whatever `out` names
/// by the time it stamps (another build's tree).
#[test]
fn a_record_is_made_of_the_folder_the_build_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut tree = Tree::default();
    tree.add("http/boot.ipxe", "#!ipxe\n");
    let stats = crate::write::write(&out, &tree).unwrap();
    let record = made(&out, stats.root, &tree).expect("the folder written");
    assert_eq!(record.files(), 1);
    assert!(record.holds(&out));
    let (dev, ino) = stats.root;
    assert!(made(&out, (dev, ino + 1), &tree).is_err(), "another folder");
}

/// A name added below the tree moves its folder's stamp; a file
/// written in place does not, so only `holds` sees it.
#[test]
fn the_listing_holds_until_a_name_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut tree = Tree::default();
    tree.add("http/machines/a.ipxe", "#!ipxe\n");
    let stats = crate::write::write(&out, &tree).unwrap();
    let record = made(&out, stats.root, &tree).unwrap();
    assert!(record.listing_holds(&out) && record.holds(&out));
    let file = out.join("http/machines/a.ipxe");
    fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .and_then(|mut f| io::Write::write_all(&mut f, b"#"))
        .unwrap();
    assert!(record.listing_holds(&out), "no name was added");
    assert!(!record.holds(&out), "a file changed");
    fs::write(out.join("http/machines/b.ipxe"), "#!ipxe\n").unwrap();
    assert!(!record.listing_holds(&out), "a name was added");
}

/// The tree a build swaps out becomes the spare, and the record knows
/// it by its folders' stamps until a name in it changes.
#[test]
fn the_record_knows_the_spare_until_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let build = |text: &str, last: Option<Record>| {
        let mut tree = Tree::default();
        tree.add("http/machines/a.ipxe", text);
        tree.add(crate::tree::MARKER, crate::tree::MARKER_TEXT);
        let stats = crate::write::write_with(&out, &tree, last.as_ref()).unwrap();
        let mut r = made(&out, stats.root, &tree).unwrap();
        r.keep_spare(&out, last, stats.swapped);
        r.save_at(&dir.path().join("record")).unwrap();
        Record::load_at(&dir.path().join("record"), true).unwrap()
    };
    let first = build("#!ipxe\n", None);
    let a = fs::metadata(out.join("http/machines/a.ipxe")).unwrap();
    let second = build("#!ipxe\necho changed\n", Some(first));
    let spare = crate::write::spare_path(dir.path(), "out");
    let listing = second.spare_listing(&spare).expect("the spare is known");
    use std::os::unix::fs::MetadataExt;
    assert!(listing.contains(&("http/machines/a.ipxe".to_string(), Some(a.ino()), a.mode())));
    assert!(
        listing
            .iter()
            .any(|(p, ino, _)| *p == "http/machines" && ino.is_none())
    );
    assert_eq!(listing.len(), 4, "{listing:?}"); // http, machines, a, the marker
    // Read for its tree only, it says nothing of the spare, and the same
    // of the tree.
    let tree_only = Record::load_at(&dir.path().join("record"), false).unwrap();
    assert!(tree_only.spare_listing(&spare).is_none());
    assert_eq!(tree_only.entries, second.entries);
    assert!(tree_only.holds(&out));
    fs::write(spare.join("http/extra.ipxe"), "#!ipxe\n").unwrap();
    assert!(second.spare_listing(&spare).is_none(), "a name was added");
}

#[test]
fn a_record_reads_back_as_written_and_a_changed_byte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec");
    let record = Record {
        fingerprint: "ab".repeat(32),
        summary: Summary {
            site: "lab".into(),
            machines: 2,
            scripts: 3,
        },
        diags: Diags::default(),
        entries: vec![
            Entry {
                path: String::new(),
                stamp: [1, 2, 3, 4, 5, 6, 7, 0o40755],
                blake3: None,
                racy: true,
            },
            Entry {
                path: "http/machines/a b.ipxe".into(),
                stamp: [1, 9, 3, 4, 5, 6, 7, 0o100644],
                blake3: Some("cd".repeat(32)),
                racy: false,
            },
        ],
        spare: String::new(),
    };
    record.save_at(&path).unwrap();
    let back = Record::load_at(&path, true).expect("reads back");
    assert_eq!(back.entries, record.entries);
    assert_eq!(back.summary, record.summary);
    assert_eq!(back.files(), 1);
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replacen("1 9 3", "1 9 4", 1)).unwrap();
    assert!(
        Record::load_at(&path, true).is_none(),
        "a corrupt record is ignored"
    );
}

/// A new tree whose every file the previous tree holds, proven by the
/// record, is still written when the previous tree holds more: the
/// record's counts say so without walking it.
#[test]
fn a_previous_tree_with_a_file_more_is_not_the_new_tree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let tree = |names: &[&str]| {
        let mut t = Tree::default();
        t.add(crate::tree::MARKER, crate::tree::MARKER_TEXT);
        for n in names {
            t.add(format!("http/machines/{n}"), "#!ipxe\n");
        }
        t
    };
    let record = |t: &Tree, stats: crate::write::Stats| made(&out, stats.root, t).unwrap();
    let both = tree(&["a.ipxe", "b.ipxe"]);
    let first = record(&both, crate::write::write(&out, &both).unwrap());
    // The same tree again: nothing is written.
    let again = crate::write::write_with(&out, &both, Some(&first)).unwrap();
    assert!(!again.swapped && again.unchanged == 3, "{again:?}");
    let first = record(&both, again);
    let one = tree(&["a.ipxe"]);
    let stats = crate::write::write_with(&out, &one, Some(&first)).unwrap();
    assert!(stats.swapped, "the tree with a file more was kept");
    assert!(!out.join("http/machines/b.ipxe").exists());
}
