//! The output tree in memory: every file of public/ as bytes or as a file
//! to copy, with its size and BLAKE3. Below the pipeline: render builds a
//! [`Tree`], write puts it on disk, serve and build read it.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use crate::beneath::{OpenError, Opened, open_anywhere};

/// A file's bytes, and their BLAKE3 once asked for (the manifest, the
/// writer and the build record all need it: hashed once). A clone shares
/// them (`bootc serve` serves the bytes it is writing).
#[derive(Clone, Default)]
pub struct Bytes(Arc<Shared>);

#[derive(Default)]
struct Shared {
    data: Vec<u8>,
    blake3: OnceLock<String>,
}

impl Bytes {
    /// Their BLAKE3 (hex), hashed on first use.
    pub fn blake3(&self) -> &str {
        self.0
            .blake3
            .get_or_init(|| blake3::hash(&self.0.data).to_hex().to_string())
    }
}

impl std::ops::Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0.data
    }
}

impl From<Vec<u8>> for Bytes {
    /// Held as long as the tree: without the room a rendered text grew
    /// into (up to half of a fleet's scripts).
    fn from(mut data: Vec<u8>) -> Bytes {
        data.shrink_to_fit();
        Bytes(Arc::new(Shared {
            data,
            blake3: OnceLock::new(),
        }))
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Vec<u8> {
        match Arc::try_unwrap(b.0) {
            Ok(s) => s.data,
            Err(shared) => shared.data.clone(),
        }
    }
}

/// Output files as (path under the output root, text).
pub type Files = Vec<(String, String)>;

/// One file of the output tree.
#[derive(Clone)]
pub enum Content {
    Bytes(Bytes),
    /// A local artifact or chainloader: copied from `source`, the file
    /// opened once at validation; its hash is already known.
    Copy {
        source: Arc<Opened>,
        size: u64,
        blake3: String,
    },
}

impl Content {
    pub fn size(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Copy { size, .. } => *size,
        }
    }

    pub fn blake3(&self) -> &str {
        match self {
            Content::Bytes(b) => b.blake3(),
            Content::Copy { blake3, .. } => blake3,
        }
    }
}

/// The whole tree, keyed by path relative to the output root ('/'-separated).
#[derive(Default)]
pub struct Tree {
    pub files: BTreeMap<String, Content>,
}

impl Tree {
    /// Each file's path and BLAKE3, in order, its bytes freed on all cores
    /// meanwhile: what the record of a written tree keeps of it.
    pub fn into_hashes(self) -> Vec<(String, String)> {
        use rayon::prelude::*;
        self.files
            .into_par_iter()
            .map(|(path, content)| {
                let blake3 = content.blake3().to_string();
                (path, blake3)
            })
            .collect()
    }

    pub fn add(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let bytes: Vec<u8> = bytes.into();
        self.files.insert(path.into(), Content::Bytes(bytes.into()));
    }
}

/// Size and BLAKE3 of a file (read, not memory-mapped: a file that shrinks
/// meanwhile is an error, not a SIGBUS; hashed on all cores).
pub fn hash_file(path: &std::path::Path) -> std::io::Result<(u64, String)> {
    open_anywhere(path)
        .map_err(|e| match e {
            OpenError::Io(e) => e,
            OpenError::NotFound => std::io::ErrorKind::NotFound.into(),
            e => std::io::Error::other(e.to_string()),
        })?
        .hash()
}

/// bootc's marker, at the root of every tree it writes: a folder holding it
/// is bootc's to replace (see `write::target`). It is a file of the tree like
/// any other, so the manifest lists it.
pub const MARKER: &str = ".bootc-output";
pub const MARKER_FIRST_LINE: &str = "bootc output tree, format 1";
pub const MARKER_TEXT: &str = "bootc output tree, format 1\n\
    `bootc build` writes this folder and replaces it as a whole on every build;\n\
    it refuses to replace a non-empty folder without this file.\n";
