//! Opening a file beneath a root folder, once. Every input of a site (its
//! TOML files, templates, artifacts, the iPXE binaries of a configured
//! folder) is opened through [`Root::open`]: the path is resolved by the
//! kernel with `openat2(RESOLVE_BENEATH)`, so neither `..` nor a symlink
//! (relative or absolute, at any level, even one swapped in while bootc
//! runs) leads out of the root. A symlink that stays inside is fine.
//!
//! The file is then used through that one descriptor: read, hashed and
//! copied with positioned reads, never re-opened by name. A file that
//! changes size under bootc is reported, not published.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};

/// A folder that paths are resolved beneath.
pub struct Root {
    fd: OwnedFd,
    /// The folder, canonical (for messages and for the fallback check).
    path: PathBuf,
}

/// Why a file could not be opened beneath its root.
#[derive(Debug)]
pub enum OpenError {
    /// The path leads out of the root (through `..` or a symlink); where it
    /// leads, when that is known.
    Escape(Option<PathBuf>),
    /// Nothing there (or a dangling symlink).
    NotFound,
    /// Not a regular file: what it is ("a folder", "a FIFO", ...).
    NotRegular(&'static str),
    Io(io::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Escape(Some(to)) => {
                write!(f, "it leads out of its folder, to {}", to.display())
            }
            OpenError::Escape(None) => f.write_str("it leads out of its folder"),
            OpenError::NotFound => f.write_str("no such file"),
            OpenError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            OpenError::Io(e) => e.fmt(f),
        }
    }
}

/// A regular file opened for reading, with its size when it was opened.
#[derive(Debug)]
pub struct Opened {
    file: File,
    /// Where it was found (root joined with the relative path), for messages.
    pub path: PathBuf,
    /// Size when opened: the size every later read is checked against.
    pub size: u64,
    pub dev: u64,
    pub ino: u64,
}

/// Why a copy failed: reading the source (or the source changed) or
/// writing the destination.
#[derive(Debug)]
pub enum CopyError {
    Source(io::Error),
    Dest(io::Error),
}

impl Root {
    /// Opens `dir` (following symlinks: the root itself is given by the
    /// caller) as the root that paths are resolved beneath.
    pub fn new(dir: &Path) -> io::Result<Root> {
        raise_fd_limit();
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let path = dir.canonicalize()?;
        Ok(Root { fd, path })
    }

    /// The root folder, canonical.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the regular file at `rel` (relative to the root) for reading,
    /// without leaving the root. FIFOs and devices are refused without
    /// blocking on them.
    pub fn open(&self, rel: &Path) -> Result<Opened, OpenError> {
        if rel.is_absolute() {
            return Err(OpenError::Escape(Some(rel.to_path_buf())));
        }
        // The root itself (a folder, refused below).
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let fd = match self.openat2(rel) {
            Err(rustix::io::Errno::XDEV) => {
                // An absolute symlink, or `..`, that may well stay inside:
                // resolve it in user space, then open the result beneath
                // the root again (so a swap in between still can't escape).
                let resolved = self.path.join(rel).canonicalize();
                match resolved {
                    Ok(c) if c.starts_with(&self.path) => {
                        let inner = c.strip_prefix(&self.path).unwrap_or(&c).to_path_buf();
                        match self.openat2(&inner) {
                            Err(rustix::io::Errno::XDEV) => {
                                return Err(OpenError::Escape(Some(c)));
                            }
                            r => r,
                        }
                    }
                    Ok(c) => return Err(OpenError::Escape(Some(c))),
                    Err(_) => return Err(OpenError::Escape(None)),
                }
            }
            Err(rustix::io::Errno::NOSYS) | Err(rustix::io::Errno::PERM) => self.fallback(rel),
            r => r,
        };
        finish(fd, self.path.join(rel))
    }

    fn openat2(&self, rel: &Path) -> rustix::io::Result<OwnedFd> {
        rustix::fs::openat2(
            &self.fd,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        )
    }

    /// Kernels without openat2 (before 5.6, or behind a seccomp filter that
    /// denies it): resolve in user space, check, and open the result without
    /// following a last symlink.
    fn fallback(&self, rel: &Path) -> rustix::io::Result<OwnedFd> {
        let c = match self.path.join(rel).canonicalize() {
            Ok(c) => c,
            Err(_) => return Err(rustix::io::Errno::NOENT),
        };
        if !c.starts_with(&self.path) {
            return Err(rustix::io::Errno::XDEV);
        }
        rustix::fs::open(
            &c,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::NOFOLLOW,
            Mode::empty(),
        )
    }
}

/// Opens the file at `path` (symlinks followed) as an [`Opened`]: for
/// files outside any site (trusted system folders, a built tree), with the
/// same checks (a regular file, no blocking on a FIFO, read once).
pub fn open_anywhere(path: &Path) -> Result<Opened, OpenError> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    );
    finish(fd, path.to_path_buf())
}

