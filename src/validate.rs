//! Stage 2: check the loaded files against every rule of the site format and
//! build the typed [`Site`]. Each problem becomes a diagnostic with its place;
//! checking goes on after a problem so that one run reports them all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipnet::Ipv4Net;
use rayon::prelude::*;

use crate::beneath::{OpenError, Opened, Root};
use crate::diag::{Diag, Diags, FileId, Loc, did_you_mean};
use crate::ipxe::{is_host_label, is_plain_name, text_unsafe_reason, unsafe_reason};
use crate::load::Loaded;
use crate::model::{self, S, Vars};
use crate::site::*;

/// Default places for iPXE binaries (Debian's `ipxe` package, then others).
pub const IPXE_SEARCH: [&str; 2] = ["/usr/lib/ipxe", "/usr/share/ipxe"];

struct Ctx<'a> {
    loaded: &'a Loaded,
    diags: Diags,
    /// Canonical artifact roots, open: artifacts are opened beneath them.
    artifact_roots: Vec<Root>,
    /// Local artifacts opened so far, by canonical path (each file once).
    opened: HashMap<PathBuf, Arc<Opened>>,
}

impl Ctx<'_> {
    /// A path for messages: relative to the site root when inside it (so
    /// messages do not depend on where the site is checked out).
    fn shown(&self, p: &Path) -> String {
        let root = self
            .loaded
            .root
            .canonicalize()
            .unwrap_or_else(|_| self.loaded.root.clone());
        match p.strip_prefix(&root) {
            Ok(rel) if rel.as_os_str().is_empty() => "the site root".to_string(),
            Ok(rel) => format!("{} (in the site)", rel.display()),
            Err(_) => p.display().to_string(),
        }
    }
}

fn loc<T>(file: FileId, s: &S<T>) -> Loc {
    Loc::new(file, s.span())
}

fn parse_ip(file: FileId, s: &S<String>, what: &str, diags: &mut Diags) -> Option<Ipv4Addr> {
    match s.get_ref().parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            diags.push(
                Diag::error(format!("invalid {what} `{}`", s.get_ref()))
                    .at(loc(file, s), "not an IPv4 address")
                    .help("write four decimal numbers, like 10.77.0.11"),
            );
            None
        }
    }
}

/// Validates the loaded site. Returns the site when it is usable (even with
/// errors in `diags`, so later stages can report more).
pub fn validate(loaded: &Loaded) -> (Option<Site>, Diags) {
    let mut cx = Ctx {
        loaded,
        diags: Diags::default(),
        artifact_roots: Vec::new(),
        opened: HashMap::new(),
    };
    let Some((site_id, site_file)) = &loaded.site else {
        return (None, cx.diags);
    };
    let site_id = *site_id;
    let s = &site_file.site;

    // [site]
    let name = s.name.get_ref().clone();
    if let Some(why) = unsafe_reason(&name) {
        cx.diags
            .push(Diag::error("invalid site name").at(loc(site_id, &s.name), why));
    }
    let base_url = s.base_url.as_ref().and_then(|u| {
        let text = u.get_ref();
        let problem = if !(text.starts_with("http://") || text.starts_with("https://")) {
            Some("it must start with http:// or https://".to_string())
        } else {
            unsafe_reason(text)
        };
        match problem {
            Some(why) => {
                cx.diags.push(
                    Diag::error(format!("invalid base-url `{text}`")).at(loc(site_id, u), why),
                );
                None
            }
            None => Some(if text.ends_with('/') {
                text.clone()
            } else {
                format!("{text}/")
            }),
        }
    });
    cx.artifact_roots = artifact_roots(&mut cx, site_id, s.artifact_roots.as_deref());

    let ipxe = crate::binaries::find(
        &loaded.root,
        site_id,
        site_file.ipxe.binaries.as_ref(),
        &mut cx.diags,
    );
    let dhcp = site_file
        .dhcp
        .as_ref()
        .and_then(|d| dhcp(&mut cx, site_id, d));
    if let Some(d) = &site_file.dhcp
        && s.base_url.is_none()
    {
        cx.diags.push(
            Diag::error("[dhcp] needs [site] base-url")
                .at(
                    Loc::new(site_id, d.span().start..d.span().start + 6),
                    "DHCP hands iPXE the absolute URL of boot.ipxe",
                )
                .help("add base-url = \"http://SERVER/\" to [site]: where public/http/ is served"),
        );
    }

    // images/ and roles/
    let mut images = BTreeMap::new();
    for (iname, (file, img)) in &loaded.images {
        if let Some(i) = image(&mut cx, iname, *file, img) {
            images.insert(iname.clone(), i);
        }
    }
    let mut roles = BTreeMap::new();
    for (rname, (file, r)) in &loaded.roles {
        roles.insert(rname.clone(), role(&mut cx, rname, *file, r));
    }
    check_extends(&mut cx, &roles);

    // machines/
    // Addresses are checked against the subnets only when every subnet was
    // understood (a broken subnet is reported once, not once per machine).
    let subnets_known = site_file
        .dhcp
        .as_ref()
        .is_some_and(|d| Some(d.get_ref().subnet.len()) == dhcp.as_ref().map(|x| x.subnets.len()));
    let machines = machines(&mut cx, &roles, dhcp.as_ref().filter(|_| subnets_known));

    // fallback
    let fallback = match &s.fallback {
        None => Fallback::Local,
        Some(f) => match f.get_ref().as_str() {
            "local" => Fallback::Local,
            "menu" => Fallback::Menu,
            "shell" => Fallback::Shell,
            r => {
                if !roles.contains_key(r) {
                    let hint = did_you_mean(
                        r,
                        roles
                            .keys()
                            .map(String::as_str)
                            .chain(["local", "menu", "shell"]),
                    );
                    cx.diags.push(
                        Diag::error(format!(
                            "fallback `{r}` is neither a role nor local, menu or shell"
                        ))
                        .at(loc(site_id, f), "no such role")
                        .help_opt(hint),
                    );
                }
                Fallback::Role(r.to_string())
            }
        },
    };

    // Warnings: what nothing uses.
    let mut used_roles: BTreeSet<&str> = machines.iter().map(|m| m.role.as_str()).collect();
    if let Fallback::Role(r) = &fallback {
        used_roles.insert(r);
    }
    if fallback == Fallback::Menu {
        used_roles.extend(roles.keys().map(String::as_str));
    }
    let mut stack: Vec<&str> = used_roles.iter().copied().collect();
    let mut used_images = BTreeSet::new();
    while let Some(r) = stack.pop() {
        if let Some(role) = roles.get(r) {
            if let Some(i) = &role.image {
                used_images.insert(i.as_str());
            }
            if let Some(p) = &role.extends
                && used_roles.insert(p)
            {
                stack.push(p);
            }
        }
    }
    for (rname, role) in &roles {
        if !used_roles.contains(rname.as_str()) {
            cx.diags.push(
                Diag::warning(format!("role `{rname}` is not used by any machine"))
                    .at(Loc::new(role.file, 0..0), "unused role")
                    .help("remove the file, or give it to a machine with role = \"…\""),
            );
        }
    }
    for (iname, image) in &images {
        if !used_images.contains(iname.as_str()) {
            cx.diags.push(
                Diag::warning(format!("image `{iname}` is not used by any role"))
                    .at(Loc::new(image.file, 0..0), "unused image")
                    .help("remove the file, or point a role at it with image = \"…\""),
            );
        }
    }
    if dhcp.is_some() {
        for m in machines.iter().filter(|m| m.ip.is_none()) {
            cx.diags.push(
                Diag::warning(format!("machine `{}` has no fixed IP address", m.name))
                    .at(m.loc.clone(), "gets an address from the dynamic pool")
                    .help("add ip = \"…\" to give it a reservation"),
            );
        }
    }

    let site = Site {
        name,
        base_url,
        fallback,
        ipxe,
        dhcp,
        machines,
        roles,
        images,
        templates: loaded.templates.clone(),
    };
    (Some(site), cx.diags)
}

