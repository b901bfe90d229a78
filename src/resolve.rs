//! Stage 3: resolve every machine's boot (role chain, image, variables,
//! kernel arguments, per-machine files), rendering the kernel-arg and file
//! templates. The result, the [`Plan`], is what `plan.json` records and
//! `diff` compares; the [`BootPlan`] is the data the boot loader renders.

use std::collections::BTreeMap;

use minijinja::Value;
use rayon::prelude::*;

use crate::context::{
    BootView, FallbackEntry, FallbackView, Fetch, ImageView, MachineContext, MachineView, RoleView,
    SiteView,
};
use crate::diag::{Diag, Diags, Sources};
use crate::ipxe::unsafe_reason;
use crate::model::Vars;
pub use crate::plan::{ImagePlan, Plan, Resolved};
use crate::site::*;
use crate::templates::{Templates, val};

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
                .map(|a| a.record())
                .collect(),
            extra: Default::default(),
        }
    }
}

const ALLOWED_HELP: &str = "a boot may reach base-url's host and the hosts of [site] allowed-hosts only: add the host there, or point the URL at one that is";

/// What the boot loader needs besides the [`Plan`]: each machine's script
/// context and the fallback's, all data (render turns them into text).
pub struct BootPlan<'a> {
    pub site: SiteView<'a>,
    pub machines: Vec<MachineBoot<'a>>,
    /// None when the fallback role cannot boot without a machine (an error
    /// was reported) or has no image: fallback.ipxe is then empty.
    pub fallback: Option<FallbackView<'a>>,
    /// arm64 shim and GRUB are set: arm64's GRUB reads its own prefix.
    pub arm64_grub: bool,
    /// Where GRUB configs are written.
    pub grub: GrubPlaces,
}

/// Where the GRUB loader writes configs: tftp/ (shim and GRUB over TFTP,
/// for the machines that boot through them) and http/ (every machine's,
/// read by the boot media's GRUB over HTTP).
#[derive(Clone, Debug, Default)]
pub struct GrubPlaces {
    /// The site or a machine boots through shim and GRUB over TFTP.
    pub tftp: bool,
    /// With `[media]`: base-url's path, where GRUB finds http/ on its server.
    pub http: Option<String>,
}

/// One machine's boot script: its template and context (`machine.mac` is
/// set per MAC).
pub struct MachineBoot<'a> {
    pub name: &'a str,
    pub macs: &'a [Mac],
    /// What its UEFI firmware gets: iPXE (the script) or shim and GRUB
    /// (a GRUB config, rendered from the same context).
    pub uefi: UefiLoader,
    /// The template: the nearest role's `script =`, else machine.ipxe.j2.
    pub script: &'a str,
    pub context: MachineContext<'a>,
}

fn boot_view(boot: &Boot, prefix: &str, args: &[String]) -> BootView {
    let f = |a: &Artifact| Fetch {
        url: a.url_from(prefix),
        name: a.file_name().to_string(),
    };
    let mut v = BootView {
        kind: boot.kind(),
        args: args.join(" "),
        arg_list: args.to_vec(),
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

/// What the boot loader fetches for `v`, in order.
fn boot_fetches(v: &BootView) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    out.extend(v.kernel.iter().chain(&v.initrds).map(|x| x.url.clone()));
    out.extend(
        v.memdisk
            .iter()
            .chain(&v.iso)
            .chain(&v.chain)
            .map(|x| x.url.clone()),
    );
    out
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

fn role_view(r: &Role) -> RoleView<'_> {
    RoleView {
        name: &r.name,
        description: &r.description,
    }
}

fn image_view(i: &Image) -> ImageView<'_> {
    ImageView {
        name: &i.name,
        description: &i.description,
        kind: i.boot.kind(),
        arch: i.arch.to_string(),
    }
}

/// What a role boots without a machine (for the fallback and its menu).
struct Unbound<'a> {
    role: &'a Role,
    chain: Vec<&'a Role>,
    image: &'a Image,
}

/// Resolves machines into data: kernel args and per-machine files are
/// rendered here (plan.json records them); boot scripts are render's.
pub struct Resolver<'a, 't> {
    site: &'a Site,
    sources: &'a Sources,
    templates: &'t Templates,
    /// Compiled names of kernel-arg templates, by (file, offset).
    inline: BTreeMap<(usize, usize), Option<String>>,
}

