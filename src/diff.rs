//! `bootc diff`: what a change does to how machines boot.
//!
//! The interface is `plan.json`: both sides are read as a [`PlanDoc`] (a
//! lenient mirror of it), whether they come from a built tree or from a site
//! compiled in memory, so the two compare the same way. The output tree's own
//! files (per-MAC scripts, boot.ipxe, fallback.ipxe, tftp/, dhcp/) are
//! compared by hash too, when both sides have them, to catch what the plan
//! does not record (a script template, a new chainloader).
//!
//! Machines with the same changes are grouped, so a change to 10,000
//! machines reads as a few lines; human and markdown output cap every list,
//! JSON stays complete.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::plural_with;

/// Output formats of `bootc diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum DiffFormat {
    #[default]
    Human,
    Markdown,
    Json,
}

// ---------------------------------------------------------------------------
// plan.json, read back

/// plan.json. Keys this bootc does not know are kept and compared as they are.
#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "kebab-case", default)]
pub struct PlanDoc {
    pub site: String,
    pub fallback: String,
    pub machines: Vec<MachineDoc>,
    pub images: BTreeMap<String, ImageDoc>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize, Clone, Default, Debug)]
#[serde(rename_all = "kebab-case", default)]
pub struct MachineDoc {
    pub name: String,
    pub macs: Vec<String>,
    pub ip: Option<String>,
    pub role: String,
    pub role_chain: Vec<String>,
    pub image: String,
    pub boot: String,
    pub kernel_args: Vec<String>,
    /// Derived from the MACs and the image's artifacts: not compared.
    pub fetches: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub files: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize, Clone, Default, Debug, PartialEq)]
#[serde(rename_all = "kebab-case", default)]
pub struct ImageDoc {
    pub kind: String,
    pub method: Option<String>,
    pub artifacts: Vec<ArtifactDoc>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Deserialize, Serialize, Clone, Default, Debug, PartialEq)]
#[serde(rename_all = "kebab-case", default)]
pub struct ArtifactDoc {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ArtifactDoc {
    /// Where it comes from: the path as written, or the URL.
    fn location(&self) -> &str {
        self.path
            .as_deref()
            .or(self.url.as_deref())
            .or(self.file_name.as_deref())
            .unwrap_or("?")
    }

    /// The pin: (algorithm, hash).
    fn pin(&self) -> Option<(&'static str, &str)> {
        self.blake3
            .as_deref()
            .map(|h| ("blake3", h))
            .or(self.sha256.as_deref().map(|h| ("sha256", h)))
    }
}

/// BLAKE3 by path.
pub type Hashes = BTreeMap<String, String>;

/// One side of the comparison.
pub struct Side {
    /// As the user named it (`git:main`, `public`, `.`), with a short commit
    /// for git revisions.
    pub label: String,
    pub plan: PlanDoc,
    /// BLAKE3 of the output tree's files that the plan does not describe
    /// (see [`tracked`]), by path relative to the tree root, when known.
    pub files: Option<Hashes>,
    /// The per-machine files' text, to say which lines changed.
    pub texts: Texts,
}

/// Where the text of per-machine files (`http/machines/<name>/<file>`) is.
pub enum Texts {
    None,
    /// In memory: a compiled site's, by path in the tree.
    Map(BTreeMap<String, Vec<u8>>),
    /// On disk: a built tree's root.
    Dir(std::path::PathBuf),
}

impl Texts {
    fn get(&self, path: &str) -> Option<String> {
        match self {
            Texts::None => None,
            Texts::Map(m) => m.get(path).map(|b| String::from_utf8_lossy(b).into_owned()),
            // Beneath the tree: a symlink in a built tree never shows
            // bytes from outside it.
            Texts::Dir(root) => crate::beneath::Root::new(root)
                .ok()?
                .open(std::path::Path::new(path))
                .ok()?
                .read_all()
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
        }
    }
}

/// The lines of a file that go and come (as multisets, in file order).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Lines {
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Lines {
    fn new(old: &str, new: &str) -> Lines {
        let o: Vec<String> = old.lines().map(|l| l.trim_end().to_string()).collect();
        let n: Vec<String> = new.lines().map(|l| l.trim_end().to_string()).collect();
        Lines {
            removed: minus(&o, &n),
            added: minus(&n, &o),
        }
    }
}

/// How many removed and added lines of a file a change shows.
const MAX_LINES: usize = 3;

fn lines_text(l: &Lines, m: Option<&MachineDoc>, s: Style) -> String {
    let show = |x: &String| {
        let x = match m {
            Some(m) => placeholders(x, m),
            None => x.clone(),
        };
        match s {
            Style::Plain => format!("`{x}`"),
            Style::Markdown => code(&x),
        }
    };
    let mut parts: Vec<String> = Vec::new();
    parts.extend(
        l.removed
            .iter()
            .take(MAX_LINES)
            .map(|x| format!("- {}", show(x))),
    );
    parts.extend(
        l.added
            .iter()
            .take(MAX_LINES)
            .map(|x| format!("+ {}", show(x))),
    );
    let hidden =
        l.removed.len().saturating_sub(MAX_LINES) + l.added.len().saturating_sub(MAX_LINES);
    if hidden > 0 {
        parts.push(format!(
            "and {}",
            plural_with(hidden, "more line", "more lines")
        ));
    }
    if parts.is_empty() {
        // Only the order or trailing spaces changed.
        return "changed".to_string();
    }
    format!("changed: {}", parts.join(", "))
}

/// Whether a file of the output tree is compared by hash: per-MAC scripts
/// and site-wide files. Not: the plan and report, the manifest (it changes
/// with everything), images (content-addressed: in the plan) and per-machine
/// files (their hashes are in the plan).
pub fn tracked(path: &str) -> bool {
    if path == "plan.json"
        || path.starts_with("report/")
        || path.starts_with("http/images/")
        || path.starts_with("http/manifest.json")
    {
        return false;
    }
    match path.strip_prefix("http/machines/") {
        Some(rest) => !rest.contains('/'),
        None => true,
    }
}

// ---------------------------------------------------------------------------
// The comparison

/// One thing that changes about one machine.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// The same NIC under another name.
    Renamed {
        old: String,
        new: String,
    },
    Role {
        old: String,
        new: String,
    },
    Image {
        old: String,
        new: String,
    },
    /// The machine keeps its image, whose artifacts changed.
    ImageContent {
        image: String,
    },
    /// Added (no `old`), removed (no `new`), or a new value for the same key.
    KernelArg {
        old: Option<String>,
        new: Option<String>,
    },
    /// The same arguments in another order (the kernel takes the last).
    KernelArgsOrder {
        old: Vec<String>,
        new: Vec<String>,
    },
    File {
        file: String,
        old: Option<String>,
        new: Option<String>,
        /// What changes inside, when both sides' texts are at hand.
        #[serde(skip_serializing_if = "Option::is_none")]
        lines: Option<Lines>,
    },
    Mac {
        old: Option<String>,
        new: Option<String>,
    },
    Ip {
        old: Option<String>,
        new: Option<String>,
    },
    /// Per-MAC scripts that changed while nothing in the plan explains it
    /// (a script template, for example).
    Script {
        macs: Vec<String>,
    },
    Label {
        label: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// A plan.json key this bootc does not know.
    Other {
        field: String,
        old: Value,
        new: Value,
    },
}

/// What the summary counts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Category {
    Renamed,
    Role,
    Image,
    ImageContent,
    KernelArgs,
    Files,
    Addresses,
    Script,
    Labels,
    Other,
}

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Renamed => "renamed",
            Category::Role => "role",
            Category::Image => "image",
            Category::ImageContent => "image content",
            Category::KernelArgs => "kernel args",
            Category::Files => "files",
            Category::Addresses => "addresses",
            Category::Script => "iPXE script",
            Category::Labels => "labels",
            Category::Other => "other",
        }
    }
}