fn artifact_roots(cx: &mut Ctx, file: FileId, roots: Option<&[S<String>]>) -> Vec<Root> {
    let root = &cx.loaded.root;
    let Some(roots) = roots else {
        return Root::new(root).into_iter().collect();
    };
    let site = root.canonicalize().unwrap_or_else(|_| root.clone());
    let mut out = Vec::new();
    for r in roots {
        let p = root.join(r.get_ref());
        match p.canonicalize() {
            // A root written relative to the site is a folder of the site:
            // one that a symlink takes elsewhere would publish what is there.
            Ok(c)
                if !Path::new(r.get_ref()).is_absolute()
                    && !c.starts_with(&site)
                    && !crate::beneath::is_site_alias(&c) =>
            {
                cx.diags.push(
                    Diag::error(format!("artifact root `{}` leads out of the site", r.get_ref()))
                        .at(loc(file, r), format!("resolves to {}", c.display()))
                        .help("a relative artifact root is a folder of the site; write an absolute path to use a folder outside it"),
                )
            }
            Ok(c)
                if c.is_dir()
                    && let Ok(open) = Root::new(&c) =>
            {
                out.push(open)
            }
            _ => cx.diags.push(
                Diag::warning(format!("artifact root `{}` is not a folder", r.get_ref()))
                    .at(loc(file, r), "not found")
                    .help("local artifacts can only come from artifact roots that exist"),
            ),
        }
    }
    out
}

