//! Every site input stays inside the site (issue 9, defects 2 and 3): a
//! symlink from any kind of input to a secret outside the site is an error
//! naming the file, and the secret's bytes appear nowhere (output, errors,
//! written tree, `bootc diff`). Artifacts are opened once.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boot_support::need;
use crate::harness::{Run, Site, bootc, bzimage};

const MARK: &str = "TOPSECRET-7c1e9";

/// A secret file outside every site: shadow-like text that is invalid TOML
/// (an error snippet would show it) and plain template text (a render would
/// publish it).
struct Secret {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn secret() -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shadow");
    fs::write(&path, format!("root:{MARK}:19000:0:99999:7:::\n")).unwrap();
    Secret { _dir: dir, path }
}

/// Regular files under `dir` (symlinks not followed), relative path -> bytes.
fn regular_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            out.extend(regular_files(&e.path()));
        } else if ft.is_file() {
            out.push((e.path(), fs::read(e.path()).unwrap()));
        }
    }
    out
}

fn assert_no_leak(what: &str, site: &Site, runs: &[&Run]) {
    for r in runs {
        assert!(
            !r.stdout.contains(MARK) && !r.stderr.contains(MARK),
            "{what}: the secret leaked:\n{}\n{}",
            r.stdout,
            r.stderr
        );
    }
    for (p, bytes) in regular_files(&site.path("public")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(MARK),
            "{what}: the secret was published in {}",
            p.display()
        );
    }
}

