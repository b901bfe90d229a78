//! The checked site: what `validate` builds from the raw files. Every value
//! here has passed its rule (MACs parsed, references resolved, artifacts found).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::beneath::Opened;
use crate::diag::{FileId, Loc};
use crate::model::Vars;

/// A MAC address (unicast, checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Accepts the forms of SPEC section 2, in any case: `52:54:00:aa:bb:01`,
    /// `52-54-00-aa-bb-01`, Cisco's `5254.00aa.bb01` and bare `525400aabb01`.
    pub fn parse(s: &str) -> Option<Mac> {
        // Split at the first of ':', '-', '.' found (none: one group).
        let sep = [':', '-', '.'].into_iter().find(|c| s.contains(*c));
        let width = match sep {
            Some('.') => 4,
            Some(_) => 2,
            None => 12,
        };
        let mut hex = [0u8; 12];
        let mut n = 0;
        for g in s.split(sep.unwrap_or(':')) {
            if g.len() != width || n + width > 12 || !g.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            hex[n..n + width].copy_from_slice(g.as_bytes());
            n += width;
        }
        if n != 12 {
            return None;
        }
        // Hex digits, checked above.
        let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        let mut b = [0u8; 6];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = digit(hex[2 * i]) << 4 | digit(hex[2 * i + 1]);
        }
        Some(Mac(b))
    }

    pub fn is_group(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// 00:00:00:00:00:00: no NIC's address (firmware and drivers report it
    /// when they have none).
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// ff:ff:ff:ff:ff:ff: every NIC of the segment.
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }

    /// `52-54-00-aa-bb-01`: iPXE's `${mac:hexhyp}` and the script's file name.
    pub fn hexhyp(&self) -> String {
        self.joined(b'-')
    }

    /// The six bytes in lowercase hex, `sep` between them (one allocation:
    /// a fleet's MACs are formatted hundreds of thousands of times).
    fn joined(&self, sep: u8) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = Vec::with_capacity(17);
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(sep);
            }
            s.extend([HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        String::from_utf8(s).expect("hex digits and an ASCII separator")
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined(b':'))
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        Mac::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a MAC address")))
    }
}

/// A string that is a template, with where it was written.
#[derive(Clone, Debug)]
pub struct Tpl {
    pub text: String,
    pub loc: Loc,
}

pub struct Site {
    pub name: String,
    /// With a trailing '/'.
    pub base_url: Option<String>,
    pub fallback: Fallback,
    /// `[site] menu`: the fallback menu's roles, in order, each with where
    /// it is named (None: every role that can boot without a machine).
    pub menu: Option<Vec<(String, Loc)>>,
    /// `[site] allow`: the kinds of warnings silenced.
    pub allow: BTreeSet<crate::diag::Lint>,
    pub ipxe: Ipxe,
    pub uefi: Uefi,
    pub dhcp: Option<Dhcp>,
    /// `[media]`: `build` also writes http/media/boot.iso.
    pub media: Option<Media>,
    /// `[site] allowed-hosts` (with base-url's host): None, any host.
    pub allowed_hosts: Option<crate::hosts::Allowed>,
    /// Sorted by name.
    pub machines: Vec<Machine>,
    /// `boot = false` machines, sorted by name.
    pub reservations: Vec<Reservation>,
    pub roles: BTreeMap<String, Role>,
    pub images: BTreeMap<String, Image>,
    /// Site templates (name under templates/ -> source file).
    pub templates: BTreeMap<String, FileId>,
}

impl Site {
    /// Builds for another address (a preview): base-url becomes `url`
    /// (with a trailing '/'), and its host is allowed.
    pub fn rebase(&mut self, url: &str) {
        let url = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        if let (Some(allowed), Some(host)) = (&mut self.allowed_hosts, crate::hosts::host_of(&url))
            && !allowed.permits(&host)
        {
            allowed.hosts.push(host);
        }
        self.base_url = Some(url);
    }
}

/// What a machine's UEFI firmware is handed (BIOS machines always get iPXE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UefiLoader {
    /// iPXE (snponly.efi or ipxe.efi), which fetches the iPXE scripts.
    Ipxe,
    /// Debian's signed shim, which loads Debian's signed GRUB, which reads
    /// the machine's GRUB config over TFTP.
    ShimGrub,
}

