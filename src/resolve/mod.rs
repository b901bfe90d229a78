//! Stage 3: resolve every machine's boot (role chain, image, variables,
//! kernel arguments, per-machine files), rendering the kernel-arg and file
//! templates. The result, the [`Plan`], is what `plan.json` records and
//! `diff` compares; the [`BootPlan`] is the data the boot loader renders.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use rayon::prelude::*;

mod boot;
mod fallback;

use crate::context::{
    FallbackEntry, FallbackView, ImageView, MachineContext, MachineView, RoleView, Shared, SiteView,
};
use crate::diag::{Diag, Diags, Lint, Sources};
use crate::ipxe::unsafe_reason;
use crate::model::Vars;
pub use crate::plan::{ImagePlan, Plan, Resolved};
use crate::site::*;
use crate::templates::{Templates, val};
use crate::tree::Files;
use boot::{COMMAND_LINE_MAX, ImageKey, boot_fetches, boot_view, command_line_len};

/// What `machine.beacon` and `machine.boot_id` are while args and files
/// are rendered: the boot-id hashes what they render, so the real values
/// replace these afterwards. Printable, so every check on args passes them.
const BEACON_STAND_IN: &str = "bootc-beacon-stand-in-7f3a9c";
const BOOT_ID_STAND_IN: &str = "bootc-boot-id-stand-in-7f3a9c";

const ALLOWED_HELP: &str = "a boot may reach base-url's host and the hosts of [site] allowed-hosts only: add the host there, or point the URL at one that is";

/// Views every machine's context shares (see [`Shared`]).
struct SharedViews<'a> {
    site: Shared<SiteView<'a>>,
    roles: BTreeMap<&'a str, Shared<RoleView<'a>>>,
    images: BTreeMap<&'a str, Shared<ImageView<'a>>>,
}

/// What the boot loaders need besides each machine's [`MachineBoot`]: the
/// site's view, the fallback's context and where GRUB's configs go, all
/// data (the loaders turn them into text).
pub struct BootPlan<'a> {
    pub site: SiteView<'a>,
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
    /// Its UUID and serial: its script is also served under them.
    pub uuid: Option<&'a str>,
    pub serial: Option<&'a str>,
    /// What its UEFI firmware gets: iPXE (the script) or shim and GRUB
    /// (a GRUB config, rendered from the same context).
    pub uefi: UefiLoader,
    /// The template: the nearest role's `script =`, else machine.ipxe.j2.
    pub script: &'a str,
    pub context: MachineContext<'a>,
    /// Its per-machine files, rendered: (path in the tree, text).
    pub files: Files,
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

