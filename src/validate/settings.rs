//! `[site]`: the base URL, the artifact roots, the fallback, and the
//! warnings about what nothing uses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{Ctx, loc};
use crate::beneath::Root;
use crate::diag::{Diag, FileId, Lint, Loc, did_you_mean};
use crate::model::S;
use crate::site::*;

/// The base URL, with a trailing '/', when it is usable.
pub(super) fn base_url(cx: &mut Ctx, file: FileId, u: Option<&S<String>>) -> Option<String> {
    let u = u?;
    let text = u.get_ref();
    match crate::url::problem(text) {
        Some(why) => {
            cx.diags
                .push(Diag::error(format!("invalid base-url `{text}`")).at(loc(file, u), why));
            None
        }
        None => Some(if text.ends_with('/') {
            text.clone()
        } else {
            format!("{text}/")
        }),
    }
}

/// `allowed-hosts`: host names (no scheme, port or path), with base-url's
/// host added. None when not set.
pub(super) fn allowed_hosts(
    cx: &mut Ctx,
    file: FileId,
    s: &crate::model::SiteSection,
    base_url: Option<&str>,
) -> Option<crate::hosts::Allowed> {
    let list = s.allowed_hosts.as_ref()?;
    let mut hosts: Vec<String> = base_url
        .and_then(crate::hosts::host_of)
        .into_iter()
        .collect();
    for h in list {
        let text = h.get_ref();
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
        if plain {
            hosts.push(text.to_ascii_lowercase());
        } else {
            cx.diags.push(
                Diag::error(format!("invalid allowed host `{text}`"))
                    .at(loc(file, h), "not a host name or address")
                    .help("write the host alone, like mirror.lab.internal or 10.77.0.1: no scheme, port or path"),
            );
        }
    }
    Some(crate::hosts::Allowed { hosts })
}

pub(super) fn artifact_roots(cx: &mut Ctx, file: FileId, roots: Option<&[S<String>]>) -> Vec<Root> {
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
                Diag::warning(Lint::MissingArtifactRoot, format!("artifact root `{}` is not a folder", r.get_ref()))
                    .at(loc(file, r), "not found")
                    .help("local artifacts can only come from artifact roots that exist"),
            ),
        }
    }
    out
}

pub(super) fn fallback(
    cx: &mut Ctx,
    file: FileId,
    f: Option<&S<String>>,
    roles: &BTreeMap<String, Role>,
) -> Fallback {
    let Some(f) = f else {
        return Fallback::Local;
    };
    match f.get_ref().as_str() {
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
                    .at(loc(file, f), "no such role")
                    .help_opt(hint),
                );
            }
            Fallback::Role(r.to_string())
        }
    }
}

/// `[site] menu`: roles that exist, each once, with `fallback = "menu"`
/// (whether each boots without a machine is checked where it is resolved).
pub(super) fn menu(
    cx: &mut Ctx,
    file: FileId,
    s: &crate::model::SiteSection,
    fallback: &Fallback,
    roles: &BTreeMap<String, Role>,
) -> Option<Vec<(String, Loc)>> {
    let list = s.menu.as_ref()?;
    if *fallback != Fallback::Menu {
        let at = list
            .first()
            .map(|r| loc(file, r))
            .or_else(|| s.fallback.as_ref().map(|f| loc(file, f)));
        cx.diags.push(
            Diag::error("`menu` is set, but the fallback is not the menu")
                .at_opt(at, "used only with fallback = \"menu\"")
                .help("set fallback = \"menu\", or remove `menu`"),
        );
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for r in list {
        let name = r.get_ref();
        if !roles.contains_key(name) {
            let hint = did_you_mean(name, roles.keys().map(String::as_str));
            cx.diags.push(
                Diag::error(format!("menu role `{name}` does not exist"))
                    .at(loc(file, r), "no such role")
                    .help_opt(hint),
            );
        } else if !seen.insert(name.as_str()) {
            cx.diags.push(
                Diag::error(format!("menu role `{name}` is listed twice"))
                    .at(loc(file, r), "listed again"),
            );
        } else {
            out.push((name.clone(), loc(file, r)));
        }
    }
    Some(out)
}

/// `[site] allow`: the kinds of warnings silenced, by name.
pub(super) fn allow(cx: &mut Ctx, file: FileId, names: Option<&[S<String>]>) -> BTreeSet<Lint> {
    let mut out = BTreeSet::new();
    for n in names.unwrap_or_default() {
        match Lint::from_name(n.get_ref()) {
            Some(l) => {
                out.insert(l);
            }
            None => {
                let hint = did_you_mean(n.get_ref(), Lint::ALL.iter().map(|l| l.name()));
                cx.diags.push(
                    Diag::error(format!("`{}` is not a kind of warning", n.get_ref()))
                        .at(loc(file, n), "unknown warning")
                        .help(hint.unwrap_or_else(|| {
                            let all: Vec<&str> = Lint::ALL.iter().map(|l| l.name()).collect();
                            format!("the kinds are {}", all.join(", "))
                        })),
                );
            }
        }
    }
    out
}

/// Warnings: the roles and images that nothing uses.
pub(super) fn warn_unused<A>(
    cx: &mut Ctx,
    fallback: &Fallback,
    menu: Option<&[(String, Loc)]>,
    machines: &[Machine],
    roles: &BTreeMap<String, Role>,
    images: &BTreeMap<String, Image<A>>,
) {
    let mut used_roles: BTreeSet<&str> = machines.iter().map(|m| m.role.as_str()).collect();
    // Installer roles are used by the machines of the roles that name them.
    used_roles.extend(roles.values().filter_map(|r| r.installer.as_deref()));
    if let Fallback::Role(r) = fallback {
        used_roles.insert(r);
    }
    match (fallback, menu) {
        (Fallback::Menu, Some(menu)) => used_roles.extend(menu.iter().map(|(r, _)| r.as_str())),
        (Fallback::Menu, None) => used_roles.extend(roles.keys().map(String::as_str)),
        _ => {}
    }
    let mut stack: Vec<&str> = used_roles.iter().copied().collect();
    let mut used_images: BTreeSet<&str> =
        machines.iter().filter_map(|m| m.image.as_deref()).collect();
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
    for (rname, role) in roles {
        if !used_roles.contains(rname.as_str()) {
            cx.diags.push(
                Diag::warning(
                    Lint::UnusedRole,
                    format!("role `{rname}` is not used by any machine"),
                )
                .at(Loc::new(role.file, 0..0), "unused role")
                .help("remove the file, or give it to a machine with role = \"…\""),
            );
        }
    }
    for (iname, image) in images {
        if !used_images.contains(iname.as_str()) {
            cx.diags.push(
                Diag::warning(
                    Lint::UnusedImage,
                    format!("image `{iname}` is not used by any role or machine"),
                )
                .at(Loc::new(image.file, 0..0), "unused image")
                .help("remove the file, or point a role at it with image = \"…\""),
            );
        }
    }
}
