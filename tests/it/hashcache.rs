//! The hash cache of local artifacts: a sparse 4 GiB artifact is read once;
//! a second `check` reads none of its bytes (counted by the kernel: the
//! `rchar` of bootc's /proc/PID/io, read while it is a zombie), and a
//! changed file is hashed again. Large ones show progress on a terminal.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Site, bootc, sparse_disk};

/// Runs `bootc check .` in the site with the cache `cache`; returns its exit
/// code and the bytes it read (`rchar`).
fn check_reading(s: &Site, cache: &Path) -> (i32, u64) {
    let mut child = bootc()
        .args(["check", "."])
        .current_dir(s.root())
        .env("BOOTC_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Until it has exited (a zombie: not reaped, its counters still there).
    let io = loop {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        if state == "Z" {
            break fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let code = child.wait().unwrap().code().unwrap();
    let rchar = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .unwrap()
        .parse()
        .unwrap();
    (code, rchar)
}

#[test]
fn an_unchanged_artifact_is_hashed_once() {
    if !Path::new("/proc/self/io").exists() {
        return; // no per-process I/O accounting here
    }
    let s = Site::fixture("basic");
    let iso = s.path("artifacts/big.iso");
    sparse_disk(&iso, 4 << 30);
    s.write(
        "images/disk.toml",
        "iso = { path = \"artifacts/big.iso\" }\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let (code, first) = check_reading(&s, cache.path());
    assert_eq!(code, 0);
    assert!(first >= 4 << 30, "the first check read {first} bytes");
    let (code, second) = check_reading(&s, cache.path());
    assert_eq!(code, 0);
    assert!(second < 64 << 20, "the second check read {second} bytes");
    // A changed file (same size, same mtime put back) is hashed again.
    let before = fs::metadata(&iso).unwrap().modified().unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(&iso).unwrap();
    f.write_all(b"changed").unwrap();
    f.set_modified(before).unwrap();
    drop(f);
    let (code, third) = check_reading(&s, cache.path());
    assert_eq!(code, 0);
    assert!(
        third >= 4 << 30,
        "the changed file was not hashed: {third} bytes read"
    );
}

/// On a terminal (a pty made by `script`), hashing and copying a large
/// artifact show progress bars; piped, nothing is drawn.
#[test]
fn large_artifacts_show_progress_on_a_terminal() {
    if !crate::boot_support::need("script") {
        return;
    }
    let s = Site::fixture("basic");
    sparse_disk(&s.path("artifacts/big.img"), 1 << 30);
    s.write(
        "images/disk.toml",
        "iso = { path = \"artifacts/big.img\" }\n",
    );
    let cache = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_bootc");
    let o = std::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{bin} build . -o on-a-tty"))
        .arg("/dev/null")
        .current_dir(s.root())
        .env("BOOTC_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{tty}");
    for what in ["hashing artifacts", "copying artifacts"] {
        assert!(tty.contains(what), "no {what:?} on the terminal:\n{tty}");
    }
    let fresh = tempfile::tempdir().unwrap();
    let piped = bootc()
        .args(["build", ".", "-o", "piped"])
        .current_dir(s.root())
        .env("BOOTC_CACHE_DIR", fresh.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&piped.stderr);
    assert!(!err.contains("artifacts ["), "{err}");
    assert!(!err.contains("hashing"), "{err}");
}
