//! The spare tree: the tree before the previous one, kept beside the output
//! as `.<name>.bootc-spare` instead of being removed after the swap. The
//! next build stages in it: what did not change since is already there
//! (the same inode as the previous tree's proven file, hard-linked when it
//! was staged), so a build that changes one machine renames a handful of
//! files into it instead of linking a whole new tree and removing the old
//! one (issue 17: the write was as slow as `cp -r` of the tree).
//!
//! Nothing in the spare is trusted by its name: a file stays only when it is
//! the very inode the previous tree holds under the same path and that file
//! is proven to hold the new bytes ([`super::reuse::prove`]); anything else
//! there (another file, a symlink, a folder where a file goes, a name the
//! tree does not have) is replaced or removed. Every file put in comes as a
//! new inode renamed over the old name: no inode shared with the previous
//! tree is ever written.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::reuse::{self, Previous, Proof};
use super::{
    DIR_MODE, Modes, Placed, Stats, WriteError, copied, each_file, err, set_mode, write_file,
};
use crate::tree::Content;

const SPARE_MARK: &str = ".bootc-spare";

/// Where the spare of the output folder `name` in `parent` is kept
/// (`write::spare_path`).
pub fn path(parent: &Path, name: &str) -> PathBuf {
    parent.join(format!(".{name}{SPARE_MARK}"))
}

/// Whether `m` is a folder of this user's (the tree's folders must be: a
/// folder someone else owns could be changed by them once published).
fn own_folder(m: &fs::Metadata) -> bool {
    m.is_dir() && super::mine(m)
}

/// Takes the spare as this build's staging folder (one rename: of two
/// builds at once, one gets it). False when there is none, or it is not a
/// folder of this user's (then it is left where it is).
pub fn claim(spare: &Path, staging: &Path) -> bool {
    if !fs::symlink_metadata(spare).is_ok_and(|m| own_folder(&m)) {
        return false;
    }
    if fs::rename(spare, staging).is_err() {
        return false;
    }
    // Replaced between the check and the rename: the staging folder's
    // name is the build's, so whatever came is removed.
    if fs::symlink_metadata(staging).is_ok_and(|m| own_folder(&m)) {
        return true;
    }
    let _ = fs::remove_dir_all(staging).or_else(|_| fs::remove_file(staging));
    false
}

/// Keeps `old` (the previous tree, swapped out) as the spare; removes it
/// when a spare is there already (another build's).
pub fn keep(old: &Path, spare: &Path) -> Result<(), WriteError> {
    if fs::symlink_metadata(spare).is_ok() || fs::rename(old, spare).is_err() {
        return fs::remove_dir_all(old).map_err(err(old));
    }
    Ok(())
}

/// What the spare holds at a path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// A regular file, by inode.
    File(u64),
    /// A folder of this user's, and whether it has the tree's mode.
    Folder { mode_ok: bool },
    /// Anything else: a symlink, a device, a socket, someone else's folder.
    Other,
}

/// What the build record says the spare holds, its folders' stamps
/// checked ([`super::Record::spare_listing`]): each entry's path, a file's
/// inode (None for a folder) and its mode.
pub type Listing = Vec<(String, Option<u64>, u32)>;

/// [`Held`] from a record's listing: every folder in it is one of this
/// user's builds made (its stamp, owner included, has not changed since).
fn recorded(listing: Listing) -> HashMap<String, Held> {
    listing
        .into_iter()
        .map(|(path, ino, mode)| {
            let held = match ino {
                Some(ino) => Held::File(ino),
                None => Held::Folder {
                    mode_ok: mode & 0o7777 == DIR_MODE,
                },
            };
            (path, held)
        })
        .collect()
}

