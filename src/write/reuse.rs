//! The bytes the writer publishes are the bytes the manifest lists. A file of
//! the previous tree is reused (hard-linked, so it keeps its mtime) only once
//! its content is proven the same: compared byte for byte, or re-hashed, never
//! trusted by its name or size (someone may have edited it in place). A copied
//! artifact is hashed as it is copied, and a copy whose bytes differ from the
//! hash checked at validation fails the build: a signed manifest never
//! describes a tree it doesn't match.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::{FILE_MODE, WriteError, err};
use crate::beneath::stat_stamp;
use crate::tree::Content;

/// Read size for hashing and copying (hashed on all cores per chunk).
const CHUNK: usize = 4 << 20;

/// The previous tree, open: its files are reached beneath it, through no
/// symlink.
pub struct Previous {
    pub path: std::path::PathBuf,
    dir: fs::File,
    /// Every folder of it still has the stamp the last build's record gave
    /// it: no folder was replaced (by a symlink out of the tree, say) and no
    /// name moved, so a path beneath it leads where it did.
    listed: bool,
}

impl Previous {
    /// The previous tree at `path`; `listed`: see [`Previous::listed`].
    pub fn open(path: &Path, listed: bool) -> Option<Previous> {
        let dir = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(path)
            .ok()?;
        Some(Previous {
            path: path.to_path_buf(),
            dir,
            listed,
        })
    }

    fn open_file(&self, rel: &str) -> io::Result<fs::File> {
        use rustix::fs::{Mode, OFlags, ResolveFlags};
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        match rustix::fs::openat2(&self.dir, rel, flags, Mode::empty(), how) {
            Ok(fd) => Ok(fd.into()),
            // Kernels before 5.6 (or a sandbox without openat2): the last
            // component at least is no symlink; the inode check below holds.
            Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) => {
                Ok(rustix::fs::openat(&self.dir, rel, flags, Mode::empty())?.into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// What a file of the previous tree was when it was proven to hold a
/// file of the new tree: its [`stat_stamp`] (the change time cannot be set
/// back by its owner the way the modification time can).
pub type Proof = [i64; 7];

/// Proves that `rel` of the previous tree holds exactly `content` and has
/// the tree's file mode, by its bytes, or by `known` (the stamp it had when
/// it held bytes of that BLAKE3, if it still has it); its stamp as read, or
/// None when it is not reusable (missing, a symlink, another mode or size,
/// other bytes, changed while it was read).
pub fn prove(
    prev: &Previous,
    rel: &str,
    content: &Content,
    known: Option<&(Proof, &str)>,
) -> Option<Proof> {
    // The file the record stamped, untouched since, where no folder
    // moved: one stat, not read.
    if let Some((stamp_then, blake3)) = known.filter(|_| prev.listed)
        && let Ok(st) = rustix::fs::statat(&prev.dir, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        && regular_as(&st, content)
        && stat_stamp(&st) == *stamp_then
    {
        return (content.blake3() == *blake3).then_some(*stamp_then);
    }
    let mut f = prev.open_file(rel).ok()?;
    let st = rustix::fs::fstat(&f).ok()?;
    if !regular_as(&st, content) {
        return None;
    }
    let before = stat_stamp(&st);
    let same = match content {
        Content::Bytes(b) => {
            let mut buf = Vec::with_capacity(b.len());
            (&mut f)
                .take(b.len() as u64 + 1)
                .read_to_end(&mut buf)
                .is_ok()
                && buf == **b
        }
        Content::Copy { size, blake3, .. } => {
            hash_reader(&mut f, None).is_ok_and(|(n, h)| n == *size && h == *blake3)
        }
    };
    let after = stat_stamp(&rustix::fs::fstat(&f).ok()?);
    (same && before == after).then_some(after)
}

/// Whether `st` is a regular file of `content`'s size with the tree's
/// file mode.
fn regular_as(st: &rustix::fs::Stat, content: &Content) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
        && st.st_size as u64 == content.size()
        && st.st_mode & 0o7777 == FILE_MODE
}

/// Hard-links `rel` of the previous tree to `dest` when it is still the
/// file `proof` was made of (untouched since: its ctime would have moved).
/// Returns whether it did.
pub fn link(prev: &Previous, rel: &str, proof: &Proof, dest: &Path) -> Result<bool, WriteError> {
    let old = prev.path.join(rel);
    if !rustix::fs::lstat(&old).is_ok_and(|st| stat_stamp(&st) == *proof) {
        return Ok(false);
    }
    if fs::hard_link(&old, dest).is_err() {
        return Ok(false);
    }
    // The name linked must still be the file that was checked.
    match rustix::fs::lstat(dest) {
        Ok(st) if stat_stamp(&st)[..2] == proof[..2] => Ok(true),
        _ => {
            fs::remove_file(dest).map_err(err(dest))?;
            Ok(false)
        }
    }
}

/// Whether the previous tree holds nothing but `files` files (each proven
/// to be one of the new tree's) in `folders` folders below its root, every
/// folder (the root too) with the tree's mode: then it already is the new
/// tree.
pub fn holds_only(prev: &Previous, files: usize, folders: usize) -> bool {
    let (mut f, mut d) = (0, 0);
    let folders = folders + 1; // the root
    for e in walkdir::WalkDir::new(&prev.path) {
        let Ok(e) = e else { return false };
        let Ok(m) = e.metadata() else { return false };
        if m.is_file() {
            f += 1;
        } else if m.is_dir() && m.mode() & 0o7777 == super::DIR_MODE {
            d += 1;
        } else {
            return false;
        }
        if f > files || d > folders {
            return false;
        }
    }
    (f, d) == (files, folders)
}

/// Which side of a copy failed.
enum Side {
    Read,
    Write,
}

/// BLAKE3 of everything `r` yields (and its length), optionally copying it
/// to `to` on the way. Reads, never maps: a file that shrinks meanwhile is an
/// error, not a SIGBUS.
fn hash_reader(
    r: &mut impl Read,
    mut to: Option<&mut fs::File>,
) -> Result<(u64, String), (Side, io::Error)> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match r.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((Side::Read, e)),
            }
        }
        if filled == 0 {
            break;
        }
        let chunk = &buf[..filled];
        match to.as_deref_mut() {
            Some(w) => {
                rayon::join(|| h.update_rayon(chunk), || w.write_all(chunk))
                    .1
                    .map_err(|e| (Side::Write, e))?;
            }
            None => {
                h.update_rayon(chunk);
            }
        }
    }
    Ok((h.count(), h.finalize().to_hex().to_string()))
}