impl Change {
    fn category(&self) -> Category {
        match self {
            Change::Renamed { .. } => Category::Renamed,
            Change::Role { .. } => Category::Role,
            Change::Image { .. } => Category::Image,
            Change::ImageContent { .. } => Category::ImageContent,
            Change::KernelArg { .. } | Change::KernelArgsOrder { .. } => Category::KernelArgs,
            Change::File { .. } => Category::Files,
            Change::Mac { .. } | Change::Ip { .. } => Category::Addresses,
            Change::Script { .. } => Category::Script,
            Change::Label { .. } => Category::Labels,
            Change::Other { .. } => Category::Other,
        }
    }

    /// The exact text, for a machine on its own.
    fn full(&self, s: Style) -> String {
        let v = |x: &str| s.v(x);
        let a = s.arrow();
        match self {
            Change::Renamed { old, .. } => format!("renamed from {}", v(old)),
            Change::Role { old, new } => format!("role {} {a} {}", v(old), v(new)),
            Change::Image { old, new } => format!("image {} {a} {}", v(old), v(new)),
            Change::ImageContent { image } => {
                format!("image {} has new content (see images)", v(image))
            }
            Change::KernelArg { old, new } => match (old, new) {
                (None, Some(n)) => format!("kernel arg added: {}", v(n)),
                (Some(o), None) => format!("kernel arg removed: {}", v(o)),
                (Some(o), Some(n)) => format!("kernel arg changed: {} {a} {}", v(o), v(n)),
                (None, None) => String::new(),
            },
            Change::KernelArgsOrder { old, new } => format!(
                "kernel args reordered: {} {a} {}",
                v(&old.join(" ")),
                v(&new.join(" "))
            ),
            Change::File {
                file,
                lines: Some(l),
                ..
            } => format!("file {} {}", v(file), lines_text(l, None, s)),
            Change::File { file, old, new, .. } => format!(
                "file {} {}",
                v(file),
                added_removed(old.is_some(), new.is_some())
            ),
            Change::Mac { old, new } => addr("MAC", old, new, s),
            Change::Ip { old, new } => addr("IP", old, new, s),
            Change::Script { .. } => {
                "iPXE script changed beyond what the plan shows (a script template?)".to_string()
            }
            Change::Label { label, old, new } => match (old, new) {
                (Some(o), Some(n)) => format!("label {}: {} {a} {}", v(label), v(o), v(n)),
                (None, Some(n)) => format!("label added: {}", v(&format!("{label}={n}"))),
                (Some(o), _) => format!("label removed: {}", v(&format!("{label}={o}"))),
                (None, None) => String::new(),
            },
            Change::Other { field, old, new } => {
                format!("{field}: {} {a} {}", v(&compact(old)), v(&compact(new)))
            }
        }
    }

    /// The text shared by a group of machines: per-machine values are left
    /// to [`Change::detail`] or replaced by placeholders (`{name}`, `{ip}`,
    /// `{mac}`) in kernel args.
    fn shared(&self, m: &MachineDoc, s: Style) -> String {
        match self {
            Change::Renamed { .. } => "renamed".to_string(),
            Change::Mac { old, new } => {
                format!("MAC {}", added_removed(old.is_some(), new.is_some()))
            }
            Change::Ip { old, new } => {
                format!("IP {}", added_removed(old.is_some(), new.is_some()))
            }
            Change::KernelArg { old, new } => Change::KernelArg {
                old: old.as_deref().map(|x| placeholders(x, m)),
                new: new.as_deref().map(|x| placeholders(x, m)),
            }
            .full(s),
            Change::Other { field, .. } => format!("{field} changed"),
            Change::File {
                file,
                lines: Some(l),
                ..
            } => format!("file {} {}", s.v(file), lines_text(l, Some(m), s)),
            _ => self.full(s),
        }
    }

    /// The per-machine part left out of [`Change::shared`], labelled.
    fn detail(&self, s: Style) -> Option<String> {
        let a = s.arrow();
        let values = |old: &Option<String>, new: &Option<String>| match (old, new) {
            (Some(o), Some(n)) => format!("{} {a} {}", s.v(o), s.v(n)),
            (Some(x), None) | (None, Some(x)) => s.v(x),
            (None, None) => String::new(),
        };
        match self {
            Change::Renamed { old, .. } => Some(format!("was {}", s.v(old))),
            Change::Mac { old, new } => Some(format!("MAC {}", values(old, new))),
            Change::Ip { old, new } => Some(format!("IP {}", values(old, new))),
            Change::Other { field, old, new } => Some(format!(
                "{field} {} {a} {}",
                s.v(&compact(old)),
                s.v(&compact(new))
            )),
            _ => None,
        }
    }
}

fn added_removed(old: bool, new: bool) -> &'static str {
    match (old, new) {
        (false, true) => "added",
        (true, false) => "removed",
        _ => "changed",
    }
}

