//! `[site] vendor = true` (SPEC section 10), against an "upstream mirror":
//! nginx on 127.0.0.1 serving the real Debian 12 installer files of the
//! package debian-installer-12-netboot-amd64. A vendored build fetches them
//! once into the cache, checks them against their pins and serves them
//! from the tree, content-addressed; a second build fetches nothing; a
//! changed upstream file fails the build at its pin; `bootc pin` prints
//! what sha256sum says; and the vendored installer boots in QEMU.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boot_support::{
    Firmware, Nginx, default_boot_timeout, need_boot_tools, qemu_run_until, unavailable,
};
use crate::harness::{Run, Site, bootc};

const DI: &str = "/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64";
const MIRROR_PATH: &str = "mirror/debian/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64";

/// A mirror folder with the installer's kernel and initrd, served by nginx;
/// None (skipped) without the package.
fn mirror() -> Option<(tempfile::TempDir, PathBuf, Nginx)> {
    if !Path::new(DI).is_dir()
        && unavailable(
            "the Debian installer netboot files",
            "apt-get install debian-installer-12-netboot-amd64",
        )
    {
        return None;
    }
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join(MIRROR_PATH);
    fs::create_dir_all(&dir).unwrap();
    for f in ["linux", "initrd.gz"] {
        fs::copy(format!("{DI}/{f}"), dir.join(f)).unwrap();
    }
    let nginx = Nginx::start(root.path());
    Some((root, dir, nginx))
}

/// The `basic` fixture, vendored, its `linux` image the installer on the
/// mirror (pinned by the real files' hashes, as site.example pins them).
fn vendored_site(nginx: &Nginx) -> Site {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "name = \"fixture\"",
        "name = \"fixture\"\nvendor = true",
    );
    let base = format!("http://127.0.0.1:{}/{MIRROR_PATH}", nginx.port());
    s.write(
        "images/linux.toml",
        &format!(
            "description = \"Debian 12 installer\"\n\
             kernel = {{ url = \"{base}/linux\", sha256 = \"{LINUX_SHA256}\" }}\n\
             initrd = [{{ url = \"{base}/initrd.gz\", sha256 = \"{INITRD_SHA256}\" }}]\n\
             kernel-args = [\"priority=critical\", \"auto=true\", \"console=ttyS0\"]\n"
        ),
    );
    s
}

const LINUX_SHA256: &str = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d";
const INITRD_SHA256: &str = "cb24a28a5ba13dfb22e6e75bdd8ab997dbdee6e3ec6c1102f6c7f93044bd817d";

/// `bootc ARGS` in the site with its own cache.
fn run(s: &Site, cache: &Path, args: &[&str]) -> Run {
    bootc()
        .args(args)
        .current_dir(s.root())
        .env("BOOTC_CACHE_DIR", cache)
        .output()
        .unwrap()
        .into()
}

fn mirror_requests(nginx: &Nginx) -> usize {
    nginx
        .requests()
        .iter()
        .filter(|r| r.uri.starts_with("/mirror/"))
        .count()
}

