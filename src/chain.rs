//! How one machine boots, per firmware (SPEC section 8): BIOS, UEFI, UEFI
//! with Secure Boot, arm64 and UEFI HTTP Boot, each as the files fetched in
//! order with their protocol. `bootc explain` prints it; it is computed from
//! the site and the machine's resolved plan, the same data the DHCP configs
//! and the boot programs come from.

use crate::dhcp::{BIOS_LOADER, efi_loader};
use crate::loader::grub::ARM64_PREFIX;
use crate::plan::Resolved;
use crate::site::{Arch, Artifact, EfiName, Mac, Site, UefiLoader};

/// One fetch: over which protocol, which file (a path in tftp/ or under
/// the web root, or a URL), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub protocol: &'static str,
    pub path: String,
    pub note: String,
}

/// The boot of one kind of firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub firmware: &'static str,
    pub steps: Vec<Step>,
    /// What happens at the end.
    pub end: String,
}

fn step(protocol: &'static str, path: impl Into<String>, note: impl Into<String>) -> Step {
    Step {
        protocol,
        path: path.into(),
        note: note.into(),
    }
}

/// The chains of machine `m` booting from `mac`.
pub fn chains(site: &Site, m: &Resolved, mac: Mac) -> Vec<Chain> {
    let arch = if m.arch == "arm64" {
        Arch::Arm64
    } else {
        Arch::X86_64
    };
    let uefi = UefiLoader::from_plan(&m.uefi_loader);
    let ipxe_efi = if arch == Arch::Arm64 {
        crate::dhcp::ARM64_LOADER
    } else {
        efi_loader(site).unwrap_or("snponly.efi")
    };
    let mut out = Vec::new();
    if arch == Arch::X86_64 {
        out.push(ipxe_chain(
            site,
            m,
            mac,
            "BIOS",
            step(
                "tftp",
                BIOS_LOADER,
                "DHCP file for PXE firmware (option 93 = 0)",
            ),
        ));
    }
    let (uefi_name, dhcp_note) = match (arch, m.secure_boot) {
        (Arch::Arm64, _) => ("arm64 UEFI", "DHCP file for arm64 UEFI (option 93 = 11)"),
        (_, true) => (
            "UEFI Secure Boot",
            "DHCP file for x86-64 UEFI (option 93 = 7 or 9)",
        ),
        _ => ("UEFI", "DHCP file for x86-64 UEFI (option 93 = 7 or 9)"),
    };
    out.push(match uefi {
        UefiLoader::Ipxe => ipxe_chain(site, m, mac, uefi_name, step("tftp", ipxe_efi, dhcp_note)),
        UefiLoader::ShimGrub => grub_chain(site, m, mac, arch, uefi_name, dhcp_note),
    });
    // HTTP Boot serves the iPXE path only (Debian's signed GRUB has no HTTP).
    if uefi == UefiLoader::Ipxe
        && site.uefi.http_boot
        && site.dhcp.is_some()
        && arch == Arch::X86_64
    {
        out.push(ipxe_chain(
            site,
            m,
            mac,
            "UEFI HTTP Boot",
            step(
                "http",
                ipxe_efi,
                "DHCP URL for vendor class HTTPClient (option 60 echoed)",
            ),
        ));
    }
    out
}

/// Firmware -> `first` -> iPXE -> boot.ipxe -> the MAC's script -> the image.
fn ipxe_chain(site: &Site, m: &Resolved, mac: Mac, firmware: &'static str, first: Step) -> Chain {
    let mut steps = vec![
        first,
        step(
            "http",
            "boot.ipxe",
            "iPXE asks DHCP again (user class iPXE) and gets its URL",
        ),
        step(
            "http",
            format!("machines/{}.ipxe", mac.hexhyp()),
            format!("${{mac:hexhyp}} of {mac}"),
        ),
    ];
    steps.extend(image_steps(site, m, "http"));
    Chain {
        firmware,
        steps,
        end: match m.boot.as_str() {
            "kernel" => "boot the kernel",
            "iso" => "boot the ISO",
            "chain" => "run the chained script",
            _ => "exit iPXE: the firmware boots the next device (local disk)",
        }
        .to_string(),
    }
}

/// Firmware -> shim -> GRUB -> grub.cfg -> the MAC's config -> the image,
/// all over TFTP.
fn grub_chain(
    site: &Site,
    m: &Resolved,
    mac: Mac,
    arch: Arch,
    firmware: &'static str,
    note: &str,
) -> Chain {
    let (shim, grub, prefix) = match arch {
        Arch::Arm64 => (EfiName::Arm64Shim, EfiName::Arm64Grub, ARM64_PREFIX),
        Arch::X86_64 => (EfiName::Shim, EfiName::Grub, "grub"),
    };
    let mut steps = vec![
        step("tftp", shim.file(), format!("{note}: Debian's signed shim")),
        step(
            "tftp",
            grub.file(),
            "shim loads the signed GRUB of the same folder",
        ),
        step(
            "tftp",
            format!("{prefix}/grub.cfg"),
            "GRUB's prefix on the TFTP server",
        ),
        step(
            "tftp",
            format!("grub/grub.cfg-01-{}", mac.hexhyp()),
            format!("the config of {mac}"),
        ),
    ];
    steps.extend(image_steps(site, m, "tftp"));
    Chain {
        firmware,
        steps,
        end: match m.boot.as_str() {
            "kernel" if m.secure_boot => "boot the kernel (shim checks its signature)",
            "kernel" => "boot the kernel",
            _ => "exit GRUB: the firmware boots the next device (local disk)",
        }
        .to_string(),
    }
}

/// The image's files, fetched over `protocol`.
fn image_steps(site: &Site, m: &Resolved, protocol: &'static str) -> Vec<Step> {
    let Some(img) = site.images.get(&m.image) else {
        return Vec::new();
    };
    img.boot
        .artifacts()
        .into_iter()
        .map(|a| match a {
            Artifact::Local { path, size, .. } => step(
                protocol,
                a.url_from(""),
                format!(
                    "local {path}, {}",
                    crate::diag::plural(usize::try_from(*size).unwrap_or(usize::MAX), "byte")
                ),
            ),
            Artifact::Remote {
                url,
                sha256,
                blake3,
                ..
            } => {
                let pin = sha256
                    .as_ref()
                    .map(|p| format!("sha256 {}…", &p[..16]))
                    .or(blake3.as_ref().map(|p| format!("blake3 {}…", &p[..16])))
                    .unwrap_or_default();
                step(protocol, url.clone(), format!("remote, {pin}"))
            }
            Artifact::Live { url } => step(protocol, url.clone(), "chained iPXE service"),
        })
        .collect()
}
