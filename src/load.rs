//! Stage 1: find the site's files, read them and parse the TOML.
//! Problems (unreadable files, TOML syntax, unknown keys, wrong types) go to
//! `Diags`; every file is tried, so one run reports them all.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use serde::de::DeserializeOwned;

use crate::beneath::{OpenError, Root};
use crate::diag::{Diag, Diags, FileId, Lint, Loc, Sources};
use crate::model::{ImageFile, MachineFile, RoleFile, SiteFile};

pub const SITE_FILE: &str = "bootc.toml";

/// The site as read from disk.
pub struct Loaded {
    pub root: PathBuf,
    pub sources: Sources,
    pub site: Option<(FileId, SiteFile)>,
    pub machine_files: Vec<(FileId, Arc<MachineFile>)>,
    /// Name (file stem) -> parsed file.
    pub roles: BTreeMap<String, (FileId, RoleFile)>,
    pub images: BTreeMap<String, (FileId, ImageFile)>,
    /// Template name (path under templates/, with '/') -> source.
    pub templates: BTreeMap<String, FileId>,
    /// Templates found under templates/ that could not be read (each has
    /// its error already): references to them say so, not "no such file".
    pub unreadable_templates: std::collections::BTreeSet<String>,
}

/// Machine files parsed before, by the BLAKE3 of their text (a model
/// holds no file id: its places are offsets in that text). `bootc serve`
/// keeps one across rebuilds, so an edit of one file parses one. Only
/// files parsed without a problem are kept, and only those of the last
/// load.
#[derive(Default)]
pub struct Parsed(HashMap<blake3::Hash, Arc<MachineFile>>);

/// Errors that stop loading before any file can be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{0}: no {SITE_FILE} here; a site's root holds {SITE_FILE} (create one with `bootc init`)"
    )]
    NotASite(PathBuf),
    // `error` is part of the message, not a `source` (see sign::KeyError).
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
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
/// passes `keep`; `recursive` walks sub-folders too. What is skipped but
/// looks meant to be read (a symlinked folder, a dangling symlink, a FIFO)
/// is a warning with its path.
fn list(
    root: &Path,
    dir: &str,
    recursive: bool,
    keep: impl Fn(&Path) -> bool,
    diags: &mut Diags,
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
            error: e
                .into_io_error()
                .unwrap_or_else(|| std::io::Error::other("file system loop")),
        })?;
        let name = entry.file_name().to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let ft = entry.file_type();
        let shown = rel_name(root, entry.path());
        let skipped = |what: &str, help: &str| {
            Diag::warning(Lint::SkippedFile, format!("{shown}: {what}, skipped")).help(help)
        };
        if ft.is_file() {
            if keep(entry.path()) {
                out.push(entry.into_path());
            }
        } else if ft.is_symlink() {
            match fs::metadata(entry.path()) {
                Ok(m) if m.is_dir() => diags.push(skipped(
                    "a symlink to a folder",
                    "symlinked folders are not followed: move the files here, or link each file",
                )),
                Ok(m) if m.is_file() && keep(entry.path()) => out.push(entry.into_path()),
                Ok(_) if keep(entry.path()) => diags.push(skipped(
                    "a symlink to something that is not a regular file",
                    "only regular files are read",
                )),
                Err(_) if keep(entry.path()) => diags.push(skipped(
                    "a dangling symlink",
                    "it points to nothing: fix the link or remove it",
                )),
                _ => {}
            }
        } else if !ft.is_dir() && keep(entry.path()) {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else {
                "a device"
            };
            diags.push(skipped(what, "only regular files are read"));
        }
    }
    Ok(out)
}

/// A site file as read: its text, or why it has none.
enum Read {
    Text(String),
    /// Not UTF-8: the text with the bad bytes replaced (for the snippet),
    /// and the offset of the first one.
    NotUtf8(String, usize),
    Problem(Box<Diag>),
}

/// Reads the site file at `path` beneath the site `root`: no symlink or
/// `..` leads out of the site, and the file is opened once. A problem is a
/// diagnostic naming the file.
fn read_beneath(root: &Root, site_root: &Path, path: &Path) -> Read {
    let rel = path.strip_prefix(site_root).unwrap_or(path);
    let shown = rel_name(site_root, path);
    match root.open(rel) {
        Ok(f) => match f.read_all() {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Read::Text(text),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    Read::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned(), at)
                }
            },
            Err(e) => Read::Problem(Box::new(Diag::error(format!("cannot read {shown}: {e}")))),
        },
        Err(OpenError::Escape(to)) => {
            let mut d = Diag::error(format!("{shown} leads out of the site"));
            if let Some(to) = to {
                d = d.help(format!("it resolves to {}", to.display()));
            }
            Read::Problem(Box::new(d.help(
                "site files are read only from inside the site: a symlink may point to another file of the site, never outside it",
            )))
        }
        Err(e @ OpenError::NotRegular(_)) => Read::Problem(Box::new(Diag::warning(
            Lint::SkippedFile,
            format!("{shown}: {e}, skipped"),
        ))),
        Err(e) => Read::Problem(Box::new(Diag::error(format!("cannot read {shown}: {e}")))),
    }
}

fn is_toml(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "toml")
}

