//! manifest.json: the list of every file of a built tree with its size and
//! BLAKE3, and the remote artifacts with their pins. One type, written by
//! render and read by build (to sign it), verify and serve.

use std::collections::BTreeMap;
use std::io::Write as _;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::site::{Artifact, Site};
use crate::tree::Tree;

/// Where the manifest is in the tree.
pub const MANIFEST: &str = "http/manifest.json";
/// Its minisign signature, beside it.
pub const SIGNATURE: &str = "http/manifest.json.minisig";
/// The format this bootc writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// `S`: the files' paths and hashes, `String` as read, `&str` as made
/// from a tree ([`Manifest::of`], which copies none of them).
// Not deny_unknown_fields: verify reads manifests written elsewhere and
// has always tolerated fields it does not use.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest<S = String> {
    pub format: u32,
    pub site: String,
    pub build_id: String,
    pub files: Vec<ManifestFile<S>>,
    #[serde(default)]
    pub remote: Vec<RemoteArtifact>,
}

#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct ManifestFile<S = String> {
    pub path: S,
    pub size: u64,
    pub blake3: S,
}

#[derive(Serialize, Deserialize)]
pub struct RemoteArtifact {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    pub images: Vec<String>,
}

impl<'a> Manifest<&'a str> {
    /// Its JSON (pretty, ending in a newline), written into a buffer made
    /// about its size at once (a fleet's manifest is tens of MB).
    pub fn json(&self) -> Vec<u8> {
        // A file's entry is about 130 bytes besides its path and size.
        let size: usize = self.files.iter().map(|f| f.path.len() + 150).sum();
        let mut out = Vec::with_capacity(size + 4096);
        serde_json::to_writer_pretty(&mut out, self).expect("the manifest serializes");
        out.push(b'\n');
        out
    }

    /// The manifest of everything in `tree` (which must not hold the manifest).
    pub fn of(site: &Site, tree: &'a Tree) -> Self {
        let files: Vec<ManifestFile<&str>> = tree
            .files
            .par_iter()
            // The signature is added after the manifest is made, so only the
            // manifest itself needs leaving out.
            .filter(|(p, _)| p.as_str() != MANIFEST)
            .map(|(path, c)| ManifestFile {
                path: path.as_str(),
                size: c.size(),
                blake3: c.blake3(),
            })
            .collect();
        let mut remote: BTreeMap<(String, Option<String>, Option<String>), Vec<String>> =
            BTreeMap::new();
        for img in site.images.values() {
            for a in img.boot.artifacts() {
                if let Artifact::Remote {
                    url,
                    sha256,
                    blake3,
                    ..
                } = a
                {
                    remote
                        .entry((url.clone(), sha256.clone(), blake3.clone()))
                        .or_default()
                        .push(img.name.clone());
                }
            }
        }
        let remote = remote
            .into_iter()
            .map(|((url, sha256, blake3), images)| RemoteArtifact {
                url,
                sha256,
                blake3,
                images,
            })
            .collect();
        let mut id = blake3::Hasher::new();
        id.update(site.name.as_bytes());
        for f in &files {
            // Straight into the hasher (no text made per file).
            let _ = write!(id, "\n{} {} {}", f.path, f.size, f.blake3);
        }
        Manifest {
            format: MANIFEST_FORMAT,
            site: site.name.clone(),
            build_id: id.finalize().to_hex()[..32].to_string(),
            files,
            remote,
        }
    }
}
