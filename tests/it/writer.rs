//! The one writer: it replaces only what is bootc's, never trusts the
//! previous tree blindly, and writes explicit modes.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::boot_support::need;
use crate::harness::{Run, Site, bootc, bzimage, tree};

fn run(c: &mut Command) -> Run {
    c.env_remove("BOOTC_SIGN_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run bootc")
        .into()
}

/// `bootc build . -o OUT` from the site's folder.
fn build_to(s: &Site, out: &str) -> Run {
    run(bootc()
        .args(["build", ".", "-o", out])
        .current_dir(s.root()))
}

/// Every entry under `dir`, relative path -> (is a folder, metadata).
fn entries(dir: &Path) -> Vec<(String, fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((p.strip_prefix(dir).unwrap().display().to_string(), m));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A folder of someone else's, whose content must survive.
fn foreign_folder(s: &Site, name: &str, with_plan: &str) -> PathBuf {
    let d = s.path(name);
    s.write(&format!("{name}/index.html"), "not ours");
    s.write(&format!("{name}/sub/keep.txt"), "keep me");
    s.write(&format!("{name}/plan.json"), with_plan);
    d
}

#[test]
fn a_folder_that_merely_holds_a_plan_json_is_refused() {
    let s = Site::fixture("basic");
    // Anything called plan.json, even a plausible one: without bootc's
    // marker, or an http/manifest.json of bootc's format beside it, the
    // folder is not bootc's.
    for (i, plan) in [
        "{}",
        "{\"site\": \"x\", \"fallback\": \"local\", \"machines\": []}\n",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("www{i}");
        let dir = foreign_folder(&s, &name, plan);
        let before = tree(&dir);
        let r = build_to(&s, &name);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("not a bootc output tree"), "{}", r.stderr);
        assert!(r.stderr.contains(".bootc-output"), "{}", r.stderr);
        assert!(tree(&dir) == before, "{name} was changed");
        assert!(!s.path(&format!("{name}/http")).exists());
    }
}

#[test]
fn trees_of_bootc_are_replaced_with_or_without_the_marker() {
    let s = Site::fixture("basic");
    let r = build_to(&s, "out");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let marker = s.read("out/.bootc-output");
    assert!(
        marker.starts_with("bootc output tree, format 1\n"),
        "{marker}"
    );
    // A file the tree's manifest does not list is not bootc's, marker or
    // not: the build refuses to delete it with the previous tree.
    s.write("out/http/stale.ipxe", "old");
    let r = build_to(&s, "out");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("holds http/stale.ipxe"), "{}", r.stderr);
    assert_eq!(s.read("out/http/stale.ipxe"), "old");
    fs::remove_file(s.path("out/http/stale.ipxe")).unwrap();
    assert_eq!(build_to(&s, "out").code, 0);

    // A tree an earlier bootc wrote has no marker, but its plan.json and
    // manifest are bootc's, and it holds only what the manifest lists: it is
    // still replaced (deployments keep working).
    fs::remove_file(s.path("out/.bootc-output")).unwrap();
    let r = build_to(&s, "out");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.path("out/.bootc-output").is_file());

    // The same with a file of someone else's in it: refused, kept.
    fs::remove_file(s.path("out/.bootc-output")).unwrap();
    s.write("out/http/mine.html", "not bootc's");
    let before = tree(&s.path("out"));
    let r = build_to(&s, "out");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(tree(&s.path("out")) == before);
    fs::remove_file(s.path("out/http/mine.html")).unwrap();

    // Without the manifest it is not recognisably bootc's any more.
    fs::remove_file(s.path("out/http/manifest.json")).unwrap();
    let before = tree(&s.path("out"));
    let r = build_to(&s, "out");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(tree(&s.path("out")) == before);

    // An empty folder is fine.
    fs::create_dir(s.path("empty")).unwrap();
    assert_eq!(build_to(&s, "empty").code, 0);
    assert!(s.path("empty/.bootc-output").is_file());
}

#[test]
fn an_output_that_is_a_file_is_refused_and_kept() {
    let s = Site::fixture("basic");
    s.write("notes.txt", "precious\n");
    let r = build_to(&s, "notes.txt");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is not a folder"), "{}", r.stderr);
    assert_eq!(s.read("notes.txt"), "precious\n");
    // No staging folder or renamed copy is left behind.
    let names: Vec<String> = fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("notes") || n.contains("bootc-staging"))
        .collect();
    assert_eq!(names, vec!["notes.txt"]);
}