fn addr(what: &str, old: &Option<String>, new: &Option<String>, s: Style) -> String {
    let a = s.arrow();
    match (old, new) {
        (Some(o), Some(n)) => format!("{what} changed: {} {a} {}", s.v(o), s.v(n)),
        (None, Some(n)) => format!("{what} added: {}", s.v(n)),
        (Some(o), None) => format!("{what} removed: {}", s.v(o)),
        (None, None) => String::new(),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}

/// Replaces the machine's own name, IP and MACs in `text` by placeholders,
/// where they stand as whole words, so `hostname=node01` and
/// `hostname=node02` read as one change: `hostname={name}`.
fn placeholders(text: &str, m: &MachineDoc) -> String {
    let mut out = text.to_string();
    let mut subs: Vec<(String, &str)> = Vec::new();
    for mac in &m.macs {
        subs.push((mac.to_lowercase(), "{mac}"));
        subs.push((mac.to_lowercase().replace(':', "-"), "{mac}"));
    }
    if let Some(ip) = &m.ip {
        subs.push((ip.clone(), "{ip}"));
    }
    if !m.name.is_empty() {
        subs.push((m.name.clone(), "{name}"));
    }
    for (from, to) in subs {
        out = replace_words(&out, &from, to);
    }
    out
}

fn replace_words(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(from) {
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if i >= last && !word(before) && !word(after) {
            out.push_str(&text[last..i]);
            out.push_str(to);
            last = i + from.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// What is in `a` and not in `b`, as multisets, in `a`'s order.
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for x in b {
        *left.entry(x).or_default() += 1;
    }
    a.iter()
        .filter(|x| match left.get_mut(x.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// Kernel args: removed and added (as multisets), a removed and an added one
/// with the same `key=` paired as a change; the same args reordered.
fn args_changes(old: &[String], new: &[String]) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    let removed = minus(old, new);
    let mut added: Vec<Option<String>> = minus(new, old).into_iter().map(Some).collect();
    if removed.is_empty() && added.is_empty() {
        return vec![Change::KernelArgsOrder {
            old: old.to_vec(),
            new: new.to_vec(),
        }];
    }
    let key = |x: &str| x.split_once('=').map(|(k, _)| k.to_string());
    let mut out = Vec::new();
    for r in removed {
        let pair = key(&r).and_then(|k| {
            added
                .iter_mut()
                .find(|a| a.as_deref().and_then(key).as_deref() == Some(k.as_str()))
                .and_then(Option::take)
        });
        out.push(Change::KernelArg {
            old: Some(r),
            new: pair,
        });
    }
    out.extend(added.into_iter().flatten().map(|a| Change::KernelArg {
        old: None,
        new: Some(a),
    }));
    out
}

fn map_changes<T>(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
    make: impl Fn(String, Option<String>, Option<String>) -> T,
) -> Vec<T> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| make(k.clone(), old.get(k).cloned(), new.get(k).cloned()))
        .collect()
}

fn script_path(mac: &str) -> String {
    format!(
        "http/machines/{}.ipxe",
        mac.to_lowercase().replace(':', "-")
    )
}

/// Everything that changes about one machine present on both sides, in the
/// order a reader wants them.
fn machine_changes(
    b: &MachineDoc,
    h: &MachineDoc,
    image_changed: &BTreeSet<String>,
    files: Option<(&Hashes, &Hashes)>,
    texts: (&Texts, &Texts),
    site_renamed: bool,
) -> Vec<Change> {
    let mut out = Vec::new();
    if b.name != h.name {
        out.push(Change::Renamed {
            old: b.name.clone(),
            new: h.name.clone(),
        });
    }
    if b.role != h.role {
        out.push(Change::Role {
            old: b.role.clone(),
            new: h.role.clone(),
        });
    }
    if b.image != h.image {
        out.push(Change::Image {
            old: b.image.clone(),
            new: h.image.clone(),
        });
    } else if image_changed.contains(&h.image) {
        out.push(Change::ImageContent {
            image: h.image.clone(),
        });
    }
    out.extend(args_changes(&b.kernel_args, &h.kernel_args));
    out.extend(map_changes(&b.files, &h.files, |file, old, new| {
        let lines = match (&old, &new) {
            (Some(_), Some(_)) => texts
                .0
                .get(&format!("http/machines/{}/{file}", b.name))
                .zip(texts.1.get(&format!("http/machines/{}/{file}", h.name)))
                .map(|(o, n)| Lines::new(&o, &n)),
            _ => None,
        };
        Change::File {
            file,
            old,
            new,
            lines,
        }
    }));
    let removed: Vec<&String> = b.macs.iter().filter(|m| !h.macs.contains(m)).collect();
    let added: Vec<&String> = h.macs.iter().filter(|m| !b.macs.contains(m)).collect();
    for i in 0..removed.len().max(added.len()) {
        out.push(Change::Mac {
            old: removed.get(i).map(|s| s.to_string()),
            new: added.get(i).map(|s| s.to_string()),
        });
    }
    if b.ip != h.ip {
        out.push(Change::Ip {
            old: b.ip.clone(),
            new: h.ip.clone(),
        });
    }
    // Scripts: only what nothing above explains (each of those rewrites the
    // script anyway), and not when the site's name (in every script) changed.
    let explained = site_renamed
        || out.iter().any(|c| {
            matches!(
                c.category(),
                Category::Renamed
                    | Category::Role
                    | Category::Image
                    | Category::ImageContent
                    | Category::KernelArgs
            )
        });
    if let (false, Some((bf, hf))) = (explained, files) {
        let macs: Vec<String> = h
            .macs
            .iter()
            .filter(|m| b.macs.contains(m))
            .filter(|m| {
                let p = script_path(m);
                bf.get(&p) != hf.get(&p)
            })
            .cloned()
            .collect();
        if !macs.is_empty() {
            out.push(Change::Script { macs });
        }
    }
    let keys: BTreeSet<&String> = b.extra.keys().chain(h.extra.keys()).collect();
    for k in keys {
        let (o, n) = (b.extra.get(k), h.extra.get(k));
        if o != n {
            out.push(Change::Other {
                field: k.clone(),
                old: o.cloned().unwrap_or(Value::Null),
                new: n.cloned().unwrap_or(Value::Null),
            });
        }
    }
    out.extend(map_changes(&b.labels, &h.labels, |label, old, new| {
        Change::Label { label, old, new }
    }));
    out
}

// ---------------------------------------------------------------------------
// The report

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
    fn new(m: &MachineDoc) -> Self {
        MachineEntry {
            name: m.name.clone(),
            role: m.role.clone(),
            image: m.image.clone(),
            macs: m.macs.clone(),
            ip: m.ip.clone(),
            labels: m.labels.clone(),
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
    #[serde(skip)]
    head: usize,
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
        old: Option<Box<ArtifactDoc>>,
        new: Option<Box<ArtifactDoc>>,
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
    /// `site`, `fallback`, `file` (a file of the output tree), or a plan key.
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
    #[serde(skip)]
    head_machines: Vec<MachineDoc>,
    #[serde(skip)]
    group_members: Vec<Vec<usize>>,
}

fn artifact_roles(kind: &str, method: Option<&str>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            match (kind, method, i) {
                ("kernel", _, 0) => "kernel",
                ("kernel", _, _) => "initrd",
                ("iso", Some("memdisk"), 0) => "memdisk",
                ("iso", _, _) => "iso",
                ("chain", _, _) => "chain",
                _ => "artifact",
            }
            .to_string()
        })
        .collect()
}

fn image_deltas(b: &ImageDoc, h: &ImageDoc) -> Vec<ImageDelta> {
    let mut out = Vec::new();
    if b.kind != h.kind {
        out.push(ImageDelta::Kind {
            old: b.kind.clone(),
            new: h.kind.clone(),
        });
    }
    if b.method != h.method {
        out.push(ImageDelta::Method {
            old: b.method.clone(),
            new: h.method.clone(),
        });
    }
    let n = b.artifacts.len().max(h.artifacts.len());
    let broles = artifact_roles(&b.kind, b.method.as_deref(), b.artifacts.len());
    let hroles = artifact_roles(&h.kind, h.method.as_deref(), h.artifacts.len());
    for i in 0..n {
        let (o, nw) = (b.artifacts.get(i), h.artifacts.get(i));
        if o != nw {
            out.push(ImageDelta::Artifact {
                role: hroles.get(i).or(broles.get(i)).cloned().unwrap_or_default(),
                old: o.cloned().map(Box::new),
                new: nw.cloned().map(Box::new),
            });
        }
    }
    let keys: BTreeSet<&String> = b.extra.keys().chain(h.extra.keys()).collect();
    for k in keys {
        if b.extra.get(k) != h.extra.get(k) {
            out.push(ImageDelta::Other {
                field: k.clone(),
                old: b.extra.get(k).cloned().unwrap_or(Value::Null),
                new: h.extra.get(k).cloned().unwrap_or(Value::Null),
            });
        }
    }
    out
}

/// Compares two sides.
pub fn diff(base: &Side, head: &Side) -> Report {
    let (bp, hp) = (&base.plan, &head.plan);
    let files = match (&base.files, &head.files) {
        (Some(b), Some(h)) => Some((b, h)),
        _ => None,
    };

    // Site-wide.
    let mut site = Vec::new();
    let mut push_site = |what: &str, path: Option<String>, old: Value, new: Value| {
        site.push(SiteChange {
            what: what.to_string(),
            path,
            old,
            new,
        })
    };
    if bp.site != hp.site {
        push_site("site", None, bp.site.clone().into(), hp.site.clone().into());
    }
    if bp.fallback != hp.fallback {
        push_site(
            "fallback",
            None,
            bp.fallback.clone().into(),
            hp.fallback.clone().into(),
        );
    }
    let keys: BTreeSet<&String> = bp.extra.keys().chain(hp.extra.keys()).collect();
    for k in keys {
        if bp.extra.get(k) != hp.extra.get(k) {
            push_site(
                k,
                None,
                bp.extra.get(k).cloned().unwrap_or(Value::Null),
                hp.extra.get(k).cloned().unwrap_or(Value::Null),
            );
        }
    }
    if let Some((bf, hf)) = files {
        let paths: BTreeSet<&String> = bf
            .keys()
            .chain(hf.keys())
            .filter(|p| !p.starts_with("http/machines/"))
            .collect();
        for p in paths {
            let (o, n) = (bf.get(p), hf.get(p));
            if o != n {
                push_site(
                    "file",
                    Some(p.clone()),
                    o.cloned().map(Value::from).unwrap_or(Value::Null),
                    n.cloned().map(Value::from).unwrap_or(Value::Null),
                );
            }
        }
    }

    // Images.
    let mut images = Vec::new();
    let names: BTreeSet<&String> = bp.images.keys().chain(hp.images.keys()).collect();
    for name in names {
        let (status, changes) = match (bp.images.get(name), hp.images.get(name)) {
            (Some(b), Some(h)) if b == h => continue,
            (Some(b), Some(h)) => ("changed", image_deltas(b, h)),
            (None, Some(_)) => ("added", Vec::new()),
            (Some(_), None) => ("removed", Vec::new()),
            (None, None) => continue,
        };
        images.push(ImageChange {
            name: name.clone(),
            status,
            changes,
            machines: Vec::new(),
        });
    }
    let image_changed: BTreeSet<String> = images
        .iter()
        .filter(|i| i.status == "changed")
        .map(|i| i.name.clone())
        .collect();

    // Machines: by name, then a removed and an added one that share a MAC
    // are the same machine renamed.
    let bidx: BTreeMap<&str, usize> = bp
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let hnames: BTreeSet<&str> = hp.machines.iter().map(|m| m.name.as_str()).collect();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut added_idx: Vec<usize> = Vec::new();
    for (hi, m) in hp.machines.iter().enumerate() {
        match bidx.get(m.name.as_str()) {
            Some(&bi) => pairs.push((bi, hi)),
            None => added_idx.push(hi),
        }
    }
    let mut removed_idx: Vec<usize> = bp
        .machines
        .iter()
        .enumerate()
        .filter(|(_, m)| !hnames.contains(m.name.as_str()))
        .map(|(i, _)| i)
        .collect();
    if !removed_idx.is_empty() && !added_idx.is_empty() {
        let mut by_mac: BTreeMap<&str, usize> = BTreeMap::new();
        for &bi in &removed_idx {
            for mac in &bp.machines[bi].macs {
                by_mac.entry(mac.as_str()).or_insert(bi);
            }
        }
        let mut taken: BTreeSet<usize> = BTreeSet::new();
        added_idx.retain(|&hi| {
            let found = hp.machines[hi]
                .macs
                .iter()
                .filter_map(|mac| by_mac.get(mac.as_str()))
                .find(|bi| !taken.contains(*bi));
            match found {
                Some(&bi) => {
                    taken.insert(bi);
                    pairs.push((bi, hi));
                    false
                }
                None => true,
            }
        });
        removed_idx.retain(|bi| !taken.contains(bi));
        pairs.sort_by_key(|&(_, hi)| hi);
    }

    let site_renamed = bp.site != hp.site;
    let mut machines = Vec::new();
    let mut labels_only = Vec::new();
    for &(bi, hi) in &pairs {
        let (b, h) = (&bp.machines[bi], &hp.machines[hi]);
        let changes = machine_changes(
            b,
            h,
            &image_changed,
            files,
            (&base.texts, &head.texts),
            site_renamed,
        );
        if changes.is_empty() {
            continue;
        }
        let mc = MachineChange {
            name: h.name.clone(),
            labels: h.labels.clone(),
            changes,
            head: hi,
        };
        if mc.changes.iter().all(|c| c.category() == Category::Labels) {
            labels_only.push(mc);
        } else {
            if let Some(Change::ImageContent { image }) = mc
                .changes
                .iter()
                .find(|c| matches!(c, Change::ImageContent { .. }))
                && let Some(img) = images.iter_mut().find(|i| &i.name == image)
            {
                img.machines.push(h.name.clone());
            }
            machines.push(mc);
        }
    }

    let mut summary = Summary {
        changed: machines.len(),
        added: added_idx.len(),
        removed: removed_idx.len(),
        labels_only: labels_only.len(),
        images: images.len(),
        site: site.len(),
        ..Summary::default()
    };
    for m in &machines {
        let cats: BTreeSet<Category> = m.changes.iter().map(Change::category).collect();
        for c in cats {
            match c {
                Category::Renamed => summary.renamed += 1,
                Category::Role => summary.role += 1,
                Category::Image => summary.image += 1,
                Category::ImageContent => summary.image_content += 1,
                Category::KernelArgs => summary.kernel_args += 1,
                Category::Files => summary.files += 1,
                Category::Addresses => summary.addresses += 1,
                Category::Script => summary.script += 1,
                Category::Other => summary.other += 1,
                Category::Labels => {}
            }
        }
    }

    // Groups: identical shared texts.
    let mut by_key: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, m) in machines.iter().enumerate() {
        let h = &hp.machines[m.head];
        let key: Vec<String> = m
            .changes
            .iter()
            .map(|c| c.shared(h, Style::Plain))
            .collect();
        by_key.entry(key).or_default().push(i);
    }
    let mut grouped: Vec<(Vec<String>, Vec<usize>)> = by_key.into_iter().collect();
    grouped.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(&b.1[0])));
    let groups = grouped
        .iter()
        .map(|(key, members)| Group {
            machines: members.iter().map(|&i| machines[i].name.clone()).collect(),
            labels: common_labels(members.iter().map(|&i| &machines[i].labels)),
            changes: if members.len() == 1 {
                machines[members[0]]
                    .changes
                    .iter()
                    .map(|c| c.full(Style::Plain))
                    .collect()
            } else {
                key.clone()
            },
        })
        .collect();

    let changed = !(site.is_empty()
        && images.is_empty()
        && added_idx.is_empty()
        && removed_idx.is_empty()
        && machines.is_empty()
        && labels_only.is_empty());
    Report {
        base: SideInfo {
            label: base.label.clone(),
            site: bp.site.clone(),
            machines: bp.machines.len(),
        },
        head: SideInfo {
            label: head.label.clone(),
            site: hp.site.clone(),
            machines: hp.machines.len(),
        },
        changed,
        summary,
        site,
        images,
        added: added_idx
            .iter()
            .map(|&i| MachineEntry::new(&hp.machines[i]))
            .collect(),
        removed: removed_idx
            .iter()
            .map(|&i| MachineEntry::new(&bp.machines[i]))
            .collect(),
        machines,
        labels_only,
        groups,
        head_machines: hp.machines.clone(),
        group_members: grouped.into_iter().map(|(_, m)| m).collect(),
    }
}