impl UefiLoader {
    /// Its name in plan.json (`uefi-loader`) and in messages.
    pub fn name(self) -> &'static str {
        match self {
            UefiLoader::Ipxe => "ipxe",
            UefiLoader::ShimGrub => "shim-grub",
        }
    }

    /// The loader plan.json names (`""` is iPXE, the default).
    pub fn from_plan(name: &str) -> UefiLoader {
        if name == UefiLoader::ShimGrub.name() {
            UefiLoader::ShimGrub
        } else {
            UefiLoader::Ipxe
        }
    }
}

impl Site {
    /// The roles of `role`'s `extends` chain, the role itself first.
    pub fn role_chain<'a>(&'a self, role: &'a str) -> Vec<&'a Role> {
        let mut out: Vec<&Role> = Vec::new();
        for r in self.chain(role) {
            // A chain is a few roles long: no set needed to see a cycle.
            if out.iter().any(|seen| seen.name == r.name) {
                break; // a cycle, reported by validate
            }
            out.push(r);
        }
        out
    }

    /// [`Site::role_chain`] without collecting it (asked for every
    /// machine): a cycle, reported by validate, repeats roles until as
    /// many were given as the site has.
    fn chain<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Role> {
        let mut next = Some(role);
        std::iter::from_fn(move || {
            let r = self.roles.get(next?)?;
            next = r.extends.as_deref();
            Some(r)
        })
        .take(self.roles.len())
    }

    /// Secure Boot for a machine of `role` (`machine` may set it): the
    /// machine's own setting, else the nearest role's, else the site's.
    pub fn secure_boot(&self, role: &str, machine: Option<bool>) -> bool {
        machine
            .or_else(|| self.chain(role).find_map(|r| r.secure_boot))
            .unwrap_or(self.uefi.secure_boot)
    }

    /// The image a machine of `role` boots (the nearest role's `image`).
    /// The image machine `m` boots: while it reinstalls, its installer
    /// role's; else its own, else its role's.
    pub fn image_for(&self, m: &Machine) -> Option<&Image> {
        match (self.installer_of(m), &m.image) {
            (Some(installer), _) => self.image_of(installer),
            (None, Some(i)) => self.images.get(i),
            (None, None) => self.image_of(&m.role),
        }
    }

    /// The role machine `m` boots now: while it has `reinstall`, the
    /// `installer` of its role chain; else its own.
    pub fn boot_role<'a>(&'a self, m: &'a Machine) -> &'a str {
        self.installer_of(m).unwrap_or(&m.role)
    }

    /// The installer role of `m`'s role chain, while `m` has `reinstall`.
    pub fn installer_of<'a>(&'a self, m: &'a Machine) -> Option<&'a str> {
        m.reinstall.as_ref()?;
        self.chain(&m.role).find_map(|r| r.installer.as_deref())
    }

    pub fn image_of(&self, role: &str) -> Option<&Image> {
        self.chain(role)
            .find_map(|r| r.image.as_deref())
            .and_then(|i| self.images.get(i))
    }

    /// The UEFI loader of a machine booting an image of `arch`: shim and
    /// GRUB under Secure Boot, and for arm64 unless an arm64 iPXE exists.
    pub fn uefi_loader(&self, arch: Arch, secure_boot: bool) -> UefiLoader {
        let arm64_ipxe = self.ipxe.binaries.contains_key(crate::dhcp::ARM64_LOADER);
        if secure_boot || (arch == Arch::Arm64 && !arm64_ipxe) {
            UefiLoader::ShimGrub
        } else {
            UefiLoader::Ipxe
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fallback {
    Local,
    Menu,
    Shell,
    Role(String),
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fallback::Local => f.write_str("local"),
            Fallback::Menu => f.write_str("menu"),
            Fallback::Shell => f.write_str("shell"),
            Fallback::Role(r) => write!(f, "role {r}"),
        }
    }
}

/// The iPXE chainloaders found for tftp/.
pub struct Ipxe {
    /// File name -> path, for those present.
    pub binaries: BTreeMap<String, Arc<Opened>>,
    /// `ipxe.lkrn` of the same folder, if there: the BIOS side of the boot
    /// media (not part of tftp/).
    pub lkrn: Option<Arc<Opened>>,
}

/// `[uefi]`: Secure Boot and the signed loaders (SPEC section 8).
#[derive(Default)]
pub struct Uefi {
    /// The site's default; roles and machines override it.
    pub secure_boot: bool,
    /// UEFI HTTP Boot clients get their loader by URL (with `[dhcp]`).
    pub http_boot: bool,
    /// The signed loaders found, by the name they take in tftp/.
    pub loaders: BTreeMap<EfiName, EfiFile>,
}

/// A loader of `[uefi]`, named as it is served: shim loads the GRUB of
/// the same folder by this name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EfiName {
    Shim,
    Grub,
    Arm64Shim,
    Arm64Grub,
}

