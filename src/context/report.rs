//! What the report sees.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{Describe, Field, Shape};
use crate::diag::{Diags, Severity, Sources};
use crate::plan::{Plan, Resolved};
use crate::site::{Artifact, Site};
use crate::status::{MachineState, Status};

view! {
    pub struct ReportSite<'a> {
        /// The site's name
        pub name: &'a str,
        /// [site] base-url
        pub base_url: Option<&'a str>,
        /// What unknown machines boot
        pub fallback: String,
        /// Whether [dhcp] is set
        pub dhcp: bool,
    }
}

view! {
    pub struct ReportRole<'a> {
        /// The role's name
        pub name: &'a str,
        /// Its description
        pub description: &'a str,
        /// The role it extends
        pub extends: Option<&'a str>,
        /// How many machines have it
        pub count: usize,
    }
}

view! {
    pub struct ReportArtifact<'a> {
        /// Its file name
        pub name: &'a str,
        /// Where the page links to (a path under http/, or its URL)
        pub href: Option<String>,
        /// Where it comes from (a local path or its URL)
        pub source: &'a str,
        /// Its size in bytes (local artifacts)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub size: Option<u64>,
    }
}

view! {
    pub struct ReportImage<'a> {
        /// The image's name
        pub name: &'a str,
        /// Its description
        pub description: &'a str,
        /// What it boots
        pub kind: &'a str,
        /// How many machines boot it
        pub machines: usize,
        /// What it fetches
        pub artifacts: Vec<ReportArtifact<'a>>,
    }
}

view! {
    pub struct Problem<'a> {
        /// error or warning
        pub severity: &'static str,
        /// The message
        pub message: &'a str,
        /// Where (file:line:column)
        pub at: Option<String>,
        /// Help lines
        pub help: &'a [String],
    }
}

view! {
    pub struct ReportContext<'a> {
        /// The site
        pub site: ReportSite<'a>,
        /// How many machines the site has
        pub machine_count: usize,
        /// Roles with machines, by name
        pub roles: Vec<ReportRole<'a>>,
        /// Every image
        pub images: Vec<ReportImage<'a>>,
        /// Label key -> value -> how many machines have it
        pub labels: BTreeMap<&'a str, BTreeMap<&'a str, usize>>,
        /// The problems found (warnings, in a build)
        pub problems: Vec<Problem<'a>>,
        /// Access logs were read (`build --access-log`): the index has each machine's last boot and state
        pub fleet: bool,
        /// Machines by role, then by image: (name, count), most first, for the chart
        pub chart: Vec<ChartBar<'a>>,
        /// The machine index (every machine, searched by the page's script): the JSON itself when the page carries it inline (`bootc serve`), else none and the page loads report/machines.js
        pub index_inline: Option<String>,
        /// false in a build; `bootc serve` puts its live state here
        pub live: bool,
    }
}

view! {
    pub struct ChartBar<'a> {
        /// "role" or "image"
        pub kind: &'static str,
        /// Its name
        pub name: &'a str,
        /// How many machines
        pub count: usize,
    }
}

/// The report's machine index (report/machines.js, or inline in `bootc
/// serve`'s page): every machine, searched and shown by the page's script,
/// so report/index.html stays small at any fleet size. Repeated texts
/// (roles, images, kinds, labels, kernel command lines) are stored once in
/// `strings` and named by their position.
///
/// Each row is written from its plan entry when the index is written
/// (nothing of it is copied before), so that a fleet's index is held once,
/// as its text.
pub struct ReportIndex<'a> {
    strings: Vec<String>,
    machines: Vec<IndexRow<'a>>,
    /// The site's own host, left out of each row's outside hosts.
    base_host: Option<String>,
}

/// What each row's columns are.
const FIELDS: [&str; 12] = [
    "name",
    "macs",
    "ip",
    "role",
    "image",
    "boot",
    "labels",
    "args",
    "files",
    "hosts",
    "last-boot",
    "state",
];

/// One machine, written as a list: name, MACs (space-separated), IP,
/// role#, image#, boot kind#, labels# (`k=v` space-separated), args#,
/// files (space-separated), outside hosts (space-separated), last boot,
/// state (the last two empty without access logs). `#`: an index into
/// `strings` (`shared`).
struct IndexRow<'a> {
    machine: &'a Resolved,
    shared: [usize; 5],
    state: Option<&'a MachineState>,
}

/// The script that defines the index: `window.BOOTC_REPORT = {…};`.
pub const INDEX_FILE: &str = "report/machines.js";

