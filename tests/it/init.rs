//! `bootc init`: a site that builds at once, written only into real
//! folders.

use std::fs;

use crate::harness::{Run, bootc};

fn run(args: &[&str]) -> Run {
    bootc().args(args).output().unwrap().into()
}

#[test]
fn init_makes_a_site_that_builds() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("lab");
    let r = run(&["init", site.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["build", site.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        site.join("public/http/machines/52-54-00-aa-bb-01.ipxe")
            .exists()
    );
    // A second init refuses to overwrite.
    let again = run(&["init", site.to_str().unwrap()]);
    assert_eq!(again.code, 2);
}

/// Hostile input: a DIR whose machines/ is a link elsewhere (or a link
/// where a file goes) makes init stop; nothing is written through a link.
#[test]
fn init_never_writes_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let site = dir.path().join("lab");
    fs::create_dir(&site).unwrap();
    std::os::unix::fs::symlink(&elsewhere, site.join("machines")).unwrap();
    let r = run(&["init", site.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is a symbolic link"), "{}", r.stderr);
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "written through the link"
    );
    // A link where a file goes (a dangling one too) is refused the same way.
    fs::remove_file(site.join("machines")).unwrap();
    let _ = fs::remove_dir_all(&site);
    fs::create_dir(&site).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("x.toml"), site.join(".gitignore")).unwrap();
    let r = run(&["init", site.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        !elsewhere.join("x.toml").exists(),
        "written through the link"
    );
    assert!(!site.join("bootc.toml").exists(), "half a site was written");
}
