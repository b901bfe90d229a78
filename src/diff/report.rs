//! The change model: what changes about how machines boot, computed once by
//! [`diff`](super::diff) and written by each output format.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::change::{Change, Own};
use crate::plan::{Artifact, Resolved};

#[derive(Serialize, Debug)]
pub struct SideInfo {
    pub label: String,
    pub site: String,
    pub machines: usize,
}

/// How many machines change, and how.
#[derive(Serialize, Default, Debug)]
#[serde(rename_all = "kebab-case")]
pub struct Summary {
    /// Machines on both sides whose boot changes.
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    pub role: usize,
    pub image: usize,
    pub kernel_args: usize,
    pub files: usize,
    /// MAC or IP (the DHCP reservation).
    pub addresses: usize,
    /// Machines whose image keeps its name but has new artifacts.
    pub image_content: usize,
    /// Machines whose UEFI loader or Secure Boot setting changes.
    pub loader: usize,
    pub script: usize,
    pub renamed: usize,
    pub other: usize,
    /// Machines whose boot does not change but whose labels do (not listed).
    pub labels_only: usize,
    pub images: usize,
    pub site: usize,
}

/// A machine on one side only.
#[derive(Serialize, Debug)]
#[serde(rename_all = "kebab-case")]
pub struct MachineEntry {
    pub name: String,
    pub role: String,
    pub image: String,
    pub macs: Vec<String>,
    pub ip: Option<String>,
    pub labels: BTreeMap<String, String>,
}

impl MachineEntry {
    pub(super) fn new(m: &Resolved) -> Self {
        MachineEntry {
            name: m.name.clone(),
            role: m.role.clone(),
            image: m.image.clone(),
            macs: m.macs.iter().map(ToString::to_string).collect(),
            ip: m.ip.map(|i| i.to_string()),
            labels: BTreeMap::clone(&m.labels),
        }
    }
}

/// A machine on both sides whose boot changes.
#[derive(Serialize, Debug)]
pub struct MachineChange {
    /// Its name in HEAD.
    pub name: String,
    /// Its labels in HEAD.
    pub labels: BTreeMap<String, String>,
    pub changes: Vec<Change>,
    /// Its own name, MACs and IP in HEAD, for placeholders.
    #[serde(skip)]
    pub(super) own: Own,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "kebab-case", tag = "what")]
pub enum ImageDelta {
    Kind {
        old: String,
        new: String,
    },
    Method {
        old: Option<String>,
        new: Option<String>,
    },
    Artifact {
        /// What the artifact is to the image: kernel, initrd, iso, memdisk, chain.
        role: String,
        #[serde(serialize_with = "super::json::artifact")]
        old: Option<Box<Artifact>>,
        #[serde(serialize_with = "super::json::artifact")]
        new: Option<Box<Artifact>>,
    },
    Other {
        field: String,
        old: Value,
        new: Value,
    },
}

#[derive(Serialize, Debug)]
pub struct ImageChange {
    pub name: String,
    /// added, removed or changed.
    pub status: &'static str,
    pub changes: Vec<ImageDelta>,
    /// HEAD's machines that keep this image and so boot its new content.
    pub machines: Vec<String>,
}

#[derive(Serialize, Debug)]
pub struct SiteChange {
    /// `site`, `fallback`, `file` (a file of the output tree; `path` names
    /// it), `reservation` (a `boot = false` machine; `path` is its name), or
    /// a plan key.
    pub what: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub old: Value,
    pub new: Value,
}

/// Machines with the same changes.
#[derive(Serialize, Debug)]
pub struct Group {
    pub machines: Vec<String>,
    /// The labels all of them share.
    pub labels: BTreeMap<String, String>,
    pub changes: Vec<String>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub base: SideInfo,
    pub head: SideInfo,
    /// Whether anything differs (what `--exit-code` reports).
    pub changed: bool,
    pub summary: Summary,
    pub site: Vec<SiteChange>,
    pub images: Vec<ImageChange>,
    pub added: Vec<MachineEntry>,
    pub removed: Vec<MachineEntry>,
    /// Every machine whose boot changes, with every change.
    pub machines: Vec<MachineChange>,
    pub labels_only: Vec<MachineChange>,
    /// `machines`, grouped by identical changes, largest group first.
    pub groups: Vec<Group>,
    /// `groups`, as indices into `machines`.
    #[serde(skip)]
    pub(super) group_members: Vec<Vec<usize>>,
}

pub(super) fn common_labels<'a>(
    mut all: impl Iterator<Item = &'a BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let Some(first) = all.next() else {
        return BTreeMap::new();
    };
    let mut common = first.clone();
    for l in all {
        common.retain(|k, v| l.get(k) == Some(v));
        if common.is_empty() {
            break;
        }
    }
    common
}
