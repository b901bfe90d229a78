//! Everything a template sees, in one place. Sites override the built-in
//! templates, so these types are a user-facing contract: each is declared
//! with [`view!`], which derives its serialization and, from the same field
//! list and doc comments, the description `bootc templates` prints.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::diag::{Diags, Severity, Sources};
use crate::resolve::{Plan, Resolved};
use crate::site::{Artifact, Site};

/// One variable (or field of one) a template may use.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub doc: &'static str,
    pub shape: Shape,
}

/// What a type looks like to a template.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// May be none or absent (an `Option`).
    pub optional: bool,
    /// A list: `fields` describe each item.
    pub list: bool,
    /// The view type (for structs), to list its fields once.
    pub ty: Option<&'static str>,
    pub fields: Vec<Field>,
}

/// A type's shape as a template sees it.
pub trait Describe {
    fn shape() -> Shape {
        Shape::default()
    }
}

macro_rules! leaf {
    ($($t:ty),*) => { $(impl Describe for $t {})* };
}
leaf!(String, str, bool, u8, u64, usize);
leaf!(serde_json::Map<String, serde_json::Value>);
impl<K, V> Describe for BTreeMap<K, V> {}
impl<A, B> Describe for (A, B) {}
impl<T: Describe + ?Sized> Describe for &T {
    fn shape() -> Shape {
        T::shape()
    }
}
impl<T: Describe> Describe for Option<T> {
    fn shape() -> Shape {
        Shape {
            optional: true,
            ..T::shape()
        }
    }
}
impl<T: Describe> Describe for Vec<T> {
    fn shape() -> Shape {
        <[T]>::shape()
    }
}
impl<T: Describe> Describe for [T] {
    fn shape() -> Shape {
        Shape {
            list: true,
            ..T::shape()
        }
    }
}

/// A struct a template sees: serialized as is, described from the same
/// field list (doc comments become the descriptions).
macro_rules! view {
    ($(#[$m:meta])* pub struct $name:ident $(<$lt:lifetime>)? {
        $( $(#[doc = $doc:literal])* $(#[serde($($s:tt)*)])* pub $f:ident : $t:ty ),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Serialize)]
        pub struct $name $(<$lt>)? { $( $(#[doc = $doc])* $(#[serde($($s)*)])* pub $f: $t ),* }
        impl $(<$lt>)? Describe for $name $(<$lt>)? {
            fn shape() -> Shape {
                Shape {
                    ty: Some(stringify!($name)),
                    fields: vec![$(Field {
                        name: stringify!($f),
                        doc: concat!($($doc),*),
                        shape: <$t as Describe>::shape(),
                    }),*],
                    ..Shape::default()
                }
            }
        }
    };
}

// ---- machines, roles, images: kernel args, per-machine files, scripts ----

view! {
    #[derive(Clone)]
    pub struct SiteView<'a> {
        /// The site's name ([site] name)
        pub name: &'a str,
        /// [site] base-url, ending in `/`
        pub base_url: Option<&'a str>,
        /// What unknown machines boot: local, menu, shell or role:NAME
        pub fallback: String,
    }
}

view! {
    #[derive(Clone)]
    pub struct MachineView<'a> {
        /// The machine's name
        pub name: &'a str,
        /// The MAC this script is for (in files and kernel args: the first)
        pub mac: String,
        /// All the machine's MACs
        pub macs: Vec<String>,
        /// Its fixed IPv4 address
        pub ip: Option<String>,
        /// Its labels (a map)
        pub labels: &'a BTreeMap<String, String>,
        /// Where its per-machine files are served (needs [site] base-url)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
    }
}

view! {
    #[derive(Clone)]
    pub struct RoleView<'a> {
        /// The role's name
        pub name: &'a str,
        /// Its description
        pub description: &'a str,
    }
}

view! {
    #[derive(Clone)]
    pub struct ImageView<'a> {
        /// The image's name
        pub name: &'a str,
        /// Its description
        pub description: &'a str,
        /// What it boots: kernel, iso, chain or local
        pub kind: &'a str,
    }
}

view! {
    #[derive(Clone)]
    pub struct Fetch {
        /// Where the boot loader fetches it (relative to the script, or absolute)
        pub url: String,
        /// Its file name
        pub name: String,
    }
}

view! {
    #[derive(Clone, Default)]
    pub struct BootView {
        /// What the image boots: kernel, iso, chain or local
        pub kind: &'static str,
        /// The kernel (kernel images)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub kernel: Option<Fetch>,
        /// The initrds, in order (kernel images)
        pub initrds: Vec<Fetch>,
        /// The kernel command line: image, roles (base first), machine
        pub args: String,
        /// The ISO (iso images)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub iso: Option<Fetch>,
        /// How the ISO boots: sanboot or memdisk
        #[serde(skip_serializing_if = "Option::is_none")]
        pub method: Option<&'static str>,
        /// memdisk itself (iso images booted by memdisk)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub memdisk: Option<Fetch>,
        /// What is chainloaded (chain images)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub chain: Option<Fetch>,
    }
}

view! {
    /// The context of a machine's kernel args, per-machine files and boot
    /// script, and of the fallback's kernel args (without a machine).
    #[derive(Clone)]
    pub struct MachineContext<'a> {
        /// The site
        pub site: SiteView<'a>,
        /// The machine (not in the fallback)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub machine: Option<MachineView<'a>>,
        /// Its own role (also in args inherited through `extends`)
        pub role: RoleView<'a>,
        /// The image it boots
        pub image: ImageView<'a>,
        /// Variables, merged: image < roles (base first) < [defaults] < machine
        pub vars: serde_json::Map<String, serde_json::Value>,
        /// What the boot loader fetches and runs (boot scripts only)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub boot: Option<BootView>,
    }
}

impl MachineContext<'_> {
    /// The help of an undefined-value error, from the fields above.
    pub fn help() -> String {
        let (only_scripts, always): (Vec<Field>, Vec<Field>) = Self::shape()
            .fields
            .into_iter()
            .partition(|f| f.name == "boot");
        let names = |fs: Vec<Field>| fs.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
        format!(
            "available: {} (and {} in scripts); the fallback has no machine; machine.url needs [site] base-url",
            names(always),
            names(only_scripts)
        )
    }
}