#[test]
fn a_symlinked_output_stays_a_symlink() {
    let s = Site::fixture("basic");
    fs::create_dir(s.path("real")).unwrap();
    std::os::unix::fs::symlink("real", s.path("link")).unwrap();
    for round in 0..2 {
        let r = build_to(&s, "link");
        assert_eq!(r.code, 0, "round {round}: {}", r.stderr);
        let m = fs::symlink_metadata(s.path("link")).unwrap();
        assert!(
            m.file_type().is_symlink(),
            "round {round}: the link was replaced"
        );
        assert_eq!(fs::read_link(s.path("link")).unwrap(), Path::new("real"));
        assert!(s.path("real/http/boot.ipxe").is_file(), "round {round}");
    }
    // No staging folder is left beside the link or its target.
    let left: Vec<String> = fs::read_dir(s.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("bootc-staging"))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // A link to nothing is refused, and stays as it was.
    std::os::unix::fs::symlink("nowhere", s.path("dangling")).unwrap();
    let r = build_to(&s, "dangling");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert!(
        fs::symlink_metadata(s.path("dangling"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(!s.path("nowhere").exists());
}

#[test]
fn the_current_folder_as_output() {
    let s = Site::fixture("basic");
    assert_eq!(build_to(&s, "out").code, 0);
    let site = s.root().to_str().unwrap().to_string();
    let r = run(bootc()
        .args(["build", &site, "-o", "."])
        .current_dir(s.path("out")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.path("out/http/boot.ipxe").is_file());
    assert!(s.path("out/.bootc-output").is_file());
    // The site itself is not an output tree: `-o .` there is refused.
    let r = run(bootc()
        .args(["build", ".", "-o", "."])
        .current_dir(s.root()));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(s.path("bootc.toml").is_file() && s.path("machines").is_dir());
}

/// The local kernel the basic fixture copies into http/images/.
fn the_kernel(out: &Path) -> PathBuf {
    let found: Vec<PathBuf> = tree(&out.join("http/images"))
        .into_keys()
        .filter(|p| p.ends_with("vmlinuz"))
        .map(|p| out.join("http/images").join(p))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn a_tampered_image_of_the_previous_tree_is_not_reused() {
    let s = Site::fixture("basic");
    let keys = tempfile::tempdir().unwrap();
    let prefix = keys.path().join("site");
    let r = run(bootc().args(["keygen", "--unencrypted", "-o"]).arg(&prefix));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (key, public) = (prefix.with_extension("key"), prefix.with_extension("pub"));
    let signed = || {
        let r = run(bootc()
            .args(["build", ".", "--sign-key"])
            .arg(&key)
            .current_dir(s.root()));
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    signed();
    let out = s.path("public");
    let image = the_kernel(&out);
    let good = fs::read(&image).unwrap();
    // Same size, other bytes, written in place (same inode), old mtime back.
    let mtime = fs::metadata(&image).unwrap().modified().unwrap();
    let mut bad = good.clone();
    for b in bad.iter_mut().take(16) {
        *b ^= 0x5a;
    }
    fs::write(&image, &bad).unwrap();
    fs::File::options()
        .write(true)
        .open(&image)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert_eq!(fs::metadata(&image).unwrap().len(), good.len() as u64);

    signed();
    assert!(
        fs::read(&image).unwrap() == good,
        "the image must be the right bytes"
    );
    let r = run(bootc()
        .args(["verify", "public", "--pubkey"])
        .arg(&public)
        .current_dir(s.root()));
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    if need("minisign") {
        let ok = crate::sign::minisign_verify(&out.join("http"), &public);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    // An untouched image is still reused (hard-linked: same inode).
    let ino = fs::metadata(&image).unwrap().ino();
    signed();
    assert_eq!(fs::metadata(&image).unwrap().ino(), ino);
}

#[test]
fn modes_are_explicit_whatever_the_umask() {
    let s = Site::fixture("basic");
    for f in ["artifacts/vmlinuz", "artifacts/initrd.img"] {
        fs::set_permissions(s.path(f), fs::Permissions::from_mode(0o600)).unwrap();
    }
    let build = || {
        let r = run(Command::new("sh")
            .arg("-c")
            .arg("umask 077; exec \"$0\" build .")
            .arg(env!("CARGO_BIN_EXE_bootc"))
            .current_dir(s.root()));
        assert_eq!(r.code, 0, "{}", r.stderr);
    };
    // A fresh tree, then rebuilds that reuse its files and write changed
    // ones: beside the previous tree, then in the spare it leaves.
    for round in 0..3 {
        let rack = s.path("machines/rack1.toml");
        let text = fs::read_to_string(&rack).unwrap();
        let text = text.replace(
            "kernel-args = [\"nomodeset\"",
            &format!("kernel-args = [\"r{round}\", \"nomodeset\""),
        );
        fs::write(&rack, text).unwrap();
        build();
        let out = s.path("public");
        let root = fs::metadata(&out).unwrap().mode() & 0o7777;
        assert_eq!(root, 0o755, "round {round}: public/ is {root:o}");
        let all = entries(&out);
        assert!(all.iter().any(|(p, _)| p.starts_with("http/images/")));
        for (path, m) in all {
            let mode = m.mode() & 0o7777;
            let want = if m.is_dir() { 0o755 } else { 0o644 };
            assert!(
                m.is_dir() || m.is_file(),
                "{path} is neither file nor folder"
            );
            assert_eq!(mode, want, "round {round}: {path} is {mode:o}");
        }
    }
}

#[test]
fn a_symlink_in_the_previous_tree_is_not_followed() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    let kernel = the_kernel(&out);
    let folder = kernel.parent().unwrap().to_path_buf();
    // The image's folder moved out of the tree, a symlink left in its place.
    let elsewhere = s.path("elsewhere");
    fs::rename(&folder, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &folder).unwrap();
    let outside = fs::metadata(elsewhere.join("vmlinuz")).unwrap();

    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = fs::symlink_metadata(&folder).unwrap();
    assert!(m.is_dir(), "the image folder must be a real folder again");
    let inside = fs::metadata(&kernel).unwrap();
    assert!(
        (inside.dev(), inside.ino()) != (outside.dev(), outside.ino()),
        "the tree must not share a file with a folder outside it"
    );
    assert!(fs::read(&kernel).unwrap() == fs::read(elsewhere.join("vmlinuz")).unwrap());
}

/// A tmpfs of `size` mounted for the test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(ok.success(), "mount tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_disk_names_the_file_being_written_once() {
    if !crate::boot_support::need_root() {
        return;
    }
    let s = Site::fixture("basic");
    let big = bzimage(
        &(0..200_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    fs::write(s.path("artifacts/vmlinuz"), big).unwrap();
    let disk = Tmpfs::mount("64k");
    let out = disk.0.path().join("out");
    let r = build_to(&s, out.to_str().unwrap());
    assert_eq!(r.code, 2, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {}", r.stderr));
    assert!(line.contains("No space left on device"), "{line}");
    assert_eq!(line.matches("No space left").count(), 1, "{line}");
    // Files are written on all cores: the one that meets the full disk
    // may be any file of the tree (the large kernel fills it, a small
    // file written beside it may fail first), always one being written.
    let staging = disk.0.path().join(".out.bootc-staging-");
    assert!(
        line.contains(staging.to_str().unwrap()),
        "the file being written: {line}"
    );
    assert!(
        !line.contains(s.root().to_str().unwrap()),
        "not the source: {line}"
    );
    assert!(!out.exists(), "nothing written");
    let left: Vec<_> = fs::read_dir(disk.0.path()).unwrap().collect();
    assert!(left.is_empty(), "no staging left behind: {left:?}");
}

/// A site (or an artifact root) inside a folder that holds bootc's marker is
/// never deleted with it: `-o` at a parent of the site is refused.
#[test]
fn an_output_folder_holding_the_site_is_refused() {
    let top = tempfile::tempdir().unwrap();
    let s = Site::fixture("basic");
    // A real tree in `top`, then the site moved into it.
    let r = run(bootc()
        .args(["build", ".", "-o"])
        .arg(top.path())
        .current_dir(s.root()));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let site = top.path().join("site");
    crate::harness::copy_dir(s.root(), &site);
    let r = run(bootc()
        .args(["build", ".", "-o"])
        .arg(top.path())
        .current_dir(&site));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("holds site/"), "{}", r.stderr);
    assert!(site.join("bootc.toml").is_file(), "the site was deleted");
    assert!(site.join("machines/rack1.toml").is_file());
}

/// A rebuild with nothing changed writes nothing: the tree stays the same
/// folder. Anything in it that is not the new tree (a file edited in place,
/// a folder bootc did not make) makes it a real rebuild, which restores it.
#[test]
fn a_no_op_rebuild_leaves_the_tree_in_place() {
    let s = Site::fixture("basic");
    assert_eq!(s.build().code, 0);
    let out = s.path("public");
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();
    let first = ino(&out);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(ino(&out), first, "a no-op rebuild replaced the tree");

    let script = out.join("http/boot.ipxe");
    let good = fs::read(&script).unwrap();
    let mut edited = good.clone();
    edited[0] = b'?';
    fs::write(&script, &edited).unwrap();
    assert_eq!(s.build().code, 0);
    assert_eq!(fs::read(&script).unwrap(), good, "the edit stayed");
    assert_ne!(ino(&out), first, "an edited tree was not rebuilt");

    let second = ino(&out);
    fs::create_dir(out.join("http/extra")).unwrap();
    assert_eq!(s.build().code, 0);
    assert!(!out.join("http/extra").exists(), "a stray folder stayed");
    assert_ne!(ino(&out), second);

    // A symlink planted in the tree (out of it, here) is no file of it.
    let third = ino(&out);
    std::os::unix::fs::symlink("/etc", out.join("http/images/escape")).unwrap();
    assert_eq!(s.build().code, 0);
    assert!(
        fs::symlink_metadata(out.join("http/images/escape")).is_err(),
        "a planted symlink stayed"
    );
    assert_ne!(ino(&out), third);
}