fn dhcp(cx: &mut Ctx, file: FileId, d: &S<model::DhcpSection>) -> Option<Dhcp> {
    let dl = loc(file, d);
    let d = d.get_ref();
    if d.subnet.is_empty() {
        cx.diags.push(
            Diag::error("[dhcp] declares no subnet")
                .at(dl, "no [[dhcp.subnet]] in this section")
                .help("add [[dhcp.subnet]] with cidr = \"10.77.0.0/24\" (and a pool, unless mode = \"proxy\"), or remove [dhcp]"),
        );
    }
    let next_server = parse_ip(file, &d.next_server, "next-server", &mut cx.diags);
    let proxy = match d.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "authoritative")) => false,
        Some((_, "proxy")) => true,
        Some((m, other)) => {
            cx.diags.push(
                Diag::error(format!("unknown DHCP mode `{other}`"))
                    .at(loc(file, m), "expected \"authoritative\" or \"proxy\"")
                    .help_opt(did_you_mean(other, ["authoritative", "proxy"])),
            );
            false
        }
    };
    if let Some(i) = &d.interface
        && !is_plain_name(i.get_ref())
    {
        cx.diags.push(
            Diag::error(format!("invalid interface name `{}`", i.get_ref()))
                .at(loc(file, i), "not an interface name"),
        );
    }
    let mut subnets: Vec<(Subnet, Loc)> = Vec::new();
    for sn in &d.subnet {
        let sl = loc(file, sn);
        let sn = sn.get_ref();
        let cidr = match sn.cidr.get_ref().parse::<Ipv4Net>() {
            Ok(net) if net.addr() != net.network() => {
                cx.diags.push(
                    Diag::error(format!("subnet `{}` has host bits set", sn.cidr.get_ref()))
                        .at(loc(file, &sn.cidr), "not a network address")
                        .help(format!("did you mean `{}`?", net.trunc())),
                );
                None
            }
            Ok(net) => Some(net),
            Err(_) => {
                cx.diags.push(
                    Diag::error(format!("invalid subnet `{}`", sn.cidr.get_ref()))
                        .at(loc(file, &sn.cidr), "not an IPv4 network")
                        .help("write it as ADDRESS/PREFIX, like 10.77.0.0/24"),
                );
                None
            }
        };
        let host_check = |cx: &mut Ctx, s: &S<String>, what: &str| -> Option<Ipv4Addr> {
            let ip = parse_ip(file, s, what, &mut cx.diags)?;
            let net = cidr?;
            let problem = if !net.contains(&ip) {
                Some(format!("not inside subnet {net}"))
            } else if net.prefix_len() < 31 && ip == net.network() {
                Some(format!("the network address of {net}"))
            } else if net.prefix_len() < 31 && ip == net.broadcast() {
                Some(format!("the broadcast address of {net}"))
            } else {
                None
            };
            match problem {
                Some(p) => {
                    cx.diags
                        .push(Diag::error(format!("{what} {ip} is {p}")).at(loc(file, s), p));
                    None
                }
                None => Some(ip),
            }
        };
        let pool = sn.pool.as_ref().and_then(|p| {
            let items = p.get_ref();
            if items.len() != 2 {
                cx.diags.push(
                    Diag::error("a pool is a range of two addresses")
                        .at(loc(file, p), format!("{} addresses given", items.len()))
                        .help("write pool = [\"FIRST\", \"LAST\"]"),
                );
                return None;
            }
            let a = host_check(cx, &items[0], "pool start");
            let b = host_check(cx, &items[1], "pool end");
            let (a, b) = (a?, b?);
            if a > b {
                cx.diags.push(
                    Diag::error(format!("pool starts at {a}, after its end {b}"))
                        .at(loc(file, p), "reversed range"),
                );
                return None;
            }
            Some((a, b))
        });
        let gateway = sn
            .gateway
            .as_ref()
            .and_then(|g| host_check(cx, g, "gateway"));
        // The pool must not hand out the addresses of the servers the
        // clients depend on.
        if let (Some((a, b)), Some(p)) = (pool, &sn.pool) {
            let servers = [
                (gateway, sn.gateway.as_ref(), "gateway"),
                (next_server, Some(&d.next_server), "next-server"),
            ];
            for (ip, at, what) in servers {
                if let (Some(ip), Some(at)) = (ip, at)
                    && a <= ip
                    && ip <= b
                {
                    cx.diags.push(
                        Diag::error(format!("the pool {a}-{b} holds the {what} {ip}"))
                            .at(loc(file, p), format!("would lease {ip} to a client"))
                            .also(loc(file, at), format!("the {what}"))
                            .help(format!("start or end the pool so that it leaves out {ip}")),
                    );
                }
            }
        }
        let dns = sn
            .dns
            .iter()
            .filter_map(|x| parse_ip(file, x, "DNS server", &mut cx.diags))
            .collect();
        let domain = sn.domain.as_ref().and_then(|dm| {
            let ok = dm.get_ref().split('.').all(is_host_label);
            if !ok {
                cx.diags.push(
                    Diag::error(format!("invalid domain `{}`", dm.get_ref()))
                        .at(loc(file, dm), "not a DNS domain name"),
                );
            }
            ok.then(|| dm.get_ref().clone())
        });
        if let Some(cidr) = cidr {
            for (other, ol) in &subnets {
                if other.cidr.contains(&cidr.network()) || cidr.contains(&other.cidr.network()) {
                    cx.diags.push(
                        Diag::error(format!("subnets {} and {} overlap", other.cidr, cidr))
                            .at(sl.clone(), "this subnet")
                            .also(ol.clone(), "overlaps this one"),
                    );
                }
            }
            subnets.push((
                Subnet {
                    cidr,
                    pool,
                    gateway,
                    dns,
                    domain,
                },
                sl,
            ));
        }
    }
    Some(Dhcp {
        next_server: next_server?,
        interface: d.interface.as_ref().map(|i| i.get_ref().clone()),
        proxy,
        subnets: subnets.into_iter().map(|(s, _)| s).collect(),
    })
}

fn name_check(cx: &mut Ctx, what: &str, name: &str, file: FileId) {
    if !is_plain_name(name) {
        cx.diags.push(
            Diag::error(format!("invalid {what} name `{name}`"))
                .at(Loc::new(file, 0..0), "in this file's name")
                .help("name the file with letters, digits, '.', '_' and '-' only"),
        );
    }
}

fn templates_list(args: &[S<String>], file: FileId) -> Vec<Tpl> {
    args.iter()
        .map(|a| Tpl {
            text: a.get_ref().clone(),
            loc: loc(file, a),
        })
        .collect()
}

