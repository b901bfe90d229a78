//! The GRUB loader, behind Debian's signed shim: tftp/grub/grub.cfg (the
//! entry, which runs the config of the client's MAC), one config per MAC of
//! each machine that boots through shim and GRUB, and tftp/grub/fallback.cfg.
//! They are rendered from the same data as the iPXE scripts; only the
//! places differ: kernels and initrds are fetched over TFTP from tftp/
//! (Debian's signed GRUB has no HTTP), at the same content-addressed paths
//! as under http/.

use super::{Files, Loader, Renderer};
use crate::context::{BootContext, BootView, FallbackContext, FallbackView};
use crate::diag::Diags;
use crate::resolve::BootPlan;
use crate::site::UefiLoader;
use crate::templates::val;

pub struct Grub;

/// Where Debian's arm64 GRUB (grubaa64.efi of the installer) looks for its
/// config: its prefix on the TFTP server.
pub const ARM64_PREFIX: &str = "debian-installer/arm64/grub";

impl Loader for Grub {
    fn programs(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let mut out = Files::new();
        for m in boot
            .machines
            .iter()
            .filter(|m| m.uefi == UefiLoader::ShimGrub)
        {
            let mut ctx = m.context.clone();
            ctx.boot = ctx.boot.as_ref().map(tftp_paths);
            let (files, d) =
                super::per_mac(r, m, ctx, "machine.grub.j2", "the GRUB config", |mac| {
                    format!("tftp/grub/grub.cfg-01-{}", mac.hexhyp())
                });
            out.extend(files);
            diags.extend(d);
        }
        let text = boot.fallback.as_ref().map(|fallback| {
            let ctx = val(FallbackContext {
                site: boot.site.clone(),
                fallback: grub_fallback(fallback),
            });
            r.render_or_empty("fallback.grub.j2", &ctx, "the GRUB fallback", diags)
        });
        out.push((
            "tftp/grub/fallback.cfg".to_string(),
            text.unwrap_or_default(),
        ));
        out
    }

    fn entry(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let ctx = val(BootContext {
            site: boot.site.clone(),
        });
        let text = r.render_or_empty("grub.cfg.grub.j2", &ctx, "tftp/grub/grub.cfg", diags);
        let mut out = vec![("tftp/grub/grub.cfg".to_string(), text.clone())];
        if boot.arm64_grub {
            // arm64's GRUB reads its own prefix's grub.cfg: the same entry.
            out.push((format!("tftp/{ARM64_PREFIX}/grub.cfg"), text));
        }
        out
    }
}

/// A boot as GRUB fetches it: the tree's relative paths (`../images/…`,
/// `images/…`) become paths on the TFTP server (`/images/…`).
fn tftp_paths(b: &BootView) -> BootView {
    let mut b = b.clone();
    for f in b
        .kernel
        .iter_mut()
        .chain(b.initrds.iter_mut())
        .chain(b.iso.iter_mut())
        .chain(b.memdisk.iter_mut())
    {
        if !f.url.contains("://") {
            f.url = format!("/{}", f.url.trim_start_matches("../"));
        }
    }
    b
}

/// Whether GRUB can boot `b` from the tree: a kernel with local files, or
/// the local disk.
fn grub_bootable(b: &BootView) -> bool {
    match b.kind {
        "local" => true,
        "kernel" => b
            .kernel
            .iter()
            .chain(&b.initrds)
            .all(|f| !f.url.contains("://")),
        _ => false,
    }
}

/// The fallback as GRUB boots it: TFTP paths, and in the menu only the
/// roles GRUB can boot (an ISO or an iPXE chain needs iPXE).
fn grub_fallback<'a>(f: &FallbackView<'a>) -> FallbackView<'a> {
    let mut f = f.clone();
    f.boot = f.boot.as_ref().map(tftp_paths);
    if f.boot.as_ref().is_some_and(|b| !grub_bootable(b)) {
        f.mode = "local";
        f.boot = None;
    }
    if let Some(entries) = &mut f.entries {
        entries.retain(|e| grub_bootable(&e.boot));
        for e in entries.iter_mut() {
            e.boot = tftp_paths(&e.boot);
        }
    }
    f
}
