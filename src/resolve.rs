//! Stage 3: resolve every machine's boot (role chain, image, variables,
//! kernel arguments, per-machine files, scripts), rendering templates.
//! The result, the [`Plan`], is what `plan.json` records and `diff` compares.

use std::collections::BTreeMap;

use minijinja::Value;
use rayon::prelude::*;
use serde::Serialize;

use crate::diag::{Diag, Diags, Sources};
use crate::ipxe::unsafe_reason;
use crate::model::Vars;
pub use crate::plan::{ImagePlan, Plan, Resolved};
use crate::site::*;
use crate::templates::Templates;

impl ImagePlan {
    fn new(image: &Image) -> ImagePlan {
        let method = match &image.boot {
            Boot::Iso {
                method: IsoMethod::Sanboot,
                ..
            } => Some("sanboot"),
            Boot::Iso {
                method: IsoMethod::Memdisk(_),
                ..
            } => Some("memdisk"),
            _ => None,
        };
        ImagePlan {
            kind: image.boot.kind().to_string(),
            method: method.map(str::to_string),
            artifacts: image
                .boot
                .artifacts()
                .into_iter()
                .map(plan_artifact)
                .collect(),
            extra: Default::default(),
        }
    }
}

/// The plan's record of an artifact: the site's, without the opened file.
fn plan_artifact(a: &Artifact) -> crate::plan::Artifact {
    use crate::plan::Artifact as P;
    match a.clone() {
        Artifact::Local {
            path,
            file_name,
            size,
            blake3,
            ..
        } => P::Local {
            path,
            file_name,
            size,
            blake3,
        },
        Artifact::Remote {
            url,
            file_name,
            sha256,
            blake3,
        } => P::Remote {
            url,
            file_name,
            sha256,
            blake3,
        },
        Artifact::Live { url } => P::Live { url },
    }
}

#[derive(Serialize)]
struct SiteView<'a> {
    name: &'a str,
    base_url: Option<&'a str>,
    fallback: String,
}

#[derive(Serialize)]
struct MachineView<'a> {
    name: &'a str,
    mac: String,
    macs: Vec<String>,
    ip: Option<String>,
    labels: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
}

#[derive(Serialize)]
struct RoleView<'a> {
    name: &'a str,
    description: &'a str,
}

#[derive(Serialize)]
struct ImageView<'a> {
    name: &'a str,
    description: &'a str,
    kind: &'a str,
}

#[derive(Serialize, Clone)]
struct Fetch {
    url: String,
    name: String,
}

#[derive(Serialize, Clone, Default)]
struct BootView {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<Fetch>,
    initrds: Vec<Fetch>,
    args: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    iso: Option<Fetch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memdisk: Option<Fetch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chain: Option<Fetch>,
}

impl BootView {
    fn new(boot: &Boot, prefix: &str, args: &[String]) -> BootView {
        let f = |a: &Artifact| Fetch {
            url: a.url_from(prefix),
            name: a.file_name().to_string(),
        };
        let mut v = BootView {
            kind: boot.kind(),
            args: args.join(" "),
            ..Default::default()
        };
        match boot {
            Boot::Kernel { kernel, initrds } => {
                v.kernel = Some(f(kernel));
                v.initrds = initrds.iter().map(f).collect();
            }
            Boot::Iso { iso, method } => {
                v.iso = Some(f(iso));
                match method {
                    IsoMethod::Sanboot => v.method = Some("sanboot"),
                    IsoMethod::Memdisk(m) => {
                        v.method = Some("memdisk");
                        v.memdisk = Some(f(m));
                    }
                }
            }
            Boot::Chain(a) => v.chain = Some(f(a)),
            Boot::Local => {}
        }
        v
    }

    /// What iPXE fetches, in order.
    fn fetches(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        out.extend(
            self.kernel
                .iter()
                .chain(&self.initrds)
                .map(|x| x.url.clone()),
        );
        out.extend(
            self.memdisk
                .iter()
                .chain(&self.iso)
                .chain(&self.chain)
                .map(|x| x.url.clone()),
        );
        out
    }
}