impl EfiName {
    pub const ALL: [EfiName; 4] = [
        EfiName::Shim,
        EfiName::Grub,
        EfiName::Arm64Shim,
        EfiName::Arm64Grub,
    ];

    /// The file name in tftp/.
    pub fn file(self) -> &'static str {
        match self {
            EfiName::Shim => "shimx64.efi",
            EfiName::Grub => "grubx64.efi",
            EfiName::Arm64Shim => "bootnetaa64.efi",
            EfiName::Arm64Grub => "grubaa64.efi",
        }
    }

    /// The key of `[uefi]`.
    pub fn key(self) -> &'static str {
        match self {
            EfiName::Shim => "shim",
            EfiName::Grub => "grub",
            EfiName::Arm64Shim => "arm64-shim",
            EfiName::Arm64Grub => "arm64-grub",
        }
    }

    pub fn arch(self) -> Arch {
        match self {
            EfiName::Shim | EfiName::Grub => Arch::X86_64,
            EfiName::Arm64Shim | EfiName::Arm64Grub => Arch::Arm64,
        }
    }
}

/// A loader file, opened once and hashed.
#[derive(Clone)]
pub struct EfiFile {
    pub source: Arc<Opened>,
    /// As written, or the default path.
    pub path: String,
    pub size: u64,
    pub blake3: String,
}

/// The architecture an image boots (SPEC section 2, `arch`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    Arm64,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        })
    }
}

/// Chainloaders looked for (the arm64 one is optional, from a custom build).
pub const IPXE_BINARIES: [&str; 4] = [
    "undionly.kpxe",
    "ipxe.efi",
    "snponly.efi",
    "snponly-arm64.efi",
];

/// `[media]` (SPEC section 9).
#[derive(Clone, Debug, Default)]
pub struct Media {
    /// Pad the image to at least this many bytes (`pad-to`), 0: no padding.
    pub pad_to: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dhcp {
    pub next_server: Ipv4Addr,
    pub interface: Option<String>,
    pub proxy: bool,
    /// `mode = "include"`: fragments an existing server includes.
    pub include: bool,
    /// `lease-time`, seconds.
    pub lease_time: Option<u32>,
    pub options: DhcpOptions,
    pub subnets: Vec<Subnet>,
}

/// `[dhcp.options]`: handed to every client in whole-config modes.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DhcpOptions {
    pub ntp_servers: Vec<Ipv4Addr>,
    pub domain_search: Vec<String>,
    pub mtu: Option<u16>,
    pub time_offset: Option<i32>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Subnet {
    pub cidr: Ipv4Net,
    pub pool: Option<(Ipv4Addr, Ipv4Addr)>,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub domain: Option<String>,
}

pub struct Machine {
    pub name: String,
    pub macs: Vec<Mac>,
    pub ip: Option<Ipv4Addr>,
    pub role: String,
    /// `image =` of the machine: overrides its role's.
    pub image: Option<String>,
    /// SMBIOS system UUID, lowercase.
    pub uuid: Option<String>,
    /// Serial number, as written.
    pub serial: Option<String>,
    /// `reinstall = "TOKEN"`: it boots its installer role meanwhile.
    pub reinstall: Option<String>,
    /// `secure-boot =` of the machine, if set.
    pub secure_boot: Option<bool>,
    /// `[defaults]` args, then the machine's own.
    pub kernel_args: Vec<Tpl>,
    /// `[defaults]` labels with the machine's over them: the machines of
    /// a file that add none share their file's (and their plan entries
    /// share them too).
    pub labels: Arc<BTreeMap<String, String>>,
    /// `[defaults]` vars with the machine's merged over them.
    pub vars: Vars,
    pub loc: Loc,
}

/// A machine with `boot = false` (a BMC, a switch): a DHCP reservation
/// only, no role and no script.
pub struct Reservation {
    pub name: String,
    pub macs: Vec<Mac>,
    pub ip: Option<Ipv4Addr>,
    pub loc: Loc,
}

pub struct Role {
    pub name: String,
    pub description: String,
    pub extends: Option<String>,
    pub image: Option<String>,
    /// `installer =`: the role its machines boot while they have `reinstall`.
    pub installer: Option<String>,
    /// `secure-boot =` of the role, if set.
    pub secure_boot: Option<bool>,
    pub kernel_args: Vec<Tpl>,
    pub vars: Vars,
    /// Template name under templates/.
    pub script: Option<String>,
    /// Served file name -> template name.
    pub files: BTreeMap<String, String>,
    pub file: FileId,
}

/// An image; its artifacts are `A` (validate holds checked ones that are
/// not hashed yet until every image is known).
pub struct Image<A = Artifact> {
    pub name: String,
    pub description: String,
    pub boot: Boot<A>,
    pub arch: Arch,
    pub kernel_args: Vec<Tpl>,
    pub vars: Vars,
    pub file: FileId,
}

#[derive(Clone, Debug)]
pub enum Boot<A = Artifact> {
    Kernel { kernel: A, initrds: Vec<A> },
    Iso { iso: A, method: IsoMethod<A> },
    Chain(A),
    Local,
}

impl<A> Boot<A> {
    pub fn kind(&self) -> &'static str {
        match self {
            Boot::Kernel { .. } => "kernel",
            Boot::Iso { .. } => "iso",
            Boot::Chain(_) => "chain",
            Boot::Local => "local",
        }
    }

