//! The boot-loader seam of render: what a client runs after DHCP (the entry
//! program, each machine's boot program, the fallback for unknown machines)
//! comes from a [`Loader`]: iPXE for every site, and GRUB (behind Debian's
//! signed shim) for sites where a machine boots with Secure Boot or on arm64,
//! chosen by [`for_plan`], not a branch in every stage.

pub mod grub;
pub mod ipxe;

use minijinja::Value;

use crate::context::MachineContext;
use crate::diag::{Diags, Sources};
use crate::resolve::{BootPlan, MachineBoot};
use crate::site::Mac;
use crate::templates::{Templates, val};

pub use crate::tree::Files;

/// The templates a loader renders with, and the sources their errors
/// point into.
#[derive(Clone, Copy)]
pub struct Renderer<'a> {
    pub templates: &'a Templates,
    pub sources: &'a Sources,
}

impl Renderer<'_> {
    /// `name` rendered with `ctx`, or the error as a diagnostic
    /// ("while rendering `what`").
    pub fn render(
        &self,
        name: &str,
        ctx: &Value,
        what: &str,
    ) -> Result<String, Box<crate::diag::Diag>> {
        self.templates
            .render(name, ctx)
            .map_err(|e| Box::new(self.templates.diag(&e, self.sources, Some(what))))
    }

    /// [`Renderer::render`] for its problems only: the text is not kept.
    pub fn check(&self, name: &str, ctx: &Value, what: &str) -> Result<(), Box<crate::diag::Diag>> {
        self.templates
            .try_render(name, ctx)
            .map_err(|e| Box::new(self.templates.diag(&e, self.sources, Some(what))))
    }

    /// As [`Renderer::render`], empty on error (reported in `diags`).
    pub fn render_or_empty(
        &self,
        name: &str,
        ctx: &Value,
        what: &str,
        diags: &mut Diags,
    ) -> String {
        self.render(name, ctx, what).unwrap_or_else(|d| {
            diags.push(*d);
            String::new()
        })
    }
}

/// One machine's program, rendered from `template` once per MAC (with
/// `machine.mac` set to it, and `boot.beacon` to that MAC's beacon in
/// `machines`, where the program's server has machines/) to `path(mac)`;
/// the first failure is reported (`what` names it: "the script", "the
/// GRUB config") and ends the machine.
pub fn per_mac(
    r: Renderer,
    m: &MachineBoot,
    mut ctx: MachineContext,
    (template, what): (&str, &str),
    machines: &str,
    path: impl Fn(&Mac) -> String,
) -> (Files, Diags) {
    let mut out = Files::new();
    let mut diags = Diags::default();
    for mac in m.macs {
        if let Some(machine) = &mut ctx.machine {
            machine.mac = mac.to_string();
            if let Some(boot) = &mut ctx.boot {
                let id = &machine.boot_id;
                boot.beacon = Some(format!("{machines}{}.ipxe?booting={id}", mac.hexhyp()));
            }
        }
        let what = format!("{what} of {} ({mac})", m.name);
        match r.render(template, &val(&ctx), &what) {
            Ok(s) => out.push((path(mac), s)),
            Err(d) => {
                diags.push(*d);
                break;
            }
        }
    }
    (out, diags)
}

pub trait Loader: Sync {
    /// One machine's boot programs, from its resolved data, and their
    /// problems.
    fn machine(&self, r: Renderer, boot: &BootPlan, m: &MachineBoot) -> (Files, Diags);

    /// The programs for unknown machines.
    fn fallback(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files;

    /// The entry program every client fetches first.
    fn entry(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files;
}

/// One machine's boot programs, of every loader in `loaders`.
pub fn machine(
    r: Renderer,
    boot: &BootPlan,
    loaders: &[&dyn Loader],
    m: &MachineBoot,
) -> (Files, Diags) {
    let mut out = Files::new();
    let mut diags = Diags::default();
    for l in loaders {
        let (files, d) = l.machine(r, boot, m);
        out.extend(files);
        diags.extend(d);
    }
    (out, diags)
}

/// What the site's loaders make besides the machines' programs: the
/// fallbacks and the entry programs.
pub fn common(r: Renderer, boot: &BootPlan, loaders: &[&dyn Loader], diags: &mut Diags) -> Files {
    let mut out = Files::new();
    for l in loaders {
        out.extend(l.fallback(r, boot, diags));
        out.extend(l.entry(r, boot, diags));
    }
    out
}

/// The loaders a site boots with: iPXE always (BIOS machines and UEFI
/// without Secure Boot), GRUB when its configs go anywhere (shim and GRUB
/// over TFTP, or the boot media's GRUB over HTTP).
pub fn for_plan(boot: &BootPlan) -> Vec<&'static dyn Loader> {
    if boot.grub.tftp || boot.grub.http.is_some() {
        vec![&ipxe::Ipxe, &grub::Grub]
    } else {
        vec![&ipxe::Ipxe]
    }
}
