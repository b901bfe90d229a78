//! Stage 4: turn the resolved plan into the output tree, in memory: every
//! file of public/ as bytes (or, for local artifacts, a file to copy).

use std::collections::BTreeMap;

use minijinja::Value;
use serde::Serialize;

use crate::diag::{Diag, Diags, Severity, Sources};
use crate::manifest::{MANIFEST, Manifest};
use crate::resolve::{Plan, Resolver};
use crate::site::{Artifact, Site};
use crate::tree::{Content, Tree};

/// Builds the tree of a valid site. Template errors found on the way are
/// added to `diags` (the caller must not write the tree then).
pub fn render(
    site: &Site,
    sources: &Sources,
    resolver: &Resolver,
    plan: &Plan,
    diags: &mut Diags,
) -> Tree {
    let mut tree = Tree::default();
    tree.add("http/boot.ipxe", resolver.boot_script(diags));
    tree.add("http/fallback.ipxe", plan.fallback_script.clone());
    for m in &plan.machines {
        for (mac, script) in m.macs.iter().zip(&m.scripts) {
            tree.add(
                format!("http/machines/{}.ipxe", mac.hexhyp()),
                script.clone(),
            );
        }
        for (name, content) in &m.file_contents {
            tree.add(format!("http/machines/{}/{name}", m.name), content.clone());
        }
    }
    for img in site.images.values() {
        for a in img.boot.artifacts() {
            if let (
                Some(path),
                Artifact::Local {
                    source,
                    size,
                    blake3,
                    ..
                },
            ) = (a.tree_path(), a)
            {
                tree.files.insert(
                    format!("http/{path}"),
                    Content::Copy {
                        source: source.clone(),
                        size: *size,
                        blake3: blake3.clone(),
                    },
                );
            }
        }
    }
    // tftp/: the chainloaders; the EFI one also in http/ for UEFI HTTP Boot.
    let http_efi = crate::dhcp::efi_loader(site);
    for (name, file) in &site.ipxe.binaries {
        match file.hash() {
            Ok((size, blake3)) => {
                let copy = Content::Copy {
                    source: file.clone(),
                    size,
                    blake3,
                };
                if http_efi == Some(name.as_str()) {
                    tree.files.insert(format!("http/{name}"), copy.clone());
                }
                tree.files.insert(format!("tftp/{name}"), copy);
            }
            Err(e) => diags.push(Diag::error(format!(
                "cannot read {}: {e}",
                file.path.display()
            ))),
        }
    }
    // The large summaries do not depend on each other: render them at once.
    let (dhcp_files, (plan_json, report)) = rayon::join(
        || dhcp_files(site, sources, resolver, plan),
        || {
            rayon::join(
                || serde_json::to_string_pretty(plan).expect("plan serializes") + "\n",
                || report(site, sources, resolver, plan, diags),
            )
        },
    );
    for file in dhcp_files {
        match file {
            Ok((out, text)) => tree.add(out, text),
            Err(d) => diags.push(*d),
        }
    }
    tree.add("plan.json", plan_json);
    tree.add(crate::write::MARKER, crate::write::MARKER_TEXT);
    match report {
        Ok(text) => tree.add("report/index.html", text),
        Err(d) => diags.push(*d),
    }
    let manifest = Manifest::of(site, &tree);
    tree.add(
        MANIFEST,
        serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n",
    );
    tree
}

#[derive(Serialize)]
struct ReportMachine<'a> {
    name: &'a str,
    macs: Vec<String>,
    scripts: Vec<String>,
    ip: Option<String>,
    role: &'a str,
    role_chain: &'a [String],
    image: &'a str,
    boot: &'a str,
    kernel_args: String,
    labels: &'a BTreeMap<String, String>,
    files: Vec<(String, String)>,
}

/// dhcp/: the three DHCP server configurations, when `[dhcp]` is set.
/// Machines listed per role on the report page; beyond that the page says
/// how many more there are (plan.json has them all), so a 100,000-machine
/// fleet still gives a page a browser can open.
pub const REPORT_MACHINES_PER_ROLE: usize = 500;

