//! roles/: what each role sets, the references between roles, images and
//! templates, and the roles the machines name.

use std::collections::{BTreeMap, BTreeSet};

use super::{Ctx, description, loc, name_check, templates_list};
use crate::diag::{Diag, FileId, Loc, did_you_mean};
use crate::ipxe::is_plain_name;
use crate::model::{self, S};
use crate::site::*;

pub(super) fn role(cx: &mut Ctx, name: &str, file: FileId, r: &model::RoleFile) -> Role {
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
        installer: r.installer.as_ref().and_then(|i| {
            if known_role(i.get_ref()) {
                return Some(i.get_ref().clone());
            }
            let hint = did_you_mean(i.get_ref(), cx.loaded.roles.keys().map(String::as_str));
            cx.diags.push(
                Diag::error(format!("installer role `{}` does not exist", i.get_ref()))
                    .at(loc(file, i), "no such role")
                    .help_opt(hint),
            );
            None
        }),
        secure_boot: r.secure_boot.as_ref().map(|b| *b.get_ref()),
        kernel_args: templates_list(&r.kernel_args, file),
        vars: r.vars.clone(),
        script: r.script.as_ref().map(|s| s.get_ref().clone()),
        files,
        file,
    }
}

pub(super) fn check_extends(cx: &mut Ctx, roles: &BTreeMap<String, Role>) {
    // Each role is walked once: a walk stops at a role an earlier walk
    // finished, so a chain thousands of roles deep costs its length.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in roles.keys() {
        let mut path: Vec<&str> = Vec::new();
        let mut on_path: std::collections::HashMap<&str, usize> = Default::default();
        let mut cur = start.as_str();
        while !done.contains(cur) {
            if let Some(&pos) = on_path.get(cur) {
                let cycle: Vec<&str> = path[pos..].to_vec();
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
                break;
            }
            on_path.insert(cur, path.len());
            path.push(cur);
            match roles.get(cur).and_then(|r| r.extends.as_deref()) {
                Some(next) => cur = next,
                None => break,
            }
        }
        done.extend(path);
    }
}

/// The first of role `name` and the roles it extends that has `key`, its
/// value; None when none has (or on a cycle).
pub(super) fn in_chain<'a>(
    roles: &'a BTreeMap<String, Role>,
    name: &str,
    key: impl Fn(&'a Role) -> Option<&'a str>,
) -> Option<&'a str> {
    let mut cur = roles.get(name)?;
    for _ in 0..=roles.len() {
        if let Some(v) = key(cur) {
            return Some(v);
        }
        cur = roles.get(cur.extends.as_deref()?)?;
    }
    None
}

/// A reference to a role: it exists (reported once per place), and, when
/// `needs_image` (the machine has no `image` of its own), it boots an image
/// (reported once per role).
pub(super) fn check_role_ref(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    file: FileId,
    r: &S<String>,
    needs_image: bool,
    seen: &mut BTreeSet<(FileId, usize)>,
) {
    let first = seen.insert((file, r.span().start));
    let name = r.get_ref();
    if !cx.loaded.roles.contains_key(name) {
        if !first {
            return;
        }
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
    } else if needs_image
        && roles.contains_key(name)
        && in_chain(roles, name, |r| r.image.as_deref()).is_none()
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
