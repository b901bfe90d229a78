//! The overview page at `/`: the site's report with the server's live state
//! (or, while there is no good build, the live state alone).

use minijinja::Environment;
use std::sync::atomic::Ordering;

use super::{State, log};
use crate::diag::Sources;
use crate::site::Site;
use crate::templates;

const SERVE_TEMPLATE: &str = include_str!("../templates/serve.html.j2");
const LIVE_TEMPLATE: &str = include_str!("../templates/serve-live.html.j2");
/// The overview while there is no good build (no report to extend).
const NO_BUILD_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bootc serve: no good build</title>
<style>
:root { --muted:#5b6578; --line:#dfe3ea; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; color:#1d2330; background:#f6f7f9; }
main { padding:20px 28px; max-width:1400px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 18px; }
table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); }
.mono, code, pre { font-family:ui-monospace, monospace; font-size:12.5px; }
.sev-error { color:#b42318; font-weight:600; } .sev-warning { color:#9a6700; font-weight:600; }
</style></head>
<body><main>{% include "serve-live.html.j2" %}</main></body>
</html>
"#;

fn new_env() -> Environment<'static> {
    let mut env = templates::base_env();
    env.add_template("serve-live.html.j2", LIVE_TEMPLATE)
        .expect("the live template compiles");
    env
}

pub(super) fn no_build_env() -> Environment<'static> {
    let mut env = new_env();
    env.add_template("serve-nobuild.html.j2", NO_BUILD_TEMPLATE)
        .expect("the no-build template compiles");
    env
}

/// The overview's environment: the site's templates (its report.html.j2
/// override, and what that may include) over the built-in report.
pub(super) fn overview_env(site: &Site, sources: &Sources) -> Environment<'static> {
    let mut env = new_env();
    for (name, src) in templates::BUILTINS {
        if name.ends_with(".html.j2") && !site.templates.contains_key(*name) {
            let _ = env.add_template(name, src);
        }
    }
    for (name, &id) in &site.templates {
        let _ = env.add_template_owned(name.clone(), sources.text(id).to_string());
    }
    env.add_template("serve.html.j2", SERVE_TEMPLATE)
        .expect("the serve template compiles");
    env
}

impl State {
    pub(super) fn live(&self) -> serde_json::Value {
        let snap = self.snapshot();
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "url": self.url,
            "base_url": self.base_url,
            "site": self.root.display().to_string(),
            "watch": self.watch_kind.get().cloned().unwrap_or_default(),
            "qemu": self.qemu_command(),
            "generation": self.generation.load(Ordering::SeqCst),
            "requests": self.log.count(),
            "built": snap.as_ref().map(|s| serde_json::json!({
                "time": log::clock(s.built_at),
                "ms": s.took.as_millis() as u64,
                // Known once it is finished (never waited for here).
                "id": s.finished.now().map(|f| f.build_id.clone()),
                "site": s.site_name,
                "machines": s.machine_count,
            })),
            "error": failure.as_ref().map(|f| serde_json::json!({
                "time": log::clock(f.at),
                "text": f.text,
                "problems": f.problems,
            })),
            "clients": self.log.recent(),
        })
    }

    pub(super) fn overview(&self) -> Result<String, String> {
        // Its build id, in the live state, is known once it is finished.
        let finished = self.finished();
        let live = templates::val(self.live());
        match finished {
            Some((_, s)) => {
                let ctx = minijinja::context! { live => live.clone(), ..s.report.clone() };
                let page = s
                    .env
                    .get_template("serve.html.j2")
                    .and_then(|t| t.render(ctx))
                    .map_err(|e| format!("{e:#}"))?;
                if page.contains("id=\"bootc-live\"") {
                    return Ok(page);
                }
                // A site's report.html.j2 without `{% block live %}`: put the
                // live section first in its body.
                let section = s
                    .env
                    .get_template("serve-live.html.j2")
                    .and_then(|t| t.render(minijinja::context! { live }))
                    .map_err(|e| format!("{e:#}"))?;
                let at = page
                    .find("<body")
                    .and_then(|i| page[i..].find('>').map(|j| i + j + 1))
                    .unwrap_or(0);
                Ok(format!("{}{section}{}", &page[..at], &page[at..]))
            }
            None => self
                .no_build_env
                .get_template("serve-nobuild.html.j2")
                .and_then(|t| t.render(minijinja::context! { live }))
                .map_err(|e| format!("{e:#}")),
        }
    }
}