/// The index of every machine of `plan`, with its state from `fleet`.
pub fn index<'a>(site: &Site, plan: &'a Plan, fleet: Option<&'a Status>) -> ReportIndex<'a> {
    let mut strings: Vec<String> = Vec::new();
    let mut known: HashMap<String, usize> = HashMap::new();
    let mut intern = |s: &str| match known.get(s) {
        Some(&i) => i,
        None => {
            strings.push(s.to_string());
            known.insert(s.to_string(), strings.len() - 1);
            strings.len() - 1
        }
    };
    let mut text = String::new();
    let machines = plan
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut shared = [0; 5];
            shared[0] = intern(&m.role);
            shared[1] = intern(&m.image);
            shared[2] = intern(&m.boot);
            text.clear();
            let _ = join(&mut text, m.labels.iter().map(|(k, v)| Label(k, v)));
            shared[3] = intern(&text);
            text.clear();
            let _ = join(&mut text, m.kernel_args.iter());
            shared[4] = intern(&text);
            IndexRow {
                machine: m,
                shared,
                state: fleet.and_then(|f| f.machines.get(i)),
            }
        })
        .collect();
    ReportIndex {
        strings,
        machines,
        base_host: site.base_url.as_deref().and_then(crate::hosts::host_of),
    }
}

impl Serialize for ReportIndex<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeSeq, SerializeStruct};
        /// The rows, each with the site's host.
        struct Rows<'b, 'a>(&'b ReportIndex<'a>);
        impl Serialize for Rows<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.machines.len()))?;
                for row in &self.0.machines {
                    seq.serialize_element(&WithHost(row, self.0.base_host.as_deref()))?;
                }
                seq.end()
            }
        }
        let mut index = s.serialize_struct("ReportIndex", 3)?;
        index.serialize_field("fields", &FIELDS)?;
        index.serialize_field("strings", &self.strings)?;
        index.serialize_field("machines", &Rows(self))?;
        index.end()
    }
}

/// A label as the index shows it: `key=value`.
struct Label<'a>(&'a str, &'a str);

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "{}={}", self.0, self.1)
    }
}

/// Writes `items` separated by spaces.
fn join<T: std::fmt::Display>(
    out: &mut impl std::fmt::Write,
    items: impl Iterator<Item = T>,
) -> std::fmt::Result {
    for (i, item) in items.enumerate() {
        match i {
            0 => write!(out, "{item}")?,
            _ => write!(out, " {item}")?,
        }
    }
    Ok(())
}

/// `items` separated by spaces, as text written straight into a JSON
/// string.
struct Joined<F>(F);

impl<T, I, F> std::fmt::Display for Joined<F>
where
    T: std::fmt::Display,
    I: Iterator<Item = T>,
    F: Fn() -> I,
{
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        join(f, (self.0)())
    }
}

/// A row with the site's own host (left out of its outside hosts).
struct WithHost<'b, 'a>(&'b IndexRow<'a>, Option<&'b str>);

impl Serialize for WithHost<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let WithHost(row, base_host) = *self;
        let m = row.machine;
        let mut out = s.serialize_tuple(12)?;
        out.serialize_element(&m.name)?;
        out.serialize_element(&Text(Joined(|| m.macs.iter())))?;
        match m.ip {
            Some(ip) => out.serialize_element(&Text(ip))?,
            None => out.serialize_element("")?,
        }
        for i in row.shared {
            out.serialize_element(&i)?;
        }
        out.serialize_element(&Text(Joined(|| m.files.keys())))?;
        let hosts = || {
            m.reaches
                .iter()
                .filter(move |h| Some(h.as_str()) != base_host)
        };
        out.serialize_element(&Text(Joined(hosts)))?;
        let last_boot = row.state.map(|s| match (&s.last_seen, &s.boot_id) {
            (Some(t), _) => t.as_str(),
            (None, Some(_)) => "seen",
            (None, None) => "never",
        });
        out.serialize_element(last_boot.unwrap_or_default())?;
        out.serialize_element(row.state.map(MachineState::state).unwrap_or(""))?;
        out.end()
    }
}

/// A value written as a JSON string of its text.
struct Text<T>(T);

impl<T: std::fmt::Display> Serialize for Text<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl ReportIndex<'_> {
    /// The index as JSON that is safe inside an HTML `<script>` element.
    pub fn json(&self) -> String {
        self.written("", "")
    }

    /// The index as the script report/machines.js.
    pub fn script(&self) -> String {
        self.written(SCRIPT_START, SCRIPT_END)
    }

    /// The JSON of the index [`ReportIndex::script`] made `script` of.
    pub fn json_of_script(script: &str) -> Option<&str> {
        script.strip_prefix(SCRIPT_START)?.strip_suffix(SCRIPT_END)
    }

    /// The JSON between `start` and `end`, written once into one buffer.
    fn written(&self, start: &str, end: &str) -> String {
        // Made at once with room to spare (a row is about 300 bytes):
        // grown as it is written, a fleet's index would be copied at each
        // step; the room never written to is never touched.
        let mut out = Vec::with_capacity(self.machines.len() * 512 + 64 * 1024);
        out.extend_from_slice(start.as_bytes());
        let mut json = serde_json::Serializer::with_formatter(&mut out, ScriptSafe);
        self.serialize(&mut json).expect("plain data");
        out.extend_from_slice(end.as_bytes());
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

/// Compact JSON whose strings never hold `</` (which would end the
/// `<script>` element around it) or `<!--`: `<\/`, `<\!--` instead.
struct ScriptSafe;

impl serde_json::ser::Formatter for ScriptSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find('<') {
            w.write_all(&rest.as_bytes()[..=at])?;
            rest = &rest[at + 1..];
            if rest.starts_with('/') || rest.starts_with("!--") {
                w.write_all(b"\\")?;
            }
        }
        w.write_all(rest.as_bytes())
    }
}

