//! Incremental builds are correct by construction: after each kind of
//! change, a rebuild over the previous tree is byte-identical to a clean
//! build in a new folder, and a previous tree whose files were edited in
//! place (same size and mtime: a corrupted cache) is detected, not reused.
//! A rebuild with nothing changed is skipped on the build's record (kept
//! in the cache, beside the hash cache's records); a record that is
//! corrupt, or a tree that is not as it says, means a full build.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::harness::{Run, Site, bzimage, tree};

/// What `bootc build` says when it skips the work.
const SKIPPED: &str = "nothing it reads has changed since the last build";

fn skipped(r: &Run) -> bool {
    r.stdout.contains(SKIPPED)
}

/// Where the build record of `out` is kept (the tests' cache, see
/// harness::bootc): `builds/` and the BLAKE3 of the folder's real path.
fn record_of(out: &Path) -> PathBuf {
    let real = fs::canonicalize(out).unwrap();
    let key = blake3::hash(real.as_os_str().as_encoded_bytes()).to_hex();
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("bootc-cache/builds")
        .join(&key[..32])
}

/// Rebuilds `s` over its previous public/ and into a new folder; the two
/// trees must be the same bytes (the marker and manifest included).
fn same_as_clean(s: &Site, what: &str) {
    let r = s.build();
    assert_eq!(r.code, 0, "{what}: {}", r.stderr);
    assert!(!skipped(&r), "{what}: the build was skipped: {}", r.stdout);
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
    corrupt_and_rebuild(
        &s,
        &["http/machines/52-54-00-aa-bb-01.ipxe", "report/machines.js"],
    );
}

/// Edits the files `rels` of `s`'s public/ in place (a byte each, the
/// size and modification time kept), then rebuilds: the build must not
/// be skipped and must write them afresh.
fn corrupt_and_rebuild(s: &Site, rels: &[&str]) {
    let old = tree(&s.path("public"));
    for rel in rels {
        let p = s.path(&format!("public/{rel}"));
        let meta = fs::metadata(&p).unwrap();
        let mut bytes = fs::read(&p).unwrap();
        bytes[10] ^= 0x20;
        fs::write(&p, &bytes).unwrap();
        filetime::set_file_mtime(&p, filetime::FileTime::from_last_modification_time(&meta))
            .unwrap();
    }
    let r = s.build();
    assert_eq!(r.code, 0);
    assert!(!skipped(&r), "the build record trusted an edited tree");
    assert_eq!(
        tree(&s.path("public")),
        old,
        "the corrupted files were written again"
    );
}

/// The same after builds that staged in the spare tree, whose record
/// takes the stamps of the files the build left untouched from the
/// writer: a file edited in place afterwards is still found out.
#[test]
fn a_tree_corrupted_after_incremental_builds_is_not_trusted() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    // The second build leaves the spare, the third stages in it.
    for ip in ["10.77.0.21", "10.77.0.31"] {
        let from = s.read("machines/rack1.toml");
        let from = from
            .lines()
            .find(|l| l.starts_with("ip = \"10.77.0."))
            .unwrap();
        s.edit("machines/rack1.toml", from, &format!("ip = \"{ip}\""));
        let r = s.build();
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!skipped(&r));
    }
    // Its stamps are those of the tree as it is: nothing to do again.
    let r = s.build();
    assert!(skipped(&r), "{}", r.stdout);
    corrupt_and_rebuild(&s, &["http/machines/52-54-00-aa-bb-02.ipxe"]);
}

