//! Stage 5: the one writer. The whole tree is written into a staging folder
//! beside the output, then swapped in at once (renameat2 RENAME_EXCHANGE), so
//! a failed or killed build leaves the previous tree untouched. A file whose
//! content did not change is hard-linked from the previous tree, keeping its
//! mtime, so `rsync -a` sends only what changed. The tree swapped out is kept
//! as the spare (`spare.rs`), and the next build stages in it: only what
//! changed since is put in.

mod modes;
pub mod record;
mod reuse;
mod spare;
mod target;

pub use spare::path as spare_path;

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::beneath::CopyError;
use crate::tree::{Content, Tree};
use modes::{Modes, set_mode};
use record::Record;

#[derive(Debug, thiserror::Error)]
// Not a `source` field: the message holds the error once (anyhow's `{:#}`
// would print a source again).
#[error("{path}: {error}")]
pub struct WriteError {
    pub path: PathBuf,
    pub error: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |error| WriteError {
        path: path.to_path_buf(),
        error,
    }
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub files: usize,
    pub unchanged: usize,
    /// Per file of the tree (in its order): the stamp of a file this
    /// build left untouched, where the last record's stamp proved it
    /// (so no change since that record's time could have kept it); the
    /// new record takes it instead of a `stat` (see `Record::make`).
    pub stamps: Vec<Option<reuse::Proof>>,
    /// Every folder of the tree (relative), parents before children: the
    /// record stamps them.
    pub folders: Vec<PathBuf>,
    pub bytes: u64,
    /// Device and inode of the folder the tree is in: the one this build
    /// swapped in (or left in place), whatever another build does next.
    pub root: (u64, u64),
    /// Whether a new tree was swapped in (the previous one is the spare).
    pub swapped: bool,
}

const STAGING_MARK: &str = ".bootc-staging-";

/// Every file of the tree gets this mode, every folder [`DIR_MODE`],
/// whatever the umask and the mode of the file copied.
const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

