//! `verify` of a folder. Nothing outside the tree is read, hashed or
//! printed: every file is opened beneath the root one component at a time,
//! never through a symbolic link, once (what is checked is what was opened),
//! and a file that has a name outside the tree (a hard link whose other
//! names the tree does not hold) is refused before a byte of it is read;
//! the one exception is its name at the same path in the spare tree the
//! build keeps beside the tree (`write::spare_path`), bootc's own.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::{Problem, bytes, hash_problem, size_problem};
use crate::manifest::ManifestFile;

/// Why a file of the tree is not read.
pub enum Refused {
    /// It is not there.
    Missing,
    /// It must not be read (a link, not a regular file, …): the message.
    Unsafe(String),
    /// Reading it failed.
    Io(io::Error),
}

/// What the walk found: every entry's relative path and kind, and how many
/// names each inode has inside the tree.
pub struct Walk {
    /// ('/'-separated relative path, is a symbolic link)
    pub entries: Vec<(String, bool)>,
    names: HashMap<(u64, u64), u64>,
    spare: Option<Spare>,
}

/// The spare tree a build keeps beside the tree `root` (or beside the tree
/// whose http/ `root` is), opened: the files it shares with the tree
/// (hard links, under the same path) are no names outside the tree.
#[derive(Clone)]
pub struct Spare(std::sync::Arc<OwnedFd>);

impl Spare {
    pub fn of(root: &Path) -> Option<Spare> {
        let root = root.canonicalize().ok()?;
        let beside = |tree: &Path| {
            let (parent, name) = (tree.parent()?, tree.file_name()?.to_str()?);
            Some(crate::write::spare_path(parent, name))
        };
        let path = match beside(&root) {
            Some(p) if p.is_dir() => p,
            _ if root.file_name().is_some_and(|n| n == "http") => {
                beside(root.parent()?)?.join("http")
            }
            _ => return None,
        };
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&path, flags, Mode::empty()).ok()?;
        Some(Spare(std::sync::Arc::new(fd)))
    }

    /// Whether the spare's `rel` (reached through no link) is the file `st`.
    fn holds(&self, rel: &str, st: &rustix::fs::Stat) -> bool {
        use rustix::fs::ResolveFlags;
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        rustix::fs::openat2(&*self.0, rel, flags, Mode::empty(), how)
            .and_then(|fd| rustix::fs::fstat(&fd))
            .is_ok_and(|s| (s.st_dev, s.st_ino) == (st.st_dev, st.st_ino))
    }
}

/// Every entry of `root` but folders, without following links.
pub fn walk(root: &Path) -> Result<Walk, (PathBuf, io::Error)> {
    let mut w = Walk {
        entries: Vec::new(),
        names: HashMap::new(),
        spare: Spare::of(root),
    };
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            (path, io::Error::other(e.to_string()))
        })?;
        if e.file_type().is_dir() {
            continue;
        }
        if let Ok(m) = e.metadata() {
            *w.names.entry((m.dev(), m.ino())).or_default() += 1;
        }
        let rel = e.path().strip_prefix(root).expect("under root");
        w.entries.push((
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            e.file_type().is_symlink(),
        ));
    }
    Ok(w)
}

/// Opens `rel` ('/'-separated, checked by `unsafe_path`) beneath `root`,
/// never through a symbolic link; only a regular file is returned, with its
/// size. `walk` tells how many names of each inode the tree holds.
pub fn open(root: &Path, rel: &str, walk: Option<&Walk>) -> Result<(File, u64), Refused> {
    let mut fd: OwnedFd = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Refused::Io(e.into()))?;
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let flags = if last {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC
        } else {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        fd = match rustix::fs::openat(&fd, *part, flags, Mode::empty()) {
            Ok(next) => next,
            Err(e) => {
                let here = parts[..=i].join("/");
                return Err(
                    match rustix::fs::statat(&fd, *part, AtFlags::SYMLINK_NOFOLLOW) {
                        Err(rustix::io::Errno::NOENT) => Refused::Missing,
                        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                            Refused::Unsafe(if last {
                                "is a symbolic link (verify reads no file through a link)".into()
                            } else {
                                format!(
                                    "lies under `{here}`, a symbolic link (verify reads no file through a link)"
                                )
                            })
                        }
                        Ok(_) if !last => {
                            Refused::Unsafe(format!("lies under `{here}`, not a folder"))
                        }
                        _ => Refused::Io(e.into()),
                    },
                );
            }
        };
    }
    let st = rustix::fs::fstat(&fd).map_err(|e| Refused::Io(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Refused::Unsafe("is not a regular file".into()));
    }
    let inside = walk
        .and_then(|w| w.names.get(&(st.st_dev, st.st_ino)).copied())
        .unwrap_or(1);
    let mut links = st.st_nlink as u64;
    if links > inside {
        // The one name a build's spare tree gives it is bootc's own.
        let own = walk.map_or_else(|| Spare::of(root), |w| w.spare.clone());
        if own.is_some_and(|s| s.holds(rel, &st)) {
            links -= 1;
        }
    }
    if links > inside {
        return Err(Refused::Unsafe(format!(
            "is a hard link to a file with {links} names, {} of them outside the tree (verify reads no file that has a name outside the tree)",
            links - inside
        )));
    }
    Ok((File::from(fd), st.st_size as u64))
}

/// A small file (manifest, signature) of at most `max` bytes.
pub fn read_small(root: &Path, rel: &str, max: u64) -> Result<Vec<u8>, Refused> {
    let (f, size) = open(root, rel, None)?;
    if size > max {
        return Err(Refused::Unsafe(format!(
            "is {}, more than the {max} bytes verify reads",
            bytes(size)
        )));
    }
    let mut out = Vec::with_capacity(size as usize);
    f.take(max + 1).read_to_end(&mut out).map_err(Refused::Io)?;
    if out.len() as u64 > max {
        return Err(Refused::Unsafe(format!(
            "grew past the {max} bytes verify reads while it was read"
        )));
    }
    Ok(out)
}

/// Checks one listed file: opened once, its size from that descriptor, its
/// bytes hashed from it (read, not mapped: a file that shrinks meanwhile is
/// a size problem, not a crash).
pub fn check(root: &Path, rel: &str, f: &ManifestFile, walk: &Walk) -> Option<Problem> {
    let (mut file, size) = match open(root, rel, Some(walk)) {
        Ok(x) => x,
        Err(Refused::Missing) => return Some(Problem::file(&f.path, "missing")),
        Err(Refused::Unsafe(why)) => return Some(Problem::file(&f.path, why)),
        Err(Refused::Io(e)) => return Some(Problem::file(&f.path, format!("cannot be read: {e}"))),
    };
    if size != f.size {
        return Some(size_problem(&f.path, f.size, bytes(size)));
    }
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut done = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                done += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Some(Problem::file(&f.path, format!("cannot be read: {e}"))),
        }
        if done > f.size {
            break;
        }
    }
    if done != f.size {
        return Some(size_problem(
            &f.path,
            f.size,
            format!("{} (it changed while it was read)", bytes(done)),
        ));
    }
    let h = hasher.finalize().to_hex().to_string();
    (h != f.blake3).then(|| hash_problem(&f.path, &f.blake3, &h))
}
