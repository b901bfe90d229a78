//! The iPXE loader: http/boot.ipxe (the entry), one script per MAC under
//! http/machines/, and http/fallback.ipxe, each from its template.

use rayon::prelude::*;

use super::{Files, Loader, Renderer};
use crate::context::{BootContext, FallbackContext};
use crate::diag::Diags;
use crate::resolve::{BootPlan, MachineBoot};
use crate::templates::val;

pub struct Ipxe;

impl Loader for Ipxe {
    fn programs(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let results: Vec<(Files, Diags)> =
            boot.machines.par_iter().map(|m| scripts(r, m)).collect();
        let mut out = Files::new();
        for (files, d) in results {
            diags.extend(d);
            out.extend(files);
        }
        let fallback = boot.fallback.as_ref().map(|fallback| {
            let ctx = val(FallbackContext {
                site: boot.site.clone(),
                fallback: fallback.clone(),
            });
            r.render_or_empty("fallback.ipxe.j2", &ctx, "fallback.ipxe", diags)
        });
        out.push((
            "http/fallback.ipxe".to_string(),
            fallback.unwrap_or_default(),
        ));
        out
    }

    fn entry(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let ctx = val(BootContext {
            site: boot.site.clone(),
        });
        let text = r.render_or_empty("boot.ipxe.j2", &ctx, "boot.ipxe", diags);
        vec![("http/boot.ipxe".to_string(), text)]
    }
}

/// One machine's scripts, one per MAC (the first failing one is reported).
fn scripts(r: Renderer, m: &MachineBoot) -> (Files, Diags) {
    let mut out = Files::new();
    let mut diags = Diags::default();
    if !r.templates.has(m.script) {
        return (out, diags); // reported by validate
    }
    let mut ctx = m.context.clone();
    for mac in m.macs {
        if let Some(machine) = &mut ctx.machine {
            machine.mac = mac.to_string();
        }
        let what = format!("the script of {} ({mac})", m.name);
        match r.render(m.script, &val(&ctx), &what) {
            Ok(s) => out.push((format!("http/machines/{}.ipxe", mac.hexhyp()), s)),
            Err(d) => {
                diags.push(*d);
                break;
            }
        }
    }
    (out, diags)
}
