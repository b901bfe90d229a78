//! What packaging needs: `bootc completions SHELL` scripts that their shells
//! parse, `bootc man` pages that man renders, and the Debian package
//! (packaging/build-deb) with everything in its place.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::boot_support::{find_program, need};
use crate::harness::{Run, bootc};

fn run(args: &[&str]) -> Run {
    bootc().args(args).output().expect("run bootc").into()
}

/// Writes the completion script of `shell` into a temporary file.
fn completion(shell: &str, dir: &Path) -> PathBuf {
    let r = run(&["completions", shell]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("bootc"), "{shell}: {}", r.stdout);
    for sub in ["build", "check", "explain", "serve", "completions", "man"] {
        assert!(r.stdout.contains(sub), "{shell} completes no `{sub}`");
    }
    let p = dir.join(format!("bootc.{shell}"));
    fs::write(&p, &r.stdout).unwrap();
    p
}

fn parses(program: &str, args: &[&str], script: &Path) {
    let o = Command::new(program)
        .args(args)
        .arg(script)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{program} {args:?} rejects the script: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn completion_scripts_parse() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["elvish", "powershell"] {
        completion(shell, dir.path());
    }
    if need("bash") {
        parses("bash", &["-n"], &completion("bash", dir.path()));
    }
    if need("zsh") {
        parses("zsh", &["-n"], &completion("zsh", dir.path()));
    }
    if need("fish") {
        parses("fish", &["--no-execute"], &completion("fish", dir.path()));
    }
    let r = run(&["completions", "tcsh"]);
    assert_eq!(r.code, 2, "an unknown shell is a usage error");
}

#[test]
fn man_pages_render() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(&["man", "-o", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for page in [
        "bootc.1",
        "bootc-build.1",
        "bootc-check.1",
        "bootc-explain.1",
        "bootc-serve.1",
        "bootc-completions.1",
    ] {
        assert!(dir.path().join(page).is_file(), "no {page}");
    }
    let printed = run(&["man"]);
    assert_eq!(
        printed.stdout,
        fs::read_to_string(dir.path().join("bootc.1")).unwrap()
    );
    let page = dir.path().join("bootc.1");
    let shown = if find_program("man").is_some() {
        Command::new("man")
            .arg("-l")
            .arg(&page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap()
    } else if need("groff") {
        Command::new("groff")
            .args(["-man", "-Tutf8"])
            .arg(&page)
            .output()
            .unwrap()
    } else {
        return;
    };
    assert!(shown.status.success());
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("bootc"), "{text}");
    assert!(
        text.contains("--deny-warnings") || text.contains("bootc-build"),
        "{text}"
    );
    assert!(text.contains("--quiet"), "{text}");
}

/// The Debian package, built by packaging/build-deb. Skipped (never failed,
/// even with CI=true) when cargo-deb is not installed: building it takes
/// minutes, and CI's packaging job (.github/workflows/ci.yml) builds,
/// installs and runs the package on its own.
#[test]
fn debian_package_holds_everything_in_place() {
    let has_cargo_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_cargo_deb || find_program("dpkg-deb").is_none() {
        eprintln!(
            "skipping: cargo-deb or dpkg-deb not installed (cargo install cargo-deb --locked)"
        );
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("packaging/build-deb"))
        .current_dir(root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "packaging/build-deb failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = PathBuf::from(stdout.lines().last().expect("the .deb's path").trim());
    let deb = if deb.is_absolute() {
        deb
    } else {
        root.join(deb)
    };
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8_lossy(&listing.stdout);
    for path in [
        "./usr/bin/bootc",
        "./usr/share/man/man1/bootc.1.gz",
        "./usr/share/man/man1/bootc-build.1.gz",
        "./usr/share/man/man1/bootc-serve.1.gz",
        "./usr/share/bash-completion/completions/bootc",
        "./usr/share/zsh/vendor-completions/_bootc",
        "./usr/share/fish/vendor_completions.d/bootc.fish",
        "./usr/share/doc/bootc/README.md",
        "./usr/share/doc/bootc/docs/reference.md",
        "./usr/share/doc/bootc/site.example/bootc.toml",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(path)),
            "{path} is not in the package:\n{listing}"
        );
    }
    assert!(!listing.contains("site.example/public/"), "{listing}");
    let dir = tempfile::tempdir().unwrap();
    let x = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(x.success());
    let bin = dir.path().join("usr/bin/bootc");
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert!(v.status.success());
    assert_eq!(
        String::from_utf8_lossy(&v.stdout),
        format!("bootc {}\n", env!("CARGO_PKG_VERSION"))
    );
    // Stripped: no symbol table left.
    let bytes = fs::read(&bin).unwrap();
    assert!(
        !bytes.windows(7).any(|w| w == b".symtab"),
        "the packaged binary keeps its symbols"
    );
}
