//! The entries of a build record: each folder and file of a tree with
//! its stamp (and a file's BLAKE3), one per line; and the check that a
//! tree still has them.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::io;
use std::path::Path;

use rayon::prelude::*;

/// A folder or file of the tree ("" is the tree's own folder).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) path: String,
    pub(super) stamp: Stamp,
    /// A file's BLAKE3 (what the build wrote there).
    pub(super) blake3: Option<String>,
    /// Its stamp was taken in the tick it last changed, so it might change
    /// again unseen: a file's bytes are hashed again, a folder's entries
    /// listed again.
    pub(super) racy: bool,
}

pub(super) type Stamp = [i64; 8];

/// [`crate::beneath::stat_stamp`] and the mode (type and permissions).
pub(super) fn stamp(st: &rustix::fs::Stat) -> Stamp {
    let [dev, ino, size, mtime, mtime_ns, ctime, ctime_ns] = crate::beneath::stat_stamp(st);
    let mode = i64::from(st.st_mode);
    [dev, ino, size, mtime, mtime_ns, ctime, ctime_ns, mode]
}

/// The stamp of `rel` beneath the folder `dir` (never through a symlink).
pub(super) fn stamp_at(dir: &fs::File, rel: &str) -> io::Result<Stamp> {
    let rel = if rel.is_empty() { "." } else { rel };
    let st = rustix::fs::statat(dir, rel, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(stamp(&st))
}

/// [`Record::holds`] of `entries` (the tree's own folder first), of the
/// folders only unless `files`.
pub(super) fn check(entries: &[Entry], out: &Path, files: bool) -> bool {
    let Ok(dir) = fs::File::open(out) else {
        return false;
    };
    // What each racy folder must list: its entries in the record.
    let racy_folders: HashSet<&str> = entries
        .iter()
        .filter(|e| e.racy && e.folder())
        .map(|e| e.path.as_str())
        .collect();
    let mut listed: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    if !racy_folders.is_empty() {
        for e in entries.iter().filter(|e| !e.path.is_empty()) {
            let (parent, name) = e.path.rsplit_once('/').unwrap_or(("", &e.path));
            if racy_folders.contains(parent) {
                listed.entry(parent).or_default().insert(name);
            }
        }
    }
    entries.par_iter().filter(|e| files || e.folder()).all(|e| {
        let Ok(stamp) = stamp_at(&dir, &e.path) else {
            return false;
        };
        if stamp != e.stamp {
            return false;
        }
        match (e.racy, &e.blake3) {
            (false, _) => true,
            (true, _) if e.folder() => {
                let names = fs::read_dir(out.join(&e.path)).and_then(|d| {
                    d.map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
                        .collect::<io::Result<BTreeSet<String>>>()
                });
                let want = listed.get(e.path.as_str());
                names.is_ok_and(|n| {
                    n.len() == want.map_or(0, BTreeSet::len)
                        && want.is_none_or(|w| w.iter().all(|x| n.contains(*x)))
                })
            }
            (true, None) => false,
            (true, Some(blake3)) => {
                crate::tree::hash_file(&out.join(&e.path)).is_ok_and(|(_, h)| &h == blake3)
            }
        }
    })
}

impl Entry {
    /// The lines of `entries`, in order (made on all cores).
    pub(super) fn lines(entries: &[Entry]) -> String {
        entries
            .par_chunks(4096)
            .map(|chunk| {
                let mut text = String::with_capacity(chunk.len() * 160);
                for e in chunk {
                    e.line(&mut text);
                }
                text
            })
            .collect::<Vec<String>>()
            .concat()
    }

    pub(super) fn folder(&self) -> bool {
        self.stamp[7] as u32 & libc::S_IFMT == libc::S_IFDIR
    }

    /// The entries of a tree, one per line: its own folder first, then
    /// paths beneath it only.
    pub(super) fn parse_tree(lines: &[&str]) -> Option<Vec<Entry>> {
        let entries = lines
            .par_iter()
            .map(|l| Entry::parse(l))
            .collect::<Option<Vec<_>>>()?;
        (entries.first()?.path.is_empty()
            && entries[1..].iter().all(|e| {
                e.path
                    .split('/')
                    .all(|c| !c.is_empty() && c != "." && c != "..")
            }))
        .then_some(entries)
    }

    /// `S0 S1 … S7 RACY BLAKE3 PATH` (RACY `r` or `.`, BLAKE3 `-` for a
    /// folder): tree paths hold no newline (bootc's names).
    fn line(&self, out: &mut String) {
        use std::fmt::Write;
        for n in self.stamp {
            let _ = write!(out, "{n} ");
        }
        let racy = if self.racy { "r" } else { "." };
        let blake3 = self.blake3.as_deref().unwrap_or("-");
        let _ = writeln!(out, "{racy} {blake3} {}", self.path);
    }

    fn parse(line: &str) -> Option<Entry> {
        let mut words = line.splitn(11, ' ');
        let mut stamp = [0i64; 8];
        for n in &mut stamp {
            *n = words.next()?.parse().ok()?;
        }
        let racy = match words.next()? {
            "r" => true,
            "." => false,
            _ => return None,
        };
        let blake3 = match words.next()? {
            "-" => None,
            h => Some(h.to_string()),
        };
        let path = words.next()?.to_string();
        Some(Entry {
            path,
            stamp,
            blake3,
            racy,
        })
    }
}