fn image(cx: &mut Ctx, name: &str, file: FileId, img: &model::ImageFile) -> Option<Image> {
    name_check(cx, "image", name, file);
    let forms: Vec<(&str, std::ops::Range<usize>)> = [
        img.kernel.as_ref().map(|k| ("kernel", k.span())),
        img.iso.as_ref().map(|k| ("iso", k.span())),
        img.chain.as_ref().map(|k| ("chain", k.span())),
        img.local.as_ref().map(|k| ("local", k.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let whole = Loc::new(file, 0..0);
    if forms.is_empty() {
        cx.diags.push(
            Diag::error(format!("image `{name}` says nothing to boot"))
                .at(whole, "no kernel, iso, chain or local")
                .help("give exactly one of: kernel = {…} (with initrd = […]), iso = {…}, chain = {…}, local = true"),
        );
        return None;
    }
    if forms.len() > 1 {
        let mut d = Diag::error(format!(
            "image `{name}` has more than one form: {}",
            forms.iter().map(|f| f.0).collect::<Vec<_>>().join(", ")
        ))
        .at(
            Loc::new(file, forms[1].1.clone()),
            format!("`{}` here", forms[1].0),
        )
        .also(
            Loc::new(file, forms[0].1.clone()),
            format!("`{}` here", forms[0].0),
        );
        d = d.help("an image is exactly one of: kernel + initrd, iso, chain, local");
        cx.diags.push(d);
        return None;
    }
    let form = forms[0].0;
    // Keys that belong to another form.
    let stray: Vec<(&str, std::ops::Range<usize>)> = [
        img.initrd
            .as_ref()
            .filter(|_| form != "kernel")
            .map(|x| ("initrd", x.span())),
        img.method
            .as_ref()
            .filter(|_| form != "iso")
            .map(|x| ("method", x.span())),
        img.memdisk
            .as_ref()
            .filter(|_| form != "iso")
            .map(|x| ("memdisk", x.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    for (key, span) in stray {
        cx.diags.push(
            Diag::error(format!("`{key}` does not go with `{form}`")).at(
                Loc::new(file, span),
                format!(
                    "only for {} images",
                    if key == "initrd" { "kernel" } else { "iso" }
                ),
            ),
        );
    }
    if form != "kernel" && !img.kernel_args.is_empty() {
        cx.diags.push(
            Diag::error(format!(
                "kernel-args need a kernel; image `{name}` is `{form}`"
            ))
            .at(loc(file, &img.kernel_args[0]), "nothing to pass these to"),
        );
    }
    let boot = match form {
        "kernel" => {
            let kernel = artifact(cx, file, img.kernel.as_ref()?, false);
            let mut initrds = Vec::new();
            let mut names: HashMap<String, Loc> = HashMap::new();
            for i in img
                .initrd
                .as_ref()
                .map(|v| v.get_ref().as_slice())
                .unwrap_or(&[])
            {
                if let Some(a) = artifact(cx, file, i, false) {
                    let l = loc(file, i);
                    if let Some(first) = names.get(a.file_name()) {
                        cx.diags.push(
                            Diag::error(format!("two initrds are named `{}`", a.file_name()))
                                .at(l, "second one")
                                .also(first.clone(), "first one")
                                .help("iPXE passes initrds to the kernel by file name: rename one"),
                        );
                    } else {
                        names.insert(a.file_name().to_string(), l);
                    }
                    initrds.push(a);
                }
            }
            Boot::Kernel {
                kernel: kernel?,
                initrds,
            }
        }
        "iso" => {
            let iso = artifact(cx, file, img.iso.as_ref()?, false);
            let method = match img.method.as_ref().map(|m| (m, m.get_ref().as_str())) {
                None | Some((_, "sanboot")) => {
                    if let Some(md) = &img.memdisk {
                        cx.diags.push(
                            Diag::error("`memdisk` is only used with method = \"memdisk\"")
                                .at(loc(file, md), "not used by sanboot"),
                        );
                    }
                    IsoMethod::Sanboot
                }
                Some((m, "memdisk")) => match &img.memdisk {
                    Some(md) => IsoMethod::Memdisk(artifact(cx, file, md, false)?),
                    None => {
                        cx.diags.push(
                            Diag::error("method = \"memdisk\" needs the memdisk kernel")
                                .at(loc(file, m), "memdisk is not given")
                                .help("add memdisk = { path = \"artifacts/memdisk\" } (from syslinux) or a pinned url"),
                        );
                        return None;
                    }
                },
                Some((m, other)) => {
                    cx.diags.push(
                        Diag::error(format!("unknown method `{other}`"))
                            .at(loc(file, m), "expected \"sanboot\" or \"memdisk\"")
                            .help_opt(did_you_mean(other, ["sanboot", "memdisk"])),
                    );
                    return None;
                }
            };
            Boot::Iso { iso: iso?, method }
        }
        "chain" => Boot::Chain(artifact(cx, file, img.chain.as_ref()?, true)?),
        _ => {
            let l = img.local.as_ref()?;
            if !*l.get_ref() {
                cx.diags.push(
                    Diag::error("local = false boots nothing")
                        .at(loc(file, l), "only `local = true` is meaningful")
                        .help("to boot from the local disk write local = true; otherwise give kernel, iso or chain"),
                );
                return None;
            }
            Boot::Local
        }
    };
    Some(Image {
        name: name.to_string(),
        description: description(cx, file, img.description.as_ref()),
        boot,
        kernel_args: templates_list(&img.kernel_args, file),
        vars: img.vars.clone(),
        file,
    })
}

/// A description: free text that may be shown in the fallback menu.
fn description(cx: &mut Ctx, file: FileId, d: Option<&S<String>>) -> String {
    let Some(d) = d else { return String::new() };
    if let Some(why) = text_unsafe_reason(d.get_ref()) {
        cx.diags.push(
            Diag::error("description cannot be written into an iPXE menu")
                .at(loc(file, d), why)
                .help("descriptions are shown in the fallback menu: plain words only"),
        );
        return String::new();
    }
    d.get_ref().clone()
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks one artifact. `live_ok`: an unpinned URL is allowed (chain targets
/// are boot services, not files).
fn artifact(cx: &mut Ctx, file: FileId, a: &S<model::Artifact>, live_ok: bool) -> Option<Artifact> {
    let al = loc(file, a);
    let a = a.get_ref();
    match (&a.path, &a.url) {
        (Some(_), Some(u)) => {
            cx.diags.push(
                Diag::error("an artifact has either `path` or `url`, not both")
                    .at(loc(file, u), "second source")
                    .help(
                        "use path for a local file, url (with sha256 or blake3) for a remote one",
                    ),
            );
            None
        }
        (None, None) => {
            cx.diags.push(
                Diag::error("an artifact needs `path` or `url`")
                    .at(al, "no source")
                    .help("write { path = \"artifacts/…\" } or { url = \"https://…\", sha256 = \"…\" }"),
            );
            None
        }
        (Some(p), None) => {
            for pin in [&a.sha256, &a.blake3].into_iter().flatten() {
                cx.diags.push(
                    Diag::error("local artifacts are not pinned by hand")
                        .at(loc(file, pin), "remove this")
                        .help(
                            "bootc hashes local files itself (BLAKE3) and names them by that hash",
                        ),
                );
            }
            local_artifact(cx, file, p)
        }
        (None, Some(u)) => {
            let url = u.get_ref();
            let ul = loc(file, u);
            let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
            if !scheme_ok {
                cx.diags.push(
                    Diag::error(format!("artifact URL `{url}` is not http or https"))
                        .at(ul.clone(), "unsupported scheme")
                        .help("iPXE fetches artifacts over http:// or https://; for a local file use path = \"…\""),
                );
                return None;
            }
            if let Some(why) = unsafe_reason(url) {
                cx.diags.push(
                    Diag::error("artifact URL cannot be written into an iPXE script")
                        .at(ul.clone(), why),
                );
                return None;
            }
            let path_part = url.split(['?', '#']).next().unwrap_or(url);
            let after_scheme = path_part.split_once("://").map(|x| x.1).unwrap_or("");
            let path_part = if after_scheme.contains('/') {
                path_part
            } else {
                ""
            };
            let file_name = path_part.rsplit('/').next().unwrap_or("").to_string();
            let pins: Vec<&S<String>> = [&a.sha256, &a.blake3].into_iter().flatten().collect();
            if pins.is_empty() {
                if live_ok {
                    return Some(Artifact::Live { url: url.clone() });
                }
                cx.diags.push(
                    Diag::error(format!("remote artifact `{url}` is not pinned"))
                        .at(ul, "no sha256 or blake3")
                        .help("add sha256 = \"…\" (or blake3 = \"…\") so a changed file on the mirror cannot change what boots"),
                );
                return None;
            }
            if pins.len() > 1 {
                cx.diags.push(
                    Diag::error("give one pin, sha256 or blake3, not both")
                        .at(loc(file, pins[1]), "second pin"),
                );
                return None;
            }
            let pin = pins[0];
            if !is_hex64(pin.get_ref()) {
                let kind = if a.sha256.is_some() {
                    "sha256"
                } else {
                    "blake3"
                };
                cx.diags.push(Diag::error(format!("invalid {kind} pin")).at(
                    loc(file, pin),
                    format!(
                        "{} characters; a {kind} is 64 hex digits",
                        pin.get_ref().len()
                    ),
                ));
                return None;
            }
            if file_name.is_empty() {
                cx.diags.push(
                    Diag::error(format!("artifact URL `{url}` names no file"))
                        .at(ul, "ends with '/'"),
                );
                return None;
            }
            Some(Artifact::Remote {
                url: url.clone(),
                file_name,
                sha256: a.sha256.as_ref().map(|s| s.get_ref().to_ascii_lowercase()),
                blake3: a.blake3.as_ref().map(|s| s.get_ref().to_ascii_lowercase()),
            })
        }
    }
}

fn local_artifact(cx: &mut Ctx, file: FileId, p: &S<String>) -> Option<Artifact> {
    let written = p.get_ref();
    let pl = loc(file, p);
    let path = cx.loaded.root.join(written);
    // Resolved in user space to find its artifact root, then opened once
    // beneath that root: what was checked is what is hashed and copied.
    let canonical = match path.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` does not exist"))
                    .at(pl, "no such file")
                    .help("put the file there (artifacts/ is often kept out of git and filled by a script), or fix the path"),
            );
            return None;
        }
    };
    let outside = |cx: &mut Ctx, to: &Path| {
        let roots = cx
            .artifact_roots
            .iter()
            .map(|r| cx.shown(r.path()))
            .collect::<Vec<_>>()
            .join(", ");
        cx.diags.push(
            Diag::error(format!("local artifact `{written}` is outside every artifact root"))
                .at(pl.clone(), format!("resolves to {}", cx.shown(to)))
                .help(format!("artifact roots: {roots}; add a root to [site] artifact-roots if this file is meant to be public")),
        );
    };
    let Some(root) = cx
        .artifact_roots
        .iter()
        .position(|r| canonical.starts_with(r.path()))
    else {
        if !canonical.is_file() {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` is not a regular file"))
                    .at(pl, "not a file"),
            );
        } else {
            outside(cx, &canonical);
        }
        return None;
    };
    let source = match cx.opened.get(&canonical) {
        Some(f) => f.clone(),
        None => {
            let r = &cx.artifact_roots[root];
            let rel = canonical.strip_prefix(r.path()).unwrap_or(&canonical);
            match r.open(rel) {
                Ok(f) => {
                    let f = Arc::new(f);
                    cx.opened.insert(canonical.clone(), f.clone());
                    f
                }
                Err(OpenError::Escape(to)) => {
                    outside(cx, to.as_deref().unwrap_or(&canonical));
                    return None;
                }
                Err(OpenError::NotRegular(what)) => {
                    cx.diags.push(
                        Diag::error(format!("local artifact `{written}` is not a regular file"))
                            .at(
                                pl,
                                if what == "a folder" {
                                    "not a file".to_string()
                                } else {
                                    format!("{what}, not a file")
                                },
                            ),
                    );
                    return None;
                }
                Err(e) => {
                    cx.diags.push(
                        Diag::error(format!("local artifact `{written}` cannot be read: {e}"))
                            .at(pl, "unreadable"),
                    );
                    return None;
                }
            }
        }
    };
    let file_name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name_in_path = Path::new(written)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(file_name);
    if !is_plain_name(&name_in_path)
        && !name_in_path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+~".contains(&b))
    {
        cx.diags.push(
            Diag::error(format!(
                "artifact file name `{name_in_path}` cannot be used in a URL"
            ))
            .at(pl, "unsafe file name")
            .help("rename it with letters, digits, '.', '_', '-', '+' and '~' only"),
        );
        return None;
    }
    Some(Artifact::Local {
        source,
        path: written.clone(),
        file_name: name_in_path,
        size: 0,
        blake3: String::new(),
    })
}

fn role(cx: &mut Ctx, name: &str, file: FileId, r: &model::RoleFile) -> Role {
    name_check(cx, "role", name, file);
    let known_role = |n: &str| cx.loaded.roles.contains_key(n);
    if let Some(e) = &r.extends
        && !known_role(e.get_ref())
    {
        let hint = did_you_mean(e.get_ref(), cx.loaded.roles.keys().map(String::as_str));
        cx.diags.push(
            Diag::error(format!("role `{}` does not exist", e.get_ref()))
                .at(loc(file, e), "no such role")
                .help_opt(hint),
        );
    }
    if let Some(i) = &r.image
        && !cx.loaded.images.contains_key(i.get_ref())
    {
        let hint = did_you_mean(i.get_ref(), cx.loaded.images.keys().map(String::as_str));
        cx.diags.push(
            Diag::error(format!("image `{}` does not exist", i.get_ref()))
                .at(loc(file, i), "no such image")
                .help_opt(hint.or_else(|| {
                    Some(format!(
                        "images are the files images/*.toml; this needs images/{}.toml",
                        i.get_ref()
                    ))
                })),
        );
    }
    let template_ref = |cx: &mut Ctx, t: &S<String>, what: &str| {
        if cx.loaded.unreadable_templates.contains(t.get_ref()) {
            cx.diags.push(
                Diag::error(format!("template `{}` cannot be read", t.get_ref())).at(
                    loc(file, t),
                    format!("templates/{} is unreadable (see its error)", t.get_ref()),
                ),
            );
        } else if !cx.loaded.templates.contains_key(t.get_ref()) {
            let hint = did_you_mean(t.get_ref(), cx.loaded.templates.keys().map(String::as_str));
            cx.diags.push(
                Diag::error(format!("template `{}` does not exist", t.get_ref()))
                    .at(loc(file, t), format!("no templates/{}", t.get_ref()))
                    .help_opt(hint.or_else(|| {
                        Some(format!(
                            "{what} templates live under templates/, named relative to it"
                        ))
                    })),
            );
        }
    };
    if let Some(s) = &r.script {
        template_ref(cx, s, "script");
    }
    let mut files = BTreeMap::new();
    for (fname, tpl) in &r.files {
        if !is_plain_name(fname.get_ref()) {
            cx.diags.push(
                Diag::error(format!("invalid file name `{}`", fname.get_ref()))
                    .at(loc(file, fname), "not a plain file name")
                    .help("per-machine files are served at machines/<name>/<file>: use letters, digits, '.', '_' and '-'"),
            );
        }
        template_ref(cx, tpl, "file");
        files.insert(fname.get_ref().clone(), tpl.get_ref().clone());
    }
    Role {
        name: name.to_string(),
        description: description(cx, file, r.description.as_ref()),
        extends: r
            .extends
            .as_ref()
            .map(|e| e.get_ref().clone())
            .filter(|e| known_role(e)),
        // Kept even when unknown (reported above), so no second error follows.
        image: r.image.as_ref().map(|i| i.get_ref().clone()),
        kernel_args: templates_list(&r.kernel_args, file),
        vars: r.vars.clone(),
        script: r.script.as_ref().map(|s| s.get_ref().clone()),
        files,
        file,
    }
}

fn check_extends(cx: &mut Ctx, roles: &BTreeMap<String, Role>) {
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for start in roles.keys() {
        let mut path: Vec<&str> = vec![start];
        let mut cur = start.as_str();
        while let Some(next) = roles.get(cur).and_then(|r| r.extends.as_deref()) {
            if let Some(pos) = path.iter().position(|p| *p == next) {
                let cycle: Vec<&str> = path[pos..].to_vec();
                let mut key = cycle.clone();
                key.sort();
                if reported.insert(key.join(",")) {
                    let first = cycle[0];
                    let (file, r) = &cx.loaded.roles[first];
                    let l = r
                        .extends
                        .as_ref()
                        .map(|e| loc(*file, e))
                        .unwrap_or(Loc::new(*file, 0..0));
                    let mut ring = cycle.clone();
                    ring.push(first);
                    cx.diags.push(
                        Diag::error(format!(
                            "roles extend each other in a cycle: {}",
                            ring.join(" -> ")
                        ))
                        .at(l, "this starts the cycle")
                        .help("a role can extend another, but never itself through others"),
                    );
                }
                break;
            }
            path.push(next);
            cur = next;
        }
    }
}

/// The image a role boots, following `extends`, or None (cycle, none given).
pub fn role_image<'a>(roles: &'a BTreeMap<String, Role>, name: &str) -> Option<&'a str> {
    let mut cur = roles.get(name)?;
    for _ in 0..=roles.len() {
        if let Some(i) = &cur.image {
            return Some(i);
        }
        cur = roles.get(cur.extends.as_deref()?)?;
    }
    None
}

fn merged_vars(base: &Vars, over: &Vars) -> Vars {
    let mut v = base.clone();
    v.extend(over.iter().map(|(k, x)| (k.clone(), x.clone())));
    v
}

fn machines(cx: &mut Ctx, roles: &BTreeMap<String, Role>, dhcp: Option<&Dhcp>) -> Vec<Machine> {
    let mut out: Vec<Machine> = Vec::new();
    let mut names: HashMap<String, Loc> = HashMap::new();
    let mut macs: HashMap<Mac, (Loc, String)> = HashMap::new();
    // Addresses taken: the DHCP servers' first (a machine may not reserve
    // them), then each machine's.
    let mut ips: HashMap<Ipv4Addr, (Loc, String)> = match dhcp {
        Some(_) => server_addresses(cx),
        None => HashMap::new(),
    };
    let mut role_errors: BTreeSet<(FileId, usize)> = BTreeSet::new();
    for (file, mf) in &cx.loaded.machine_files {
        let file = *file;
        let d = &mf.defaults;
        if let Some(r) = &d.role {
            check_role_ref(cx, roles, file, r, &mut role_errors);
        }
        for m in &mf.machine {
            let ml = loc(file, m);
            let m = m.get_ref();
            let name = m.name.get_ref();
            let nl = loc(file, &m.name);
            if !is_host_label(name) {
                cx.diags.push(
                    Diag::error(format!("machine name `{name}` is not a valid host name"))
                        .at(nl.clone(), "not an RFC 1123 label")
                        .help(
                            "use 1 to 63 letters, digits and '-', not starting or ending with '-'",
                        ),
                );
            }
            let key = name.to_ascii_lowercase();
            if let Some(first) = names.get(&key) {
                cx.diags.push(
                    Diag::error(format!("machine name `{name}` is used twice"))
                        .at(nl.clone(), "second machine")
                        .also(first.clone(), "first machine")
                        .help("machine names become host names and folders: make them unique"),
                );
            } else {
                names.insert(key, nl.clone());
            }

            // MACs
            let written: Vec<&S<String>> = match (&m.mac, &m.macs) {
                (Some(_), Some(list)) => {
                    cx.diags.push(
                        Diag::error(format!("machine `{name}` has both `mac` and `macs`"))
                            .at(loc(file, list), "second list of MACs")
                            .help(
                                "use mac = \"…\" for one NIC or macs = [\"…\", \"…\"] for several",
                            ),
                    );
                    Vec::new()
                }
                (Some(one), None) => vec![one],
                (None, Some(list)) => {
                    if list.get_ref().is_empty() {
                        cx.diags.push(
                            Diag::error(format!("machine `{name}` has an empty `macs`"))
                                .at(loc(file, list), "no MAC address"),
                        );
                    }
                    list.get_ref().iter().collect()
                }
                (None, None) => {
                    cx.diags.push(
                        Diag::error(format!("machine `{name}` has no MAC address"))
                            .at(ml.clone(), "missing `mac`")
                            .help("add mac = \"52:54:00:…\" (or macs = […] for several NICs)"),
                    );
                    Vec::new()
                }
            };
            let mut parsed = Vec::new();
            for w in written {
                let wl = loc(file, w);
                match Mac::parse(w.get_ref()) {
                    None => cx.diags.push(
                        Diag::error(format!("invalid MAC address `{}`", w.get_ref()))
                            .at(wl, "not a MAC address")
                            .help("write six pairs of hex digits separated by ':' or '-', like 52:54:00:aa:bb:01"),
                    ),
                    Some(mac) if mac.is_zero() => cx.diags.push(
                        Diag::error(format!("MAC address `{}` is all zeros", w.get_ref()))
                            .at(wl, "no NIC has this address")
                            .help("firmware reports 00:00:00:00:00:00 when it knows no address: write the NIC's own, from its label or the DHCP server's log"),
                    ),
                    Some(mac) if mac.is_broadcast() => cx.diags.push(
                        Diag::error(format!("MAC address `{}` is the broadcast address", w.get_ref()))
                            .at(wl, "every NIC of the segment, not one")
                            .help("write the NIC's own address, from its label or the DHCP server's log"),
                    ),
                    Some(mac) if mac.is_group() => cx.diags.push(
                        Diag::error(format!("MAC address `{}` is a group (multicast) address", w.get_ref()))
                            .at(wl, "the lowest bit of the first byte is set")
                            .help("a NIC's own address is unicast: check for a typo in the first byte"),
                    ),
                    Some(mac) => {
                        if let Some((first, owner)) = macs.get(&mac) {
                            cx.diags.push(
                                Diag::error(format!("MAC address {mac} is used twice"))
                                    .at(wl, format!("again here, for `{name}`"))
                                    .also(first.clone(), format!("first used by `{owner}`"))
                                    .help("one NIC belongs to one machine"),
                            );
                        } else {
                            macs.insert(mac, (wl, name.clone()));
                            parsed.push(mac);
                        }
                    }
                }
            }

            // IP
            let ip = m.ip.as_ref().and_then(|s| {
                let ip = parse_ip(file, s, "IP address", &mut cx.diags)?;
                let il = loc(file, s);
                if let Some((first, owner)) = ips.get(&ip) {
                    cx.diags.push(
                        Diag::error(format!("IP address {ip} is used twice"))
                            .at(il.clone(), format!("again here, for `{name}`"))
                            .also(first.clone(), format!("first used by {owner}")),
                    );
                } else {
                    ips.insert(ip, (il.clone(), format!("`{name}`")));
                }
                if let Some(d) = dhcp {
                    check_ip_in_subnets(cx, d, ip, il);
                }
                Some(ip)
            });

            // Role
            let role = match (&m.role, &d.role) {
                (Some(r), _) | (None, Some(r)) => {
                    check_role_ref(cx, roles, file, r, &mut role_errors);
                    r.get_ref().clone()
                }
                (None, None) => {
                    cx.diags.push(
                        Diag::error(format!("machine `{name}` has no role"))
                            .at(ml.clone(), "missing `role`")
                            .help("add role = \"…\" here or in the file's [defaults]"),
                    );
                    String::new()
                }
            };
            let mut labels: BTreeMap<String, String> = d
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect();
            labels.extend(m.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())));
            let mut kernel_args = templates_list(&d.kernel_args, file);
            kernel_args.extend(templates_list(&m.kernel_args, file));
            out.push(Machine {
                name: name.clone(),
                macs: parsed,
                ip,
                role,
                kernel_args,
                labels,
                vars: merged_vars(&d.vars, &m.vars),
                loc: nl,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn check_role_ref(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    file: FileId,
    r: &S<String>,
    seen: &mut BTreeSet<(FileId, usize)>,
) {
    if !seen.insert((file, r.span().start)) {
        return;
    }
    let name = r.get_ref();
    if !cx.loaded.roles.contains_key(name) {
        let hint = did_you_mean(name, cx.loaded.roles.keys().map(String::as_str));
        cx.diags.push(
            Diag::error(format!("role `{name}` does not exist"))
                .at(loc(file, r), "no such role")
                .help_opt(hint.or_else(|| {
                    Some(format!(
                        "roles are the files roles/*.toml; this needs roles/{name}.toml"
                    ))
                })),
        );
    } else if roles.contains_key(name)
        && role_image(roles, name).is_none()
        && cx.loaded.roles[name]
            .1
            .extends
            .as_ref()
            .is_none_or(|e| cx.loaded.roles.contains_key(e.get_ref()))
    {
        // Report once per role, at the role's file.
        let (rf, _) = &cx.loaded.roles[name];
        let key = (*rf, usize::MAX);
        if seen.insert(key) && !has_cycle(roles, name) {
            cx.diags.push(
                Diag::error(format!("role `{name}` boots no image"))
                    .at(
                        Loc::new(*rf, 0..0),
                        "no `image`, here or in the roles it extends",
                    )
                    .also(loc(file, r), "used here"),
            );
        }
    }
}

fn has_cycle(roles: &BTreeMap<String, Role>, name: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut cur = name;
    while let Some(next) = roles.get(cur).and_then(|r| r.extends.as_deref()) {
        if !seen.insert(next) {
            return true;
        }
        cur = next;
    }
    false
}

/// The next-server's and the gateways' addresses, with where they are set.
fn server_addresses(cx: &Ctx) -> HashMap<Ipv4Addr, (Loc, String)> {
    let mut out = HashMap::new();
    let Some((file, Some(d))) = cx.loaded.site.as_ref().map(|(f, s)| (*f, s.dhcp.as_ref())) else {
        return out;
    };
    let d = d.get_ref();
    let mut add = |s: &S<String>, what: String| {
        if let Ok(ip) = s.get_ref().parse::<Ipv4Addr>() {
            out.entry(ip).or_insert((loc(file, s), what));
        }
    };
    add(
        &d.next_server,
        "the next-server (the TFTP server)".to_string(),
    );
    for sn in &d.subnet {
        if let Some(g) = &sn.get_ref().gateway {
            add(g, format!("the gateway of {}", sn.get_ref().cidr.get_ref()));
        }
    }
    out
}

fn check_ip_in_subnets(cx: &mut Ctx, d: &Dhcp, ip: Ipv4Addr, il: Loc) {
    if d.subnets.is_empty() {
        return; // no subnet, or none valid: reported at [dhcp] already
    }
    let Some(sn) = d.subnets.iter().find(|s| s.cidr.contains(&ip)) else {
        let nets = d
            .subnets
            .iter()
            .map(|s| s.cidr.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        cx.diags.push(
            Diag::error(format!("IP address {ip} is not inside any subnet"))
                .at(il, "outside every [[dhcp.subnet]]")
                .help(format!("subnets: {nets}")),
        );
        return;
    };
    let net = sn.cidr;
    let problem = if net.prefix_len() < 31 && ip == net.network() {
        Some((
            format!("IP address {ip} is the network address of {net}"),
            "network address",
        ))
    } else if net.prefix_len() < 31 && ip == net.broadcast() {
        Some((
            format!("IP address {ip} is the broadcast address of {net}"),
            "broadcast address",
        ))
    } else if sn.pool.is_some_and(|(a, b)| a <= ip && ip <= b) {
        let (a, b) = sn.pool.unwrap_or((ip, ip));
        Some((
            format!("IP address {ip} is inside the dynamic pool {a}-{b}"),
            "inside the pool",
        ))
    } else {
        None
    };
    if let Some((msg, label)) = problem {
        cx.diags.push(
            Diag::error(msg)
                .at(il, label)
                .help("fixed addresses must be outside the pool and be usable host addresses"),
        );
    }
}

/// Hashes every local artifact (in parallel, each file once) and fills in
/// sizes and hashes. I/O errors become diagnostics naming the path.
pub fn hash_artifacts(site: &mut Site, diags: &mut Diags) {
    let mut files: BTreeMap<PathBuf, Arc<Opened>> = BTreeMap::new();
    for img in site.images.values() {
        for a in img.boot.artifacts() {
            if let Artifact::Local { source, .. } = a {
                files.insert(source.path.clone(), source.clone());
            }
        }
    }
    // From the descriptor opened at validation, never by name again.
    let hashed: Vec<(PathBuf, std::io::Result<(u64, String)>)> =
        files.into_par_iter().map(|(p, f)| (p, f.hash())).collect();
    let mut table = HashMap::new();
    for (p, r) in hashed {
        match r {
            Ok(v) => {
                table.insert(p, v);
            }
            Err(e) => diags.push(Diag::error(format!("cannot read {}: {e}", p.display()))),
        }
    }
    let fill = |a: &mut Artifact| {
        if let Artifact::Local {
            source,
            size,
            blake3,
            ..
        } = a
            && let Some((s, h)) = table.get(&source.path)
        {
            *size = *s;
            *blake3 = h.clone();
        }
    };
    for img in site.images.values_mut() {
        match &mut img.boot {
            Boot::Kernel { kernel, initrds } => {
                fill(kernel);
                initrds.iter_mut().for_each(fill);
            }
            Boot::Iso { iso, method } => {
                fill(iso);
                if let IsoMethod::Memdisk(m) = method {
                    fill(m);
                }
            }
            Boot::Chain(a) => fill(a),
            Boot::Local => {}
        }
    }
}