/// What the last build's record says files of the previous tree hold:
/// relative path -> (stamp, BLAKE3). See [`write_with`].
pub type Known<'a> = std::collections::HashMap<&'a str, (reuse::Proof, &'a str)>;

/// Writes `tree` to `out` atomically. `out` must be absent, empty, or a tree
/// bootc wrote; a symlink is followed (the link stays, its target is replaced).
pub fn write(out: &Path, tree: &Tree) -> Result<Stats, WriteError> {
    write_with(out, tree, None)
}

/// [`write`], with the record of the last build into `out`: a file of the
/// previous tree that still has the stamp the record gives it is proven by
/// the recorded BLAKE3 instead of being read (the stamp's change time moves
/// with any write), and a previous tree whose every folder still has its
/// stamp holds nothing but what the record lists, so it is not walked.
pub fn write_with(out: &Path, tree: &Tree, last: Option<&Record>) -> Result<Stats, WriteError> {
    let known = last.map(Record::known).unwrap_or_default();
    let target = target::resolve(out, last)?;
    remove_stale_staging(&target.parent, &target.name);
    let previous = target
        .exists
        .then(|| reuse::Previous::open(&target.dir, target.listed))
        .flatten();
    let files: Vec<(&String, &Content)> = tree.files.iter().collect();
    let folders = folders(tree);
    // Which files the previous tree already holds, byte for byte.
    let proofs: Vec<Option<reuse::Proof>> = match &previous {
        Some(prev) => files
            .par_iter()
            .map(|(rel, content)| reuse::prove(prev, rel, content, known.get(rel.as_str())))
            .collect(),
        None => vec![None; files.len()],
    };
    // Every new file is in the previous tree: it is the new tree when it
    // holds no more (by the record's count when the record vouched for
    // its listing, else by walking it).
    if let Some(prev) = &previous
        && proofs.iter().all(Option::is_some)
        && match last.filter(|_| target.listed) {
            Some(r) => r.files() == files.len() && r.folders() == folders.len() + 1,
            None => reuse::holds_only(prev, files.len(), folders.len()),
        }
    {
        // Nothing changed: nothing is written.
        let bytes = files.iter().map(|(_, c)| c.size()).sum();
        let n = files.len();
        let untouched = vec![Placed::Untouched; n];
        return Ok(Stats {
            files: n,
            unchanged: n,
            stamps: by_record(&files, &proofs, &untouched, &known),
            folders,
            bytes,
            root: target.id.unwrap_or_default(),
            swapped: false,
        });
    }
    let staging = target.parent.join(format!(
        ".{}{STAGING_MARK}{}",
        target.name,
        std::process::id()
    ));
    if fs::symlink_metadata(&staging).is_ok() {
        fs::remove_dir_all(&staging).map_err(err(&staging))?;
    }
    let reused = previous.as_ref().map(|p| (p, proofs.as_slice()));
    // The tree before the previous one, brought up to date; or, when there
    // is none (or it cannot be), a new folder.
    let spare = spare::path(&target.parent, &target.name);
    let listing = last.and_then(|r| r.spare_listing(&spare));
    let staged = spare::claim(&spare, &staging)
        .then(|| spare::update(&staging, listing, reused, &files, &folders))
        .and_then(Result::ok);
    let staged = match staged {
        Some(s) => Ok(s),
        None => fresh(&staging, reused, &files, &folders),
    };
    let stats = match staged
        .and_then(|(s, placed)| sync_tree(&staging, &files, &folders).map(|()| (s, placed)))
        .and_then(|(s, placed)| {
            let m = fs::symlink_metadata(&staging).map_err(err(&staging))?;
            Ok(Stats {
                root: (m.dev(), m.ino()),
                swapped: true,
                stamps: by_record(&files, &proofs, &placed, &known),
                folders,
                ..s
            })
        }) {
        Ok(s) => s,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // The build may have taken minutes: the folder replaced must still be
    // the one checked, and still bootc's.
    let again = target::resolve(out, last);
    if !again
        .as_ref()
        .is_ok_and(|t| t.dir == target.dir && t.id == target.id)
    {
        let _ = fs::remove_dir_all(&staging);
        return Err(again.err().unwrap_or_else(|| WriteError {
            path: out.to_path_buf(),
            error: io::Error::other("was replaced while the tree was built; nothing was written"),
        }));
    }
    swap(&staging, &target.dir, &target.parent, &spare)?;
    Ok(stats)
}

/// Removes the staging folders that killed builds into `out` left beside
/// it: what [`write`] does first, for a build that writes nothing.
pub fn remove_leftovers(out: &Path) {
    if let Ok(dir) = fs::canonicalize(out)
        && let (Some(parent), Some(name)) = (dir.parent(), dir.file_name())
    {
        remove_stale_staging(parent, &name.to_string_lossy());
    }
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

/// How a file of the new tree was put in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placed {
    Written,
    /// Hard-linked from the previous tree.
    Linked,
    /// Already there: the previous tree's proven file itself.
    Untouched,
}

/// [`Stats::stamps`]: a file's proof where it was left untouched and the
/// proof is the stamp `known` (the last record) gave it.
fn by_record(
    files: &[(&String, &Content)],
    proofs: &[Option<reuse::Proof>],
    placed: &[Placed],
    known: &Known,
) -> Vec<Option<reuse::Proof>> {
    files
        .par_iter()
        .zip(proofs)
        .zip(placed)
        .map(|(((rel, _), proof), placed)| {
            let proof = proof.filter(|_| *placed == Placed::Untouched)?;
            known
                .get(rel.as_str())
                .is_some_and(|(stamp, _)| *stamp == proof)
                .then_some(proof)
        })
        .collect()
}

/// Every folder of the tree (relative), parents before children.
fn folders(tree: &Tree) -> Vec<PathBuf> {
    let mut dirs: BTreeSet<&str> = BTreeSet::new();
    for path in tree.files.keys() {
        let mut rest = path.as_str();
        // Deepest first: a folder already there came with its parents.
        while let Some((parent, _)) = rest.rsplit_once('/') {
            if !dirs.insert(parent) {
                break;
            }
            rest = parent;
        }
    }
    dirs.into_iter().map(PathBuf::from).collect()
}

/// Writes `files` into a new folder `staging` (whatever was there
/// removed), hard-linking those the previous tree was proven to hold
/// (`previous`: the tree and a proof per file, or None).
fn fresh(
    staging: &Path,
    previous: Option<(&reuse::Previous, &[Option<reuse::Proof>])>,
    files: &[(&String, &Content)],
    folders: &[PathBuf],
) -> Result<(Stats, Vec<Placed>), WriteError> {
    if fs::symlink_metadata(staging).is_ok() {
        fs::remove_dir_all(staging).map_err(err(staging))?;
    }
    fs::create_dir(staging).map_err(err(staging))?;
    // Folders first, then files, each on all cores.
    set_mode(staging, DIR_MODE)?;
    let modes = Modes::probe(staging);
    modes.folders(staging, folders)?;
    each_file(files, |i, rel, content, bar| {
        let dest = staging.join(rel);
        if let Some((prev, proofs)) = previous
            && let Some(proof) = &proofs[i]
            && reuse::link(prev, rel, proof, &dest)?
        {
            bar.inc(copied(content));
            return Ok(Placed::Linked);
        }
        write_file(&dest, content, modes, |n| bar.inc(n))?;
        Ok(Placed::Written)
    })
}

/// The bytes an artifact's copy writes (what the progress bar counts).
fn copied(c: &Content) -> u64 {
    match c {
        Content::Copy { size, .. } => *size,
        Content::Bytes(_) => 0,
    }
}

/// Puts every file of `files` in place on all cores: `one(index, path,
/// content, bar)` says how. Copies of artifacts show a progress bar on a
/// terminal when large. Returns the stats and how each file was placed.
fn each_file(
    files: &[(&String, &Content)],
    one: impl Fn(usize, &str, &Content, &indicatif::ProgressBar) -> Result<Placed, WriteError> + Sync,
) -> Result<(Stats, Vec<Placed>), WriteError> {
    let bar = crate::progress::bar(files.iter().map(|(_, c)| copied(c)).sum());
    bar.set_message("copying artifacts");
    let results: Vec<Result<Placed, WriteError>> = files
        .par_iter()
        .enumerate()
        .map(|(i, (rel, content))| one(i, rel, content, &bar))
        .collect();
    bar.finish_and_clear();
    let mut stats = Stats::default();
    let mut placed = Vec::with_capacity(files.len());
    for (r, (_, content)) in results.into_iter().zip(files) {
        let p = r?;
        stats.files += 1;
        stats.bytes += content.size();
        stats.unchanged += usize::from(p != Placed::Written);
        placed.push(p);
    }
    Ok((stats, placed))
}

/// Writes one file outside a tree (a boot image) atomically: a temporary
/// file beside it, flushed, then renamed over it (mode 0644).
pub fn write_one(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".bootc-")
        .tempfile_in(parent)
        .map_err(err(parent))?;
    tmp.write_all(bytes).map_err(err(path))?;
    set_mode(tmp.path(), FILE_MODE)?;
    tmp.as_file().sync_all().map_err(err(path))?;
    tmp.persist(path).map_err(|e| err(path)(e.error))?;
    sync(parent)
}

/// Whether `m` is owned by the user bootc runs as (what it trusts beside
/// the tree and in the cache must be: see `record` and `spare`).
fn mine(m: &fs::Metadata) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    m.uid() == unsafe { libc::geteuid() }
}