#[test]
fn a_vendored_build_serves_the_installer_from_the_tree() {
    let Some((_root, _dir, nginx)) = mirror() else {
        return;
    };
    let s = vendored_site(&nginx);
    let cache = tempfile::tempdir().unwrap();
    let r = run(&s, cache.path(), &["build", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mirror_requests(&nginx), 2, "{}", nginx.access_log());
    // The files are in the tree, content-addressed, byte for byte.
    let b3 = |p: &str| blake3::hash(&fs::read(p).unwrap()).to_hex().to_string();
    for f in ["linux", "initrd.gz"] {
        let at = s.path(&format!(
            "public/http/images/{}/{f}",
            b3(&format!("{DI}/{f}"))
        ));
        assert!(at.is_file(), "{} missing", at.display());
    }
    // No script reaches the mirror: its URLs are relative.
    let port = format!("127.0.0.1:{}", nginx.port());
    for entry in walkdir::WalkDir::new(s.path("public/http")) {
        let entry = entry.unwrap();
        if entry.path().extension().is_some_and(|e| e == "ipxe") {
            let text = fs::read_to_string(entry.path()).unwrap();
            assert!(
                !text.contains(&port),
                "{} reaches the mirror:\n{text}",
                entry.path().display()
            );
        }
    }
    // A second build, into another folder, fetches nothing.
    let r = run(&s, cache.path(), &["build", ".", "-o", "again"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        mirror_requests(&nginx),
        2,
        "fetched again:\n{}",
        nginx.access_log()
    );
    assert_eq!(
        s.out("http/manifest.json"),
        fs::read_to_string(s.path("again/http/manifest.json")).unwrap()
    );
}

#[test]
fn a_changed_upstream_file_fails_the_build_at_its_pin() {
    let Some((_root, dir, nginx)) = mirror() else {
        return;
    };
    let s = vendored_site(&nginx);
    // A good build first (its own cache), then the mirror changes.
    let good = tempfile::tempdir().unwrap();
    let r = run(&s, good.path(), &["build", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = crate::harness::tree(&s.path("public"));
    let mut initrd = fs::read(dir.join("initrd.gz")).unwrap();
    initrd.push(0);
    fs::write(dir.join("initrd.gz"), &initrd).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let r = run(&s, cache.path(), &["build", "."]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let errors = r.errors();
    assert!(errors.contains("does not match its pin"), "{errors}");
    assert!(errors.contains("--> images/linux.toml:3:"), "{errors}");
    assert!(
        errors.contains(&format!("sha256 {INITRD_SHA256} expected")),
        "{errors}"
    );
    assert_eq!(
        crate::harness::tree(&s.path("public")),
        before,
        "the previous tree changed"
    );
    // Nothing wrong stays in the cache: only the good kernel.
    let kept: Vec<String> = fs::read_dir(cache.path().join("downloads"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        kept,
        [format!("sha256-{LINUX_SHA256}")],
        "the cache holds {kept:?}"
    );
}

#[test]
fn pin_prints_what_sha256sum_says() {
    let Some((_root, dir, nginx)) = mirror() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/{MIRROR_PATH}/initrd.gz", nginx.port());
    let r: Run = bootc()
        .args(["pin", &url])
        .env("BOOTC_CACHE_DIR", cache.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let sum = Command::new("sha256sum")
        .arg(dir.join("initrd.gz"))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let sha = sum.split_whitespace().next().unwrap();
    assert_eq!(
        r.stdout,
        format!("{{ url = \"{url}\", sha256 = \"{sha}\" }}\n")
    );
    // The download is kept: a vendored build of that pin fetches nothing.
    assert!(
        cache
            .path()
            .join(format!("downloads/sha256-{sha}"))
            .is_file()
    );
    // A URL that is not there is an error (exit 2), nothing printed.
    let r: Run = bootc()
        .args(["pin", &format!("{url}.missing")])
        .env("BOOTC_CACHE_DIR", cache.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("404"), "{}", r.stderr);
}

/// The vendored installer boots: iPXE fetches kernel and initrd from the
/// tree (the mirror is never asked during the boot) and the kernel starts.
#[test]
fn the_vendored_installer_boots() {
    if !need_boot_tools(Firmware::Bios) {
        return;
    }
    let Some((root, _dir, nginx)) = mirror() else {
        return;
    };
    let s = vendored_site(&nginx);
    let cache = tempfile::tempdir().unwrap();
    let out = root.path().join("out");
    let r = run(
        &s,
        cache.path(),
        &["build", ".", "-o", out.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let fetched = mirror_requests(&nginx);
    let nics = vec![
        "-netdev".to_string(),
        format!(
            "user,id=n0,bootfile=http://10.0.2.2:{}/out/http/boot.ipxe",
            nginx.port()
        ),
        "-device".to_string(),
        "virtio-net-pci,netdev=n0,mac=52:54:00:aa:bb:01".to_string(),
    ];
    let result = qemu_run_until(
        &[],
        &nics,
        Firmware::Bios,
        default_boot_timeout(),
        "Kernel command line: ",
    );
    let cmdline = result.cmdline();
    assert!(
        cmdline.contains("auto=true"),
        "{cmdline:?}\n{}",
        nginx.access_log()
    );
    assert_eq!(
        mirror_requests(&nginx),
        fetched,
        "the boot reached the mirror:\n{}",
        nginx.access_log()
    );
    assert!(
        nginx
            .served()
            .iter()
            .any(|u| u.starts_with("/out/http/images/") && u.ends_with("/initrd.gz")),
        "{}",
        nginx.access_log()
    );
}

/// `check --online` fetches every remote artifact again, never from the
/// cache: a changed upstream file is caught even when the cache holds the
/// good one (and without vendoring), while a plain `check` does not fetch.
#[test]
fn check_online_catches_a_changed_upstream() {
    let Some((_root, dir, nginx)) = mirror() else {
        return;
    };
    let s = vendored_site(&nginx);
    let cache = tempfile::tempdir().unwrap();
    let r = run(&s, cache.path(), &["check", "--online", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mirror_requests(&nginx), 2);
    let mut kernel = fs::read(dir.join("linux")).unwrap();
    kernel[1000] ^= 1;
    fs::write(dir.join("linux"), &kernel).unwrap();
    // The cache still has the good file: a plain check fetches nothing.
    let r = run(&s, cache.path(), &["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mirror_requests(&nginx), 2);
    for vendor in [true, false] {
        if !vendor {
            s.edit("bootc.toml", "vendor = true", "vendor = false");
        }
        let r = run(&s, cache.path(), &["check", "--online", "."]);
        assert_eq!(r.code, 1, "vendor = {vendor}: {}", r.stderr);
        let errors = r.errors();
        assert!(errors.contains("does not match its pin"), "{errors}");
        assert!(errors.contains("--> images/linux.toml:2:"), "{errors}");
        assert!(!s.path("public").exists());
    }
    // The good file is still in the cache, the changed one never was.
    assert!(
        cache
            .path()
            .join(format!("downloads/sha256-{LINUX_SHA256}"))
            .is_file()
    );
}
