//! plan.json: the resolved fleet, one type written by `build` and read back
//! by `diff` alike.
//!
//! Reading is lenient where it has to be: a key missing from an older plan
//! takes its default, and a key this bootc does not know (a newer bootc's)
//! is kept in `extra`, so `diff` compares it as it is. Writing gives the
//! same bytes as ever: `extra` is empty in a plan this bootc resolved.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::site::Mac;

/// Keys of a plan.json this bootc does not know, by name.
pub type Extra = BTreeMap<String, Value>;

/// The plan format this bootc reads. bootc's plan.json has no `format`
/// key yet; one that has a `format` (or `version`) other than this is not
/// a plan this bootc can compare.
pub const FORMAT: u64 = 1;

/// Why a JSON document is not a plan.json bootc wrote.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotAPlan(String);

/// The resolved fleet.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "kebab-case", default)]
pub struct Plan {
    pub site: String,
    pub fallback: String,
    pub machines: Vec<Arc<Resolved>>,
    /// `boot = false` machines: a DHCP reservation, no boot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reservations: Vec<Reserved>,
    /// What each image boots (artifacts with their hashes or pins).
    pub images: BTreeMap<String, ImagePlan>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `boot = false` machine: its DHCP reservation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct Reserved {
    pub name: String,
    pub macs: Vec<Mac>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
}

/// What an image boots.
#[derive(Serialize, Deserialize, Clone, Default, Debug, PartialEq)]
#[serde(rename_all = "kebab-case", default)]
pub struct ImagePlan {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    pub artifacts: Vec<Artifact>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// An artifact: where it comes from and its hash or pin. The plan records
/// it as is (`S` = ()); the site's artifacts (`site::Artifact`) also hold
/// the opened file of a local one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    tag = "kind"
)]
pub enum Artifact<S = ()> {
    /// A local file, copied into the tree at `images/<blake3>/<file_name>`.
    Local {
        /// The file, opened once (the site's artifacts).
        #[serde(skip)]
        source: S,
        /// As written in the image file (relative to the site root or absolute).
        path: String,
        file_name: String,
        size: u64,
        blake3: String,
    },
    /// A remote file, pinned by hash.
    Remote {
        url: String,
        file_name: String,
        sha256: Option<String>,
        blake3: Option<String>,
    },
    /// A live URL (chain only): another boot service, not a file.
    Live { url: String },
}

impl<S> Artifact<S> {
    /// The record without the opened file, as plan.json has it.
    pub fn record(&self) -> Artifact {
        match self {
            Artifact::Local {
                path,
                file_name,
                size,
                blake3,
                ..
            } => Artifact::Local {
                source: (),
                path: path.clone(),
                file_name: file_name.clone(),
                size: *size,
                blake3: blake3.clone(),
            },
            Artifact::Remote {
                url,
                file_name,
                sha256,
                blake3,
            } => Artifact::Remote {
                url: url.clone(),
                file_name: file_name.clone(),
                sha256: sha256.clone(),
                blake3: blake3.clone(),
            },
            Artifact::Live { url } => Artifact::Live { url: url.clone() },
        }
    }

    /// Path of a local artifact inside http/ (and tftp/).
    pub fn tree_path(&self) -> Option<String> {
        match self {
            Artifact::Local {
                file_name, blake3, ..
            } => Some(format!("images/{blake3}/{file_name}")),
            _ => None,
        }
    }

    /// The name iPXE gives the image once fetched.
    pub fn file_name(&self) -> &str {
        match self {
            Artifact::Local { file_name, .. } | Artifact::Remote { file_name, .. } => file_name,
            Artifact::Live { url } => url.rsplit('/').next().unwrap_or(url),
        }
    }

    /// The URL a script at `depth` folders below http/ uses.
    pub fn url_from(&self, prefix: &str) -> String {
        match self {
            Artifact::Local { .. } => format!("{prefix}{}", self.tree_path().unwrap_or_default()),
            Artifact::Remote { url, .. } | Artifact::Live { url } => url.clone(),
        }
    }

    /// Where it comes from: the path as written, or the URL.
    pub fn location(&self) -> &str {
        match self {
            Artifact::Local { path, .. } => path,
            Artifact::Remote { url, .. } | Artifact::Live { url } => url,
        }
    }

    /// The pin: (algorithm, hash).
    pub fn pin(&self) -> Option<(&'static str, &str)> {
        match self {
            Artifact::Local { blake3, .. } => Some(("blake3", blake3)),
            Artifact::Remote { blake3, sha256, .. } => blake3
                .as_deref()
                .map(|h| ("blake3", h))
                .or(sha256.as_deref().map(|h| ("sha256", h))),
            Artifact::Live { .. } => None,
        }
    }

    /// The size, when the plan records one.
    pub fn size(&self) -> Option<u64> {
        match self {
            Artifact::Local { size, .. } => Some(*size),
            _ => None,
        }
    }
}

