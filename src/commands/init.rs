//! `bootc init`: scaffold a site that builds at once.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use bootc::ipxe::is_host_label;

const MACHINES: &str = r#"# Machines: one or many per file, in any sub-folder of machines/.
# [defaults] applies to every machine of this file.
[defaults]
role = "local-disk"
labels = { rack = "r1" }

[[machine]]
name = "node01"              # an RFC 1123 host name, unique in the site
mac = "52:54:00:aa:bb:01"    # or macs = ["…", "…"] for several NICs
# ip = "10.77.0.11"          # a fixed address (with [dhcp] in bootc.toml)

[[machine]]
name = "node02"
mac = "52:54:00:aa:bb:02"
role = "installer"
kernel-args = ["priority=critical"]
"#;

const LOCAL_ROLE: &str = r#"description = "Boot from the local disk"
image = "local-disk"
"#;

const INSTALLER_ROLE: &str = r#"description = "Debian 12 installer"
image = "debian-12-installer"
kernel-args = ["console=ttyS0,115200n8", "bootc.role={{ role.name }}"]
"#;

const LOCAL_IMAGE: &str = r#"description = "Leave iPXE: the firmware boots the next device"
local = true
"#;

const INSTALLER_IMAGE: &str = r#"# The Debian 12 netboot installer (debian-installer 20230607+deb12u15),
# from your own mirror. Remote artifacts are always pinned.
description = "Debian 12 installer (netboot)"
kernel = { url = "http://mirror.lab.internal/debian/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64/linux", sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }
initrd = [{ url = "http://mirror.lab.internal/debian/dists/bookworm/main/installer-amd64/20230607+deb12u15/images/netboot/debian-installer/amd64/initrd.gz", sha256 = "cb24a28a5ba13dfb22e6e75bdd8ab997dbdee6e3ec6c1102f6c7f93044bd817d" }]
kernel-args = ["priority=high"]
"#;

/// The arguments of `bootc init`.
#[derive(clap::Args)]
pub struct Args {
    #[arg(default_value = ".")]
    dir: PathBuf,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(&self.dir)
    }
}

pub fn run(dir: &Path) -> Result<ExitCode> {
    if dir.join(bootc::load::SITE_FILE).exists() {
        bail!(
            "{}: a site is already here (bootc.toml exists); nothing was changed",
            dir.display()
        );
    }
    let name = dir
        .canonicalize()
        .ok()
        .or_else(|| Some(dir.to_path_buf()))
        .and_then(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
        })
        .filter(|n| is_host_label(n))
        .unwrap_or_else(|| "lab".to_string());
    let site = format!(
        r#"# bootc site settings. Its presence marks the site root.
[site]
name = "{name}"
# base-url = "http://10.77.0.1:8080/"   # where public/http/ is served (needed with [dhcp])
fallback = "menu"                       # unknown MACs: a role, "local", "menu" or "shell"

# [ipxe]
# binaries = "/usr/lib/ipxe"            # undionly.kpxe, ipxe.efi, snponly.efi

# [dhcp]
# next-server = "10.77.0.1"
# [[dhcp.subnet]]
# cidr = "10.77.0.0/24"
# pool = ["10.77.0.100", "10.77.0.200"]
# gateway = "10.77.0.1"
"#
    );
    let files: [(&str, &str); 7] = [
        ("bootc.toml", &site),
        ("machines/example.toml", MACHINES),
        ("roles/local-disk.toml", LOCAL_ROLE),
        ("roles/installer.toml", INSTALLER_ROLE),
        ("images/local-disk.toml", LOCAL_IMAGE),
        ("images/debian-12-installer.toml", INSTALLER_IMAGE),
        (".gitignore", "public/\n.public.bootc-spare/\n"),
    ];
    // Into real folders of DIR only: a symlinked machines/ (or a link where
    // a file goes) would have init write somewhere else. Checked for every
    // file before any is written.
    for (rel, _) in &files {
        let mut path = dir.to_path_buf();
        for part in rel.split('/') {
            path.push(part);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                bail!(
                    "{} is a symbolic link: init writes only into real folders of {}; nothing was written",
                    path.display(),
                    dir.display()
                );
            }
        }
    }
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let new = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match new {
            Ok(mut f) => std::io::Write::write_all(&mut f, text.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("writing {}", path.display())),
        }
    }
    println!(
        "created site {name} in {}; try: bootc build {}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
