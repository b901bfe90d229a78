//! Stage 4: turn the resolved plan into the output tree, in memory: every
//! file of public/ as bytes (or, for local artifacts, a file to copy).

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;
use rayon::prelude::*;
use serde::Serialize;

use crate::beneath::{Opened, open_anywhere};
use crate::context::{DhcpContext, DhcpSite};
use crate::diag::{Diag, Diags, Sources};
use crate::loader::{Files, Renderer};
use crate::resolve::{BootPlan, Plan};
use crate::site::{Artifact, Site};
use crate::templates::val;

/// One file of the output tree.
#[derive(Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    /// A local artifact or chainloader: copied from `source`, the file
    /// opened once at validation; its hash is already known.
    Copy {
        source: Arc<Opened>,
        size: u64,
        blake3: String,
    },
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Copy { size, .. } => *size,
        }
    }

    pub fn blake3(&self) -> String {
        match self {
            Content::Bytes(b) => blake3::hash(b).to_hex().to_string(),
            Content::Copy { blake3, .. } => blake3.clone(),
        }
    }
}

/// The whole tree, keyed by path relative to the output root ('/'-separated).
#[derive(Default)]
pub struct Tree {
    pub files: BTreeMap<String, Content>,
}

impl Tree {
    pub fn add(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), Content::Bytes(bytes.into()));
    }
}

pub const MANIFEST: &str = "http/manifest.json";
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    pub format: u32,
    pub site: String,
    pub build_id: String,
    pub files: Vec<ManifestFile>,
    pub remote: Vec<RemoteArtifact>,
}

#[derive(Serialize, serde::Deserialize, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

#[derive(Serialize)]
pub struct RemoteArtifact {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    pub images: Vec<String>,
}

/// Builds the tree of a valid site: the boot loader's `programs` (rendered
/// right after resolve), its entry program, the local artifacts and
/// chainloaders, the DHCP configurations, plan.json, the report and the
/// manifest. Template errors found on the way are added to `diags` (the
/// caller must not write the tree then).
pub fn render(
    site: &Site,
    r: Renderer,
    plan: &Plan,
    boot: &BootPlan,
    programs: Files,
    diags: &mut Diags,
) -> Tree {
    let mut tree = Tree::default();
    let entry = crate::loader::for_site(site).entry(r, boot, diags);
    for (path, text) in entry.into_iter().chain(programs) {
        tree.add(path, text);
    }
    for m in &plan.machines {
        for (name, content) in &m.file_contents {
            tree.add(format!("http/machines/{}/{name}", m.name), content.clone());
        }
    }
    artifacts(site, &mut tree, diags);
    // The large summaries do not depend on each other: render them at once.
    let (dhcp_files, (plan_json, report)) = rayon::join(
        || dhcp_files(site, r, plan),
        || {
            rayon::join(
                || serde_json::to_string_pretty(plan).expect("plan serializes") + "\n",
                || report(site, r, plan, diags),
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
    let manifest = manifest(site, &tree);
    tree.add(
        MANIFEST,
        serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n",
    );
    tree
}

/// Local artifacts (under http/images/) and the iPXE chainloaders (tftp/,
/// the EFI one also in http/ for UEFI HTTP Boot), copied from their files.
fn artifacts(site: &Site, tree: &mut Tree, diags: &mut Diags) {
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

/// The manifest of everything in `tree` (which must not hold the manifest).
pub fn manifest(site: &Site, tree: &Tree) -> Manifest {
    let files: Vec<ManifestFile> = tree
        .files
        .par_iter()
        // The signature is added after the manifest is made, so only the
        // manifest itself needs leaving out.
        .filter(|(p, _)| p.as_str() != MANIFEST)
        .map(|(path, c)| ManifestFile {
            path: path.clone(),
            size: c.size(),
            blake3: c.blake3(),
        })
        .collect();
    let mut remote: BTreeMap<(String, Option<String>, Option<String>), Vec<String>> =
        BTreeMap::new();
    for img in site.images.values() {
        for a in img.boot.artifacts() {
            if let Artifact::Remote {
                url,
                sha256,
                blake3,
                ..
            } = a
            {
                remote
                    .entry((url.clone(), sha256.clone(), blake3.clone()))
                    .or_default()
                    .push(img.name.clone());
            }
        }
    }
    let remote = remote
        .into_iter()
        .map(|((url, sha256, blake3), images)| RemoteArtifact {
            url,
            sha256,
            blake3,
            images,
        })
        .collect();
    let mut id = blake3::Hasher::new();
    id.update(site.name.as_bytes());
    for f in &files {
        id.update(format!("\n{} {} {}", f.path, f.size, f.blake3).as_bytes());
    }
    Manifest {
        format: MANIFEST_FORMAT,
        site: site.name.clone(),
        build_id: id.finalize().to_hex()[..32].to_string(),
        files,
        remote,
    }
}

/// dhcp/: the three DHCP server configurations, when `[dhcp]` is set.
fn dhcp_files(
    site: &Site,
    r: Renderer,
    plan: &Plan,
) -> Vec<Result<(&'static str, String), Box<Diag>>> {
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
    crate::dhcp::OUTPUTS
        .iter()
        .map(|(template, out)| r.render(template, &ctx, out).map(|text| (*out, text)))
        .collect()
}

fn report(site: &Site, r: Renderer, plan: &Plan, diags: &Diags) -> Result<String, Box<Diag>> {
    let ctx = report_context(site, r.sources, plan, diags, Value::from(false));
    r.render("report.html.j2", &ctx, "report/index.html")
}

/// The template context of report.html.j2 (see [`context::report`]), with
/// `live`: false in a build; `bootc serve` renders the same page with its
/// live state there.
pub fn report_context(
    site: &Site,
    sources: &Sources,
    plan: &Plan,
    diags: &Diags,
    live: Value,
) -> Value {
    let ctx = val(crate::context::report(site, sources, plan, diags));
    minijinja::context! { live => live, ..ctx }
}

/// Size and BLAKE3 of a file (read, not memory-mapped: a file that shrinks
/// meanwhile is an error, not a SIGBUS; hashed on all cores).
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    open_anywhere(path)
        .map_err(|e| match e {
            crate::beneath::OpenError::Io(e) => e,
            crate::beneath::OpenError::NotFound => std::io::ErrorKind::NotFound.into(),
            e => std::io::Error::other(e.to_string()),
        })?
        .hash()
}