impl<'a> ReportMachine<'a> {
    fn new(m: &'a crate::resolve::Resolved) -> Self {
        ReportMachine {
            name: &m.name,
            macs: m.macs.iter().map(|x| x.to_string()).collect(),
            scripts: m
                .macs
                .iter()
                .map(|x| format!("machines/{}.ipxe", x.hexhyp()))
                .collect(),
            ip: m.ip.map(|i| i.to_string()),
            role: &m.role,
            role_chain: &m.role_chain,
            image: &m.image,
            boot: &m.boot,
            kernel_args: m.kernel_args.join(" "),
            labels: &m.labels,
            files: m
                .files
                .keys()
                .map(|f| (f.clone(), format!("machines/{}/{f}", m.name)))
                .collect(),
        }
    }
}

fn dhcp_files(
    site: &Site,
    sources: &Sources,
    resolver: &Resolver,
    plan: &Plan,
) -> Vec<Result<(&'static str, String), Box<Diag>>> {
    let Some(dhcp) = &site.dhcp else {
        return Vec::new();
    };
    let ctx = minijinja::context! {
        site => crate::templates::val(serde_json::json!({ "name": site.name, "base_url": site.base_url })),
        dhcp => crate::templates::val(crate::dhcp::view(site, dhcp, plan)),
    };
    crate::dhcp::OUTPUTS
        .iter()
        .map(|(template, out)| {
            resolver
                .templates
                .render(template, &ctx)
                .map(|text| (*out, text))
                .map_err(|e| Box::new(resolver.templates.diag(&e, sources, Some(out))))
        })
        .collect()
}

fn report(
    site: &Site,
    sources: &Sources,
    resolver: &Resolver,
    plan: &Plan,
    diags: &Diags,
) -> Result<String, Box<Diag>> {
    let ctx = report_context(site, sources, plan, diags, Value::from(false));
    resolver
        .templates
        .render("report.html.j2", &ctx)
        .map_err(|e| {
            Box::new(
                resolver
                    .templates
                    .diag(&e, sources, Some("report/index.html")),
            )
        })
}

/// The template context of report.html.j2: the fleet (machines, roles,
/// images, labels, problems) and `live`, which is false in a build; `bootc
/// serve` renders the same page with its live state there.
pub fn report_context(
    site: &Site,
    sources: &Sources,
    plan: &Plan,
    diags: &Diags,
    live: Value,
) -> Value {
    let mut by_role: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
    let mut label_keys: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (i, m) in plan.machines.iter().enumerate() {
        by_role.entry(&m.role).or_default().push(i);
        *by_image.entry(&m.image).or_default() += 1;
        for (k, v) in &m.labels {
            *label_keys.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    let roles: Vec<serde_json::Value> = by_role
        .iter()
        .map(|(r, idx)| {
            let role = site.roles.get(*r);
            let shown: Vec<ReportMachine> = idx
                .iter()
                .take(REPORT_MACHINES_PER_ROLE)
                .map(|&i| ReportMachine::new(&plan.machines[i]))
                .collect();
            serde_json::json!({
                "name": r,
                "description": role.map(|x| x.description.as_str()).unwrap_or(""),
                "extends": role.and_then(|x| x.extends.as_deref()),
                "count": idx.len(),
                "machines": shown,
            })
        })
        .collect();
    let images: Vec<serde_json::Value> = site
        .images
        .values()
        .map(|i| {
            serde_json::json!({
                "name": i.name, "description": i.description, "kind": i.boot.kind(),
                "machines": by_image.get(i.name.as_str()).copied().unwrap_or(0),
                "artifacts": i.boot.artifacts().iter().map(|a| match a {
                    Artifact::Local { path, size, .. } => serde_json::json!({"name": a.file_name(), "href": a.tree_path(), "source": path, "size": size}),
                    Artifact::Remote { url, .. } | Artifact::Live { url } => serde_json::json!({"name": a.file_name(), "href": url, "source": url}),
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    let problems: Vec<serde_json::Value> = diags
        .list
        .iter()
        .map(|d| {
            let at = d.primary.as_ref().map(|(l, _)| sources.place(l));
            serde_json::json!({
                "severity": if d.severity == Severity::Error { "error" } else { "warning" },
                "message": d.message, "at": at, "help": d.help,
            })
        })
        .collect();
    minijinja::context! {
        site => crate::templates::val(serde_json::json!({
            "name": site.name, "base_url": site.base_url, "fallback": site.fallback.to_string(),
            "dhcp": site.dhcp.is_some(),
        })),
        machine_count => Value::from(plan.machines.len()),
        roles => crate::templates::val(&roles),
        images => crate::templates::val(&images),
        labels => crate::templates::val(&label_keys),
        problems => crate::templates::val(&problems),
        live => live,
    }
}