/// Writes one new file: mode 0644 whatever the umask (`modes`), its bytes
/// checked against the hash the manifest lists (`progress`: bytes copied
/// so far).
fn write_file(
    dest: &Path,
    content: &Content,
    modes: Modes,
    progress: impl FnMut(u64),
) -> Result<(), WriteError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(dest)
        .map_err(err(dest))?;
    modes.file(&f, dest)?;
    match content {
        Content::Bytes(b) => f.write_all(b).map_err(err(dest))?,
        // From the descriptor opened at validation, checked again against
        // the size and hash the manifest lists: never re-opened by name.
        Content::Copy {
            source,
            size,
            blake3,
        } => {
            let n = source
                .copy_to(&mut f, blake3, progress)
                .map_err(|e| match e {
                    CopyError::Source(e) => err(&source.path)(e),
                    CopyError::Dest(e) => err(dest)(e),
                })?;
            if n != *size {
                return Err(err(&source.path)(io::Error::other(format!(
                    "changed while the tree was being written ({size} bytes hashed, {n} copied); \
                     nothing was written, build again"
                ))));
            }
        }
    }
    Ok(())
}

/// Flushes the staged tree (files and folders) to disk, so the swap
/// publishes a tree that is there after a crash: one syncfs for the whole
/// file system (cheaper than an fsync per file on a large fleet), or, where
/// that fails, every file and folder one by one.
fn sync_tree(
    staging: &Path,
    files: &[(&String, &Content)],
    folders: &[PathBuf],
) -> Result<(), WriteError> {
    let dir = fs::File::open(staging).map_err(err(staging))?;
    if rustix::fs::syncfs(&dir).is_ok() {
        return Ok(());
    }
    files.par_iter().try_for_each(|(rel, _)| {
        let p = staging.join(rel);
        fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(err(&p))
    })?;
    for d in folders.iter().rev() {
        sync(&staging.join(d))?;
    }
    dir.sync_all().map_err(err(staging))
}

fn sync(dir: &Path) -> Result<(), WriteError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(err(dir))
}

/// Puts `staging` in place of `out` in one step, then keeps the old tree
/// as the `spare` (the next build stages in it). The parent folder is
/// flushed after the swap, so it survives a crash.
fn swap(staging: &Path, out: &Path, parent: &Path, spare: &Path) -> Result<(), WriteError> {
    if fs::symlink_metadata(out).is_err() {
        if let Err(e) = fs::rename(staging, out) {
            let _ = fs::remove_dir_all(staging);
            return Err(err(out)(e));
        }
        return sync(parent);
    }
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        staging,
        rustix::fs::CWD,
        out,
        rustix::fs::RenameFlags::EXCHANGE,
    ) {
        Ok(()) => {
            sync(parent)?;
            // `staging` now holds the previous tree.
            spare::keep(staging, spare)
        }
        Err(_) => {
            // File systems without RENAME_EXCHANGE: two renames. The old
            // tree's name starts like the staging folder's, so a killed
            // build's leftover is removed by the next one.
            let mut old = staging.as_os_str().to_owned();
            old.push(".old");
            let old = PathBuf::from(old);
            if let Err(e) = fs::rename(out, &old) {
                let _ = fs::remove_dir_all(staging);
                return Err(err(out)(e));
            }
            if let Err(e) = fs::rename(staging, out) {
                // Put the previous tree back.
                let _ = fs::rename(&old, out);
                let _ = fs::remove_dir_all(staging);
                return Err(err(out)(e));
            }
            sync(parent)?;
            spare::keep(&old, spare)
        }
    }
}
