//! Boot media (SPEC section 9): one hybrid ISO 9660 image that boots BIOS
//! and UEFI, from a CD drive or written raw to a USB stick, gets on the
//! network (DHCP, or one machine's static address) and enters the site at
//! base-url.
//!
//! - BIOS: ISOLINUX starts Debian's `ipxe.lkrn` with the iPXE script
//!   rendered from `media.ipxe.j2` as its initrd (ipxe.lkrn runs an initrd
//!   that starts with `#!ipxe`; it gets no command line).
//! - UEFI: a GRUB image made by `grub-mkimage` with the config rendered
//!   from `media.grub.j2` in its memdisk. GRUB cannot run iPXE scripts, so
//!   it reads the site's GRUB configs over HTTP (http/grub/, written for
//!   every machine when the site has `[media]`).
//! - UEFI with Secure Boot (the site's default for the generic image, the
//!   machine's for its own): Debian's signed shim and GRUB from `[uefi]`;
//!   the same config, read from /grub/grub.cfg of the image, enters the
//!   site's Secure Boot path over TFTP at base-url's host (Debian's signed
//!   GRUB has no HTTP).
//!
//! [`prepare`] renders the two programs (template errors are the site's
//! problems, found by `check` too); [`make`] assembles them with Debian's
//! tools ([`iso::image`]).

pub mod iso;

use std::net::Ipv4Addr;

use minijinja::Value;

use crate::beneath::Opened;
use crate::context::{MediaContext, MediaEntry, MediaMachine, SiteView};
use crate::diag::{Diag, Diags};
use crate::loader::Renderer;
use crate::plan::Plan;
use crate::site::{EfiName, Machine, Site, UefiLoader};
use crate::templates::val;

pub use iso::{Loaders, MediaError, image};

/// Where `build` writes the generic image.
pub const GENERIC_PATH: &str = "http/media/boot.iso";

/// The programs a boot medium embeds.
pub struct Scripts {
    /// The iPXE script (BIOS).
    pub ipxe: String,
    /// The GRUB config (UEFI).
    pub grub: String,
    /// The UEFI side is Debian's signed shim and GRUB, entering the site
    /// over TFTP.
    pub secure_boot: bool,
}

/// Renders the generic image's programs (`machine` None) or one machine's,
/// for Secure Boot or not (see [`prepare`]). Errors: the site has no usable base-url, the
/// machine has no static address in a subnet with a gateway, or a template
/// failed.
fn scripts(
    site: &Site,
    r: Renderer,
    machine: Option<&Machine>,
    secure_boot: bool,
) -> Result<Scripts, Diags> {
    let mut diags = Diags::default();
    if site.media.is_none() {
        diags.push(
            Diag::error("boot media need [media] in bootc.toml")
                .help("with [media], `bootc build` writes http/grub/, the GRUB configs the UEFI side of every image reads over HTTP (and http/media/boot.iso): add [media], build and deploy, then make the image"),
        );
        return Err(diags);
    }
    let base = site.base_url.as_deref().unwrap_or_default();
    let Some((grub_device, path)) = crate::url::grub_http(base) else {
        diags.push(Diag::error(format!(
            "boot media need an http:// base-url in [site], not `{base}`"
        )));
        return Err(diags);
    };
    let machine = match machine.map(|m| static_address(site, m)).transpose() {
        Ok(m) => m,
        Err(d) => {
            diags.push(*d);
            return Err(diags);
        }
    };
    let ctx = val(MediaContext {
        site: SiteView::of(site),
        entry: if secure_boot {
            MediaEntry {
                ipxe: format!("{base}boot.ipxe"),
                machines: format!("{base}machines/"),
                grub_device: tftp_device(&grub_device),
                grub_config: "/grub/grub.cfg".into(),
            }
        } else {
            MediaEntry {
                ipxe: format!("{base}boot.ipxe"),
                machines: format!("{base}machines/"),
                grub_device,
                grub_config: format!("{path}grub/grub.cfg"),
            }
        },
        machine,
    });
    let mut render = |name: &str, what: &str| render_one(r, name, &ctx, what, &mut diags);
    let ipxe = render("media.ipxe.j2", "the boot media's iPXE script");
    let grub = render("media.grub.j2", "the boot media's GRUB config");
    match (ipxe, grub) {
        (Some(ipxe), Some(grub)) if !diags.has_errors() => Ok(Scripts {
            ipxe,
            grub,
            secure_boot,
        }),
        _ => Err(diags),
    }
}

