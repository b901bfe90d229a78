//! Where the tree to verify is: a folder (an output tree or a web root) or
//! the URL its `http/` is served at; reading the manifest and signature
//! there.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use super::{VerifyError, local, remote};
use crate::manifest::MANIFEST;

/// Where the tree is.
pub(super) enum Place {
    /// A folder; `http_only`: it is a web root (the `http/` folder).
    Dir { root: PathBuf, http_only: bool },
    /// The URL `http/` is served at, ending in '/'.
    Url {
        base: String,
        agent: ureq::Agent,
        timeout: Duration,
    },
}

/// A manifest or signature, read.
pub(super) enum Small {
    Bytes(Vec<u8>),
    Missing,
    /// It is there but must not be used: why.
    Refused(String),
}

impl Place {
    pub(super) fn open(target: &str, timeout: Duration) -> Result<Place, VerifyError> {
        if target.starts_with("http://") || target.starts_with("https://") {
            let mut base = target.to_string();
            if let Some(stripped) = base.strip_suffix("manifest.json") {
                base = stripped.to_string();
            }
            if !base.ends_with('/') {
                base.push('/');
            }
            return Ok(Place::Url {
                base,
                agent: remote::agent(timeout),
                timeout,
            });
        }
        let root = PathBuf::from(target);
        if let Err(source) = fs::metadata(&root) {
            return Err(VerifyError::Io { path: root, source });
        }
        // Whatever is there decides the kind; it is read (or refused) later.
        let there = |p: &str| fs::symlink_metadata(root.join(p)).is_ok();
        if there(MANIFEST) {
            Ok(Place::Dir {
                root,
                http_only: false,
            })
        } else if there("manifest.json") {
            Ok(Place::Dir {
                root,
                http_only: true,
            })
        } else {
            Err(VerifyError::NotATree(root))
        }
    }

    /// Whether a tree path (`http/…`, `tftp/…`) is at this place.
    pub(super) fn holds(&self, path: &str) -> bool {
        match self {
            Place::Dir {
                http_only: false, ..
            } => true,
            _ => path.starts_with("http/"),
        }
    }

    /// The folder, and where a tree path is in it.
    pub(super) fn local<'a>(&self, path: &'a str) -> Option<(&PathBuf, &'a str)> {
        match self {
            Place::Dir {
                root,
                http_only: false,
            } => Some((root, path)),
            Place::Dir {
                root,
                http_only: true,
            } => path.strip_prefix("http/").map(|p| (root, p)),
            Place::Url { .. } => None,
        }
    }

    pub(super) fn url(&self, path: &str) -> Option<String> {
        match self {
            Place::Url { base, .. } => path
                .strip_prefix("http/")
                .map(|p| format!("{base}{}", crate::url::encode_path(p))),
            Place::Dir { .. } => None,
        }
    }

    /// A small file (manifest, signature) of at most `max` bytes.
    pub(super) fn read_small(&self, path: &str, max: u64) -> Result<Small, VerifyError> {
        match self {
            Place::Dir { .. } => {
                let (root, rel) = self.local(path).expect("manifest paths are under http/");
                match local::read_small(root, rel, max) {
                    Ok(b) => Ok(Small::Bytes(b)),
                    Err(local::Refused::Missing) => Ok(Small::Missing),
                    Err(local::Refused::Unsafe(why)) => Ok(Small::Refused(why)),
                    Err(local::Refused::Io(source)) => Err(VerifyError::Io {
                        path: root.join(rel),
                        source,
                    }),
                }
            }
            Place::Url { agent, timeout, .. } => {
                let url = self.url(path).expect("manifest paths are under http/");
                match remote::read_small(agent, &url, max, *timeout) {
                    Ok(Some(b)) => Ok(Small::Bytes(b)),
                    Ok(None) => Ok(Small::Missing),
                    Err(why) => Err(VerifyError::Http { url, why }),
                }
            }
        }
    }
}