/// Checks what an open returned: a regular file, or why not.
fn finish(fd: rustix::io::Result<OwnedFd>, path: PathBuf) -> Result<Opened, OpenError> {
    let fd = match fd {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(OpenError::NotFound),
        Err(e) => return Err(OpenError::Io(e.into())),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| OpenError::Io(e.into()))?;
    let what = match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            return Ok(Opened {
                file: File::from(fd),
                path,
                size: st.st_size as u64,
                dev: st.st_dev,
                ino: st.st_ino,
            });
        }
        FileType::Directory => "a folder",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "of an unknown type",
    };
    Err(OpenError::NotRegular(what))
}

/// Folders that count as inside the site they are linked into: `bootc diff
/// git:REV` exports a revision into a temporary folder and links in what git
/// ignores from the working tree's copy of the site (local artifacts), so a
/// relative artifact root of the export may resolve there.
static SITE_ALIASES: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Declares `dir` (made canonical) one of those folders, for this process.
pub fn add_site_alias(dir: &Path) {
    if let Ok(c) = dir.canonicalize() {
        SITE_ALIASES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(c);
    }
}

/// Whether the canonical `path` is inside a folder given to [`add_site_alias`].
pub fn is_site_alias(path: &Path) -> bool {
    SITE_ALIASES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|a| path.starts_with(a))
}

/// Chunk size of reads when hashing: large enough for BLAKE3 to use every
/// core on it.
const HASH_CHUNK: usize = 8 << 20;
/// Chunk size of reads when copying (many copies run at once).
const COPY_CHUNK: usize = 1 << 20;

/// The error for a file whose size is not what it was when opened.
fn changed(was: u64, now: u64) -> io::Error {
    io::Error::other(format!(
        "the file changed while bootc was reading it ({was} bytes when it was checked, {now} now)"
    ))
}

impl Opened {
    /// Calls `f` on the file's bytes, in order, from offset 0 (positioned
    /// reads: the descriptor may be shared). Checks the size read against
    /// the size when opened.
    fn each_chunk(
        &self,
        chunk: usize,
        mut f: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<u64> {
        let mut buf = vec![0u8; chunk.min(self.size as usize + 1).max(1)];
        let mut off = 0u64;
        loop {
            let mut filled = 0;
            while filled < buf.len() {
                match self.file.read_at(&mut buf[filled..], off + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if filled == 0 {
                break;
            }
            if off + filled as u64 > self.size {
                // Grown: count the rest without keeping it, for the message.
                let st = rustix::fs::fstat(&self.file).map_err(io::Error::from)?;
                return Err(changed(self.size, st.st_size as u64));
            }
            f(&buf[..filled])?;
            off += filled as u64;
            if filled < buf.len() {
                break;
            }
        }
        if off != self.size {
            return Err(changed(self.size, off));
        }
        Ok(off)
    }

    /// Up to `len` bytes from `offset` (fewer at the end of the file).
    pub fn read_at(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; len];
        let mut n = 0;
        while n < len {
            match self.file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        Ok(buf)
    }

    /// The first bytes, where the headers of a kernel or initrd are
    /// ([`crate::sniff::HEAD`]).
    pub fn head(&self) -> io::Result<Vec<u8>> {
        self.read_at(0, crate::sniff::HEAD)
    }

    /// The whole content.
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size as usize);
        self.each_chunk(COPY_CHUNK, |b| {
            out.extend_from_slice(b);
            Ok(())
        })?;
        Ok(out)
    }

    /// What identifies this content without reading it: device, inode,
    /// size, and modification and change times to the nanosecond (from the
    /// descriptor; the change time moves with any write, even one that
    /// restores the modification time).
    pub fn stamp(&self) -> io::Result<[i64; 7]> {
        let st = rustix::fs::fstat(&self.file).map_err(io::Error::from)?;
        Ok(stat_stamp(&st))
    }

    /// Size and BLAKE3 (hashed on all cores), from this descriptor.
    pub fn hash(&self) -> io::Result<(u64, String)> {
        self.hash_with(|_| {})
    }

    /// [`Opened::hash`], calling `progress` with each chunk's length.
    pub fn hash_with(&self, mut progress: impl FnMut(u64)) -> io::Result<(u64, String)> {
        let mut h = blake3::Hasher::new();
        let n = self.each_chunk(HASH_CHUNK, |b| {
            progress(b.len() as u64);
            if b.len() >= 1 << 20 {
                h.update_rayon(b);
            } else {
                h.update(b);
            }
            Ok(())
        })?;
        Ok((n, h.finalize().to_hex().to_string()))
    }

    /// Copies the content into `dest`, checking on the way that it still is
    /// `blake3` (what was validated and written into the manifest).
    /// `progress` is called with each chunk's length.
    pub fn copy_to(
        &self,
        dest: &mut File,
        blake3: &str,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, CopyError> {
        let mut h = blake3::Hasher::new();
        let mut write_err = None;
        let n = self
            .each_chunk(COPY_CHUNK, |b| {
                progress(b.len() as u64);
                h.update(b);
                dest.write_all(b).map_err(|e| {
                    let msg = e.to_string();
                    write_err = Some(e);
                    io::Error::other(msg)
                })
            })
            .map_err(|e| match write_err.take() {
                Some(w) => CopyError::Dest(w),
                None => CopyError::Source(e),
            })?;
        if h.finalize().to_hex().as_str() != blake3 {
            return Err(CopyError::Source(io::Error::other(
                "the file changed while bootc was reading it (its content is not what was hashed)",
            )));
        }
        Ok(n)
    }
}

/// Artifacts stay open from validation to copy, so a site with many of
/// them needs more descriptors than the usual soft limit of 1024: raise it
/// to the hard limit (once).
fn raise_fd_limit() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    });
}