/// Nothing changed: the second build is skipped on the first one's
/// record. It says what the full build said (its warnings too), and the
/// tree stays as it is (the same folder, the same files).
#[test]
fn a_rebuild_with_nothing_changed_is_skipped_and_says_the_same() {
    let s = Site::fixture("basic");
    // A warning the build must repeat.
    s.append("roles/unused.toml", "image = \"linux\"\n");
    let first = s.build();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!skipped(&first));
    assert!(
        first.stderr.contains("warning[unused-role]"),
        "{}",
        first.stderr
    );
    let out = s.path("public");
    let before = (ino(&out), tree(&out));
    let mtime = |rel: &str| fs::metadata(out.join(rel)).unwrap().mtime_nsec();
    let script = "http/machines/52-54-00-aa-bb-01.ipxe";
    let script_mtime = mtime(script);
    let again = s.build();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(skipped(&again), "{}", again.stdout);
    assert_eq!(again.stderr, first.stderr);
    assert_eq!(
        again.stdout.lines().next(),
        first
            .stdout
            .lines()
            .next()
            .map(|l| l.replace("(0 unchanged)", "").to_string())
            .map(|l| format!("{l}({} unchanged)", before.1.len()))
            .as_deref()
    );
    assert_eq!((ino(&out), tree(&out)), before);
    assert_eq!(mtime(script), script_mtime);
    // --deny-warnings holds on the record's warnings.
    let denied = s.run(&["build", ".", "--deny-warnings"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("nothing was written"));
}

/// The record is a shortcut, never trusted blindly: a record with one
/// byte changed is ignored, and a tree with a file added, or a file
/// replaced by a symlink, is not skipped even though no input changed.
#[test]
fn a_corrupt_record_or_a_changed_tree_means_a_full_build() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    let good = tree(&out);
    let record = record_of(&out);
    let text = fs::read_to_string(&record).expect("the build left a record");
    let corrupt = text.replacen("http/boot.ipxe", "http/boot.ipxf", 1);
    assert_ne!(corrupt, text);
    fs::write(&record, corrupt).unwrap();
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!skipped(&r), "a corrupt record was used");
    assert!(skipped(&s.build()), "the full build left a new record");

    // A file bootc did not write: not skipped, so the writer sees it (and
    // refuses to delete what is not its own).
    let stray = out.join("http/stray.ipxe");
    fs::write(&stray, "#!ipxe\nshell\n").unwrap();
    let r = s.build();
    assert!(!skipped(&r), "a tree with a stray file was trusted");
    assert!(
        r.stderr.contains("refusing to replace the folder"),
        "{}",
        r.stderr
    );
    fs::remove_file(&stray).unwrap();

    let script = out.join("http/machines/52-54-00-aa-bb-01.ipxe");
    let elsewhere = s.path("elsewhere.ipxe");
    fs::write(&elsewhere, fs::read(&script).unwrap()).unwrap();
    fs::remove_file(&script).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &script).unwrap();
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!skipped(&r), "a tree with a symlink was trusted");
    assert!(!fs::symlink_metadata(&script).unwrap().is_symlink());
    assert!(tree(&out) == good);
}

/// What the build is asked for is an input too: signing with a key (the
/// tree gains a signature) is not the unsigned build.
#[test]
fn a_signing_key_is_an_input() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let (key, _) = crate::sign::keygen(&s.path("."), "k");
    let signed = s.run(&["build", ".", "--sign-key", key.to_str().unwrap()]);
    assert_eq!(signed.code, 0, "{}", signed.stderr);
    assert!(!skipped(&signed), "{}", signed.stdout);
    assert!(s.path("public/http/manifest.json.minisig").exists());
}

/// What loading finds outside the site's files is an input too: a dangling
/// link added under machines/ (a warning, shown in the report) means a
/// full build, and `--deny-warnings` sees it.
#[test]
fn a_warning_from_outside_the_sources_is_an_input() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    std::os::unix::fs::symlink("nowhere.toml", s.path("machines/x.toml")).unwrap();
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!skipped(&r), "{}", r.stdout);
    assert!(r.stderr.contains("warning[skipped-file]"), "{}", r.stderr);
    let denied = s.run(&["build", ".", "--deny-warnings"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
}

/// A record someone else may write decides nothing: one made writable by
/// the group is ignored (a full build, which writes a private one again).
#[test]
fn a_record_others_may_write_is_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let record = record_of(&s.path("public"));
    fs::set_permissions(&record, fs::Permissions::from_mode(0o664)).unwrap();
    let r = s.build();
    assert!(!skipped(&r), "a group-writable record was trusted");
    assert_eq!(fs::metadata(&record).unwrap().mode() & 0o777, 0o600);
    assert!(skipped(&s.build()));
}