/// The TFTP server of an HTTP device: `(http,HOST:PORT)` -> `(tftp,HOST)`.
fn tftp_device(http: &str) -> String {
    let authority = http.trim_start_matches("(http,").trim_end_matches(')');
    let host = match authority.rfind(':') {
        Some(i) if !authority.ends_with(']') => &authority[..i],
        _ => authority,
    };
    format!("(tftp,{host})")
}

/// The programs of one image: the generic one (`machine` None) or a
/// machine's, with Secure Boot on the UEFI side when the site (generic) or
/// the machine boots with it. `check` renders them too, so a template error
/// is found before any image is made.
pub fn prepare(
    site: &Site,
    plan: &Plan,
    r: Renderer,
    machine: Option<&Machine>,
) -> Result<Scripts, Diags> {
    let secure_boot = match machine {
        None => site.uefi.secure_boot,
        Some(m) => plan
            .machines
            .iter()
            .find(|p| p.name == m.name)
            .is_some_and(|p| UefiLoader::from_plan(&p.uefi_loader) == UefiLoader::ShimGrub),
    };
    scripts(site, r, machine, secure_boot)
}

/// One image (see [`prepare`]). Site problems go to `diags` (and no image
/// is made).
pub fn make(
    site: &Site,
    plan: &Plan,
    r: Renderer,
    machine: Option<&Machine>,
    pad_to: u64,
    diags: &mut Diags,
) -> Result<Option<Vec<u8>>, MediaError> {
    let scripts = match prepare(site, plan, r, machine) {
        Ok(s) => s,
        Err(d) => {
            diags.extend(d);
            return Ok(None);
        }
    };
    let read = |f: &Opened| {
        f.read_all().map_err(|error| MediaError::Io {
            what: format!("reading {}", f.path.display()),
            error,
        })
    };
    let mut loaders = Loaders {
        lkrn: site.ipxe.lkrn.as_deref().map(read).transpose()?,
        ..Loaders::default()
    };
    if scripts.secure_boot {
        for (name, out) in [
            (EfiName::Shim, &mut loaders.shim),
            (EfiName::Grub, &mut loaders.grub),
        ] {
            // Validation requires both when Secure Boot is on.
            if let Some(f) = site.uefi.loaders.get(&name) {
                *out = read(&f.source)?;
            }
        }
    }
    image(&scripts, pad_to, &loaders).map(Some)
}

fn render_one(
    r: Renderer,
    name: &str,
    ctx: &Value,
    what: &str,
    diags: &mut Diags,
) -> Option<String> {
    r.render(name, ctx, what).map_err(|d| diags.push(*d)).ok()
}

/// A machine's static network, from its `ip` and the `[[dhcp.subnet]]`
/// holding it, which must have a gateway.
fn static_address<'a>(site: &Site, m: &'a Machine) -> Result<MediaMachine<'a>, Box<Diag>> {
    let need = "a machine's boot media configure its fixed address: give it an ip inside a [[dhcp.subnet]] that has a gateway";
    let Some(ip) = m.ip else {
        return Err(Box::new(
            Diag::error(format!("machine `{}` has no ip", m.name))
                .at(m.loc.clone(), "no static address for its boot media")
                .help(need),
        ));
    };
    let subnet = site
        .dhcp
        .iter()
        .flat_map(|d| &d.subnets)
        .find(|s| s.cidr.contains(&ip));
    let Some((subnet, gateway)) = subnet.and_then(|s| s.gateway.map(|g| (s, g))) else {
        let why = match subnet {
            Some(s) => format!("its subnet {} has no gateway", s.cidr),
            None => format!("no [[dhcp.subnet]] holds {ip}"),
        };
        return Err(Box::new(
            Diag::error(format!("machine `{}` has no usable static network", m.name))
                .at(m.loc.clone(), why)
                .help(need),
        ));
    };
    let show = |a: &Ipv4Addr| a.to_string();
    Ok(MediaMachine {
        name: &m.name,
        macs: m.macs.iter().map(ToString::to_string).collect(),
        ip: ip.to_string(),
        prefix: subnet.cidr.prefix_len(),
        netmask: subnet.cidr.netmask().to_string(),
        network: subnet.cidr.trunc().to_string(),
        gateway: gateway.to_string(),
        dns: subnet.dns.iter().map(show).collect(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn tftp_server_of_base_url() {
        assert_eq!(
            super::tftp_device("(http,10.0.2.2:8080)"),
            "(tftp,10.0.2.2)"
        );
        assert_eq!(
            super::tftp_device("(http,boot.example)"),
            "(tftp,boot.example)"
        );
    }
}
