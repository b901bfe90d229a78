//! The two sides `diff` compares: a plan, the hashes of the tree's files,
//! the text of per-machine files; from a site compiled in memory or from a
//! built tree on disk.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::plan::Plan;
use crate::tree::{Content, Tree};

/// BLAKE3 by path.
pub type Hashes = BTreeMap<String, String>;

/// One side of the comparison.
pub struct Side {
    /// As the user named it (`git:main`, `public`, `.`), with a short commit
    /// for git revisions.
    pub label: String,
    pub plan: Plan,
    /// BLAKE3 of the output tree's files that the plan does not describe
    /// (see [`tracked`]), by path relative to the tree root, when known.
    pub files: Option<Hashes>,
    /// The per-machine files' text, to say which lines changed.
    pub texts: Texts,
}

/// Where the text of per-machine files (`http/machines/<name>/<file>`) is.
pub enum Texts {
    None,
    /// In memory: a compiled site's, by path in the tree.
    Map(BTreeMap<String, Vec<u8>>),
    /// On disk: a built tree's root.
    Dir(PathBuf),
}

impl Texts {
    pub(super) fn get(&self, path: &str) -> Option<String> {
        match self {
            Texts::None => None,
            Texts::Map(m) => m.get(path).map(|b| String::from_utf8_lossy(b).into_owned()),
            // Beneath the tree: a symlink in a built tree never shows
            // bytes from outside it.
            Texts::Dir(root) => crate::beneath::Root::new(root)
                .ok()?
                .open(Path::new(path))
                .ok()?
                .read_all()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }
}

/// Whether a file of the output tree is compared by hash: per-MAC scripts
/// and site-wide files. Not: the plan and report, the manifest (it changes
/// with everything), images (content-addressed: in the plan) and per-machine
/// files (their hashes are in the plan).
pub fn tracked(path: &str) -> bool {
    if path == "plan.json"
        || path.starts_with("report/")
        || path.starts_with("http/images/")
        || path.starts_with("http/manifest.json")
    {
        return false;
    }
    match path.strip_prefix("http/machines/") {
        Some(rest) => !rest.contains('/'),
        None => true,
    }
}

/// Why a side cannot be read (a built tree, a git revision).
#[derive(Debug, thiserror::Error)]
pub enum SideError {
    /// What was being done, and why it failed.
    #[error("{what}")]
    Context {
        what: String,
        #[source]
        source: Box<SideError>,
    },
    #[error("{0}")]
    Message(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}")]
    Walk {
        what: String,
        #[source]
        source: walkdir::Error,
    },
}

impl SideError {
    pub(super) fn context(self, what: impl Into<String>) -> SideError {
        SideError::Context {
            what: what.into(),
            source: Box::new(self),
        }
    }

    pub(super) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> SideError {
        let what = what.into();
        move |source| SideError::Io { what, source }
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> SideError + '_ {
    move |source| SideError::Io {
        what: path.display().to_string(),
        source,
    }
}

impl Side {
    /// A site compiled in memory: its plan is the plan.json `build` writes.
    pub fn compiled(label: String, plan: Plan, tree: Tree) -> Side {
        let files = tree
            .files
            .iter()
            .filter(|(p, _)| tracked(p))
            .map(|(p, c)| (p.clone(), c.blake3().to_string()))
            .collect();
        // Per-machine files, for the lines that change in them.
        let texts = tree
            .files
            .into_iter()
            .filter_map(|(p, c)| match c {
                Content::Bytes(b)
                    if p.strip_prefix("http/machines/")
                        .is_some_and(|rest| rest.contains('/')) =>
                {
                    Some((p, b.into()))
                }
                _ => None,
            })
            .collect();
        Side {
            label,
            plan,
            files: Some(files),
            texts: Texts::Map(texts),
        }
    }

    /// A built tree: its plan.json, and the hashes of its files when it has
    /// http/.
    pub fn built(plan: &Path, root: &Path, label: &str) -> Result<Side, SideError> {
        let text = read_own(plan)?;
        let plan = Plan::from_json(&text).map_err(|why| {
            SideError::Message(format!(
                "{}: not a plan.json written by bootc: {why}",
                plan.display()
            ))
        })?;
        let (files, texts) = if root.join("http").is_dir() {
            (Some(tree_hashes(root)?), Texts::Dir(root.to_path_buf()))
        } else {
            (None, Texts::None)
        };
        Ok(Side {
            label: label.to_string(),
            plan,
            files,
            texts,
        })
    }
}

/// The plan.json of a tree is its own file, never a link to another.
fn read_own(plan: &Path) -> Result<Vec<u8>, SideError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(plan)
        .map_err(|e| {
            SideError::Message(match e.raw_os_error() {
                Some(libc::ELOOP) => format!(
                    "{}: a symbolic link; bootc reads a tree's own plan.json only",
                    plan.display()
                ),
                _ => format!("{}: {e}", plan.display()),
            })
        })?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(SideError::Message(format!(
            "{}: not a regular file",
            plan.display()
        )));
    }
    let mut text = Vec::new();
    io::Read::read_to_end(&mut f, &mut text).map_err(io_at(plan))?;
    Ok(text)
}

fn tree_hashes(root: &Path) -> Result<Hashes, SideError> {
    let mut out = BTreeMap::new();
    let beneath = crate::beneath::Root::new(root).map_err(io_at(root))?;
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            !(rel == Path::new("http/images") || rel == Path::new("report"))
        });
    for e in walk {
        let e = e.map_err(|source| SideError::Walk {
            what: root.display().to_string(),
            source,
        })?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !tracked(&rel) {
            continue;
        }
        // Beneath the tree: a symlink out of it is refused, not followed.
        let f = beneath
            .open(Path::new(&rel))
            .map_err(|err| SideError::Message(format!("{}: {err}", e.path().display())))?;
        let (_, hash) = f.hash().map_err(io_at(&f.path))?;
        out.insert(rel, hash);
    }
    Ok(out)
}
