//! The iPXE loader: http/boot.ipxe (the entry), one script per MAC under
//! http/machines/, and http/fallback.ipxe, each from its template.

use rayon::prelude::*;

use super::{Files, Loader};
use crate::context::{BootContext, FallbackContext};
use crate::diag::{Diags, Sources};
use crate::resolve::{BootPlan, MachineBoot};
use crate::templates::{Templates, val};

pub struct Ipxe;

impl Loader for Ipxe {
    fn programs(
        &self,
        templates: &Templates,
        sources: &Sources,
        boot: &BootPlan,
        diags: &mut Diags,
    ) -> Files {
        let results: Vec<(Files, Diags)> = boot
            .machines
            .par_iter()
            .map(|m| scripts(templates, sources, m))
            .collect();
        let mut out = Files::new();
        for (files, d) in results {
            diags.extend(d);
            out.extend(files);
        }
        let fallback = match &boot.fallback {
            None => String::new(),
            Some(fallback) => {
                let ctx = val(FallbackContext {
                    site: boot.site.clone(),
                    fallback: fallback.clone(),
                });
                render(
                    templates,
                    sources,
                    "fallback.ipxe.j2",
                    &ctx,
                    "fallback.ipxe",
                    diags,
                )
            }
        };
        out.push(("http/fallback.ipxe".to_string(), fallback));
        out
    }

    fn entry(
        &self,
        templates: &Templates,
        sources: &Sources,
        boot: &BootPlan,
        diags: &mut Diags,
    ) -> Files {
        let ctx = val(BootContext {
            site: boot.site.clone(),
        });
        let text = render(templates, sources, "boot.ipxe.j2", &ctx, "boot.ipxe", diags);
        vec![("http/boot.ipxe".to_string(), text)]
    }
}

/// `name` rendered, or empty with the error reported.
fn render(
    templates: &Templates,
    sources: &Sources,
    name: &str,
    ctx: &minijinja::Value,
    what: &str,
    diags: &mut Diags,
) -> String {
    templates.render(name, ctx).unwrap_or_else(|e| {
        diags.push(templates.diag(&e, sources, Some(what)));
        String::new()
    })
}

/// One machine's scripts, one per MAC (the first failing one is reported).
fn scripts(templates: &Templates, sources: &Sources, m: &MachineBoot) -> (Files, Diags) {
    let mut out = Files::new();
    let mut diags = Diags::default();
    if !templates.has(m.script) {
        return (out, diags); // reported by validate
    }
    let mut ctx = m.context.clone();
    for mac in m.macs {
        if let Some(machine) = &mut ctx.machine {
            machine.mac = mac.to_string();
        }
        match templates.render(m.script, &val(&ctx)) {
            Ok(s) => out.push((format!("http/machines/{}.ipxe", mac.hexhyp()), s)),
            Err(e) => {
                diags.push(templates.diag(
                    &e,
                    sources,
                    Some(&format!("the script of {} ({mac})", m.name)),
                ));
                break;
            }
        }
    }
    (out, diags)
}
