//! Where the writer may write: the output folder, symlinks resolved, and
//! whether it is bootc's to replace. A folder is bootc's only if it is empty,
//! holds bootc's marker file, or is a tree an earlier bootc wrote (a plan.json
//! and an http/manifest.json of bootc's formats, and no file the manifest
//! does not list). Anything else is refused and left untouched.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::WriteError;
use super::record::Record;
use crate::tree::{MARKER, MARKER_FIRST_LINE};

/// The folder the tree replaces, resolved.
pub struct Target {
    /// The real folder (absolute, no symlink, `.` or `..`).
    pub dir: PathBuf,
    /// Its parent, where the staging folder goes (same file system).
    pub parent: PathBuf,
    /// Its file name, for the staging folder's name.
    pub name: String,
    /// Whether it exists (a previous tree to reuse files from and to swap).
    pub exists: bool,
    /// Its device and inode when it exists: the folder checked is the one
    /// replaced.
    pub id: Option<(u64, u64)>,
    /// The last build's record vouches for its listing: it holds the
    /// record's entries and no others ([`Record::listing_holds`]).
    pub listed: bool,
}

fn refuse(path: &Path, msg: String) -> WriteError {
    WriteError {
        path: path.to_path_buf(),
        error: io::Error::other(msg),
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |error| WriteError {
        path: path.to_path_buf(),
        error,
    }
}

/// The real folder `out` names (`link`: its own metadata, when it exists):
/// every symlink and `.`/`..` followed, so the tree is staged beside the
/// real folder and swapped there (a link stays a link); a dangling link is
/// refused, a missing folder's parent is created.
fn real_dir(out: &Path, link: Option<&fs::Metadata>) -> Result<PathBuf, WriteError> {
    Ok(match link {
        Some(meta) => {
            if meta.file_type().is_symlink() && fs::metadata(out).is_err() {
                let to = fs::read_link(out)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(refuse(
                    out,
                    format!(
                        "is a symbolic link to {to}, which does not exist; refusing to write through it \
                         (create the folder it points to, or choose another -o path)"
                    ),
                ));
            }
            // Follows every symlink (the output's own included), and `.`/`..`:
            // the tree is staged beside the real folder and swapped there, so a
            // link stays a link.
            out.canonicalize().map_err(io_err(out))?
        }
        None => {
            let name = out
                .file_name()
                .ok_or_else(|| refuse(out, "is not a folder name bootc can create".into()))?;
            let parent = match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            fs::create_dir_all(&parent).map_err(io_err(&parent))?;
            parent.canonicalize().map_err(io_err(&parent))?.join(name)
        }
    })
}

/// Resolves `out` (as given by the user) and checks it may be replaced
/// (`last`: the record of the last build into it, see [`replaceable`]).
pub fn resolve(out: &Path, last: Option<&Record>) -> Result<Target, WriteError> {
    let link = fs::symlink_metadata(out).ok();
    let dir = real_dir(out, link.as_ref())?;
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(refuse(
            out,
            "is the root folder: refusing to replace it".into(),
        ));
    };
    let target = Target {
        parent: parent.to_path_buf(),
        name: name.to_string_lossy().into_owned(),
        exists: link.is_some(),
        id: None,
        listed: false,
        dir: dir.clone(),
    };
    if !target.exists {
        return Ok(target);
    }
    // Name the real folder when the user's name hides it (a link, `.`).
    let hidden =
        link.as_ref().is_some_and(|m| m.file_type().is_symlink()) || out.file_name().is_none();
    let shown = if hidden {
        format!(" ({})", dir.display())
    } else {
        String::new()
    };
    let meta = fs::metadata(&dir).map_err(io_err(out))?;
    let target = Target {
        id: Some((meta.dev(), meta.ino())),
        ..target
    };
    if !meta.is_dir() {
        return Err(refuse(
            out,
            format!(
                "is not a folder{shown}: refusing to replace it with the output tree \
                 (choose a folder with -o)"
            ),
        ));
    }
    let listed = replaceable(out, &dir, &shown, last)?;
    Ok(Target { listed, ..target })
}