fn link(site: &Site, rel: &str, to: &Path) {
    let p = site.path(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let _ = fs::remove_file(&p);
    symlink(to, &p).unwrap();
}

type Setup = fn(&Site, &Path);

/// Each kind of input, made a symlink to the secret; the message expected.
const CASES: &[(&str, Setup, &str)] = &[
    (
        "a machines file",
        |s, secret| link(s, "machines/evil.toml", secret),
        "machines/evil.toml leads out of the site",
    ),
    (
        "a roles file",
        |s, secret| link(s, "roles/evil.toml", secret),
        "roles/evil.toml leads out of the site",
    ),
    (
        "an images file",
        |s, secret| link(s, "images/evil.toml", secret),
        "images/evil.toml leads out of the site",
    ),
    (
        "the site file",
        |s, secret| link(s, "bootc.toml", secret),
        "bootc.toml leads out of the site",
    ),
    (
        "a per-machine file template",
        |s, secret| link(s, "templates/cloud-init.yaml.j2", secret),
        "templates/cloud-init.yaml.j2 leads out of the site",
    ),
    (
        "a built-in override",
        |s, secret| link(s, "templates/boot.ipxe.j2", secret),
        "templates/boot.ipxe.j2 leads out of the site",
    ),
    (
        "an include",
        |s, secret| {
            s.append("templates/cloud-init.yaml.j2", "{% include \"inc.j2\" %}\n");
            link(s, "templates/inc.j2", secret);
        },
        "templates/inc.j2 leads out of the site",
    ),
    (
        "a role script",
        |s, secret| {
            s.append("roles/worker.toml", "script = \"worker.ipxe.j2\"\n");
            link(s, "templates/worker.ipxe.j2", secret);
        },
        "templates/worker.ipxe.j2 leads out of the site",
    ),
    (
        "a symlinked folder of templates",
        |s, secret| {
            link(s, "templates/up", secret.parent().unwrap());
            s.append(
                "templates/cloud-init.yaml.j2",
                "{% include \"up/shadow\" %}\n",
            );
        },
        "templates/up: a symlink to a folder, skipped",
    ),
    (
        "the machines folder",
        |s, secret| {
            fs::copy(secret, secret.with_extension("toml")).unwrap();
            fs::remove_dir_all(s.path("machines")).unwrap();
            link(s, "machines", secret.parent().unwrap());
        },
        "machines/shadow.toml leads out of the site",
    ),
    (
        "an artifact",
        |s, secret| link(s, "artifacts/vmlinuz", secret),
        "local artifact `artifacts/vmlinuz` is outside every artifact root",
    ),
    (
        "an artifact root",
        |s, secret| {
            fs::remove_dir_all(s.path("artifacts")).unwrap();
            link(s, "artifacts", secret.parent().unwrap());
            s.edit("images/linux.toml", "artifacts/vmlinuz", "artifacts/shadow");
        },
        "artifact root `artifacts` leads out of the site",
    ),
    (
        "an iPXE binary of the configured folder",
        |s, secret| {
            s.write("ipxe/ipxe.efi", "stand-in EFI binary\n");
            link(s, "ipxe/undionly.kpxe", secret);
        },
        "iPXE binary ipxe/undionly.kpxe cannot be used: it leads out of its folder",
    ),
];

#[test]
fn symlink_escapes_of_every_input_kind() {
    let secret = secret();
    for (what, setup, message) in CASES {
        let site = Site::fixture("basic");
        setup(&site, &secret.path);
        let check = site.run(&["check", "."]);
        let json = site.run(&["check", ".", "--format", "json"]);
        let build = site.build();
        for (cmd, r) in [("check", &check), ("build", &build)] {
            assert_eq!(r.code, 1, "{what}: {cmd} should fail:\n{}", r.stderr);
            assert!(
                r.stderr.contains(message),
                "{what}: {cmd}: {message:?} not in:\n{}",
                r.stderr
            );
        }
        assert!(json.stdout.contains(message), "{what}: {}", json.stdout);
        assert!(!site.path("public").exists(), "{what}: nothing is written");
        assert_no_leak(what, &site, &[&check, &json, &build]);
    }
}

/// Symlinks that stay inside the site (relative, absolute, through a
/// linked file) are read as the files they point to.
#[test]
fn symlinks_inside_the_site_are_fine() {
    let site = Site::fixture("basic");
    let plain = site.build();
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let before = site.out("http/machines/node01/user-data");
    fs::remove_dir_all(site.path("public")).unwrap();

    fs::create_dir_all(site.path("shared")).unwrap();
    fs::rename(
        site.path("machines/sub/rack2.toml"),
        site.path("shared/rack2.toml"),
    )
    .unwrap();
    link(
        &site,
        "machines/sub/rack2.toml",
        Path::new("../../shared/rack2.toml"),
    );
    fs::rename(
        site.path("templates/cloud-init.yaml.j2"),
        site.path("shared/ci.j2"),
    )
    .unwrap();
    let abs = site.path("shared/ci.j2");
    link(&site, "templates/cloud-init.yaml.j2", &abs);
    let r = site.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(site.out("http/machines/node01/user-data"), before);
}

/// Skipped entries of machines/, roles/ and images/ are warnings with their
/// path: a symlinked folder, a dangling symlink, a FIFO.
#[test]
fn skipped_entries_are_warnings() {
    let site = Site::fixture("basic");
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(elsewhere.path().join("more.toml"), "").unwrap();
    link(&site, "machines/rack9", elsewhere.path());
    link(&site, "machines/gone.toml", Path::new("nowhere.toml"));
    link(&site, "roles/gone.toml", Path::new("../nowhere.toml"));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        site.path("images/pipe.toml"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        site.path("machines/sub/pipe.toml"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let r = site.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: String = r
        .blocks("warning")
        .into_iter()
        .filter(|b| !b.contains("iPXE binaries"))
        .collect();
    insta::assert_snapshot!("skipped_entries_are_warnings", warnings);
}

/// `bootc diff` with a side whose site holds such a symlink, and with a
/// built tree whose per-machine file is one: the secret is never printed.
#[test]
fn diff_never_prints_bytes_from_outside() {
    let secret = secret();
    let base = Site::fixture("basic");
    let head = Site::fixture("basic");
    link(&head, "machines/evil.toml", &secret.path);
    let b = base.root().to_str().unwrap();
    let h = head.root().to_str().unwrap();
    let r: Run = bootc().args(["diff", b, h]).output().unwrap().into();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("machines/evil.toml leads out of the site"),
        "{}",
        r.stderr
    );
    assert_no_leak("diff of a site", &head, &[&r]);

    // A built tree with a per-machine file linked out of it.
    let built = base.build();
    assert_eq!(built.code, 0, "{}", built.stderr);
    link(&base, "public/http/machines/node01/user-data", &secret.path);
    let tree = base.path("public");
    let r: Run = bootc()
        .args(["diff", tree.to_str().unwrap(), h])
        .output()
        .unwrap()
        .into();
    assert_no_leak("diff of a tree", &head, &[&r]);
    fs::remove_file(head.path("machines/evil.toml")).unwrap();
    head.edit(
        "templates/cloud-init.yaml.j2",
        "#cloud-config",
        "#cloud-config\n# edited",
    );
    let r: Run = bootc()
        .args(["diff", tree.to_str().unwrap(), h])
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("node01"), "{}", r.stdout);
    assert_no_leak("diff of a tree", &head, &[&r]);
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `bootc diff git:REV`: a revision that commits symlinks to a secret (a
/// machines file, a template) shows neither the secret nor its lines.
#[test]
fn diff_of_a_git_revision_with_symlinks_out() {
    if !need("git") {
        return;
    }
    let secret = secret();
    let site = Site::fixture("basic");
    fs::write(site.path(".gitignore"), "public/\nmachines/local.toml\n").unwrap();
    git(site.root(), &["init", "-q", "-b", "main"]);
    git(site.root(), &["add", "."]);
    git(site.root(), &["commit", "-q", "-m", "first"]);
    // A site file git ignores is taken from the working tree (copied in,
    // not linked from outside the exported site).
    site.write(
        "machines/local.toml",
        "[[machine]]\nname = \"local01\"\nmac = \"52:54:00:aa:bb:77\"\nip = \"10.77.0.77\"\nrole = \"worker\"\nlabels = { rack = \"r9\" }\n",
    );
    let r = site.run(&["diff", "git:HEAD", ".", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["summary"]["changed"], 0, "{}", r.stdout);
    assert!(
        r.stderr
            .contains("using the working tree's machines/local.toml"),
        "{}",
        r.stderr
    );
    link(&site, "machines/evil.toml", &secret.path);
    link(&site, "templates/cloud-init.yaml.j2", &secret.path);
    git(site.root(), &["add", "-A"]);
    git(site.root(), &["commit", "-q", "-m", "hostile"]);
    let r = site.run(&["diff", "git:HEAD~1", "git:HEAD"]);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("machines/evil.toml leads out of the site"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("templates/cloud-init.yaml.j2 leads out of the site"),
        "{}",
        r.stderr
    );
    assert_no_leak("diff git:", &site, &[&r]);
}

/// Runs `bootc build .` in `site` and calls `act` once, as soon as the
/// artifact at `rel` has an inotify event of `mask` (inotify sees reads
/// through a descriptor and closes; not reads of a memory map).
fn build_racing(
    site: &Site,
    rel: &str,
    mask: rustix::fs::inotify::WatchFlags,
    act: impl FnOnce() + Send,
) -> Run {
    use rustix::fs::inotify;
    use std::sync::atomic::{AtomicBool, Ordering};
    let ino =
        inotify::init(inotify::CreateFlags::NONBLOCK | inotify::CreateFlags::CLOEXEC).unwrap();
    inotify::add_watch(&ino, site.path(rel), mask).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(&ino, &mut buf);
            loop {
                if reader.next().is_ok() {
                    act();
                    return true;
                }
                if done.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_micros(100));
            }
        });
        let out = bootc()
            .args(["build", "."])
            .current_dir(site.root())
            .output()
            .unwrap();
        done.store(true, Ordering::SeqCst);
        assert!(watcher.join().unwrap(), "the artifact was never read");
        out.into()
    })
}