fn common_labels<'a>(
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

// ---------------------------------------------------------------------------
// Rendering

/// How many groups of machines a section shows (human, markdown).
const MAX_GROUPS: usize = 25;
/// How many machine names (or ranges of names) a group shows.
const MAX_NAMES: usize = 12;
/// How many per-machine detail lines a group shows.
const MAX_DETAILS: usize = 5;
/// How many changes a group shows.
const MAX_CHANGES: usize = 20;
/// How many images and site-wide changes are shown.
const MAX_ITEMS: usize = 25;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Markdown,
}

impl Style {
    /// A value: as is, or as markdown inline code.
    fn v(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Markdown => code(s),
        }
    }

    fn arrow(self) -> &'static str {
        match self {
            Style::Plain => "->",
            Style::Markdown => "→",
        }
    }

    fn range(self) -> &'static str {
        match self {
            Style::Plain => "..",
            Style::Markdown => "–",
        }
    }
}

/// Markdown inline code that holds any text: a fence longer than any run
/// of backticks inside, padded when the text starts or ends with one.
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Text outside code in markdown: escapes what GitHub would interpret.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(8)]
}

/// Machine names with runs of consecutive numbers folded: `node01..node40`.
fn name_runs(names: &[&str], s: Style) -> Vec<String> {
    fn split(n: &str) -> (&str, &str) {
        let digits = n.bytes().rev().take_while(u8::is_ascii_digit).count();
        n.split_at(n.len() - digits)
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let (prefix, num) = split(names[i]);
        let mut j = i;
        if !num.is_empty() && num.len() <= 18 {
            let mut cur: u64 = num.parse().unwrap_or(0);
            while j + 1 < names.len() {
                let (p2, n2) = split(names[j + 1]);
                if p2 == prefix && n2.len() == num.len() && n2.parse::<u64>().ok() == Some(cur + 1)
                {
                    cur += 1;
                    j += 1;
                } else {
                    break;
                }
            }
        }
        match j - i {
            0 => out.push(names[i].to_string()),
            1 => {
                out.push(names[i].to_string());
                out.push(names[j].to_string());
            }
            _ => out.push(format!("{}{}{}", names[i], s.range(), names[j])),
        }
        i = j + 1;
    }
    out
}

