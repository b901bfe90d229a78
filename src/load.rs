//! Stage 1: find the site's files, read them and parse the TOML.
//! Problems (unreadable files, TOML syntax, unknown keys, wrong types) go to
//! `Diags`; every file is tried, so one run reports them all.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::diag::{Diag, Diags, FileId, Sources};
use crate::model::{ImageFile, MachineFile, RoleFile, SiteFile};

pub const SITE_FILE: &str = "bootc.toml";

/// The site as read from disk.
pub struct Loaded {
    pub root: PathBuf,
    pub sources: Sources,
    pub site: Option<(FileId, SiteFile)>,
    pub machine_files: Vec<(FileId, MachineFile)>,
    /// Name (file stem) -> parsed file.
    pub roles: BTreeMap<String, (FileId, RoleFile)>,
    pub images: BTreeMap<String, (FileId, ImageFile)>,
    /// Template name (path under templates/, with '/') -> source.
    pub templates: BTreeMap<String, FileId>,
}

/// Errors that stop loading before any file can be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{0}: no {SITE_FILE} here; a site's root holds {SITE_FILE} (create one with `bootc init`)"
    )]
    NotASite(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Relative name with '/' separators, for display and for template names.
pub fn rel_name(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Files under `dir` (sorted, following no symlinked directories) whose name
/// passes `keep`; `recursive` walks sub-folders too.
fn list(
    root: &Path,
    dir: &str,
    recursive: bool,
    keep: impl Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, LoadError> {
    let base = root.join(dir);
    if !base.is_dir() {
        return Ok(Vec::new());
    }
    let mut walk = walkdir::WalkDir::new(&base)
        .sort_by_file_name()
        .min_depth(1);
    if !recursive {
        walk = walk.max_depth(1);
    }
    let mut out = Vec::new();
    for entry in walk {
        let entry = entry.map_err(|e| LoadError::Io {
            path: e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| base.clone()),
            source: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("file system loop")),
        })?;
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let is_file = entry.file_type().is_file()
            || (entry.file_type().is_symlink() && entry.path().is_file());
        if is_file && keep(entry.path()) {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

/// Reads and parses every file of the site at `root`.
pub fn load(root: &Path) -> Result<(Loaded, Diags), LoadError> {
    let site_path = root.join(SITE_FILE);
    if !site_path.is_file() {
        return Err(LoadError::NotASite(root.to_path_buf()));
    }
    let machines = list(root, "machines", true, is_toml)?;
    let roles = list(root, "roles", false, is_toml)?;
    let images = list(root, "images", false, is_toml)?;
    let templates = list(root, "templates", true, |_| true)?;

    // Read everything (in parallel: a large fleet has many files).
    let all: Vec<&PathBuf> = std::iter::once(&site_path)
        .chain(&machines)
        .chain(&roles)
        .chain(&images)
        .chain(&templates)
        .collect();
    let texts: Vec<Result<String, std::io::Error>> =
        all.par_iter().map(fs::read_to_string).collect();

    let mut diags = Diags::default();
    let mut sources = Sources::default();
    let mut ids: Vec<Option<FileId>> = Vec::with_capacity(all.len());
    for (path, text) in all.iter().zip(texts) {
        match text {
            Ok(text) => ids.push(Some(sources.add(rel_name(root, path), text))),
            Err(e) => {
                diags.push(Diag::error(format!("cannot read {}: {e}", path.display())));
                ids.push(None);
            }
        }
    }
    let mut ids = ids.into_iter();
    let site_id = ids.next().flatten();
    let machine_ids: Vec<Option<FileId>> = ids.by_ref().take(machines.len()).collect();
    let role_ids: Vec<Option<FileId>> = ids.by_ref().take(roles.len()).collect();
    let image_ids: Vec<Option<FileId>> = ids.by_ref().take(images.len()).collect();
    let template_ids: Vec<Option<FileId>> = ids.collect();

    let site = site_id.and_then(|id| parse::<SiteFile>(&sources, id, &mut diags).map(|s| (id, s)));

    let parsed: Vec<_> = machine_ids
        .par_iter()
        .flatten()
        .map(|&id| (id, parse_one::<MachineFile>(&sources, id)))
        .collect();
    let mut machine_files = Vec::new();
    for (id, (file, problems)) in parsed {
        for d in problems {
            diags.push(d);
        }
        if let Some(m) = file {
            machine_files.push((id, m));
        }
    }

    let mut role_map = BTreeMap::new();
    for (path, id) in roles.iter().zip(role_ids) {
        if let Some(id) = id
            && let Some(r) = parse::<RoleFile>(&sources, id, &mut diags)
        {
            role_map.insert(stem(path), (id, r));
        }
    }
    let mut image_map = BTreeMap::new();
    for (path, id) in images.iter().zip(image_ids) {
        if let Some(id) = id
            && let Some(i) = parse::<ImageFile>(&sources, id, &mut diags)
        {
            image_map.insert(stem(path), (id, i));
        }
    }
    let mut template_map = BTreeMap::new();
    let troot = root.join("templates");
    for (path, id) in templates.iter().zip(template_ids) {
        if let Some(id) = id {
            template_map.insert(rel_name(&troot, path), id);
        }
    }

    let loaded = Loaded {
        root: root.to_path_buf(),
        sources,
        site,
        machine_files,
        roles: role_map,
        images: image_map,
        templates: template_map,
    };
    Ok((loaded, diags))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse<T: DeserializeOwned>(sources: &Sources, id: FileId, diags: &mut Diags) -> Option<T> {
    let (value, problems) = parse_one(sources, id);
    for d in problems {
        diags.push(d);
    }
    value
}

/// The file as `T` (what of it could be read) and every problem in it.
fn parse_one<T: DeserializeOwned>(sources: &Sources, id: FileId) -> (Option<T>, Vec<Diag>) {
    crate::tomlde::from_str_all(id, sources.text(id))
}