impl<'a, 't> Resolver<'a, 't> {
    /// Compiles the site's kernel-arg templates into `templates`.
    pub fn new(
        site: &'a Site,
        sources: &'a Sources,
        templates: &'t mut Templates,
        diags: &mut Diags,
    ) -> Self {
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

    fn site_view(&self) -> SiteView<'a> {
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
            if let Some(allowed) = &self.site.allowed_hosts {
                for host in allowed.outside(&text) {
                    diags.push(
                        Diag::error(format!(
                            "kernel argument reaches {host}, which is not in allowed-hosts"
                        ))
                        .at(t.loc.clone(), format!("`{}`", text.escape_debug()))
                        .help(ALLOWED_HELP),
                    );
                }
            }
            out.push(text);
        }
        out
    }

    /// Warns when a non-kernel image is given role or machine kernel args.
    fn unused_args(image: &Image, chain: &[&Role], m: &Machine, diags: &mut Diags) {
        if matches!(image.boot, Boot::Kernel { .. }) {
            return;
        }
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

    /// Per-machine files (base roles first, nearer roles override),
    /// rendered: file name -> content.
    fn files(
        &self,
        chain: &[&Role],
        ctx: &Value,
        what: &str,
        diags: &mut Diags,
    ) -> BTreeMap<String, String> {
        let mut file_templates: BTreeMap<&str, &str> = BTreeMap::new();
        for r in chain.iter().rev() {
            file_templates.extend(r.files.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        let mut file_contents = BTreeMap::new();
        for (fname, tpl) in file_templates {
            if !self.templates.has(tpl) {
                continue; // reported by validate
            }
            match self.templates.render(tpl, ctx) {
                Ok(s) => {
                    self.check_hosts_in_file(fname, tpl, &s, diags);
                    file_contents.insert(fname.to_string(), s);
                }
                Err(e) => diags.push(self.templates.diag(&e, self.sources, Some(what))),
            }
        }
        file_contents
    }

    /// A rendered per-machine file may reach only allowed hosts: an error
    /// at its template (at the host's first mention there, if it has one).
    fn check_hosts_in_file(&self, fname: &str, tpl: &str, text: &str, diags: &mut Diags) {
        let (Some(allowed), Some(&file)) = (&self.site.allowed_hosts, self.site.templates.get(tpl))
        else {
            return;
        };
        for host in allowed.outside(text) {
            let source = self.sources.text(file);
            let span = source
                .to_ascii_lowercase()
                .find(&host)
                .map_or(0..0, |at| at..at + host.len());
            diags.push(
                Diag::error(format!(
                    "per-machine file `{fname}` reaches {host}, which is not in allowed-hosts"
                ))
                .at(
                    crate::diag::Loc::new(file, span),
                    "rendered into a URL here",
                )
                .help(ALLOWED_HELP),
            );
        }
    }

    fn resolve_machine(&self, m: &'a Machine) -> (Option<(Resolved, MachineBoot<'a>)>, Diags) {
        let mut diags = Diags::default();
        let site = self.site;
        let chain = site.role_chain(&m.role);
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
        let mut context = MachineContext {
            site: self.site_view(),
            machine: Some(MachineView {
                name: &m.name,
                mac: m.macs.first().map(Mac::to_string).unwrap_or_default(),
                macs: m.macs.iter().map(Mac::to_string).collect(),
                ip: m.ip.map(|i| i.to_string()),
                labels: &m.labels,
                url: site
                    .base_url
                    .as_ref()
                    .map(|b| format!("{b}machines/{}/", m.name)),
            }),
            role: role_view(role),
            image: image_view(image),
            vars: vars_value(&layers),
            boot: None,
        };
        let ctx = val(&context);
        let what = format!("machine {}", m.name);
        let kernel_args = self.args(&ctx, image, &chain, &m.kernel_args, &what, &mut diags);
        Self::unused_args(image, &chain, m, &mut diags);
        let file_contents = self.files(&chain, &ctx, &what, &mut diags);

        let boot = boot_view(&image.boot, "../", &kernel_args);
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
            boot_fetches(&boot)
                .into_iter()
                .map(|u| u.strip_prefix("../").map(str::to_string).unwrap_or(u)),
        );
        context.boot = Some(boot);
        let secure_boot = site.secure_boot(&m.role, m.secure_boot);
        let uefi = site.uefi_loader(image.arch, secure_boot);
        let r = Resolved {
            name: m.name.clone(),
            macs: m.macs.clone(),
            ip: m.ip,
            role: role.name.clone(),
            role_chain: chain.iter().map(|r| r.name.clone()).collect(),
            image: image.name.clone(),
            boot: image.boot.kind().to_string(),
            arch: match image.arch {
                Arch::X86_64 => String::new(),
                a => a.to_string(),
            },
            secure_boot,
            uefi_loader: match uefi {
                UefiLoader::Ipxe => String::new(),
                loader => loader.name().to_string(),
            },
            kernel_args,
            fetches,
            labels: m.labels.clone(),
            files,
            file_contents,
            extra: Default::default(),
        };
        let script = chain
            .iter()
            .find_map(|r| r.script.as_deref())
            .unwrap_or("machine.ipxe.j2");
        let mb = MachineBoot {
            name: &m.name,
            macs: &m.macs,
            uefi,
            script,
            context,
        };
        (Some((r, mb)), diags)
    }

    fn unbound(&self, role: &'a str) -> Option<Unbound<'a>> {
        let chain = self.site.role_chain(role);
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

    /// The fallback's view of a role: resolved without a machine.
    fn unbound_view(&self, u: &Unbound<'a>, diags: &mut Diags) -> Option<FallbackEntry<'a>> {
        let mut layers: Vec<&Vars> = vec![&u.image.vars];
        layers.extend(u.chain.iter().rev().map(|r| &r.vars));
        let ctx = val(MachineContext {
            site: self.site_view(),
            machine: None,
            role: role_view(u.role),
            image: image_view(u.image),
            vars: vars_value(&layers),
            boot: None,
        });
        let before = diags.errors();
        let what = format!("the fallback (role {}), which has no machine", u.role.name);
        let args = self.args(&ctx, u.image, &u.chain, &[], &what, diags);
        if diags.errors() > before {
            return None;
        }
        Some(FallbackEntry {
            role: role_view(u.role),
            image: image_view(u.image),
            boot: boot_view(&u.image.boot, "", &args),
        })
    }

    fn fallback(&self, diags: &mut Diags) -> Option<FallbackView<'a>> {
        let mode = match &self.site.fallback {
            Fallback::Local => "local",
            Fallback::Menu => "menu",
            Fallback::Shell => "shell",
            Fallback::Role(_) => "role",
        };
        let mut fb = FallbackView {
            mode,
            role: None,
            image: None,
            boot: None,
            entries: None,
        };
        match &self.site.fallback {
            Fallback::Role(r) => {
                let v = self.unbound(r).and_then(|u| self.unbound_view(&u, diags))?;
                fb.role = Some(v.role);
                fb.image = Some(v.image);
                fb.boot = Some(v.boot);
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
                fb.entries = Some(entries);
            }
            Fallback::Local | Fallback::Shell => {}
        }
        Some(fb)
    }

    /// Resolves the whole fleet (machines in parallel): the plan, and what
    /// the boot loader renders from it.
    pub fn plan(&self, diags: &mut Diags) -> (Plan, BootPlan<'a>) {
        let results: Vec<_> = self
            .site
            .machines
            .par_iter()
            .map(|m| self.resolve_machine(m))
            .collect();
        let mut machines = Vec::with_capacity(results.len());
        let mut boots = Vec::with_capacity(results.len());
        for (r, d) in results {
            diags.extend(d);
            if let Some((r, b)) = r {
                machines.push(r);
                boots.push(b);
            }
        }
        let fallback = self.fallback(diags);
        let plan = Plan {
            site: self.site.name.clone(),
            fallback: self.site.fallback.to_string(),
            machines,
            images: self
                .site
                .images
                .iter()
                .map(|(n, i)| (n.clone(), ImagePlan::new(i)))
                .collect(),
            extra: Default::default(),
        };
        let grub = GrubPlaces {
            tftp: self.site.uefi.secure_boot
                || boots.iter().any(|b| b.uefi == UefiLoader::ShimGrub),
            http: self
                .site
                .media
                .as_ref()
                .and(self.site.base_url.as_deref())
                .and_then(crate::url::grub_http)
                .map(|(_, path)| path),
        };
        let boot = BootPlan {
            site: self.site_view(),
            machines: boots,
            fallback,
            arm64_grub: self.site.uefi.loaders.contains_key(&EfiName::Arm64Grub),
            grub,
        };
        (plan, boot)
    }
}
