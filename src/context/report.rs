//! What the report sees.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Describe, Field, Shape};
use crate::diag::{Diags, Severity, Sources};
use crate::plan::{Plan, Resolved};
use crate::site::{Artifact, Site};

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
    pub struct ReportMachine<'a> {
        /// The machine's name
        pub name: &'a str,
        /// Its MACs
        pub macs: Vec<String>,
        /// Its per-MAC scripts (paths under http/), in the order of `macs`
        pub scripts: Vec<String>,
        /// Its fixed address
        pub ip: Option<String>,
        /// Its role
        pub role: &'a str,
        /// The role, then the roles it extends
        pub role_chain: &'a [String],
        /// The image it boots
        pub image: &'a str,
        /// What the image boots
        pub boot: &'a str,
        /// The kernel command line
        pub kernel_args: String,
        /// Its labels (a map)
        pub labels: &'a BTreeMap<String, String>,
        /// Its per-machine files: (name, path under http/)
        pub files: Vec<(String, String)>,
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
        /// The first of them (at most 500; `count` says how many)
        pub machines: Vec<ReportMachine<'a>>,
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
        /// false in a build; `bootc serve` puts its live state here
        pub live: bool,
    }
}

/// Machines listed per role on the report page; beyond that the page says
/// how many more there are (plan.json has them all), so a 100,000-machine
/// fleet still gives a page a browser can open.
pub const REPORT_MACHINES_PER_ROLE: usize = 500;

impl<'a> ReportMachine<'a> {
    fn new(m: &'a Resolved) -> Self {
        ReportMachine {
            name: &m.name,
            macs: m.macs.iter().map(|x| x.to_string()).collect(),
            scripts: m
                .macs
                .iter()
                .map(|x| format!("machines/{}.ipxe", x.hexhyp()))
                .collect(),
            ip: m.ip.map(|i| i.to_string()),
            role: &m.role,
            role_chain: &m.role_chain,
            image: &m.image,
            boot: &m.boot,
            kernel_args: m.kernel_args.join(" "),
            labels: &m.labels,
            files: m
                .files
                .keys()
                .map(|f| (f.clone(), format!("machines/{}/{f}", m.name)))
                .collect(),
        }
    }
}

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
    diags: &'a Diags,
) -> ReportContext<'a> {
    let mut by_role: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut by_image: BTreeMap<&str, usize> = BTreeMap::new();
    let mut labels: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (i, m) in plan.machines.iter().enumerate() {
        by_role.entry(&m.role).or_default().push(i);
        *by_image.entry(&m.image).or_default() += 1;
        for (k, v) in &m.labels {
            *labels.entry(k).or_default().entry(v).or_default() += 1;
        }
    }
    let roles = by_role
        .iter()
        .map(|(r, idx)| {
            let role = site.roles.get(*r);
            ReportRole {
                name: r,
                description: role.map(|x| x.description.as_str()).unwrap_or(""),
                extends: role.and_then(|x| x.extends.as_deref()),
                count: idx.len(),
                machines: idx
                    .iter()
                    .take(REPORT_MACHINES_PER_ROLE)
                    .map(|&i| ReportMachine::new(&plan.machines[i]))
                    .collect(),
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
        live: false,
    }
}