/// Adds a file as read to `sources`: its id, or None (and the problem in
/// `diags`) when it has no usable text.
fn add_source(
    sources: &mut Sources,
    diags: &mut Diags,
    root: &Path,
    path: &Path,
    text: Read,
) -> Option<FileId> {
    match text {
        Read::Text(text) => Some(sources.add(rel_name(root, path), text)),
        Read::NotUtf8(lossy, at) => {
            let name = rel_name(root, path);
            let end = (at + 3).min(lossy.len());
            let end = (at + 1..=end)
                .find(|&e| lossy.is_char_boundary(e))
                .unwrap_or(at);
            let id = sources.add(name.clone(), lossy);
            diags.push(
                Diag::error(format!("{name} is not UTF-8 text"))
                    .at(Loc::new(id, at..end), "not UTF-8 from here")
                    .help(
                        "site files are UTF-8: convert it (for example with iconv) and build again",
                    ),
            );
            None
        }
        Read::Problem(mut d) => {
            // Point at the file itself (no text of it is shown), so every
            // output format names where the problem is.
            if d.primary.is_none() {
                let id = sources.add(rel_name(root, path), String::new());
                let label = if d.severity == crate::diag::Severity::Error {
                    "this file"
                } else {
                    "skipped"
                };
                d.primary = Some((Loc::new(id, 0..0), label.to_string()));
            }
            diags.push(*d);
            None
        }
    }
}

/// The files of roles/ or images/, parsed, by name (the file stem).
fn parse_named<T: DeserializeOwned>(
    paths: &[PathBuf],
    ids: Vec<Option<FileId>>,
    sources: &Sources,
    diags: &mut Diags,
) -> BTreeMap<String, (FileId, T)> {
    let mut out = BTreeMap::new();
    for (path, id) in paths.iter().zip(ids) {
        if let Some(id) = id
            && let Some(v) = parse::<T>(sources, id, diags)
        {
            out.insert(stem(path), (id, v));
        }
    }
    out
}

/// Reads and parses every file of the site at `root`.
pub fn load(root: &Path) -> Result<(Loaded, Diags), LoadError> {
    load_reusing(root, None)
}

/// [`load`], taking the machine files `parsed` holds with the same text
/// from it instead of parsing them again; `parsed` then holds this load's.
pub fn load_reusing(
    root: &Path,
    parsed: Option<&mut Parsed>,
) -> Result<(Loaded, Diags), LoadError> {
    let site_path = root.join(SITE_FILE);
    if !site_path.is_file() {
        return Err(LoadError::NotASite(root.to_path_buf()));
    }
    let mut diags = Diags::default();
    let machines = list(root, "machines", true, is_toml, &mut diags)?;
    let roles = list(root, "roles", false, is_toml, &mut diags)?;
    let images = list(root, "images", false, is_toml, &mut diags)?;
    let templates = list(root, "templates", true, |_| true, &mut diags)?;
    let beneath = Root::new(root).map_err(|error| LoadError::Io {
        path: root.to_path_buf(),
        error,
    })?;

    // Read everything (in parallel: a large fleet has many files).
    let all: Vec<&PathBuf> = std::iter::once(&site_path)
        .chain(&machines)
        .chain(&roles)
        .chain(&images)
        .chain(&templates)
        .collect();
    let texts: Vec<Read> = all
        .par_iter()
        .map(|p| read_beneath(&beneath, root, p))
        .collect();

    let mut sources = Sources::default();
    let ids: Vec<Option<FileId>> = all
        .iter()
        .zip(texts)
        .map(|(path, text)| add_source(&mut sources, &mut diags, root, path, text))
        .collect();
    let mut ids = ids.into_iter();
    let site_id = ids.next().flatten();
    let machine_ids: Vec<Option<FileId>> = ids.by_ref().take(machines.len()).collect();
    let role_ids: Vec<Option<FileId>> = ids.by_ref().take(roles.len()).collect();
    let image_ids: Vec<Option<FileId>> = ids.by_ref().take(images.len()).collect();
    let template_ids: Vec<Option<FileId>> = ids.collect();

    let site = site_id.and_then(|id| parse::<SiteFile>(&sources, id, &mut diags).map(|s| (id, s)));

    let before = parsed.as_deref();
    let each: Vec<_> = machine_ids
        .par_iter()
        .flatten()
        .map(|&id| {
            let key = before.map(|_| blake3::hash(sources.text(id).as_bytes()));
            if let Some(file) = key.and_then(|k| before?.0.get(&k)) {
                return (id, key, Some(Arc::clone(file)), Vec::new());
            }
            let (file, problems) = parse_one::<MachineFile>(&sources, id);
            (id, key, file.map(Arc::new), problems)
        })
        .collect();
    let mut machine_files = Vec::new();
    let mut kept = HashMap::new();
    for (id, key, file, problems) in each {
        if let (Some(k), Some(f), true) = (key, &file, problems.is_empty()) {
            kept.insert(k, Arc::clone(f));
        }
        for d in problems {
            diags.push(d);
        }
        if let Some(m) = file {
            machine_files.push((id, m));
        }
    }
    if let Some(parsed) = parsed {
        parsed.0 = kept;
    }

    let role_map = parse_named::<RoleFile>(&roles, role_ids, &sources, &mut diags);
    let image_map = parse_named::<ImageFile>(&images, image_ids, &sources, &mut diags);
    let mut template_map = BTreeMap::new();
    let troot = root.join("templates");
    let mut unreadable_templates = std::collections::BTreeSet::new();
    for (path, id) in templates.iter().zip(template_ids) {
        match id {
            Some(id) => {
                template_map.insert(rel_name(&troot, path), id);
            }
            None => {
                unreadable_templates.insert(rel_name(&troot, path));
            }
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
        unreadable_templates,
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