/// One machine's boot, everything decided.
#[derive(Serialize, Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "kebab-case", default)]
pub struct Resolved {
    pub name: String,
    pub macs: Vec<Mac>,
    pub ip: Option<Ipv4Addr>,
    pub role: String,
    /// The machine's role, then the roles it extends.
    pub role_chain: Vec<String>,
    pub image: String,
    pub boot: String,
    /// The image's architecture, when not x86_64.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// Secure Boot applies to this machine (its UEFI firmware gets shim).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secure_boot: bool,
    /// What its UEFI firmware is handed, when not iPXE: `shim-grub`
    /// ([`crate::site::UefiLoader::name`]). Text, so a plan of another bootc
    /// with another loader is still read and compared.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uefi_loader: String,
    /// Final kernel command line, in order: image, roles (base first), machine.
    pub kernel_args: Vec<String>,
    /// What the machine fetches, in order (relative to http/ or absolute).
    pub fetches: Vec<String>,
    /// Its SMBIOS system UUID: boot.ipxe finds it by it when no MAC is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Its serial number: found by it when neither MAC nor UUID is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// A short hash of what it boots: its beacon and `bootc status` name it.
    #[serde(default)]
    pub boot_id: String,
    /// Its `reinstall` token: it boots its installer role until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reinstall: Option<String>,
    /// Shared with its machine (see `site::Machine::labels`).
    pub labels: Arc<BTreeMap<String, String>>,
    /// File name -> BLAKE3 of its content.
    pub files: FileHashes,
    /// The hosts its boot reaches (in what it fetches, its kernel args and
    /// its files), sorted: the report's index shows them. Not in plan.json.
    #[serde(skip)]
    pub reaches: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A machine's files by name, each with the BLAKE3 of its content (hex).
/// Most machines have one or two files: a list sorted by name, not a map
/// node each (they were a quarter of a fleet's plan).
pub type FileHashes = crate::byname::ByName<String>;

impl Plan {
    /// plan.json: the plan as pretty JSON ending in a newline, written into
    /// one buffer made at once from an estimate of its size (its machines'
    /// average, from a sample of them, with room to spare). A fleet's plan
    /// is over 100 MB: grown as it is written, it would be copied at each
    /// step and held twice; the room never written to is never touched.
    pub fn json(&self) -> Vec<u8> {
        let n = self.machines.len();
        let step = (n / 64).max(1);
        let (sampled, bytes) = self
            .machines
            .iter()
            .step_by(step)
            .filter_map(|m| serde_json::to_vec_pretty(m).ok())
            .fold((0, 0), |(k, total), m| (k + 1, total + m.len()));
        // Half again, for the indentation a machine has inside the plan.
        let each = bytes.checked_div(sampled).unwrap_or(0) * 3 / 2;
        let mut out = Vec::with_capacity(each * n + 64 * 1024);
        serde_json::to_writer_pretty(&mut out, self).expect("the plan serializes");
        out.push(b'\n');
        out
    }

    /// Reads a plan.json, refusing JSON that is not bootc's (anything read
    /// is compared and printed, so a random document must not pass as an
    /// empty fleet): the keys and types bootc writes must be there.
    pub fn from_json(bytes: &[u8]) -> Result<Plan, NotAPlan> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| NotAPlan(format!("not JSON ({e})")))?;
        check(&doc).map_err(NotAPlan)?;
        if let Some(bad) = hostile_text(&doc) {
            return Err(NotAPlan(format!(
                "it holds `{}`: bootc never writes control characters into a plan",
                crate::escape::line(&bad)
            )));
        }
        serde_json::from_value(doc).map_err(|e| NotAPlan(e.to_string()))
    }
}

/// The first string (key or value) of `v` that holds a control character
/// or a bidirectional override: validation keeps them out of every name,
/// label and argument, so a plan holding one was not written by bootc.
fn hostile_text(v: &Value) -> Option<String> {
    let bad = |s: &str| crate::escape::line(s) != s;
    match v {
        Value::String(s) if bad(s) => Some(s.clone()),
        Value::Array(items) => items.iter().find_map(hostile_text),
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if bad(k) {
                Some(k.clone())
            } else {
                hostile_text(v)
            }
        }),
        _ => None,
    }
}

/// The shape of a plan: the format, the keys `diff` needs and their types.
fn check(doc: &Value) -> Result<(), String> {
    let Value::Object(top) = doc else {
        return Err("not a JSON object".into());
    };
    for key in ["format", "version"] {
        match top.get(key) {
            None => {}
            Some(v) if key == "format" && v.as_u64() == Some(FORMAT) => {}
            Some(v) => {
                // JSON text: control characters come escaped.
                let mut shown: String = v.to_string().chars().take(40).collect();
                if shown.len() < v.to_string().len() {
                    shown.push('…');
                }
                return Err(format!(
                    "its `{key}` is {shown}, not a plan format this bootc reads ({FORMAT})"
                ));
            }
        }
    }
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let want = |obj: &serde_json::Map<String, Value>,
                key: &str,
                what: &str,
                ok: fn(&Value) -> bool,
                at: &str| {
        match obj.get(key) {
            None => Err(format!("{at}has no `{key}`")),
            Some(v) if !ok(v) => Err(format!("{at}`{key}` is {}, not {what}", kind(v))),
            Some(_) => Ok(()),
        }
    };
    want(top, "site", "a string", Value::is_string, "")?;
    want(top, "fallback", "a string", Value::is_string, "")?;
    want(top, "images", "an object", Value::is_object, "")?;
    want(top, "machines", "an array", Value::is_array, "")?;
    for (i, m) in top["machines"].as_array().into_iter().flatten().enumerate() {
        let at = format!("machines[{i}] ");
        let Value::Object(m) = m else {
            return Err(format!("{at}is {}, not an object", kind(m)));
        };
        want(m, "name", "a string", Value::is_string, &at)?;
        want(m, "macs", "an array", Value::is_array, &at)?;
        want(m, "image", "a string", Value::is_string, &at)?;
    }
    Ok(())
}