// ---- the fallback and boot.ipxe ----

view! {
    pub struct BootContext<'a> {
        /// The site
        pub site: SiteView<'a>,
    }
}

view! {
    #[derive(Clone)]
    pub struct FallbackEntry<'a> {
        /// The role
        pub role: RoleView<'a>,
        /// The image it boots
        pub image: ImageView<'a>,
        /// What the boot loader fetches and runs
        pub boot: BootView,
    }
}

view! {
    #[derive(Clone)]
    pub struct FallbackView<'a> {
        /// local, menu, shell or role
        pub mode: &'static str,
        /// The role booted (mode role)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub role: Option<RoleView<'a>>,
        /// Its image (mode role)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub image: Option<ImageView<'a>>,
        /// What the boot loader fetches and runs (mode role)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub boot: Option<BootView>,
        /// One entry per role that boots without a machine (mode menu)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub entries: Option<Vec<FallbackEntry<'a>>>,
    }
}

view! {
    pub struct FallbackContext<'a> {
        /// The site
        pub site: SiteView<'a>,
        /// What unknown machines boot
        pub fallback: FallbackView<'a>,
    }
}

// ---- DHCP configurations ----

view! {
    pub struct DhcpSite<'a> {
        /// The site's name
        pub name: &'a str,
        /// [site] base-url
        pub base_url: Option<&'a str>,
    }
}

view! {
    pub struct DhcpView {
        /// The TFTP server ([dhcp] next-server)
        pub next_server: String,
        /// The interface to serve on
        pub interface: Option<String>,
        /// Proxy mode: another server hands out addresses
        pub proxy: bool,
        /// The URL iPXE is handed: base-url + boot.ipxe
        pub boot_url: String,
        /// The URL UEFI HTTP Boot clients are handed (an EFI iPXE in http/)
        pub http_boot_url: Option<String>,
        /// The chainloader for BIOS clients
        pub bios: &'static str,
        /// The chainloader for x86-64 UEFI clients
        pub efi64: &'static str,
        /// The chainloader for arm64 UEFI clients, when present
        pub arm64: Option<&'static str>,
        /// The subnets, in the order of [[dhcp.subnet]]
        pub subnets: Vec<SubnetView>,
    }
}

