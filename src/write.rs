//! Stage 5: the one writer. The whole tree is written into a staging folder
//! beside the output, then swapped in at once (renameat2 RENAME_EXCHANGE), so
//! a failed or killed build leaves the previous tree untouched. A file whose
//! content did not change is hard-linked from the previous tree, keeping its
//! mtime, so `rsync -a` sends only what changed.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::beneath::CopyError;
use crate::render::{Content, Tree};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub files: usize,
    pub unchanged: usize,
    pub bytes: u64,
}

const STAGING_MARK: &str = ".bootc-staging-";

/// Writes `tree` to `out` atomically.
pub fn write(out: &Path, tree: &Tree) -> Result<Stats, WriteError> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(err(&parent))?;
    if out.is_dir()
        && !out.join("plan.json").is_file()
        && fs::read_dir(out).map_err(err(out))?.next().is_some()
    {
        return Err(WriteError {
            path: out.to_path_buf(),
            source: io::Error::other(
                "refusing to replace a non-empty folder that is not a bootc output tree (it has no plan.json)",
            ),
        });
    }
    let base = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "public".into());
    remove_stale_staging(&parent, &base);
    let staging = parent.join(format!(".{base}{STAGING_MARK}{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(err(&staging))?;
    }
    fs::create_dir(&staging).map_err(err(&staging))?;

    let result = fill(&staging, out, tree);
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    swap(&staging, out)?;
    Ok(stats)
}

/// Removes staging folders left by builds that were killed.
fn remove_stale_staging(parent: &Path, base: &str) {
    let prefix = format!(".{base}{STAGING_MARK}");
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix(&prefix) {
            let alive = pid.parse::<u32>().is_ok_and(|p| {
                p != std::process::id() && Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

fn fill(staging: &Path, previous: &Path, tree: &Tree) -> Result<Stats, WriteError> {
    // Folders first (sequentially, sorted), then files in parallel.
    let mut dirs: Vec<PathBuf> = tree
        .files
        .keys()
        .filter_map(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let full = staging.join(d);
        fs::create_dir_all(&full).map_err(err(&full))?;
    }
    let results: Vec<Result<(bool, u64), WriteError>> = tree
        .files
        .par_iter()
        .map(|(rel, content)| {
            let dest = staging.join(rel);
            let old = previous.join(rel);
            if unchanged(&old, rel, content) && fs::hard_link(&old, &dest).is_ok() {
                return Ok((true, content.size()));
            }
            match content {
                Content::Bytes(b) => fs::write(&dest, b).map_err(err(&dest))?,
                // From the descriptor opened at validation, checked again
                // against its size and hash: never re-opened by name.
                Content::Copy { source, blake3, .. } => {
                    let mut f = fs::File::create(&dest).map_err(err(&dest))?;
                    source.copy_to(&mut f, blake3).map_err(|e| match e {
                        CopyError::Source(e) => err(&source.path)(e),
                        CopyError::Dest(e) => err(&dest)(e),
                    })?;
                }
            }
            Ok((false, content.size()))
        })
        .collect();
    let mut stats = Stats::default();
    for r in results {
        let (same, size) = r?;
        stats.files += 1;
        stats.bytes += size;
        if same {
            stats.unchanged += 1;
        }
    }
    Ok(stats)
}

/// Whether `old` (a file of the previous tree) already holds `content`.
fn unchanged(old: &Path, rel: &str, content: &Content) -> bool {
    let Ok(meta) = fs::symlink_metadata(old) else {
        return false;
    };
    if !meta.is_file() || meta.len() != content.size() {
        return false;
    }
    match content {
        // Content-addressed images: the path names the hash.
        Content::Copy { .. } if rel.starts_with("http/images/") => true,
        // Other copies (the chainloaders) keep their name across versions.
        Content::Copy { blake3, .. } => {
            crate::render::hash_file(old).is_ok_and(|(_, h)| h == *blake3)
        }
        Content::Bytes(b) => {
            let mut buf = Vec::with_capacity(b.len());
            fs::File::open(old)
                .and_then(|mut f| f.read_to_end(&mut buf))
                .is_ok()
                && buf == *b
        }
    }
}

/// Puts `staging` in place of `out` in one step, then removes the old tree.
fn swap(staging: &Path, out: &Path) -> Result<(), WriteError> {
    if fs::symlink_metadata(out).is_err() {
        return fs::rename(staging, out).map_err(err(out));
    }
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging,
        rustix::fs::CWD,
        out,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {
            // `staging` now holds the previous tree.
            fs::remove_dir_all(staging).map_err(err(staging))
        }
        Err(_) => {
            // File systems without RENAME_EXCHANGE: two renames.
            let old = staging.with_extension("old");
            fs::rename(out, &old).map_err(err(out))?;
            fs::rename(staging, out).map_err(err(out))?;
            fs::remove_dir_all(&old).map_err(err(&old))
        }
    }
}