/// Opened once: the artifact is validated, hashed and copied through one
/// descriptor. Swapping it for a symlink to a secret as soon as bootc has
/// closed it once (before: hashing closed it, and copying re-opened the
/// name) does not publish the secret.
#[test]
fn an_artifact_swapped_after_hashing_is_not_published() {
    let secret = secret();
    let site = Site::fixture("basic");
    let original = bzimage(&(0..4u32 << 20).map(|i| (i % 251) as u8).collect::<Vec<_>>());
    fs::write(site.path("artifacts/vmlinuz"), &original).unwrap();
    let path = site.path("artifacts/vmlinuz");
    let r = build_racing(
        &site,
        "artifacts/vmlinuz",
        rustix::fs::inotify::WatchFlags::CLOSE_NOWRITE,
        || {
            fs::remove_file(&path).unwrap();
            symlink(&secret.path, &path).unwrap();
        },
    );
    assert_no_leak("swapped artifact", &site, &[&r]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hash = blake3::hash(&original).to_hex().to_string();
    assert_eq!(
        fs::read(site.path(&format!("public/http/images/{hash}/vmlinuz"))).unwrap(),
        original
    );
}

/// A file that grows while bootc reads it (hashing, then copying) is an
/// error naming it, and nothing is written: never a copy that differs from
/// what the manifest says.
#[test]
fn an_artifact_growing_while_read_is_an_error() {
    let site = Site::fixture("basic");
    let original = bzimage(
        &(0..64u32 << 20)
            .map(|i| (i % 241) as u8)
            .collect::<Vec<_>>(),
    );
    fs::write(site.path("artifacts/vmlinuz"), &original).unwrap();
    drop(original);
    let path = site.path("artifacts/vmlinuz");
    let r = build_racing(
        &site,
        "artifacts/vmlinuz",
        rustix::fs::inotify::WatchFlags::ACCESS,
        || {
            use std::io::Write;
            fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(&[7u8; 1 << 20])
                .unwrap();
        },
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("artifacts/vmlinuz")
            && r.stderr
                .contains("the file changed while bootc was reading it"),
        "{}",
        r.stderr
    );
    assert!(!site.path("public").exists());
}

/// A FIFO where an artifact should be is refused at once (no hang).
#[test]
fn an_artifact_fifo_is_refused() {
    let site = Site::fixture("basic");
    fs::remove_file(site.path("artifacts/vmlinuz")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        site.path("artifacts/vmlinuz"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let r = site.build();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("local artifact `artifacts/vmlinuz` is not a regular file"),
        "{}",
        r.stderr
    );
}

/// An iPXE binary may be a symlink to a chainloader the system installed
/// (Debian links /usr/lib/ipxe/ipxe.efi to /boot/ipxe.efi), so the system's
/// folder works as `[ipxe] binaries` and the default.
#[test]
fn an_ipxe_binary_may_link_to_the_systems_chainloader() {
    let system = Path::new("/usr/lib/ipxe/snponly.efi");
    if !system.is_file() {
        eprintln!("skipped: no {}", system.display());
        return;
    }
    let site = Site::fixture("basic");
    link(&site, "ipxe/snponly.efi", system);
    let r = site.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fs::read(site.path("public/tftp/snponly.efi")).unwrap(),
        fs::read(system).unwrap()
    );
}