view! {
    pub struct SubnetView {
        /// 1-based, stable: the order of [[dhcp.subnet]]
        pub id: usize,
        /// The subnet, as a.b.c.d/n
        pub cidr: String,
        /// Its network address
        pub network: String,
        /// Its netmask
        pub netmask: String,
        /// Its broadcast address
        pub broadcast: String,
        /// Its prefix length
        pub prefix: u8,
        /// First address of the dynamic pool
        pub pool_start: Option<String>,
        /// Last address of the dynamic pool
        pub pool_end: Option<String>,
        /// The router
        pub gateway: Option<String>,
        /// DNS servers
        pub dns: Vec<String>,
        /// The domain name
        pub domain: Option<String>,
        /// Machines with a fixed address in this subnet: one entry per MAC
        pub hosts: Vec<HostView>,
        /// The same, one entry per machine (with all its MACs)
        pub machines: Vec<DhcpMachine>,
    }
}

view! {
    pub struct DhcpMachine {
        /// The machine's name
        pub name: String,
        /// Its MACs
        pub macs: Vec<String>,
        /// Its fixed address
        pub ip: String,
    }
}

view! {
    pub struct HostView {
        /// The machine's name
        pub name: String,
        /// Unique among the hosts: the name, with `_nicN` for a machine's further NICs (never a host label)
        pub id: String,
        /// The MAC
        pub mac: String,
        /// The machine's fixed address
        pub ip: String,
    }
}

view! {
    pub struct DhcpContext<'a> {
        /// The site
        pub site: DhcpSite<'a>,
        /// The network, as all three formats see it
        pub dhcp: DhcpView,
    }
}

// ---- the report ----

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

/// What a built-in template is for and the variables it sees, by name.
pub fn builtin(name: &str) -> Option<(&'static str, Vec<Field>)> {
    // A machine's script always has a machine and a boot; the fallback,
    // which includes boot-commands.ipxe.j2 too, has no machine.
    let script = |always: &[&str]| {
        let mut fields = MachineContext::shape().fields;
        for f in &mut fields {
            f.shape.optional &= !always.contains(&f.name);
        }
        fields
    };
    Some(match name {
        "boot.ipxe.j2" => (
            "http/boot.ipxe: the entry script every iPXE fetches first",
            BootContext::shape().fields,
        ),
        "fallback.ipxe.j2" => (
            "http/fallback.ipxe: what machines the site does not know boot",
            FallbackContext::shape().fields,
        ),
        "machine.ipxe.j2" => (
            "http/machines/MAC.ipxe: a machine's boot script, one per MAC (unless its role sets script =)",
            script(&["machine", "boot"]),
        ),
        "boot-commands.ipxe.j2" => (
            "included by machine.ipxe.j2 and fallback.ipxe.j2: the commands that boot `boot` (in the fallback: its role, image and boot, no machine)",
            script(&["boot"]),
        ),
        "report.html.j2" => (
            "report/index.html: the build report",
            ReportContext::shape().fields,
        ),
        "dhcpd.conf.j2" | "kea-dhcp4.json.j2" | "dnsmasq.conf.j2" => (
            "dhcp/: a DHCP server configuration (with [dhcp])",
            DhcpContext::shape().fields,
        ),
        _ => return None,
    })
}

/// One variable path a template may use (`site.name`, `roles[].name`).
#[derive(Debug, Clone)]
pub struct Var {
    pub path: String,
    pub doc: &'static str,
    /// The value itself may be none or absent.
    pub optional: bool,
    /// It, or a parent, may be none or absent.
    pub maybe_absent: bool,
    /// Its fields are those listed under this earlier path.
    pub same_as: Option<String>,
}

/// Every variable path below `fields`; a view type's fields are listed
/// under its first path only.
pub fn paths(fields: &[Field]) -> Vec<Var> {
    fn walk(
        fs: &[Field],
        prefix: &str,
        absent: bool,
        seen: &mut BTreeMap<&'static str, String>,
        out: &mut Vec<Var>,
    ) {
        for f in fs {
            let path = format!("{prefix}{}", f.name);
            let maybe_absent = absent || f.shape.optional;
            let same_as = f.shape.ty.and_then(|t| seen.get(t).cloned());
            if let (Some(t), None) = (f.shape.ty, &same_as) {
                seen.insert(t, path.clone());
            }
            out.push(Var {
                path: path.clone(),
                doc: f.doc.trim(),
                optional: f.shape.optional,
                maybe_absent,
                same_as: same_as.clone(),
            });
            if same_as.is_none() {
                let inner = if f.shape.list {
                    format!("{path}[].")
                } else {
                    format!("{path}.")
                };
                walk(&f.shape.fields, &inner, maybe_absent, seen, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(fields, "", false, &mut BTreeMap::new(), &mut out);
    out
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
