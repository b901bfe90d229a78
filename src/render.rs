//! Stage 4: turn the resolved plan into the output tree, in memory: every
//! file of public/ as bytes (or, for local artifacts, a file to copy).

use minijinja::Value;
use rayon::prelude::*;

use crate::context::{DhcpContext, DhcpSite};
use crate::diag::{Diag, Diags, Sources};
use crate::loader::Renderer;
use crate::manifest::{MANIFEST, Manifest};
use crate::resolve::Plan;
use crate::site::{Artifact, Image, Site, UefiLoader};
use crate::templates::val;
use crate::tree::{Bytes, Content, Tree};

/// What [`render`] adds besides the files every tree has.
#[derive(Clone, Copy, Default)]
pub struct Extras<'a> {
    /// The fleet's state from web-server logs, for the report.
    pub fleet: Option<&'a crate::status::Status>,
    /// Only what can find a problem (`bootc check`, which writes no tree):
    /// no plan.json, no machine index for the report (nothing in them can
    /// fail; the caller passes no `files` either).
    pub problems_only: bool,
}

/// The tree of a valid site's files: `files` (each machine's boot programs
/// and per-machine files, [`crate::fleet::compile`], and the loaders'
/// other programs, [`crate::loader::common`]), the local artifacts and
/// chainloaders (and with `grub_tftp`, what GRUB fetches over TFTP), and
/// the tree's marker. [`summaries`] and [`seal`] add the rest. A file that
/// cannot be read is added to `diags`.
pub fn files(
    site: &Site,
    plan: &Plan,
    grub_tftp: bool,
    mut files: Vec<(String, Bytes)>,
    diags: &mut Diags,
) -> Tree {
    // Sorted on all cores (stable: the map keeps the last of a path, as
    // it would have), then built at once, not inserted one by one.
    files.par_sort_by(|a, b| a.0.cmp(&b.0));
    let mut tree = Tree {
        files: files
            .into_iter()
            .map(|(path, bytes)| (path, Content::Bytes(bytes)))
            .collect(),
    };
    artifacts(site, plan, grub_tftp, &mut tree, diags);
    tree.add(crate::tree::MARKER, crate::tree::MARKER_TEXT);
    tree
}

/// Adds the summaries of the whole fleet to the tree: the DHCP
/// configurations, plan.json and the report ([`seal`] adds the manifest).
/// Template errors found on the way are added to `diags` (the caller must
/// not write the tree then).
pub fn summaries(
    site: &Site,
    r: Renderer,
    plan: &Plan,
    extras: Extras,
    tree: &mut Tree,
    diags: &mut Diags,
) {
    // They do not depend on each other: rendered at once.
    let (dhcp_files, (plan_json, report)) = rayon::join(
        || dhcp_files(site, r, plan, extras.problems_only),
        || {
            rayon::join(
                || (!extras.problems_only).then(|| plan.json()),
                || report(site, r, plan, extras, diags),
            )
        },
    );
    for file in dhcp_files {
        match file {
            Ok(Some((out, text))) => tree.add(out, text),
            Ok(None) => {}
            Err(d) => diags.push(*d),
        }
    }
    if let Some(plan_json) = plan_json {
        tree.add("plan.json", plan_json);
    }
    match report {
        Ok((page, index)) => {
            tree.add("report/index.html", page);
            if let Some(index) = index {
                tree.add(crate::context::INDEX_FILE, index);
            }
        }
        Err(d) => diags.push(*d),
    }
}

/// Adds the manifest of everything in `tree`: the last file of a build.
/// Returns its build-id.
pub fn seal(site: &Site, tree: &mut Tree) -> String {
    let manifest = Manifest::of(site, tree);
    let text = manifest.json();
    let build_id = manifest.build_id;
    tree.add(MANIFEST, text);
    build_id
}

/// Copies the local artifacts of `images` into the tree under `root`
/// (`http` or `tftp`), at their content-addressed paths.
fn copy_images<'a>(tree: &mut Tree, root: &str, images: impl IntoIterator<Item = &'a Image>) {
    for img in images {
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
                    format!("{root}/{path}"),
                    Content::Copy {
                        source: source.clone(),
                        size: *size,
                        blake3: blake3.clone(),
                    },
                );
            }
        }
    }
}