/// What report/machines.js puts around the index's JSON.
const SCRIPT_START: &str = "window.BOOTC_REPORT = ";
const SCRIPT_END: &str = ";\n";

fn report_artifact(a: &Artifact) -> ReportArtifact<'_> {
    match a {
        Artifact::Local { path, size, .. } => ReportArtifact {
            name: a.file_name(),
            href: a.tree_path(),
            source: path,
            size: Some(*size),
        },
        Artifact::Remote { url, .. } | Artifact::Live { url } => ReportArtifact {
            name: a.file_name(),
            href: Some(url.clone()),
            source: url,
            size: None,
        },
    }
}

/// The context of report.html.j2: the fleet (machines, roles, images,
/// labels, problems).
pub fn report<'a>(
    site: &'a Site,
    sources: &Sources,
    plan: &'a Plan,
    fleet: Option<&Status>,
    diags: &'a Diags,
    index_inline: Option<String>,
) -> ReportContext<'a> {
    let mut by_role: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
    let mut labels: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (i, m) in plan.machines.iter().enumerate() {
        by_role.entry(&m.role).or_default().push(i);
        *by_image.entry(&m.image).or_default() += 1;
        for (k, v) in m.labels.iter() {
            *labels.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    let roles: Vec<ReportRole> = by_role
        .iter()
        .map(|(r, idx)| {
            let role = site.roles.get(*r);
            ReportRole {
                name: r,
                description: role.map(|x| x.description.as_str()).unwrap_or(""),
                extends: role.and_then(|x| x.extends.as_deref()),
                count: idx.len(),
            }
        })
        .collect();
    let images = site
        .images
        .values()
        .map(|i| ReportImage {
            name: &i.name,
            description: &i.description,
            kind: i.boot.kind(),
            machines: by_image.get(i.name.as_str()).copied().unwrap_or(0),
            artifacts: i
                .boot
                .artifacts()
                .into_iter()
                .map(report_artifact)
                .collect(),
        })
        .collect();
    let mut chart: Vec<ChartBar> = roles
        .iter()
        .map(|r| ChartBar {
            kind: "role",
            name: r.name,
            count: r.count,
        })
        .chain(by_image.iter().map(|(name, count)| ChartBar {
            kind: "image",
            name,
            count: *count,
        }))
        .collect();
    chart.sort_by(|a, b| {
        a.kind
            .cmp(b.kind)
            .reverse()
            .then(b.count.cmp(&a.count))
            .then(a.name.cmp(b.name))
    });
    let problems = diags
        .list
        .iter()
        .map(|d| Problem {
            severity: if d.severity == Severity::Error {
                "error"
            } else {
                "warning"
            },
            message: &d.message,
            at: d.primary.as_ref().map(|(l, _)| sources.place(l)),
            help: &d.help,
        })
        .collect();
    ReportContext {
        site: ReportSite {
            name: &site.name,
            base_url: site.base_url.as_deref(),
            fallback: site.fallback.to_string(),
            dhcp: site.dhcp.is_some(),
        },
        machine_count: plan.machines.len(),
        roles,
        images,
        labels,
        problems,
        fleet: fleet.is_some(),
        chart,
        index_inline,
        live: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_never_ends_or_comments_its_script_element() {
        let text = "a</script><!--b<c<!-d</";
        let index = ReportIndex {
            strings: vec![text.into(), "\"</\"".into()],
            machines: Vec::new(),
            base_host: None,
        };
        let json = index.json();
        // What the page's HTML parser must not see, and what JavaScript
        // reads back as the same text.
        assert!(!json.contains("</") && !json.contains("<!--"), "{json}");
        let plain = serde_json::to_string(&index).unwrap();
        assert_eq!(json, plain.replace("</", "<\\/").replace("<!--", "<\\!--"));
        assert!(json.contains(r#"a<\/script><\!--b<c<!-d<\/"#), "{json}");
        assert_eq!(index.script(), format!("{SCRIPT_START}{json}{SCRIPT_END}"));
        assert_eq!(ReportIndex::json_of_script(&index.script()), Some(&*json));
    }
}
