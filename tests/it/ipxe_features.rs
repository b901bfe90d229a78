//! What the shipped iPXE can do: Debian 12's iPXE has no HTTPS and no
//! imgverify, imgtrust, imgextract, sha256sum or poweroff. A URL iPXE would
//! fetch over https, or a script that runs one of those commands, is an
//! error at its place unless `[ipxe] features` declares a custom build.

use crate::harness::Site;

invalid!(
    https_artifact_needs_the_feature,
    "iPXE cannot fetch `https://mirror.lab.internal/linux`: Debian 12's iPXE has no HTTPS",
    "images/linux.toml:2:18",
    |s| {
        s.edit(
            "images/linux.toml",
            "kernel = { path = \"artifacts/vmlinuz\" }",
            "kernel = { url = \"https://mirror.lab.internal/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
        );
    }
);

invalid!(
    https_base_url_with_dhcp_needs_the_feature,
    "iPXE cannot fetch `https://10.77.0.1/boot/`: Debian 12's iPXE has no HTTPS",
    "bootc.toml:3:12",
    |s| {
        s.edit(
            "bootc.toml",
            "http://10.77.0.1:8080/boot/",
            "https://10.77.0.1/boot/",
        );
    }
);

invalid!(
    script_command_the_shipped_ipxe_lacks,
    "`imgverify` is not a command of Debian 12's iPXE",
    "templates/machine.ipxe.j2:3:1",
    |s| {
        s.write(
            "templates/machine.ipxe.j2",
            "#!ipxe\necho {{ machine.name }}\nimgverify vmlinuz vmlinuz.sig\nexit\n",
        );
    }
);

invalid!(
    unknown_ipxe_feature,
    "unknown iPXE feature `http3`",
    "bootc.toml:19:13",
    |s| {
        s.edit(
            "bootc.toml",
            "binaries = \"ipxe\"",
            "binaries = \"ipxe\"\nfeatures = [\"http3\"]",
        );
    }
);

/// A custom build that declares the features may use them.
#[test]
fn declared_features_are_allowed() {
    let s = Site::fixture("basic");
    s.edit(
        "bootc.toml",
        "binaries = \"ipxe\"",
        "binaries = \"ipxe\"\nfeatures = [\"https\", \"imgverify\"]",
    );
    s.edit(
        "images/linux.toml",
        "kernel = { path = \"artifacts/vmlinuz\" }",
        "kernel = { url = \"https://mirror.lab.internal/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
    );
    s.write(
        "templates/machine.ipxe.j2",
        "#!ipxe\necho {{ machine.name }}\nimgverify vmlinuz vmlinuz.sig\nexit\n",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
