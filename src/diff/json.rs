//! `bootc diff --format json`: the whole [`Report`], for programs.

use serde::{Serialize, Serializer};

use super::report::Report;
use crate::plan::Artifact;

pub fn write(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("the report serializes") + "\n"
}

/// An artifact in the report: every field it has, in one order whatever its
/// kind (plan.json writes each kind's own).
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ArtifactOut<'a> {
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blake3: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

impl<'a> ArtifactOut<'a> {
    fn new(a: &'a Artifact) -> Self {
        let none = ArtifactOut {
            kind: "",
            path: None,
            url: None,
            file_name: None,
            size: None,
            blake3: None,
            sha256: None,
        };
        match a {
            Artifact::Local {
                path,
                file_name,
                size,
                blake3,
                ..
            } => ArtifactOut {
                kind: "local",
                path: Some(path),
                file_name: Some(file_name),
                size: Some(*size),
                blake3: Some(blake3),
                ..none
            },
            Artifact::Remote {
                url,
                file_name,
                sha256,
                blake3,
            } => ArtifactOut {
                kind: "remote",
                url: Some(url),
                file_name: Some(file_name),
                blake3: blake3.as_deref(),
                sha256: sha256.as_deref(),
                ..none
            },
            Artifact::Live { url } => ArtifactOut {
                kind: "live",
                url: Some(url),
                ..none
            },
        }
    }
}

/// Serializes an artifact of an [`ImageDelta`](super::ImageDelta).
pub(super) fn artifact<S: Serializer>(a: &Option<Box<Artifact>>, s: S) -> Result<S::Ok, S::Error> {
    a.as_deref().map(ArtifactOut::new).serialize(s)
}
