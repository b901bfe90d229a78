//! Every output byte of site.example and of each fixture, as a list of
//! (path, size, BLAKE3) in a snapshot. Restructuring the code must not move
//! a byte; a change of output shows here as a reviewable snapshot diff.
//!
//! The chainloaders come from stand-ins in the site (never this machine's
//! iPXE), so the listing is the same on every machine.

use std::fs;
use std::path::Path;

use crate::harness::{Site, tree};

fn listing(out: &Path) -> String {
    tree(out)
        .iter()
        .map(|(path, bytes)| format!("{path} {} {}\n", bytes.len(), blake3::hash(bytes)))
        .collect()
}

/// Builds `site` (its [ipxe] binaries pointed at stand-ins) and lists public/.
fn build_listing(site: &Site) -> String {
    fs::create_dir_all(site.path("ipxe")).unwrap();
    for f in ["undionly.kpxe", "ipxe.efi", "snponly.efi"] {
        fs::write(site.path("ipxe").join(f), format!("stand-in {f}\n")).unwrap();
    }
    let toml = site.read("bootc.toml");
    if !toml.contains("\n[ipxe]") {
        site.write(
            "bootc.toml",
            &format!("{toml}\n[ipxe]\nbinaries = \"ipxe\"\n"),
        );
    }
    let r = site.run(&["build", ".", "-o", "public"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    listing(&site.path("public"))
}

#[test]
fn site_example_output_bytes() {
    insta::assert_snapshot!(build_listing(&Site::example()));
}

#[test]
fn fixture_output_bytes() {
    for name in ["basic", "forms", "diff"] {
        let site = Site::fixture(name);
        insta::assert_snapshot!(format!("fixture_{name}"), build_listing(&site));
    }
}