/// What `staging` holds, every entry below it (not following links);
/// names that are not UTF-8 cannot be the tree's, so they are listed apart.
fn survey(staging: &Path) -> io::Result<(HashMap<String, Held>, Vec<PathBuf>)> {
    use walkdir::DirEntryExt;
    let mut held = HashMap::new();
    let mut strange = Vec::new();
    for e in walkdir::WalkDir::new(staging).min_depth(1) {
        let e = e.map_err(io::Error::from)?;
        let what = if e.file_type().is_file() {
            Held::File(e.ino())
        } else if e.file_type().is_dir() {
            use std::os::unix::fs::PermissionsExt;
            let m = e.metadata().map_err(io::Error::from)?;
            match own_folder(&m) {
                true => Held::Folder {
                    mode_ok: m.permissions().mode() & 0o7777 == DIR_MODE,
                },
                false => Held::Other,
            }
        } else {
            Held::Other
        };
        let rel = e.path().strip_prefix(staging).unwrap_or(e.path());
        match rel.to_str() {
            Some(r) => {
                held.insert(r.to_string(), what);
            }
            None => strange.push(e.path().to_path_buf()),
        }
    }
    Ok((held, strange))
}

/// Brings the claimed spare in `staging` to hold exactly `files` in
/// `folders` (see the module's documentation): `previous` and `proofs` say
/// which files the previous tree holds, proven. An error leaves `staging`
/// in between; the caller removes it.
pub fn update(
    staging: &Path,
    listing: Option<Listing>,
    previous: Option<(&Previous, &[Option<Proof>])>,
    files: &[(&String, &Content)],
    folders: &[PathBuf],
) -> Result<(Stats, Vec<Placed>), WriteError> {
    let (held, strange) = match listing {
        Some(l) => (recorded(l), Vec::new()),
        None => survey(staging).map_err(err(staging))?,
    };
    let want_files: HashSet<&str> = files.iter().map(|(r, _)| r.as_str()).collect();
    let want_folders: HashSet<&str> = folders.iter().filter_map(|d| d.to_str()).collect();
    // Away with what the tree does not have there (sorted: a folder goes
    // before what is in it).
    let mut gone: Vec<&str> = held
        .iter()
        .filter(|(rel, h)| match h {
            Held::File(_) => !want_files.contains(rel.as_str()),
            Held::Folder { .. } => !want_folders.contains(rel.as_str()),
            Held::Other => true,
        })
        .map(|(rel, _)| rel.as_str())
        .collect();
    gone.sort_unstable();
    for rel in gone {
        let full = staging.join(rel);
        let result = match held[rel] {
            Held::Folder { .. } => fs::remove_dir_all(&full),
            _ => fs::remove_file(&full).or_else(|_| fs::remove_dir_all(&full)),
        };
        match result {
            // Inside a folder removed already.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            r => r.map_err(err(&full))?,
        }
    }
    for p in &strange {
        fs::remove_dir_all(p)
            .or_else(|_| fs::remove_file(p))
            .map_err(err(p))?;
    }
    set_mode(staging, DIR_MODE)?;
    let modes = Modes::probe(staging);
    for d in folders {
        let full = staging.join(d);
        match d.to_str().and_then(|r| held.get(r)) {
            Some(Held::Folder { mode_ok: true }) => {}
            Some(Held::Folder { mode_ok: false }) => set_mode(&full, DIR_MODE)?,
            _ => modes.folder(&full)?,
        }
    }
    each_file(files, |i, rel, content, bar| {
        let proof = previous.and_then(|(p, proofs)| Some((p, proofs[i].as_ref()?)));
        let here = held.get(rel).copied();
        // The previous tree's proven file itself: already in place.
        if let (Some((_, proof)), Some(Held::File(ino))) = (proof, here)
            && proof[1] as u64 == ino
        {
            bar.inc(copied(content));
            return Ok(Placed::Untouched);
        }
        let dest = staging.join(rel);
        // A new inode under a name of its own, renamed over the old one.
        let tmp = match here {
            Some(Held::File(_)) => {
                let mut name = dest.file_name().unwrap_or_default().to_os_string();
                name.push(".bootc-new");
                dest.with_file_name(name)
            }
            _ => dest.clone(),
        };
        let same = match proof {
            Some((prev, proof)) => reuse::link(prev, rel, proof, &tmp)?,
            None => false,
        };
        if same {
            bar.inc(copied(content));
        } else {
            write_file(&tmp, content, modes, |n| bar.inc(n))?;
        }
        if tmp != dest {
            fs::rename(&tmp, &dest).map_err(err(&dest))?;
        }
        Ok(if same {
            Placed::Linked
        } else {
            Placed::Written
        })
    })
}