/// The tree before the previous one is kept beside the output as its spare
/// (`.public.bootc-spare`) and the next build stages in it; nothing put
/// there survives it (a link out of it, a file it does not list, a folder
/// where a file goes, a file with other bytes), nothing outside is touched,
/// and the result is byte-identical to a clean build.
#[test]
fn the_spare_tree_is_reused_and_nothing_planted_in_it_survives() {
    use std::os::unix::fs::symlink;
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let first = ino(&s.path("public"));
    s.edit("machines/rack1.toml", "10.77.0.11", "10.77.0.21");
    same_as_clean(&s, "one machine");
    let spare = s.path(".public.bootc-spare");
    assert_eq!(ino(&spare), first, "the previous tree is kept as the spare");

    // What someone who may write beside the output plants in the spare.
    let outside = s.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("keep"), "not bootc's").unwrap();
    fs::remove_file(spare.join("http/boot.ipxe")).unwrap();
    symlink(outside.join("keep"), spare.join("http/boot.ipxe")).unwrap();
    fs::remove_dir_all(spare.join("report")).unwrap();
    symlink(&outside, spare.join("report")).unwrap();
    fs::write(
        spare.join("http/extra.ipxe"),
        "#!ipxe\nchain http://elsewhere/\n",
    )
    .unwrap();
    fs::remove_file(spare.join("plan.json")).unwrap();
    fs::create_dir(spare.join("plan.json")).unwrap();
    fs::write(spare.join("plan.json/x"), "x").unwrap();
    let script = spare.join("http/machines/52-54-00-aa-bb-02.ipxe");
    let mut other = fs::read(&script).unwrap();
    other[10] ^= 0x20;
    fs::remove_file(&script).unwrap();
    fs::write(&script, &other).unwrap();

    s.edit("machines/rack1.toml", "10.77.0.21", "10.77.0.31");
    same_as_clean(&s, "over a planted spare");
    assert_eq!(ino(&s.path("public")), first, "the spare became the tree");
    assert_eq!(
        tree(&outside).into_keys().collect::<Vec<_>>(),
        ["keep"],
        "nothing was written outside"
    );
    assert_eq!(
        fs::read_to_string(outside.join("keep")).unwrap(),
        "not bootc's"
    );
}

/// An edit that changes no output (a comment) is built, not skipped, and
/// writes nothing: the record's listing and counts prove the previous tree
/// is the new one, so the same folder stays. Removing a machine then
/// leaves one file fewer, and the previous tree (a file more) is not
/// taken for the new one.
#[test]
fn an_edit_without_effect_writes_nothing_and_a_removal_is_written() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let root = ino(&s.path("public"));
    s.append("machines/rack1.toml", "# a comment\n");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!skipped(&r), "a source changed: {}", r.stdout);
    assert_eq!(ino(&s.path("public")), root, "nothing was swapped in");
    assert!(
        !s.path(".public.bootc-spare").exists(),
        "nothing was written, so no tree was swapped out"
    );
    s.edit(
        "machines/rack1.toml",
        "[[machine]]\nname = \"node01\"\nmac = \"52:54:00:aa:bb:01\"\nip = \"10.77.0.11\"\n",
        "",
    );
    same_as_clean(&s, "a machine removed");
    assert!(
        !s.path("public/http/machines/52-54-00-aa-bb-01.ipxe")
            .exists()
    );
}

/// The inode of `p` itself (not of what a link points to).
fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}
