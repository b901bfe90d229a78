//! Boot media without booting: every rule of `[media]` and `bootc media`
//! with its message, place and exit code, the tools named with their
//! packages, byte-identical images, padding, and `verify` covering the
//! image. The boots are in media.rs.

use std::fs;

use crate::harness::{Site, bootc};
use crate::media::{media_site, need_media_tools};

// --- rules (no tools needed: nothing is made when the site is invalid) ---

invalid!(
    media_needs_a_base_url,
    "[media] needs [site] base-url",
    "bootc.toml:",
    |s| {
        s.edit(
            "bootc.toml",
            "base-url = \"http://10.77.0.1:8080/boot/\"\n",
            "",
        );
        s.edit("bootc.toml", "[dhcp]", "[media]\n\n[dhcp]");
    }
);

invalid!(
    media_needs_plain_http,
    "boot media cannot enter the site at `https://boot.example/`",
    "bootc.toml:3:12",
    |s| {
        s.edit(
            "bootc.toml",
            "http://10.77.0.1:8080/boot/",
            "https://boot.example/",
        );
        s.append("bootc.toml", "\n[media]\n");
    }
);

invalid!(
    media_pad_to_is_a_size,
    "invalid pad-to `ten`",
    "bootc.toml:21:10",
    |s| {
        s.append("bootc.toml", "\n[media]\npad-to = \"ten\"\n");
    }
);

invalid!(
    media_pad_to_has_a_limit,
    "pad-to `5GiB` is larger than 4 GiB",
    "bootc.toml:21:10",
    |s| {
        s.append("bootc.toml", "\n[media]\npad-to = \"5GiB\"\n");
    }
);

// The embedded programs' templates are checked by `check` too, before any
// image is made.
invalid!(
    media_template_errors_are_found_by_check,
    "template error in templates/media.ipxe.j2: undefined value",
    "templates/media.ipxe.j2:2:",
    |s| {
        s.append("bootc.toml", "\n[media]\n");
        s.write(
            "templates/media.ipxe.j2",
            "#!ipxe\nchain {{ site.mirror }}\n",
        );
    }
);

/// `bootc media` of a site with `[media]` (the basic fixture otherwise).
fn media(s: &Site, args: &[&str]) -> crate::harness::Run {
    let mut argv = vec!["media", "."];
    argv.extend(args);
    s.run(&argv)
}

#[test]
fn a_machine_image_needs_a_static_address() {
    let s = media_site();
    s.edit("machines/sub/rack2.toml", "ip = \"10.77.0.13\"\n", "");
    let r = media(&s, &["--machine", "node03", "-o", "n3.iso"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let errors = r.errors();
    assert!(
        errors.contains("error: machine `node03` has no ip"),
        "{errors}"
    );
    assert!(errors.contains("--> machines/sub/rack2.toml:"), "{errors}");
    assert!(!s.path("n3.iso").exists());
    insta::assert_snapshot!(errors);
}

#[test]
fn a_machine_image_needs_a_gateway() {
    let s = media_site();
    s.edit("bootc.toml", "gateway = \"10.77.0.1\"\n", "");
    let r = media(&s, &["--machine", "node01", "-o", "n1.iso"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let errors = r.errors();
    assert!(
        errors.contains("error: machine `node01` has no usable static network"),
        "{errors}"
    );
    assert!(
        errors.contains("its subnet 10.77.0.0/24 has no gateway"),
        "{errors}"
    );
    assert!(!s.path("n1.iso").exists());
}

#[test]
fn an_unknown_machine_is_a_usage_error() {
    let s = media_site();
    let r = media(&s, &["--machine", "nod01", "-o", "x.iso"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the site has no machine named `nod01` (did you mean `node01`?)"),
        "{}",
        r.stderr
    );
    assert!(!s.path("x.iso").exists());
}

#[test]
fn media_needs_the_media_section() {
    let s = Site::fixture("basic");
    let r = media(&s, &["-o", "x.iso"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.errors()
            .contains("error: boot media need [media] in bootc.toml"),
        "{}",
        r.stderr
    );
    assert!(!s.path("x.iso").exists());
}

/// Without the tools, a build of a site with [media] stops with exit 2,
/// naming each missing program and the packages to install, and writes
/// nothing.
#[test]
fn missing_tools_are_named_with_their_packages() {
    let s = media_site();
    let empty = tempfile::tempdir().unwrap();
    let r: crate::harness::Run = bootc()
        .args(["build", "."])
        .current_dir(s.root())
        .env("PATH", empty.path())
        .output()
        .unwrap()
        .into();
    assert_eq!(r.code, 2, "{}", r.stderr);
    for want in ["xorriso", "mmd", "mcopy", "grub-mkimage", "apt-get install"] {
        assert!(r.stderr.contains(want), "{want} not named:\n{}", r.stderr);
    }
    assert!(
        r.stderr.contains("xorriso mtools grub-common"),
        "packages not listed:\n{}",
        r.stderr
    );
    assert!(!s.path("public").exists(), "nothing may be written");
}

// --- images (the tools are needed) ---

#[test]
fn two_builds_in_two_folders_give_the_same_image() {
    if !need_media_tools() {
        return;
    }
    let a = media_site();
    let b = media_site();
    for s in [&a, &b] {
        let r = s.build();
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let image = "public/http/media/boot.iso";
    let (ia, ib) = (
        fs::read(a.path(image)).unwrap(),
        fs::read(b.path(image)).unwrap(),
    );
    assert!(ia.len() > 1 << 20, "an image of {} bytes", ia.len());
    assert!(ia == ib, "the images differ");
    // `bootc media` writes the same generic image.
    let r = media(&a, &["-o", "generic.iso"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(fs::read(a.path("generic.iso")).unwrap() == ia);
    // A machine's image differs from the generic one and is stable too.
    for s in [&a, &b] {
        let r = media(s, &["--machine", "node01", "-o", "node01.iso"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let na = fs::read(a.path("node01.iso")).unwrap();
    assert!(na == fs::read(b.path("node01.iso")).unwrap());
    assert!(na != ia);
    // It is in the manifest.
    let manifest = a.out("http/manifest.json");
    assert!(manifest.contains("\"http/media/boot.iso\""), "{manifest}");
}

#[test]
fn pad_to_pads_the_image() {
    if !need_media_tools() {
        return;
    }
    let s = media_site();
    s.edit("bootc.toml", "[media]\n", "[media]\npad-to = \"10MiB\"\n");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let size = fs::metadata(s.path("public/http/media/boot.iso"))
        .unwrap()
        .len();
    assert_eq!(size, 10 << 20);
}

#[test]
fn verify_catches_a_changed_byte_in_the_image() {
    if !need_media_tools() {
        return;
    }
    let s = media_site();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = crate::sign::keygen(keys.path(), "site");
    let r = s.run(&["build", ".", "--sign-key", key.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pubkey = public.to_str().unwrap();
    let ok = s.run(&["verify", "public", "--pubkey", pubkey]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let path = s.path("public/http/media/boot.iso");
    let mut bytes = fs::read(&path).unwrap();
    bytes[40_000] ^= 1;
    fs::write(&path, bytes).unwrap();
    let bad = s.run(&["verify", "public", "--pubkey", pubkey]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    let text = format!("{}{}", bad.stdout, bad.stderr);
    assert!(text.contains("http/media/boot.iso"), "{text}");
}
