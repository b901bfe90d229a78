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
//!
//! [`scripts`] renders the two programs (template errors are the site's
//! problems); [`iso::image`] assembles them with Debian's tools.

pub mod iso;

use std::net::Ipv4Addr;

use minijinja::Value;

use crate::context::{MediaContext, MediaEntry, MediaMachine, SiteView};
use crate::diag::{Diag, Diags};
use crate::loader::Renderer;
use crate::site::{Machine, Site};
use crate::templates::val;

pub use iso::{MediaError, image};

/// Where `build` writes the generic image.
pub const GENERIC_PATH: &str = "http/media/boot.iso";

/// The programs a boot medium embeds.
pub struct Scripts {
    /// The iPXE script (BIOS).
    pub ipxe: String,
    /// The GRUB config (UEFI).
    pub grub: String,
}

/// Renders the generic image's programs (`machine` None) or one machine's.
/// Errors: the site has no usable base-url, the machine has no static
/// address in a subnet with a gateway, or a template failed.
pub fn scripts(site: &Site, r: Renderer, machine: Option<&Machine>) -> Result<Scripts, Diags> {
    let mut diags = Diags::default();
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
        site: SiteView {
            name: &site.name,
            base_url: site.base_url.as_deref(),
            fallback: site.fallback.to_string(),
        },
        entry: MediaEntry {
            ipxe: format!("{base}boot.ipxe"),
            grub_device,
            grub_config: format!("{path}grub/grub.cfg"),
        },
        machine,
    });
    let mut render = |name: &str, what: &str| render_one(r, name, &ctx, what, &mut diags);
    let ipxe = render("media.ipxe.j2", "the boot media's iPXE script");
    let grub = render("media.grub.j2", "the boot media's GRUB config");
    match (ipxe, grub) {
        (Some(ipxe), Some(grub)) if !diags.has_errors() => Ok(Scripts { ipxe, grub }),
        _ => Err(diags),
    }
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