/// At most [`MAX_NAMES`] names or runs, then "and N more".
fn name_list(names: &[&str], s: Style) -> String {
    let runs = name_runs(names, s);
    if runs.len() <= MAX_NAMES {
        return runs.join(", ");
    }
    let shown = &runs[..MAX_NAMES];
    let count_shown: usize = shown
        .iter()
        .map(|r| match r.split_once(s.range()) {
            Some((a, b)) => {
                let a = names.iter().position(|n| *n == a).unwrap_or(0);
                let b = names.iter().position(|n| *n == b).unwrap_or(a);
                b - a + 1
            }
            None => 1,
        })
        .sum();
    format!(
        "{}, and {} more",
        shown.join(", "),
        names.len().saturating_sub(count_shown)
    )
}

fn labels_text(labels: &BTreeMap<String, String>, s: Style) -> String {
    labels
        .iter()
        .map(|(k, v)| s.v(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A group ready to print: one machine, or several with what they share.
struct View {
    /// "node01" or "40 machines".
    title: String,
    /// Shared labels, formatted; empty when none.
    labels: String,
    /// The machines of a group of several, formatted.
    names: Option<String>,
    lines: Vec<String>,
    /// (machine, what is its own) for groups of several.
    details: Vec<(String, String)>,
    more_details: usize,
}

fn change_view(r: &Report, members: &[usize], s: Style) -> View {
    let first = &r.machines[members[0]];
    let labels = labels_text(
        &common_labels(members.iter().map(|&i| &r.machines[i].labels)),
        s,
    );
    if members.len() == 1 {
        return View {
            title: first.name.clone(),
            labels,
            names: None,
            lines: first.changes.iter().map(|c| c.full(s)).collect(),
            details: Vec::new(),
            more_details: 0,
        };
    }
    let h = &r.head_machines[first.head];
    let lines = first.changes.iter().map(|c| c.shared(h, s)).collect();
    let names: Vec<&str> = members
        .iter()
        .map(|&i| r.machines[i].name.as_str())
        .collect();
    let mut details = Vec::new();
    let mut with_details = 0;
    for &i in members {
        let m = &r.machines[i];
        let d: Vec<String> = m.changes.iter().filter_map(|c| c.detail(s)).collect();
        if d.is_empty() {
            continue;
        }
        with_details += 1;
        if details.len() < MAX_DETAILS {
            details.push((m.name.clone(), d.join("; ")));
        }
    }
    View {
        title: plural_with(members.len(), "machine", "machines"),
        labels,
        names: Some(name_list(&names, s)),
        lines,
        details,
        more_details: with_details - with_details.min(MAX_DETAILS),
    }
}

fn entry_text(e: &MachineEntry, s: Style) -> String {
    format!("role {}, image {}", s.v(&e.role), s.v(&e.image))
}

fn entry_detail(e: &MachineEntry, s: Style) -> String {
    let mut parts: Vec<String> = e.macs.iter().map(|m| s.v(m)).collect();
    if let Some(ip) = &e.ip {
        parts.push(s.v(ip));
    }
    parts.join(", ")
}

/// Added or removed machines, grouped by role and image.
fn entry_views(list: &[MachineEntry], s: Style) -> Vec<View> {
    let mut by_key: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in list.iter().enumerate() {
        by_key
            .entry((e.role.as_str(), e.image.as_str()))
            .or_default()
            .push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_key.into_values().collect();
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    // Small groups: one line per machine, in name order.
    if list.len() <= MAX_GROUPS {
        groups = (0..list.len()).map(|i| vec![i]).collect();
    }
    groups
        .into_iter()
        .map(|members| {
            let first = &list[members[0]];
            let labels = labels_text(&common_labels(members.iter().map(|&i| &list[i].labels)), s);
            if members.len() == 1 {
                let d = entry_detail(first, s);
                View {
                    title: first.name.clone(),
                    labels,
                    names: None,
                    lines: vec![if d.is_empty() {
                        entry_text(first, s)
                    } else {
                        format!("{}; {d}", entry_text(first, s))
                    }],
                    details: Vec::new(),
                    more_details: 0,
                }
            } else {
                let names: Vec<&str> = members.iter().map(|&i| list[i].name.as_str()).collect();
                View {
                    title: plural_with(members.len(), "machine", "machines"),
                    labels,
                    names: Some(name_list(&names, s)),
                    lines: vec![entry_text(first, s)],
                    details: Vec::new(),
                    more_details: 0,
                }
            }
        })
        .collect()
}

fn artifact_text(a: &ArtifactDoc, s: Style) -> String {
    match a.pin() {
        Some((alg, h)) => format!("{} ({alg} {})", s.v(a.location()), s.v(short_hash(h))),
        None => s.v(a.location()),
    }
}

fn delta_text(d: &ImageDelta, s: Style) -> String {
    let a = s.arrow();
    let opt = |o: &Option<String>| s.v(o.as_deref().unwrap_or("(none)"));
    match d {
        ImageDelta::Kind { old, new } => format!("kind {} {a} {}", s.v(old), s.v(new)),
        ImageDelta::Method { old, new } => format!("method {} {a} {}", opt(old), opt(new)),
        ImageDelta::Artifact { role, old, new } => match (old, new) {
            (Some(o), Some(n)) if o.location() == n.location() => {
                let mut t = format!("{role} {}:", s.v(o.location()));
                match (o.pin(), n.pin()) {
                    (Some((oa, oh)), Some((na, nh))) if oa == na => {
                        let _ = write!(
                            t,
                            " {oa} {} {a} {}",
                            s.v(short_hash(oh)),
                            s.v(short_hash(nh))
                        );
                    }
                    (op, np) => {
                        let p = |x: Option<(&str, &str)>| {
                            x.map(|(al, h)| format!("{al} {}", s.v(short_hash(h))))
                                .unwrap_or_else(|| "unpinned".to_string())
                        };
                        let _ = write!(t, " {} {a} {}", p(op), p(np));
                    }
                }
                if let (Some(os), Some(ns)) = (o.size, n.size)
                    && os != ns
                {
                    let _ = write!(t, ", {os} {a} {ns} bytes");
                }
                t
            }
            (Some(o), Some(n)) => {
                format!("{role} {} {a} {}", artifact_text(o, s), artifact_text(n, s))
            }
            (None, Some(n)) => format!("{role} added: {}", artifact_text(n, s)),
            (Some(o), None) => format!("{role} removed: {}", artifact_text(o, s)),
            (None, None) => String::new(),
        },
        ImageDelta::Other { field, old, new } => {
            format!("{field}: {} {a} {}", s.v(&compact(old)), s.v(&compact(new)))
        }
    }
}

fn site_text(c: &SiteChange, s: Style) -> String {
    let a = s.arrow();
    match (c.what.as_str(), &c.path) {
        ("file", Some(p)) => format!(
            "{} {}",
            s.v(p),
            added_removed(!c.old.is_null(), !c.new.is_null())
        ),
        ("site", _) => format!(
            "site name {} {a} {}",
            s.v(&compact(&c.old)),
            s.v(&compact(&c.new))
        ),
        (what, _) => format!(
            "{what}: {} {a} {}",
            s.v(&compact(&c.old)),
            s.v(&compact(&c.new))
        ),
    }
}

impl Report {
    fn summary_cells(&self) -> Vec<(&'static str, usize)> {
        let s = &self.summary;
        let mut cells = vec![
            ("role", s.role),
            ("image", s.image),
            ("kernel args", s.kernel_args),
            ("files", s.files),
            ("addresses", s.addresses),
        ];
        for (what, n) in [
            ("image content", s.image_content),
            ("iPXE script", s.script),
            ("renamed", s.renamed),
            ("other", s.other),
        ] {
            if n > 0 {
                cells.push((what, n));
            }
        }
        cells
    }

    fn headline(&self) -> String {
        let s = &self.summary;
        let total = s.changed + s.added + s.removed;
        if total == 0 {
            return if self.changed {
                "no machine boots differently".to_string()
            } else {
                "no change".to_string()
            };
        }
        format!(
            "{} differently: {} changed, {} added, {} removed",
            plural_with(total, "machine boots", "machines boot"),
            s.changed,
            s.added,
            s.removed
        )
    }

    fn change_views(&self, s: Style) -> Vec<View> {
        self.group_members
            .iter()
            .take(MAX_GROUPS)
            .map(|m| change_view(self, m, s))
            .collect()
    }

    fn hidden_groups(&self) -> Option<String> {
        let rest = &self.group_members[self.group_members.len().min(MAX_GROUPS)..];
        if rest.is_empty() {
            return None;
        }
        let n: usize = rest.iter().map(Vec::len).sum();
        let mut by: BTreeMap<&'static str, usize> = BTreeMap::new();
        for &i in rest.iter().flatten() {
            let cats: BTreeSet<Category> = self.machines[i]
                .changes
                .iter()
                .map(Change::category)
                .collect();
            for c in cats {
                *by.entry(c.name()).or_default() += 1;
            }
        }
        let by: Vec<String> = by.iter().map(|(w, n)| format!("{w} {n}")).collect();
        Some(format!(
            "and {} in {} smaller groups ({}; `--format json` lists every one)",
            plural_with(n, "more machine", "more machines"),
            rest.len(),
            by.join(", ")
        ))
    }

    fn side_line(side: &SideInfo) -> String {
        format!(
            "{} (site {}, {})",
            side.label,
            side.site,
            plural_with(side.machines, "machine", "machines")
        )
    }

    /// For people, in a terminal.
    pub fn human(&self) -> String {
        let s = Style::Plain;
        let mut o = String::new();
        let _ = writeln!(o, "base: {}", Self::side_line(&self.base));
        let _ = writeln!(o, "head: {}", Self::side_line(&self.head));
        let _ = writeln!(o);
        let _ = writeln!(o, "{}", self.headline());
        if !self.changed {
            return o;
        }
        if self.summary.changed > 0 {
            let cells: Vec<String> = self
                .summary_cells()
                .iter()
                .map(|(w, n)| format!("{w} {n}"))
                .collect();
            let _ = writeln!(o, "  machines changing: {}", cells.join(", "));
        }
        if self.summary.labels_only > 0 {
            let _ = writeln!(
                o,
                "  {} only labels (not listed)",
                plural_with(
                    self.summary.labels_only,
                    "machine changes",
                    "machines change"
                )
            );
        }
        if !self.site.is_empty() {
            let _ = writeln!(o, "\nsite:");
            for c in self.site.iter().take(MAX_ITEMS) {
                let _ = writeln!(o, "  {}", site_text(c, s));
            }
            if self.site.len() > MAX_ITEMS {
                let _ = writeln!(o, "  and {} more", self.site.len() - MAX_ITEMS);
            }
        }
        if !self.images.is_empty() {
            let _ = writeln!(o, "\nimages:");
            for i in self.images.iter().take(MAX_ITEMS) {
                let _ = write!(o, "  {}", i.name);
                match i.status {
                    "changed" if i.machines.is_empty() => {
                        let _ = writeln!(o, ": changed; no machine boots it now");
                    }
                    "changed" => {
                        let names: Vec<&str> = i.machines.iter().map(String::as_str).collect();
                        let _ = writeln!(
                            o,
                            ": changed, for {}: {}",
                            plural_with(names.len(), "machine", "machines"),
                            name_list(&names, s)
                        );
                    }
                    other => {
                        let _ = writeln!(o, ": {other}");
                    }
                }
                for d in &i.changes {
                    let _ = writeln!(o, "    {}", delta_text(d, s));
                }
            }
            if self.images.len() > MAX_ITEMS {
                let _ = writeln!(o, "  and {} more", self.images.len() - MAX_ITEMS);
            }
        }
        let section = |o: &mut String, title: &str, views: Vec<View>, more: Option<String>| {
            if views.is_empty() {
                return;
            }
            let _ = writeln!(o, "\n{title}:");
            for v in views {
                let labels = if v.labels.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.labels)
                };
                match (&v.names, v.lines.len()) {
                    (None, 1) => {
                        let _ = writeln!(o, "  {}{labels}: {}", v.title, v.lines[0]);
                        continue;
                    }
                    (None, _) => {
                        let _ = writeln!(o, "  {}{labels}", v.title);
                    }
                    (Some(names), _) => {
                        let _ = writeln!(o, "  {}{labels}: {names}", v.title);
                    }
                }
                for l in v.lines.iter().take(MAX_CHANGES) {
                    let _ = writeln!(o, "    {l}");
                }
                if v.lines.len() > MAX_CHANGES {
                    let _ = writeln!(o, "    and {} more changes", v.lines.len() - MAX_CHANGES);
                }
                for (name, d) in &v.details {
                    let _ = writeln!(o, "      {name}: {d}");
                }
                if v.more_details > 0 {
                    let _ = writeln!(o, "      and {} more", v.more_details);
                }
            }
            if let Some(m) = more {
                let _ = writeln!(o, "  {}", m.replace('`', ""));
            }
        };
        let more_entries =
            |n: usize| (n > MAX_GROUPS).then(|| "`--format json` lists every one".to_string());
        let added = entry_views(&self.added, s);
        let added_more = more_entries(added.len());
        section(
            &mut o,
            "added",
            added.into_iter().take(MAX_GROUPS).collect(),
            added_more,
        );
        let removed = entry_views(&self.removed, s);
        let removed_more = more_entries(removed.len());
        section(
            &mut o,
            "removed",
            removed.into_iter().take(MAX_GROUPS).collect(),
            removed_more,
        );
        section(
            &mut o,
            "changed",
            self.change_views(s),
            self.hidden_groups(),
        );
        o
    }

    /// For a pull request: a job summary or a comment.
    pub fn markdown(&self) -> String {
        let s = Style::Markdown;
        let mut o = String::new();
        let _ = writeln!(o, "### bootc diff: {}", md_text(&self.headline()));
        let _ = writeln!(o);
        let side = |x: &SideInfo| {
            format!(
                "{} (site {}, {})",
                code(&x.label),
                code(&x.site),
                plural_with(x.machines, "machine", "machines")
            )
        };
        let _ = writeln!(o, "{} → {}", side(&self.base), side(&self.head));
        if !self.changed {
            return o;
        }
        if self.summary.changed + self.summary.added + self.summary.removed > 0 {
            let mut cells: Vec<(&str, usize)> = vec![
                ("changed", self.summary.changed),
                ("added", self.summary.added),
                ("removed", self.summary.removed),
            ];
            if self.summary.changed > 0 {
                cells.extend(self.summary_cells());
            }
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "| {} |",
                cells.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
            );
            let _ = writeln!(o, "|{}", "---:|".repeat(cells.len()));
            let _ = writeln!(
                o,
                "| {} |",
                cells
                    .iter()
                    .map(|c| c.1.to_string())
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        if self.summary.labels_only > 0 {
            let _ = writeln!(
                o,
                "\n{} only labels (not listed).",
                plural_with(
                    self.summary.labels_only,
                    "machine changes",
                    "machines change"
                )
            );
        }
        if !self.site.is_empty() {
            let _ = writeln!(o, "\n#### Site\n");
            for c in self.site.iter().take(MAX_ITEMS) {
                let _ = writeln!(o, "- {}", site_text(c, s));
            }
            if self.site.len() > MAX_ITEMS {
                let _ = writeln!(o, "- and {} more", self.site.len() - MAX_ITEMS);
            }
        }
        if !self.images.is_empty() {
            let _ = writeln!(o, "\n#### Images\n");
            for i in self.images.iter().take(MAX_ITEMS) {
                let _ = write!(o, "- **{}**", md_text(&i.name));
                match i.status {
                    "changed" if i.machines.is_empty() => {
                        let _ = writeln!(o, ": changed; no machine boots it now");
                    }
                    "changed" => {
                        let names: Vec<&str> = i.machines.iter().map(String::as_str).collect();
                        let _ = writeln!(
                            o,
                            ": changed, for {}: {}",
                            plural_with(names.len(), "machine", "machines"),
                            md_text(&name_list(&names, s))
                        );
                    }
                    other => {
                        let _ = writeln!(o, ": {other}");
                    }
                }
                for d in &i.changes {
                    let _ = writeln!(o, "  - {}", delta_text(d, s));
                }
            }
            if self.images.len() > MAX_ITEMS {
                let _ = writeln!(o, "- and {} more", self.images.len() - MAX_ITEMS);
            }
        }
        let section = |o: &mut String, title: &str, views: Vec<View>, more: Option<String>| {
            if views.is_empty() {
                return;
            }
            let _ = writeln!(o, "\n#### {title}\n");
            for v in views {
                let labels = if v.labels.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", v.labels)
                };
                match (&v.names, v.lines.len()) {
                    (None, 1) => {
                        let _ = writeln!(o, "- **{}**{labels}: {}", md_text(&v.title), v.lines[0]);
                        continue;
                    }
                    (None, _) => {
                        let _ = writeln!(o, "- **{}**{labels}", md_text(&v.title));
                    }
                    (Some(names), _) => {
                        let _ = writeln!(o, "- **{}**{labels}: {}", v.title, md_text(names));
                    }
                }
                for l in v.lines.iter().take(MAX_CHANGES) {
                    let _ = writeln!(o, "  - {l}");
                }
                if v.lines.len() > MAX_CHANGES {
                    let _ = writeln!(o, "  - and {} more changes", v.lines.len() - MAX_CHANGES);
                }
                if !v.details.is_empty() {
                    let mut d: Vec<String> = v
                        .details
                        .iter()
                        .map(|(n, d)| format!("{}: {d}", md_text(n)))
                        .collect();
                    if v.more_details > 0 {
                        d.push(format!("and {} more", v.more_details));
                    }
                    let _ = writeln!(o, "  - per machine: {}", d.join("; "));
                }
            }
            if let Some(m) = more {
                let _ = writeln!(o, "- {m}");
            }
        };
        let more_entries =
            |n: usize| (n > MAX_GROUPS).then(|| "`--format json` lists every one".to_string());
        let added = entry_views(&self.added, s);
        let added_more = more_entries(added.len());
        section(
            &mut o,
            "Added",
            added.into_iter().take(MAX_GROUPS).collect(),
            added_more,
        );
        let removed = entry_views(&self.removed, s);
        let removed_more = more_entries(removed.len());
        section(
            &mut o,
            "Removed",
            removed.into_iter().take(MAX_GROUPS).collect(),
            removed_more,
        );
        section(
            &mut o,
            "Changed",
            self.change_views(s),
            self.hidden_groups(),
        );
        o
    }

    /// Everything, for programs.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes") + "\n"
    }

    pub fn render(&self, format: DiffFormat) -> String {
        match format {
            DiffFormat::Human => self.human(),
            DiffFormat::Markdown => self.markdown(),
            DiffFormat::Json => self.json(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> MachineDoc {
        MachineDoc {
            name: name.into(),
            macs: vec!["52:54:00:aa:bb:01".into()],
            ip: Some("10.0.0.1".into()),
            ..MachineDoc::default()
        }
    }

    #[test]
    fn placeholders_replace_whole_words_only() {
        let x = m("node01");
        assert_eq!(placeholders("hostname=node01", &x), "hostname={name}");
        assert_eq!(placeholders("h=node010", &x), "h=node010");
        assert_eq!(
            placeholders("ip=10.0.0.1::10.0.0.254", &x),
            "ip={ip}::10.0.0.254"
        );
        assert_eq!(placeholders("ip=10.0.0.11", &x), "ip=10.0.0.11");
        assert_eq!(
            placeholders("BOOTIF=01-52-54-00-aa-bb-01", &x),
            "BOOTIF=01-{mac}"
        );
    }

    #[test]
    fn kernel_args_pair_by_key() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = args_changes(
            &s(&["console=ttyS0", "quiet"]),
            &s(&["console=ttyS1", "debug"]),
        );
        assert_eq!(
            c,
            vec![
                Change::KernelArg {
                    old: Some("console=ttyS0".into()),
                    new: Some("console=ttyS1".into())
                },
                Change::KernelArg {
                    old: Some("quiet".into()),
                    new: None
                },
                Change::KernelArg {
                    old: None,
                    new: Some("debug".into())
                },
            ]
        );
        assert_eq!(
            args_changes(&s(&["a", "b"]), &s(&["b", "a"])),
            vec![Change::KernelArgsOrder {
                old: s(&["a", "b"]),
                new: s(&["b", "a"])
            }]
        );
        // A repeated argument counts.
        assert_eq!(
            args_changes(&s(&["a", "a"]), &s(&["a"])),
            vec![Change::KernelArg {
                old: Some("a".into()),
                new: None
            }]
        );
    }

    #[test]
    fn names_fold_into_runs() {
        let n = ["node01", "node02", "node03", "node05", "node06", "x"];
        assert_eq!(
            name_runs(&n, Style::Plain),
            vec!["node01..node03", "node05", "node06", "x"]
        );
        let many: Vec<String> = (0..40).map(|i| format!("n{:03}", i * 2)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(name_list(&refs, Style::Plain).ends_with(", and 28 more"));
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