/// Whether the existing folder `dir` (the user's `out`) may be replaced by
/// a new tree: empty, or bootc's own tree holding nothing else. A tree
/// whose folders all have the stamps the last build's record gives them
/// holds nothing but what that build left (a name added or removed moves
/// its folder's times): it is not walked. Says whether it was so.
fn replaceable(
    out: &Path,
    dir: &Path,
    shown: &str,
    last: Option<&Record>,
) -> Result<bool, WriteError> {
    // A site is never an output, whatever marker it holds (a hostile change
    // could add one).
    if fs::symlink_metadata(dir.join("bootc.toml")).is_ok() {
        return Err(refuse(
            out,
            format!(
                "holds bootc.toml{shown}: it is a site, not an output tree; refusing to replace it \
                 (choose another -o folder)"
            ),
        ));
    }
    if is_empty(dir).map_err(io_err(out))? {
        return Ok(false);
    }
    if last.is_some_and(|r| r.listing_holds(dir)) && has_marker(dir) {
        return Ok(true);
    }
    let manifest = manifest_of(dir);
    let ours = has_marker(dir) || manifest.as_ref().is_some_and(|m| earlier_tree(dir, m));
    if ours {
        // Even a tree with bootc's marker is replaced only when it holds
        // nothing but what its manifest lists: a site, an artifact root or
        // an operator's files put into it are never deleted with it.
        return match manifest.as_ref().map(|m| foreign_entry(dir, m)) {
            Some(None) => Ok(false),
            Some(Some(rel)) => Err(refuse(
                out,
                format!(
                    "holds {rel}{shown}, which is not part of the bootc tree there (its manifest does \
                     not list it); refusing to replace the folder and delete it: move it away, \
                     or choose another -o folder"
                ),
            )),
            None => Err(refuse(
                out,
                format!(
                    "holds a {MARKER} marker but no readable {}{shown}; refusing to replace it \
                     (empty the folder, or choose another -o folder)",
                    crate::manifest::MANIFEST
                ),
            )),
        };
    }
    Err(refuse(
        out,
        format!(
            "refusing to replace a non-empty folder that is not a bootc output tree{shown}: \
             it holds no {MARKER} marker (bootc writes one in every tree it builds); \
             choose another -o folder, or empty this one"
        ),
    ))
}

fn is_empty(dir: &Path) -> io::Result<bool> {
    Ok(fs::read_dir(dir)?.next().is_none())
}

/// Reads a small regular file (not through a symlink), at most `cap` bytes.
fn read_small(path: &Path, cap: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(cap).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The marker bootc writes at the root of every tree.
fn has_marker(dir: &Path) -> bool {
    read_small(&dir.join(MARKER), 4096).is_some_and(|b| {
        b.split(|&c| c == b'\n')
            .next()
            .is_some_and(|l| l == MARKER_FIRST_LINE.as_bytes())
    })
}

/// The http/manifest.json of `dir`, as JSON (read without following a link).
fn manifest_of(dir: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let bytes = read_small(&dir.join(crate::manifest::MANIFEST), 1 << 30)?;
    match serde_json::from_slice(&bytes).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// A tree written by a bootc from before the marker: its plan.json and
/// http/manifest.json are both of bootc's formats, for the same site.
fn earlier_tree(dir: &Path, manifest: &serde_json::Map<String, serde_json::Value>) -> bool {
    let Some(plan) = read_small(&dir.join("plan.json"), 1 << 30)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.as_object().cloned())
    else {
        return false;
    };
    let plan_ok = plan.get("site").is_some_and(|v| v.is_string())
        && plan.get("fallback").is_some()
        && plan.get("machines").is_some_and(|v| v.is_array());
    let files_ok = manifest
        .get("files")
        .and_then(|v| v.as_array())
        .is_some_and(|files| {
            files.iter().all(|f| {
                f.get("path").is_some_and(|v| v.is_string())
                    && f.get("size").is_some_and(|v| v.is_u64())
                    && f.get("blake3").is_some_and(|v| v.is_string())
            }) && files
                .iter()
                .any(|f| f.get("path").and_then(|v| v.as_str()) == Some("plan.json"))
        });
    let manifest_ok = manifest.get("format").and_then(|v| v.as_u64())
        == Some(u64::from(crate::manifest::MANIFEST_FORMAT))
        && manifest.get("build-id").is_some_and(|v| v.is_string())
        && manifest.get("site") == plan.get("site")
        && files_ok;
    plan_ok && manifest_ok
}

/// The first regular file of `dir` that the manifest does not list (nor is
/// the manifest or its signature), if any.
fn foreign_entry(
    dir: &Path,
    manifest: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let mut listed: std::collections::HashSet<&str> = manifest
        .get("files")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("path").and_then(|v| v.as_str()))
        .collect();
    listed.insert(crate::manifest::MANIFEST);
    listed.insert(crate::manifest::SIGNATURE);
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = match e {
            Ok(e) => e,
            Err(e) => {
                return Some(
                    e.path()
                        .map_or_else(String::new, |p| p.display().to_string()),
                );
            }
        };
        let rel = e.path().strip_prefix(dir).unwrap_or(e.path());
        let shown = crate::escape::line(&rel.to_string_lossy()).into_owned();
        // Only a regular file holds data that replacing the tree would
        // lose: a symlink goes without its target, and walkdir does not
        // follow it.
        if e.file_type().is_file() && !rel.to_str().is_some_and(|r| listed.contains(r)) {
            return Some(shown);
        }
    }
    None
}