    pub fn artifacts(&self) -> Vec<&A> {
        match self {
            Boot::Kernel { kernel, initrds } => std::iter::once(kernel).chain(initrds).collect(),
            Boot::Iso {
                iso,
                method: IsoMethod::Memdisk(m),
            } => vec![m, iso],
            Boot::Iso { iso, .. } => vec![iso],
            Boot::Chain(a) => vec![a],
            Boot::Local => vec![],
        }
    }

    /// The same boot with each artifact converted by `f`, or None when one
    /// cannot be.
    pub fn try_map<B>(self, mut f: impl FnMut(A) -> Option<B>) -> Option<Boot<B>> {
        Some(match self {
            Boot::Kernel { kernel, initrds } => Boot::Kernel {
                kernel: f(kernel)?,
                initrds: initrds.into_iter().map(&mut f).collect::<Option<_>>()?,
            },
            Boot::Iso { iso, method } => Boot::Iso {
                iso: f(iso)?,
                method: match method {
                    IsoMethod::Sanboot => IsoMethod::Sanboot,
                    IsoMethod::Memdisk(m) => IsoMethod::Memdisk(f(m)?),
                },
            },
            Boot::Chain(a) => Boot::Chain(f(a)?),
            Boot::Local => Boot::Local,
        })
    }
}

#[derive(Clone, Debug)]
pub enum IsoMethod<A = Artifact> {
    Sanboot,
    Memdisk(A),
}

/// An artifact of the site: the plan's record of it, a local one with the
/// file it was opened from at validation (hashed then, and copied into the
/// tree from that descriptor).
pub type Artifact = crate::plan::Artifact<Arc<Opened>>;

#[cfg(test)]
mod tests {
    use super::Mac;

    #[test]
    fn every_mac_form_of_the_spec() {
        let want = Mac([0x52, 0x54, 0, 0xaa, 0xbb, 0x19]);
        for s in [
            "52:54:00:aa:bb:19",
            "52-54-00-AA-BB-19",
            "5254.00aa.bb19",
            "525400AABB19",
        ] {
            assert_eq!(Mac::parse(s), Some(want), "{s}");
        }
        for s in [
            "52:54:00:aa:bb",
            "5254.00aa.bb1",
            "525400aabb1",
            "525400aabb190",
            "52:54:00-aa:bb:19",
            "5254.00aa.bb1g",
            "+2:54:00:aa:bb:19",
        ] {
            assert_eq!(Mac::parse(s), None, "{s}");
        }
    }
}
