//! The iPXE loader: http/boot.ipxe (the entry), one script per MAC under
//! http/machines/, and http/fallback.ipxe, each from its template.

use super::{Files, Loader, Renderer};
use crate::context::{BootContext, FallbackContext};
use crate::diag::Diags;
use crate::resolve::{BootPlan, MachineBoot};
use crate::templates::val;

pub struct Ipxe;

impl Loader for Ipxe {
    fn machine(&self, r: Renderer, _: &BootPlan, m: &MachineBoot) -> (Files, Diags) {
        scripts(r, m)
    }

    fn fallback(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let fallback = boot.fallback.as_ref().map(|fallback| {
            let ctx = val(FallbackContext {
                site: boot.site.clone(),
                fallback: fallback.clone(),
            });
            r.render_or_empty("fallback.ipxe.j2", &ctx, "fallback.ipxe", diags)
        });
        vec![(
            "http/fallback.ipxe".to_string(),
            fallback.unwrap_or_default(),
        )]
    }

    fn entry(&self, r: Renderer, boot: &BootPlan, diags: &mut Diags) -> Files {
        let ctx = val(BootContext {
            site: boot.site.clone(),
        });
        let text = r.render_or_empty("boot.ipxe.j2", &ctx, "boot.ipxe", diags);
        vec![("http/boot.ipxe".to_string(), text)]
    }
}

/// One machine's scripts, one per MAC, and the first MAC's again under
/// its UUID and serial (boot.ipxe tries them when its MAC is not known).
fn scripts(r: Renderer, m: &MachineBoot) -> (Files, Diags) {
    if !r.templates.has(m.script) {
        return Default::default(); // reported by validate
    }
    let (mut files, diags) = super::per_mac(
        r,
        m,
        m.context.clone(),
        (m.script, "the script"),
        "",
        |mac| format!("http/machines/{}.ipxe", mac.hexhyp()),
    );
    if let Some((_, first)) = files.first().cloned() {
        let ids = [
            m.uuid.map(|u| format!("uuid-{u}")),
            m.serial.map(|s| format!("serial-{s}")),
        ];
        for id in ids.into_iter().flatten() {
            files.push((format!("http/machines/{id}.ipxe"), first.clone()));
        }
    }
    (files, diags)
}
