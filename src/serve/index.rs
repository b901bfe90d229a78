//! The index of what one build serves: path under `http/` -> [`FileEntry`],
//! in the tree's order (sorted by path), found by binary search. It is made
//! from a tree in one walk beside the index served before it, whose order
//! is the same: nothing is hashed or read back from disk.

use std::ops::Bound;
use std::time::SystemTime;

use super::{Body, FileEntry};
use crate::byname::ByName;
use crate::tree::{Content, Tree};

/// Files by path under `http/`, sorted by path.
pub(super) type Index = ByName<FileEntry>;

impl Index {
    /// The tree's `http/` files but those `except` holds. A file `before`
    /// (the index served until now, or its finished part) held with the
    /// same hash keeps its modification time (the writer kept the file);
    /// any other is modified `now`. ETags are the hashes the manifest was
    /// made of (hashed once, kept by the tree).
    pub fn of(tree: &Tree, before: &[&Index], now: SystemTime, except: &Index) -> Index {
        let http = tree
            .files
            .range::<str, _>((Bound::Included("http/"), Bound::Unbounded))
            .map_while(|(path, content)| Some((path.strip_prefix("http/")?, content)));
        let mut files = Vec::with_capacity(tree.files.len().saturating_sub(except.len()));
        let mut before: Vec<_> = before.iter().map(|ix| Walk::new(ix)).collect();
        let mut except = Walk::new(except);
        for (rel, content) in http {
            if except.find(rel).is_some() {
                continue;
            }
            let body = match content {
                Content::Bytes(b) => Body::Memory(b.clone()),
                Content::Copy { blake3, .. } => Body::Disk {
                    blake3: blake3.clone(),
                },
            };
            let mut entry = FileEntry {
                size: content.size(),
                modified: now,
                body,
            };
            let kept = before.iter_mut().find_map(|w| w.find(rel));
            if let Some(e) = kept.filter(|e| e.blake3() == entry.blake3()) {
                entry.modified = e.modified;
            }
            files.push((rel.to_string(), entry));
        }
        Index::from_sorted(files)
    }

    /// Whether every file it serves from disk is served from disk by
    /// `served` too, with the same content.
    pub fn disk_files_in(&self, served: &Index) -> bool {
        self.iter().all(|(rel, e)| match e.body {
            Body::Memory(_) => true,
            Body::Disk { .. } => served
                .get(rel)
                .is_some_and(|p| matches!(p.body, Body::Disk { .. }) && p.blake3() == e.blake3()),
        })
    }
}

/// An index walked in order, for paths asked in order.
struct Walk<'a> {
    files: &'a [(String, FileEntry)],
}

impl<'a> Walk<'a> {
    fn new(ix: &'a Index) -> Walk<'a> {
        Walk {
            files: ix.as_slice(),
        }
    }

    /// The entry of `rel`, if the index holds it; paths before it are
    /// passed (each asked path must not sort before the last one): two
    /// indexes of builds of one site mostly hold the same paths, so this
    /// is mostly one comparison.
    fn find(&mut self, rel: &str) -> Option<&'a FileEntry> {
        while let Some(((k, e), rest)) = self.files.split_first() {
            match k.as_str().cmp(rel) {
                std::cmp::Ordering::Less => self.files = rest,
                std::cmp::Ordering::Equal => return Some(e),
                std::cmp::Ordering::Greater => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn tree(files: &[(&str, &str)]) -> Tree {
        let mut t = Tree::default();
        for (path, text) in files {
            t.add(*path, text.as_bytes());
        }
        t
    }

    fn times(ix: &Index) -> Vec<(&str, u64)> {
        ix.iter()
            .map(|(k, e)| {
                let t = e.modified.duration_since(UNIX_EPOCH).unwrap();
                (k.as_str(), t.as_secs())
            })
            .collect()
    }

    #[test]
    fn a_file_served_before_with_the_same_bytes_keeps_its_time() {
        let (t1, t2) = (
            UNIX_EPOCH + Duration::from_secs(1),
            UNIX_EPOCH + Duration::from_secs(2),
        );
        let none = Index::default();
        let first = tree(&[
            ("http/a", "1"),
            ("http/b", "2"),
            ("http/c", "3"),
            ("tftp/x", "9"),
        ]);
        let first = Index::of(&first, &[], t1, &none);
        assert_eq!(times(&first), [("a", 1), ("b", 1), ("c", 1)]);
        // A file added before the others, one changed, one gone.
        let second = tree(&[
            ("http/0", "0"),
            ("http/a", "1"),
            ("http/b", "2b"),
            ("http/d", "3"),
        ]);
        let second = Index::of(&second, &[&first], t2, &none);
        assert_eq!(times(&second), [("0", 2), ("a", 1), ("b", 2), ("d", 2)]);
        assert!(second.get("a").is_some() && second.get("c").is_none());
        // The part a build adds when finished: what it serves already is
        // left out; a file the part before it served keeps its time.
        let summary = Index::of(&tree(&[("http/m", "m")]), &[], t1, &none);
        let finished = tree(&[("http/0", "0"), ("http/a", "1"), ("http/m", "m")]);
        let finished = Index::of(&finished, &[&first, &summary], t2, &second);
        assert_eq!(times(&finished), [("m", 1)]);
    }
}
