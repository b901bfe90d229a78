//! What kernel args, per-machine files, boot scripts, the fallback and
//! boot.ipxe see.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Describe, Field, Shape, Shared};

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
        /// A machine is found by UUID: boot.ipxe tries machines/uuid-${uuid}.ipxe
        pub by_uuid: bool,
        /// A machine is found by serial: boot.ipxe tries machines/serial-${serial}.ipxe
        pub by_serial: bool,
    }
}

impl<'a> SiteView<'a> {
    pub fn of(site: &'a crate::site::Site) -> Self {
        SiteView {
            name: &site.name,
            base_url: site.base_url.as_deref(),
            fallback: site.fallback.to_string(),
            by_uuid: site.machines.iter().any(|m| m.uuid.is_some()),
            by_serial: site.machines.iter().any(|m| m.serial.is_some()),
        }
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
        /// Its SMBIOS system UUID (lowercase)
        pub uuid: Option<&'a str>,
        /// Its serial number
        pub serial: Option<&'a str>,
        /// Its labels (a map)
        pub labels: &'a BTreeMap<String, String>,
        /// Where its per-machine files are served (needs [site] base-url)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        /// Its beacon, an absolute URL (needs [site] base-url): machines/MAC.ipxe?booting=BOOT-ID; an installer's last step fetches it with `&installed=TOKEN` appended
        #[serde(skip_serializing_if = "Option::is_none")]
        pub beacon: Option<String>,
        /// A short hash of what it boots (artifacts, args, files, loader): changes only when its boot does
        pub boot_id: String,
        /// Its `reinstall` token while it boots its installer
        pub reinstall: Option<&'a str>,
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
        /// Its architecture: x86_64 or arm64
        pub arch: String,
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
        /// The same, one argument per item (GRUB quotes each)
        pub arg_list: Vec<String>,
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
        /// A machine's beacon as its loader fetches it, just before it boots: machines/MAC.ipxe?booting=BOOT-ID on the server the program is read from (machine programs only)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub beacon: Option<String>,
    }
}

view! {
    /// The context of a machine's kernel args, per-machine files and boot
    /// script, and of the fallback's kernel args (without a machine).
    #[derive(Clone)]
    pub struct MachineContext<'a> {
        /// The site
        pub site: Shared<SiteView<'a>>,
        /// The machine (not in the fallback)
        #[serde(skip_serializing_if = "Option::is_none")]
        pub machine: Option<MachineView<'a>>,
        /// Its own role (also in args inherited through `extends`)
        pub role: Shared<RoleView<'a>>,
        /// The image it boots
        pub image: Shared<ImageView<'a>>,
        /// Variables, merged: image < roles (base first) < [defaults] < machine
        pub vars: Shared<serde_json::Map<String, serde_json::Value>>,
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
    pub struct GrubEntryContext<'a> {
        /// The site
        pub site: SiteView<'a>,
        /// Where the tree is on the server GRUB reads from, ending in `/`:
        /// `/` on TFTP, base-url's path over HTTP (the boot media)
        pub root: &'a str,
        /// Read over HTTP (the boot media): a MAC's config is read only when its
        /// grub.env-01-MAC sets bootc_known (GRUB would run a server's error page)
        pub http: bool,
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
