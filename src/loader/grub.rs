//! The GRUB loader: grub.cfg (the entry, which runs the config of the
//! client's MAC), one config per MAC and fallback.cfg, in two places:
//! - tftp/grub/, read by Debian's signed GRUB behind shim, for the machines
//!   that boot through them (Secure Boot, arm64): kernels and initrds are
//!   fetched over TFTP from tftp/ (Debian's signed GRUB has no HTTP);
//! - http/grub/ with `[media]`, for every machine: the boot media's GRUB
//!   reads them over HTTP, at base-url's path (with `grub.env-01-<mac>`
//!   beside each config, see [`KNOWN_ENV`]).
//!
//! They are rendered from the same data as the iPXE scripts; only the
//! places differ: a boot's files are paths on that server, at the same
//! content-addressed paths as under http/.

use super::{Files, Loader, Renderer};
use crate::context::{BootView, FallbackContext, FallbackView, GrubEntryContext};
use crate::diag::Diags;
use crate::resolve::{BootPlan, MachineBoot};
use crate::site::UefiLoader;
use crate::templates::val;

pub struct Grub;

/// Where Debian's arm64 GRUB (grubaa64.efi of the installer) looks for its
/// config: its prefix on the TFTP server.
pub const ARM64_PREFIX: &str = "debian-installer/arm64/grub";

/// Over HTTP, GRUB 2.06 runs the server's error page when it sources a
/// file that does not exist, and `[ -s ]` / `[ -e ]` cannot tell: so next
/// to each MAC's config goes this environment block, which the entry loads
/// (`load_env` refuses an error page) before it reads the config.
const KNOWN_ENV: &str = "# GRUB Environment Block\nbootc_known=1\n";

/// One place GRUB configs go: the folder of the tree they are written to,
/// and where the tree is on the server GRUB reads them from.
struct Place<'a> {
    /// `tftp` or `http`.
    dir: &'static str,
    /// Ends in '/': `/` on TFTP, base-url's path over HTTP.
    root: &'a str,
}

impl Place<'_> {
    fn http(&self) -> bool {
        self.dir == "http"
    }
}

fn places<'b>(boot: &'b BootPlan) -> Vec<Place<'b>> {
    let tftp = boot.grub.tftp.then_some(Place {
        dir: "tftp",
        root: "/",
    });
    let http = boot
        .grub
        .http
        .as_deref()
        .map(|root| Place { dir: "http", root });
    tftp.into_iter().chain(http).collect()
}

impl Loader for Grub {
    fn machine(&self, r: Renderer, boot: &BootPlan, m: &MachineBoot) -> (Files, Diags) {
        let mut out = Files::new();
        let mut diags = Diags::default();
        // Over TFTP only the machines that boot through shim and GRUB;
        // the boot media boot every machine through GRUB.
        for place in places(boot)
            .into_iter()
            .filter(|place| place.http() || m.uefi == UefiLoader::ShimGrub)
        {
            let mut ctx = m.context.clone();
            ctx.boot = ctx.boot.as_ref().map(|b| server_paths(b, &place));
            let program = ("machine.grub.j2", "the GRUB config");
            // On TFTP the beacon's path is in no folder of the tree: the
            // server's log records the request it cannot answer.
            let machines = format!("{}machines/", place.root);
            let (files, d) = super::per_mac(r, m, ctx, program, &machines, |mac| {
                format!("{}/grub/grub.cfg-01-{}", place.dir, mac.hexhyp())
            });
            diags.extend(d);
            if place.http() {
                out.extend(m.macs.iter().map(|mac| {
                    let path = format!("http/grub/grub.env-01-{}", mac.hexhyp());
                    (path, KNOWN_ENV.to_string())
                }));
            }
            out.extend(files);
        }
        (out, diags)
    }

    fn fallback(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let mut out = Files::new();
        for place in places(boot) {
            let text = boot.fallback.as_ref().map(|fallback| {
                let ctx = val(FallbackContext {
                    site: boot.site.clone(),
                    fallback: grub_fallback(fallback, &place),
                });
                r.render_or_empty("fallback.grub.j2", &ctx, "the GRUB fallback", diags)
            });
            out.push((
                format!("{}/grub/fallback.cfg", place.dir),
                text.unwrap_or_default(),
            ));
        }
        out
    }

    fn entry(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let mut out = Files::new();
        for place in places(boot) {
            let ctx = val(GrubEntryContext {
                site: boot.site.clone(),
                root: place.root,
                http: place.http(),
            });
            let path = format!("{}/grub/grub.cfg", place.dir);
            let text = r.render_or_empty("grub.cfg.grub.j2", &ctx, &path, diags);
            if !place.http() && boot.arm64_grub {
                // arm64's GRUB reads its own prefix's grub.cfg: the same entry.
                out.push((format!("tftp/{ARM64_PREFIX}/grub.cfg"), text.clone()));
            }
            out.push((path, text));
        }
        out
    }
}

/// A boot as GRUB fetches it from `place`: the tree's relative paths
/// (`../images/…`, `images/…`) become paths on that server (`/images/…`
/// on TFTP, base-url's path + `images/…` over HTTP); over HTTP an
/// `http://` URL becomes GRUB's `(http,HOST)/PATH`.
fn server_paths(b: &BootView, place: &Place) -> BootView {
    let mut b = b.clone();
    for f in b
        .kernel
        .iter_mut()
        .chain(b.initrds.iter_mut())
        .chain(b.iso.iter_mut())
        .chain(b.memdisk.iter_mut())
    {
        if !f.url.contains("://") {
            f.url = format!("{}{}", place.root, f.url.trim_start_matches("../"));
        } else if place.http()
            && let Some((device, path)) = crate::url::grub_http(&f.url)
        {
            f.url = device + &path;
        }
    }
    b
}

/// Whether GRUB can boot `b` from `place`: a kernel whose files are on the
/// server (or, over HTTP, on any http:// server), or the local disk.
fn grub_bootable(b: &BootView, place: &Place) -> bool {
    match b.kind {
        "local" => true,
        "kernel" => b
            .kernel
            .iter()
            .chain(&b.initrds)
            .all(|f| !f.url.contains("://") || (place.http() && f.url.starts_with("http://"))),
        _ => false,
    }
}

/// The fallback as GRUB boots it from `place`: server paths, and in the
/// menu only the roles GRUB can boot (an ISO or an iPXE chain needs iPXE).
fn grub_fallback<'a>(f: &FallbackView<'a>, place: &Place) -> FallbackView<'a> {
    let mut f = f.clone();
    if f.boot.as_ref().is_some_and(|b| !grub_bootable(b, place)) {
        f.mode = "local";
        f.boot = None;
    }
    f.boot = f.boot.as_ref().map(|b| server_paths(b, place));
    if let Some(entries) = &mut f.entries {
        entries.retain(|e| grub_bootable(&e.boot, place));
        for e in entries.iter_mut() {
            e.boot = server_paths(&e.boot, place);
        }
    }
    f
}