/// Resolves machines into data: kernel args and per-machine files are
/// rendered here (plan.json records them); boot scripts are render's.
pub struct Resolver<'a, 't> {
    site: &'a Site,
    sources: &'a Sources,
    templates: &'t Templates,
    /// Compiled names of kernel-arg templates, by (file, offset).
    inline: BTreeMap<(usize, usize), Option<String>>,
    /// What every template sees of the site: made once (it looks at every
    /// machine), cloned into the boot plan (its entry programs and the
    /// fallback's).
    site_view: SiteView<'a>,
    /// The same, and each role's and image's view, serialized once for
    /// every machine's context.
    shared: SharedViews<'a>,
    /// What a boot-id covers of each image, by name: made once.
    image_keys: BTreeMap<&'a str, ImageKey>,
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
        let site_view = SiteView::of(site);
        Resolver {
            site,
            sources,
            templates,
            inline,
            shared: SharedViews {
                site: Shared::new(&site_view),
                roles: site
                    .roles
                    .values()
                    .map(|r| (r.name.as_str(), Shared::new(&role_view(r))))
                    .collect(),
                images: site
                    .images
                    .values()
                    .map(|i| (i.name.as_str(), Shared::new(&image_view(i))))
                    .collect(),
            },
            site_view,
            image_keys: site
                .images
                .values()
                .map(|i| (i.name.as_str(), ImageKey::new(i)))
                .collect(),
        }
    }

    /// The templates the site's are compiled into.
    pub fn templates(&self) -> &'t Templates {
        self.templates
    }

    fn site_view(&self) -> SiteView<'a> {
        self.site_view.clone()
    }

    /// The context of `role`'s and `image`'s templates, without a machine.
    fn context(&self, role: &Role, image: &Image, layers: &[&Vars]) -> MachineContext<'a> {
        MachineContext {
            site: self.shared.site.clone(),
            machine: None,
            role: self.shared.roles[role.name.as_str()].clone(),
            image: self.shared.images[image.name.as_str()].clone(),
            vars: Shared::new(&vars_value(layers)),
            boot: None,
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
        // Sized once: a fleet holds every machine's list.
        let mut out = Vec::with_capacity(all.clone().count());
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
            // The command line iPXE hands the kernel: `initrd=NAME` per
            // initrd, then the arguments.
            if let Boot::Kernel { initrds, .. } = &image.boot {
                let before = command_line_len(initrds, &out);
                let after = before + usize::from(before > 0) + text.len();
                if before <= COMMAND_LINE_MAX && after > COMMAND_LINE_MAX {
                    diags.push(
                        Diag::error(format!("the kernel command line of {what} is longer than {COMMAND_LINE_MAX} bytes"))
                            .at(t.loc.clone(), format!("this argument makes it {after} bytes"))
                            .help("Linux cuts its command line at 2048 bytes (x86 and arm64): shorten the arguments, or move settings into a per-machine file the installer fetches"),
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
                Diag::warning(
                    Lint::UnusedKernelArgs,
                    format!(
                        "kernel arguments are not used: image `{}` boots {}",
                        image.name,
                        image.boot.kind()
                    ),
                )
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

    /// What machine `m`'s UEFI firmware is handed when it boots `image`,
    /// and whether it boots with Secure Boot.
    fn uefi_of(&self, m: &Machine, image: &Image) -> (UefiLoader, bool) {
        let site = self.site;
        let secure_boot = site.secure_boot(site.boot_role(m), m.secure_boot);
        (site.uefi_loader(image.arch, secure_boot), secure_boot)
    }

    /// Resolves machine `m`: its entry in the plan, and what its boot
    /// programs are rendered from (with its per-machine files, rendered);
    /// None when it has no role or image (reported by validate).
    pub fn machine(&self, m: &'a Machine) -> (Option<(Resolved, MachineBoot<'a>)>, Diags) {
        let mut diags = Diags::default();
        let site = self.site;
        // While it reinstalls, it boots its installer role.
        let chain = site.role_chain(site.boot_role(m));
        let (Some(role), Some(image)) = (chain.first(), site.image_for(m)) else {
            return (None, diags);
        };
        let (uefi, secure_boot) = self.uefi_of(m, image);
        let mut layers: Vec<&Vars> = vec![&image.vars];
        layers.extend(chain.iter().rev().map(|r| &r.vars));
        layers.push(&m.vars);
        let mut context = self.context(role, image, &layers);
        context.machine = Some(MachineView {
            name: &m.name,
            mac: m.macs.first().map(Mac::to_string).unwrap_or_default(),
            macs: m.macs.iter().map(Mac::to_string).collect(),
            ip: m.ip.map(|i| i.to_string()),
            uuid: m.uuid.as_deref(),
            serial: m.serial.as_deref(),
            labels: &m.labels,
            url: site
                .base_url
                .as_ref()
                .map(|b| format!("{b}machines/{}/", m.name)),
            // A stand-in until the boot-id is known (it hashes what
            // is rendered here): replaced below.
            beacon: site.base_url.as_ref().map(|_| BEACON_STAND_IN.to_string()),
            boot_id: BOOT_ID_STAND_IN.to_string(),
            reinstall: m.reinstall.as_deref(),
        });
        let ctx = val(&context);
        let what = format!("machine {}", m.name);
        let mut kernel_args = self.args(&ctx, image, &chain, &m.kernel_args, &what, &mut diags);
        Self::unused_args(image, &chain, m, &mut diags);
        let mut file_contents = self.files(&chain, &ctx, &what, &mut diags);
        let script = chain
            .iter()
            .find_map(|r| r.script.as_deref())
            .unwrap_or("machine.ipxe.j2");
        let hash = |v: &str| blake3::hash(v.as_bytes()).to_hex().to_string();
        // The files' hashes as rendered (with the stand-ins): what the
        // boot-id covers, and the final hashes of files without them.
        let mut files: crate::plan::FileHashes = file_contents
            .iter()
            .map(|(k, v)| (k.clone(), hash(v)))
            .collect();
        let id = boot::boot_id(
            &self.image_keys[image.name.as_str()],
            &kernel_args,
            &files,
            uefi.name(),
            script,
        );
        let first_mac = m.macs.first().map(Mac::hexhyp).unwrap_or_default();
        let beacon = site
            .base_url
            .as_ref()
            .map(|base| format!("{base}machines/{first_mac}.ipxe?booting={id}"));
        let real = |text: &mut String| {
            let stand_in = text.contains(BEACON_STAND_IN) || text.contains(BOOT_ID_STAND_IN);
            if stand_in {
                *text = text
                    .replace(BEACON_STAND_IN, beacon.as_deref().unwrap_or_default())
                    .replace(BOOT_ID_STAND_IN, &id);
            }
            stand_in
        };
        kernel_args.iter_mut().for_each(|a| {
            real(a);
        });
        for (name, text) in file_contents.iter_mut() {
            if real(text) {
                files.insert(name.clone(), hash(text));
            }
        }
        if let Some(machine) = &mut context.machine {
            machine.beacon = beacon;
            machine.boot_id = id.clone();
        }

        let boot = boot_view(&image.boot, "../", &kernel_args);
        let urls = boot_fetches(&boot);
        let mut fetches = Vec::with_capacity(2 + urls.len());
        fetches.push("boot.ipxe".to_string());
        fetches.extend(
            m.macs
                .first()
                .map(|mac| format!("machines/{}.ipxe", mac.hexhyp())),
        );
        fetches.extend(urls.into_iter().map(|mut u| {
            if u.starts_with("../") {
                u.drain(..3);
            }
            u
        }));
        context.boot = Some(boot);
        let mut reaches: Vec<String> = fetches
            .iter()
            .chain(&kernel_args)
            .chain(file_contents.values())
            .flat_map(|t| crate::hosts::hosts_in(t))
            .collect();
        reaches.sort();
        reaches.dedup();
        reaches.shrink_to_fit();
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
            uuid: m.uuid.clone(),
            serial: m.serial.clone(),
            boot_id: id,
            reinstall: m.reinstall.clone(),
            labels: m.labels.clone(),
            files,
            reaches,
            extra: Default::default(),
        };
        let mb = MachineBoot {
            name: &m.name,
            macs: &m.macs,
            uuid: m.uuid.as_deref(),
            serial: m.serial.as_deref(),
            uefi,
            script,
            context,
            files: file_contents
                .into_iter()
                .map(|(name, text)| (format!("http/machines/{}/{name}", m.name), text))
                .collect(),
        };
        (Some((r, mb)), diags)
    }

    /// What the boot loaders need besides the machines: the site's view,
    /// the fallback's context, and where GRUB configs go (over TFTP when
    /// the site or a machine boots through shim and GRUB).
    pub fn boot_plan(&self, diags: &mut Diags) -> BootPlan<'a> {
        let site = self.site;
        let grub = GrubPlaces {
            tftp: site.uefi.secure_boot
                || site
                    .machines
                    .par_iter()
                    .filter_map(|m| Some((m, site.image_for(m)?)))
                    .any(|(m, image)| self.uefi_of(m, image).0 == UefiLoader::ShimGrub),
            http: site
                .media
                .as_ref()
                .and(site.base_url.as_deref())
                .and_then(crate::url::grub_http)
                .map(|(_, path)| path),
        };
        BootPlan {
            site: self.site_view(),
            fallback: self.fallback(diags),
            arm64_grub: site.uefi.loaders.contains_key(&EfiName::Arm64Grub),
            grub,
        }
    }

    /// The plan of the site whose machines resolved to `machines` (in the
    /// site's order).
    pub fn plan(&self, machines: Vec<Arc<Resolved>>) -> Plan {
        let site = self.site;
        Plan {
            site: site.name.clone(),
            fallback: site.fallback.to_string(),
            machines,
            reservations: site
                .reservations
                .iter()
                .map(|r| crate::plan::Reserved {
                    name: r.name.clone(),
                    macs: r.macs.clone(),
                    ip: r.ip,
                })
                .collect(),
            images: site
                .images
                .iter()
                .map(|(n, i)| (n.clone(), ImagePlan::new(i)))
                .collect(),
            extra: Default::default(),
        }
    }
}
