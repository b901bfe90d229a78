//! The site's files as written: serde structs that mirror the TOML exactly.
//! Nothing here is checked beyond syntax and types; `validate` does the rest.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;
pub type Vars = BTreeMap<String, toml::Value>;

/// `bootc.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SiteFile {
    pub site: SiteSection,
    #[serde(default)]
    pub ipxe: IpxeSection,
    pub uefi: Option<S<UefiSection>>,
    pub dhcp: Option<S<DhcpSection>>,
    pub media: Option<S<MediaSection>>,
}

/// `[media]` (SPEC section 9).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MediaSection {
    pub pad_to: Option<S<String>>,
}

/// `[uefi]` (SPEC section 8).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UefiSection {
    pub secure_boot: Option<S<bool>>,
    pub shim: Option<S<Artifact>>,
    pub grub: Option<S<Artifact>>,
    pub arm64_shim: Option<S<Artifact>>,
    pub arm64_grub: Option<S<Artifact>>,
    pub http_boot: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SiteSection {
    pub name: S<String>,
    pub base_url: Option<S<String>>,
    pub fallback: Option<S<String>>,
    /// The fallback menu's roles, in order (with `fallback = "menu"`).
    pub menu: Option<Vec<S<String>>>,
    /// Kinds of warnings silenced (`unused-role`, …).
    pub allow: Option<Vec<S<String>>>,
    pub artifact_roots: Option<Vec<S<String>>>,
    pub vendor: Option<S<bool>>,
    pub allowed_hosts: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IpxeSection {
    pub binaries: Option<S<String>>,
    pub features: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DhcpSection {
    pub next_server: S<String>,
    pub interface: Option<S<String>>,
    pub mode: Option<S<String>>,
    /// Lease time in seconds (whole-config modes).
    pub lease_time: Option<S<i64>>,
    /// Options handed to every client (whole-config modes).
    pub options: Option<S<DhcpOptions>>,
    #[serde(default)]
    pub subnet: Vec<S<Subnet>>,
}

/// `[dhcp.options]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DhcpOptions {
    #[serde(default)]
    pub ntp_servers: Vec<S<String>>,
    #[serde(default)]
    pub domain_search: Vec<S<String>>,
    pub mtu: Option<S<i64>>,
    pub time_offset: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Subnet {
    pub cidr: S<String>,
    pub pool: Option<S<Vec<S<String>>>>,
    pub gateway: Option<S<String>>,
    #[serde(default)]
    pub dns: Vec<S<String>>,
    pub domain: Option<S<String>>,
}

/// One file under `machines/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MachineFile {
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub machine: Vec<S<Machine>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Defaults {
    pub role: Option<S<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, Label>,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub kernel_args: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Machine {
    pub name: S<String>,
    pub mac: Option<S<String>>,
    pub macs: Option<S<Vec<S<String>>>>,
    pub ip: Option<S<String>>,
    pub role: Option<S<String>>,
    /// Overrides the role's image.
    pub image: Option<S<String>>,
    /// false: a DHCP reservation only (a BMC, a switch): no role, no script.
    pub boot: Option<S<bool>>,
    /// SMBIOS system UUID: found by it when its MAC is not known.
    pub uuid: Option<S<String>>,
    /// Serial number: found by it when neither MAC nor UUID is known.
    pub serial: Option<S<String>>,
    /// A one-shot reinstall: boots its role's `installer` until a log shows
    /// `installed=TOKEN` and `bootc status --converge` removes this key.
    pub reinstall: Option<S<String>>,
    pub secure_boot: Option<S<bool>>,
    #[serde(default)]
    pub kernel_args: Vec<S<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, Label>,
    #[serde(default)]
    pub vars: Vars,
}

/// `roles/NAME.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RoleFile {
    pub description: Option<S<String>>,
    pub extends: Option<S<String>>,
    pub image: Option<S<String>>,
    /// The role a machine of this role boots while it has `reinstall`.
    pub installer: Option<S<String>>,
    pub secure_boot: Option<S<bool>>,
    #[serde(default)]
    pub kernel_args: Vec<S<String>>,
    #[serde(default)]
    pub vars: Vars,
    pub script: Option<S<String>>,
    #[serde(default)]
    pub files: BTreeMap<S<String>, S<String>>,
}

/// `images/NAME.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageFile {
    pub description: Option<S<String>>,
    pub kernel: Option<S<Artifact>>,
    pub initrd: Option<S<Vec<S<Artifact>>>>,
    #[serde(default)]
    pub kernel_args: Vec<S<String>>,
    pub iso: Option<S<Artifact>>,
    pub method: Option<S<String>>,
    pub memdisk: Option<S<Artifact>>,
    pub chain: Option<S<Artifact>>,
    pub local: Option<S<bool>>,
    pub arch: Option<S<String>>,
    #[serde(default)]
    pub vars: Vars,
}

/// `{ path = … }` or `{ url = …, sha256|blake3 = … }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Artifact {
    pub path: Option<S<String>>,
    pub url: Option<S<String>>,
    pub sha256: Option<S<String>>,
    pub blake3: Option<S<String>>,
}

/// A label value: written as a string, a number or a boolean
/// (`rack = 12` means `rack = "12"`), kept as text.
#[derive(Debug, Clone)]
pub struct Label(pub String);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Label;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Label, E> {
                // Labels are shown in reports, diffs, explain and terminals.
                if crate::escape::line(v) != v {
                    return Err(E::custom(format!(
                        "invalid label `{}`: a label may not hold control characters or \
                         bidirectional overrides",
                        crate::escape::line(v)
                    )));
                }
                Ok(Label(v.to_string()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Label, E> {
                Ok(Label(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Label, E> {
                Ok(Label(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Label, E> {
                Ok(Label(v.to_string()))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Label, E> {
                Ok(Label(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
