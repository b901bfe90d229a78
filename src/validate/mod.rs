//! Stage 2: check the loaded files against every rule of the site format and
//! build the typed [`Site`]. Each problem becomes a diagnostic with its place;
//! checking goes on after a problem so that one run reports them all.
//!
//! One file per part of the site: `settings` (`[site]`), `dhcp`
//! (`[dhcp]`), `images` and `artifacts` (images/; local artifacts are
//! hashed here, so every `Artifact` of the site is complete), `roles`
//! (roles/) and `machines` (machines/).

mod artifacts;
mod claims;
mod content;
mod dhcp;
mod dhcp_options;
mod features;
mod images;
mod machines;
mod media;
mod roles;
mod settings;
mod uefi;

/// The features a custom iPXE build may declare (`[ipxe] features`).
pub use features::FEATURES as IPXE_FEATURES;
pub use uefi::missing_signed_loader;

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::beneath::{Opened, Root};
use crate::diag::{Diag, Diags, FileId, Loc};
use crate::ipxe::{is_plain_name, text_unsafe_reason, unsafe_reason};
use crate::load::Loaded;
use crate::model::S;
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
    /// `[site] vendor`: remote artifacts are downloaded (or taken from the
    /// cache), checked against their pins and served like local ones.
    vendor: bool,
    /// `check --online`: every remote artifact is downloaded again (never
    /// from the cache) and checked against its pin.
    online: bool,
    /// `[site] allowed-hosts`.
    allowed: Option<crate::hosts::Allowed>,
    /// `[ipxe] features` of a custom iPXE build.
    features: Vec<String>,
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

/// Validates the loaded site (`online`: every remote artifact is fetched
/// again and checked against its pin). Returns the site when it is usable
/// (even with errors in `diags`, so later stages can report more).
pub fn validate(loaded: &Loaded, online: bool) -> (Option<Site>, Diags) {
    let mut cx = Ctx {
        loaded,
        diags: Diags::default(),
        artifact_roots: Vec::new(),
        opened: HashMap::new(),
        vendor: false,
        online,
        allowed: None,
        features: Vec::new(),
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
    let base_url = settings::base_url(&mut cx, site_id, s.base_url.as_ref());
    cx.artifact_roots = settings::artifact_roots(&mut cx, site_id, s.artifact_roots.as_deref());
    cx.vendor = s.vendor.as_ref().is_some_and(|v| *v.get_ref());
    cx.allowed = settings::allowed_hosts(&mut cx, site_id, s, base_url.as_deref());
    cx.features = features::declared(&mut cx, site_id, site_file.ipxe.features.as_deref());
    let ipxe = crate::binaries::find(
        &loaded.root,
        site_id,
        site_file.ipxe.binaries.as_ref(),
        &mut cx.diags,
    );
    let uefi = uefi::section(&mut cx, site_id, site_file.uefi.as_ref());
    let dhcp = dhcp::section(&mut cx, site_id, site_file);
    // DHCP hands iPXE base-url's boot.ipxe.
    if let (Some(_), Some(u)) = (&dhcp, &s.base_url) {
        features::check_url(
            &mut cx,
            u.get_ref(),
            loc(site_id, u),
            features::BASE_URL_HELP,
        );
    }
    let media = media::section(&mut cx, site_id, site_file.media.as_ref(), s);

    // images/ and roles/
    let mut images = BTreeMap::new();
    for (iname, (file, img)) in &loaded.images {
        if let Some(i) = images::image(&mut cx, iname, *file, img) {
            images.insert(iname.clone(), i);
        }
    }
    let mut roles = BTreeMap::new();
    for (rname, (file, r)) in &loaded.roles {
        roles.insert(rname.clone(), roles::role(&mut cx, rname, *file, r));
    }
    roles::check_extends(&mut cx, &roles);
    let scripts: Vec<String> = roles.values().filter_map(|r| r.script.clone()).collect();
    features::check_scripts(&mut cx, &scripts);

    // machines/
    // Addresses are checked against the subnets only when every subnet was
    // understood (a broken subnet is reported once, not once per machine).
    let subnets_known = site_file
        .dhcp
        .as_ref()
        .is_some_and(|d| Some(d.get_ref().subnet.len()) == dhcp.as_ref().map(|x| x.subnets.len()));
    let (machines, reservations) = machines::machines(
        &mut cx,
        &roles,
        &images,
        dhcp.as_ref().filter(|_| subnets_known),
    );

    let fallback = settings::fallback(&mut cx, site_id, s.fallback.as_ref(), &roles);
    let menu = settings::menu(&mut cx, site_id, s, &fallback, &roles);
    let allow = settings::allow(&mut cx, site_id, s.allow.as_deref());
    settings::warn_unused(
        &mut cx,
        &fallback,
        menu.as_deref(),
        &machines,
        &roles,
        &images,
    );
    if dhcp.is_some() {
        machines::warn_unreserved(&mut cx, &machines);
    }
    let images = artifacts::hash_images(&mut cx, images);

    let site = Site {
        name,
        base_url,
        fallback,
        menu,
        allow,
        ipxe,
        uefi,
        dhcp,
        media,
        allowed_hosts: cx.allowed.clone(),
        machines,
        reservations,
        roles,
        images,
        templates: loaded.templates.clone(),
    };
    let uefi_at = site_file.uefi.as_ref().map(|u| {
        u.get_ref()
            .secure_boot
            .as_ref()
            .map(|b| loc(site_id, b))
            .unwrap_or_else(|| loc(site_id, u))
    });
    uefi::check(&mut cx, &site, uefi_at);
    (Some(site), cx.diags)
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
