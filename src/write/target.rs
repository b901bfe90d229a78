//! Where the writer may write: the output folder, symlinks resolved, and
//! whether it is bootc's to replace. A folder is bootc's only if it is empty,
//! holds bootc's marker file, or is a tree an earlier bootc wrote (a plan.json
//! and an http/manifest.json of bootc's formats, and no file the manifest
//! does not list). Anything else is refused and left untouched.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{MARKER, MARKER_FIRST_LINE, WriteError};

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

/// Resolves `out` (as given by the user) and checks it may be replaced.
pub fn resolve(out: &Path) -> Result<Target, WriteError> {
    let link = fs::symlink_metadata(out).ok();
    let dir = match &link {
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
    };
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
    if is_empty(&dir).map_err(io_err(out))? || has_marker(&dir) || earlier_tree(&dir) {
        return Ok(target);
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

/// A tree written by a bootc from before the marker: its plan.json and
/// http/manifest.json are both of bootc's formats, for the same site.
fn earlier_tree(dir: &Path) -> bool {
    const CAP: u64 = 1 << 30;
    let json = |rel: &str| -> Option<serde_json::Map<String, serde_json::Value>> {
        let bytes = read_small(&dir.join(rel), CAP)?;
        match serde_json::from_slice(&bytes).ok()? {
            serde_json::Value::Object(m) => Some(m),
            _ => None,
        }
    };
    let (Some(plan), Some(manifest)) = (json("plan.json"), json(crate::manifest::MANIFEST)) else {
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
    plan_ok && manifest_ok && only_listed_files(dir, &manifest)
}

/// Every file of `dir` is one the manifest lists (or the manifest and its
/// signature), and nothing is a symlink or special file: a folder where
/// someone copied a plan.json and a manifest beside files of their own is
/// not a tree bootc wrote.
fn only_listed_files(dir: &Path, manifest: &serde_json::Map<String, serde_json::Value>) -> bool {
    let mut listed: std::collections::HashSet<&str> = manifest
        .get("files")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("path").and_then(|v| v.as_str()))
        .collect();
    listed.insert(crate::manifest::MANIFEST);
    listed.insert(crate::manifest::SIGNATURE);
    for e in walkdir::WalkDir::new(dir).min_depth(1) {
        let Ok(e) = e else {
            return false;
        };
        let ft = e.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(dir).ok().and_then(|p| p.to_str());
        if !ft.is_file() || !rel.is_some_and(|r| listed.contains(r)) {
            return false;
        }
    }
    true
}