/// Role chain of `role`: itself, then what it extends (stops at a cycle).
pub fn role_chain<'a>(site: &'a Site, role: &'a str) -> Vec<&'a Role> {
    let mut chain: Vec<&Role> = Vec::new();
    let mut cur = site.roles.get(role);
    while let Some(r) = cur {
        if chain.iter().any(|c| c.name == r.name) {
            break;
        }
        chain.push(r);
        cur = r.extends.as_deref().and_then(|p| site.roles.get(p));
    }
    chain
}

fn to_json(v: &toml::Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn vars_value(layers: &[&Vars]) -> serde_json::Map<String, serde_json::Value> {
    let mut out = serde_json::Map::new();
    for l in layers {
        for (k, v) in *l {
            out.insert(k.clone(), to_json(v));
        }
    }
    out
}

/// What a role boots without a machine (for the fallback and its menu).
struct Unbound<'a> {
    role: &'a Role,
    chain: Vec<&'a Role>,
    image: &'a Image,
}

pub struct Resolver<'a> {
    site: &'a Site,
    sources: &'a Sources,
    pub templates: Templates,
    /// Compiled names of kernel-arg templates, by (file, offset).
    inline: BTreeMap<(usize, usize), Option<String>>,
}

impl<'a> Resolver<'a> {
    pub fn new(site: &'a Site, sources: &'a Sources, diags: &mut Diags) -> Self {
        let mut templates = Templates::new(site, sources, diags);
        let mut inline = BTreeMap::new();
        let all_args = site
            .images
            .values()
            .flat_map(|i| &i.kernel_args)
            .chain(site.roles.values().flat_map(|r| &r.kernel_args))
            .chain(site.machines.iter().flat_map(|m| &m.kernel_args));
        for t in all_args {
            let key = (t.loc.file, t.loc.span.start);
            inline
                .entry(key)
                .or_insert_with(|| templates.inline(t, sources, diags));
        }
        Resolver {
            site,
            sources,
            templates,
            inline,
        }
    }