/// Local artifacts (under http/images/) and the iPXE chainloaders (tftp/,
/// the EFI one also in http/ for UEFI HTTP Boot), copied from their files;
/// with GRUB, shim and GRUB and what GRUB fetches over TFTP (the kernels
/// and initrds of the machines, and the fallback, that boot through them).
fn artifacts(site: &Site, plan: &Plan, grub_tftp: bool, tree: &mut Tree, diags: &mut Diags) {
    copy_images(tree, "http", site.images.values());
    if grub_tftp {
        for (name, f) in &site.uefi.loaders {
            tree.files.insert(
                format!("tftp/{}", name.file()),
                Content::Copy {
                    source: f.source.clone(),
                    size: f.size,
                    blake3: f.blake3.clone(),
                },
            );
        }
        copy_images(tree, "tftp", grub_images(site, plan));
    }
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
}

/// The images GRUB boots: those of machines booting through shim and GRUB,
/// and those the fallback may boot.
fn grub_images<'a>(site: &'a Site, plan: &Plan) -> Vec<&'a Image> {
    let mut names: std::collections::BTreeSet<&str> = plan
        .machines
        .iter()
        .filter(|m| UefiLoader::from_plan(&m.uefi_loader) == UefiLoader::ShimGrub)
        .map(|m| m.image.as_str())
        .collect();
    let fallback_roles: Vec<&str> = match &site.fallback {
        crate::site::Fallback::Role(r) => vec![r.as_str()],
        crate::site::Fallback::Menu => site.roles.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    names.extend(
        fallback_roles
            .into_iter()
            .filter_map(|r| site.image_of(r))
            .map(|i| i.name.as_str()),
    );
    names.iter().filter_map(|n| site.images.get(*n)).collect()
}

/// A file rendered, at its path (None when rendered for its problems
/// only), or the problem found.
type Rendered = Result<Option<(&'static str, String)>, Box<Diag>>;

/// dhcp/: the three DHCP server configurations, when `[dhcp]` is set
/// (rendered for their problems only, and not kept, with `problems_only`).
fn dhcp_files(site: &Site, r: Renderer, plan: &Plan, problems_only: bool) -> Vec<Rendered> {
    let Some(dhcp) = &site.dhcp else {
        return Vec::new();
    };
    let ctx = val(DhcpContext {
        site: DhcpSite {
            name: &site.name,
            base_url: site.base_url.as_deref(),
        },
        dhcp: crate::dhcp::view(site, dhcp, plan),
    });
    // Each a loop over the whole fleet: rendered at once.
    crate::dhcp::outputs(dhcp)
        .par_iter()
        .map(|(template, out)| match problems_only {
            true => r.check(template, &ctx, out).map(|()| None),
            false => r.render(template, &ctx, out).map(|text| Some((*out, text))),
        })
        .collect()
}

/// The report page, and its machine index (not with
/// [`Extras::problems_only`]).
fn report(
    site: &Site,
    r: Renderer,
    plan: &Plan,
    extras: Extras,
    diags: &Diags,
) -> Result<(String, Option<String>), Box<Diag>> {
    let ctx = report_context(
        site,
        r.sources,
        plan,
        extras.fleet,
        diags,
        None,
        Value::from(false),
    );
    let page = r.render("report.html.j2", &ctx, "report/index.html")?;
    let index =
        (!extras.problems_only).then(|| crate::context::index(site, plan, extras.fleet).script());
    Ok((page, index))
}

/// The template context of report.html.j2 (see [`context::report`]), with
/// `live`: false in a build; `bootc serve` renders the same page with its
/// live state there, and the machine index inline (`inline`: the JSON of
/// the build's report/machines.js).
pub fn report_context(
    site: &Site,
    sources: &Sources,
    plan: &Plan,
    fleet: Option<&crate::status::Status>,
    diags: &Diags,
    inline: Option<String>,
    live: Value,
) -> Value {
    let ctx = val(crate::context::report(
        site, sources, plan, fleet, diags, inline,
    ));
    minijinja::context! { live => live, ..ctx }
}