/// What identifies a file's content without reading it (see
/// [`Opened::stamp`]): device, inode, size, and modification and change
/// times to the nanosecond.
pub fn stat_stamp(st: &rustix::fs::Stat) -> [i64; 7] {
    [
        st.st_dev as i64,
        st.st_ino as i64,
        st.st_size,
        st.st_mtime,
        st.st_mtime_nsec as i64,
        st.st_ctime,
        st.st_ctime_nsec as i64,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let site = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "SECRET").unwrap();
        std::fs::create_dir(site.path().join("sub")).unwrap();
        std::fs::write(site.path().join("sub/file"), "inside").unwrap();
        (site, outside)
    }

    #[test]
    fn links_inside_are_followed_links_out_are_refused() {
        let (site, outside) = setup();
        let s = site.path();
        symlink("sub/file", s.join("rel")).unwrap();
        symlink(s.join("sub/file"), s.join("abs")).unwrap();
        symlink(outside.path().join("secret"), s.join("out")).unwrap();
        symlink("../../", s.join("sub/up")).unwrap();
        symlink(outside.path(), s.join("dir")).unwrap();
        let root = Root::new(s).unwrap();
        for ok in ["sub/file", "rel", "abs"] {
            let f = root.open(Path::new(ok)).unwrap();
            assert_eq!(f.read_all().unwrap(), b"inside", "{ok}");
        }
        let secret = outside.path().join("secret");
        let out = root.open(Path::new("out")).unwrap_err();
        assert!(
            matches!(&out, OpenError::Escape(Some(p)) if *p == secret.canonicalize().unwrap()),
            "{out:?}"
        );
        for bad in ["dir/secret", "../secret", "sub/up/secret"] {
            let e = root.open(Path::new(bad)).unwrap_err();
            assert!(matches!(e, OpenError::Escape(_)), "{bad}: {e:?}");
        }
        assert!(matches!(
            root.open(Path::new("sub")),
            Err(OpenError::NotRegular("a folder"))
        ));
        assert!(matches!(
            root.open(Path::new("nope")),
            Err(OpenError::NotFound)
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let (site, _o) = setup();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            site.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let root = Root::new(site.path()).unwrap();
        assert!(matches!(
            root.open(Path::new("fifo")),
            Err(OpenError::NotRegular("a FIFO"))
        ));
    }

    /// Opened once: replacing the name after opening (by a symlink to a
    /// secret) changes nothing about what is hashed and copied.
    #[test]
    fn the_descriptor_not_the_name_is_copied() {
        let (site, outside) = setup();
        let s = site.path();
        let root = Root::new(s).unwrap();
        let f = root.open(Path::new("sub/file")).unwrap();
        let (size, hash) = f.hash().unwrap();
        assert_eq!(size, 6);
        std::fs::remove_file(s.join("sub/file")).unwrap();
        symlink(outside.path().join("secret"), s.join("sub/file")).unwrap();
        let dest_path = s.join("copy");
        let mut dest = File::create(&dest_path).unwrap();
        f.copy_to(&mut dest, &hash, |_| {}).unwrap();
        assert_eq!(std::fs::read(&dest_path).unwrap(), b"inside");
    }

    /// A file that shrinks, grows or changes after hashing is an error, not
    /// a SIGBUS and not a copy that differs from the manifest.
    #[test]
    fn a_changed_file_is_an_error() {
        let (site, _o) = setup();
        let s = site.path();
        let root = Root::new(s).unwrap();
        let path = s.join("sub/file");
        let f = root.open(Path::new("sub/file")).unwrap();
        let (_, hash) = f.hash().unwrap();
        let mut sink = File::create(s.join("copy")).unwrap();
        for (content, what) in [
            (&b"in"[..], "2 now"),
            (b"inside and more", "15 now"),
            (b"INSIDE", "not what was hashed"),
        ] {
            std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&path)
                .unwrap()
                .write_all(content)
                .unwrap();
            let e = match f.copy_to(&mut sink, &hash, |_| {}) {
                Err(CopyError::Source(e)) => e.to_string(),
                other => panic!("{other:?}"),
            };
            assert!(
                e.contains("changed while bootc was reading it") && e.contains(what),
                "{e}"
            );
        }
        std::fs::write(&path, "in").unwrap();
        let e = f.hash().unwrap_err().to_string();
        assert!(e.contains("6 bytes when it was checked, 2 now"), "{e}");
    }
}