    fn site_view(&self) -> SiteView<'_> {
        SiteView {
            name: &self.site.name,
            base_url: self.site.base_url.as_deref(),
            fallback: self.site.fallback.to_string(),
        }
    }

    /// Renders kernel args (image, then roles base first, then `own`),
    /// checking each for iPXE safety. Empty results are dropped.
    fn args(
        &self,
        ctx: &Value,
        image: &Image,
        chain: &[&Role],
        own: &[Tpl],
        what: &str,
        diags: &mut Diags,
    ) -> Vec<String> {
        let all = image
            .kernel_args
            .iter()
            .chain(chain.iter().rev().flat_map(|r| &r.kernel_args))
            .chain(own);
        let mut out = Vec::new();
        for t in all {
            let text = match self
                .inline
                .get(&(t.loc.file, t.loc.span.start))
                .cloned()
                .flatten()
            {
                None => t.text.clone(),
                Some(name) => match self.templates.render(&name, ctx) {
                    Ok(s) => s,
                    Err(e) => {
                        diags.push(self.templates.diag(&e, self.sources, Some(what)));
                        continue;
                    }
                },
            };
            let text = text.trim().to_string();
            if text.is_empty() {
                continue;
            }
            if let Some(why) = unsafe_reason(&text) {
                diags.push(
                    Diag::error(format!("kernel argument `{}` cannot be written into an iPXE script", text.escape_debug()))
                        .at(t.loc.clone(), why)
                        .help("iPXE has no quoting: one argument per list item, no spaces, no `${`, not `||`, `&&` or `;` alone, no leading `#`")
                        .help(format!("while rendering {what}")),
                );
                continue;
            }
            out.push(text);
        }
        out
    }

    fn resolve_machine(&self, m: &Machine) -> (Option<Resolved>, Diags) {
        let mut diags = Diags::default();
        let site = self.site;
        let chain = role_chain(site, &m.role);
        let Some(role) = chain.first() else {
            return (None, diags);
        };
        let Some(image) = chain
            .iter()
            .find_map(|r| r.image.as_deref())
            .and_then(|i| site.images.get(i))
        else {
            return (None, diags);
        };
        let mut layers: Vec<&Vars> = vec![&image.vars];
        layers.extend(chain.iter().rev().map(|r| &r.vars));
        layers.push(&m.vars);
        let vars = vars_value(&layers);
        let machine_view = |mac: Option<&Mac>| MachineView {
            name: &m.name,
            mac: mac
                .or(m.macs.first())
                .map(Mac::to_string)
                .unwrap_or_default(),
            macs: m.macs.iter().map(Mac::to_string).collect(),
            ip: m.ip.map(|i| i.to_string()),
            labels: &m.labels,
            url: site
                .base_url
                .as_ref()
                .map(|b| format!("{b}machines/{}/", m.name)),
        };
        let role_view = RoleView {
            name: &role.name,
            description: &role.description,
        };
        let image_view = ImageView {
            name: &image.name,
            description: &image.description,
            kind: image.boot.kind(),
        };
        let ctx = minijinja::context! {
            site => crate::templates::val(self.site_view()),
            machine => crate::templates::val(machine_view(None)),
            role => crate::templates::val(&role_view),
            image => crate::templates::val(&image_view),
            vars => crate::templates::val(&vars),
        };
        let what = format!("machine {}", m.name);
        let kernel_args = self.args(&ctx, image, &chain, &m.kernel_args, &what, &mut diags);
        if !matches!(image.boot, Boot::Kernel { .. }) {
            let first = chain
                .iter()
                .rev()
                .flat_map(|r| &r.kernel_args)
                .chain(&m.kernel_args)
                .next();
            if let Some(t) = first {
                diags.push(
                    Diag::warning(format!(
                        "kernel arguments are not used: image `{}` boots {}",
                        image.name,
                        image.boot.kind()
                    ))
                    .at(t.loc.clone(), "ignored")
                    .help("only kernel images take kernel arguments"),
                );
            }
        }

        // Per-machine files: base roles first, nearer roles override.
        let mut file_templates: BTreeMap<&str, &str> = BTreeMap::new();
        for r in chain.iter().rev() {
            file_templates.extend(r.files.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let mut file_contents = BTreeMap::new();
        for (fname, tpl) in file_templates {
            if !self.templates.has(tpl) {
                continue; // reported by validate
            }
            match self.templates.render(tpl, &ctx) {
                Ok(s) => {
                    file_contents.insert(fname.to_string(), s);
                }
                Err(e) => diags.push(self.templates.diag(&e, self.sources, Some(&what))),
            }
        }

        let boot = BootView::new(&image.boot, "../", &kernel_args);
        let script = chain
            .iter()
            .find_map(|r| r.script.as_deref())
            .unwrap_or("machine.ipxe.j2");
        let mut scripts = Vec::new();
        if self.templates.has(script) {
            for mac in &m.macs {
                let ctx = minijinja::context! {
                    site => crate::templates::val(self.site_view()),
                    machine => crate::templates::val(machine_view(Some(mac))),
                    role => crate::templates::val(&role_view),
                    image => crate::templates::val(&image_view),
                    vars => crate::templates::val(&vars),
                    boot => crate::templates::val(&boot),
                };
                match self.templates.render(script, &ctx) {
                    Ok(s) => scripts.push(s),
                    Err(e) => {
                        diags.push(self.templates.diag(
                            &e,
                            self.sources,
                            Some(&format!("the script of {} ({mac})", m.name)),
                        ));
                        break;
                    }
                }
            }
        }
        let files = file_contents
            .iter()
            .map(|(k, v)| (k.clone(), blake3::hash(v.as_bytes()).to_hex().to_string()))
            .collect();
        let mut fetches = vec!["boot.ipxe".to_string()];
        fetches.extend(
            m.macs
                .first()
                .map(|mac| format!("machines/{}.ipxe", mac.hexhyp())),
        );
        fetches.extend(
            boot.fetches()
                .into_iter()
                .map(|u| u.strip_prefix("../").map(str::to_string).unwrap_or(u)),
        );
        let r = Resolved {
            name: m.name.clone(),
            macs: m.macs.clone(),
            ip: m.ip,
            role: role.name.clone(),
            role_chain: chain.iter().map(|r| r.name.clone()).collect(),
            image: image.name.clone(),
            boot: image.boot.kind().to_string(),
            kernel_args,
            fetches,
            labels: m.labels.clone(),
            files,
            file_contents,
            scripts,
            extra: Default::default(),
        };
        (Some(r), diags)
    }

    fn unbound(&self, role: &'a str) -> Option<Unbound<'a>> {
        let chain = role_chain(self.site, role);
        let image = chain
            .iter()
            .find_map(|r| r.image.as_deref())
            .and_then(|i| self.site.images.get(i))?;
        Some(Unbound {
            role: chain.first()?,
            chain,
            image,
        })
    }

    /// The fallback's view of a role: rendered without a machine.
    fn unbound_view(&self, u: &Unbound, diags: &mut Diags) -> Option<serde_json::Value> {
        let mut layers: Vec<&Vars> = vec![&u.image.vars];
        layers.extend(u.chain.iter().rev().map(|r| &r.vars));
        let vars = vars_value(&layers);
        let ctx = minijinja::context! {
            site => crate::templates::val(self.site_view()),
            role => crate::templates::val(RoleView { name: &u.role.name, description: &u.role.description }),
            image => crate::templates::val(ImageView { name: &u.image.name, description: &u.image.description, kind: u.image.boot.kind() }),
            vars => crate::templates::val(&vars),
        };
        let before = diags.errors();
        let what = format!("the fallback (role {}), which has no machine", u.role.name);
        let args = self.args(&ctx, u.image, &u.chain, &[], &what, diags);
        if diags.errors() > before {
            return None;
        }
        Some(serde_json::json!({
            "role": RoleView { name: &u.role.name, description: &u.role.description },
            "image": ImageView { name: &u.image.name, description: &u.image.description, kind: u.image.boot.kind() },
            "boot": BootView::new(&u.image.boot, "", &args),
        }))
    }

    fn fallback(&self, diags: &mut Diags) -> String {
        let mut fb = serde_json::json!({ "mode": match &self.site.fallback {
            Fallback::Local => "local", Fallback::Menu => "menu", Fallback::Shell => "shell", Fallback::Role(_) => "role" } });
        match &self.site.fallback {
            Fallback::Role(r) => {
                if let Some(u) = self.unbound(r)
                    && let Some(v) = self.unbound_view(&u, diags)
                {
                    fb["role"] = v["role"].clone();
                    fb["image"] = v["image"].clone();
                    fb["boot"] = v["boot"].clone();
                } else {
                    return String::new();
                }
            }
            Fallback::Menu => {
                let mut entries = Vec::new();
                for name in self.site.roles.keys() {
                    let Some(u) = self.unbound(name) else {
                        continue;
                    };
                    let mut local = Diags::default();
                    match self.unbound_view(&u, &mut local) {
                        Some(v) => entries.push(v),
                        None => diags.push(
                            Diag::warning(format!("role `{name}` is left out of the fallback menu"))
                                .at(crate::diag::Loc::new(u.role.file, 0..0), "its kernel args need a machine")
                                .help("the fallback boots unknown machines, so `machine` is not defined there"),
                        ),
                    }
                }
                fb["entries"] = serde_json::Value::Array(entries);
            }
            Fallback::Local | Fallback::Shell => {}
        }
        let ctx = minijinja::context! {
            site => crate::templates::val(self.site_view()),
            fallback => crate::templates::val(&fb),
        };
        match self.templates.render("fallback.ipxe.j2", &ctx) {
            Ok(s) => s,
            Err(e) => {
                diags.push(self.templates.diag(&e, self.sources, Some("fallback.ipxe")));
                String::new()
            }
        }
    }

    pub fn boot_script(&self, diags: &mut Diags) -> String {
        let ctx = minijinja::context! { site => crate::templates::val(self.site_view()) };
        self.templates
            .render("boot.ipxe.j2", &ctx)
            .unwrap_or_else(|e| {
                diags.push(self.templates.diag(&e, self.sources, Some("boot.ipxe")));
                String::new()
            })
    }

    /// Resolves the whole fleet (machines in parallel).
    pub fn plan(&self, diags: &mut Diags) -> Plan {
        let results: Vec<(Option<Resolved>, Diags)> = self
            .site
            .machines
            .par_iter()
            .map(|m| self.resolve_machine(m))
            .collect();
        let mut machines = Vec::with_capacity(results.len());
        for (r, d) in results {
            diags.extend(d);
            machines.extend(r);
        }
        let fallback_script = self.fallback(diags);
        Plan {
            site: self.site.name.clone(),
            fallback: self.site.fallback.to_string(),
            machines,
            images: self
                .site
                .images
                .iter()
                .map(|(n, i)| (n.clone(), ImagePlan::new(i)))
                .collect(),
            fallback_script,
            extra: Default::default(),
        }
    }
}
