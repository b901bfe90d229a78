//! What the DHCP configurations see.

use serde::Serialize;

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::{Describe, Field, Row, Rows, Shape};
use crate::site::Mac;

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
        /// The loader for x86-64 UEFI clients: shimx64.efi under Secure Boot, else an EFI iPXE
        pub efi64: &'static str,
        /// The other x86-64 UEFI loader, for the machines whose Secure Boot setting differs from the site's (when there are any)
        pub efi64_other: Option<&'static str>,
        /// The loader for arm64 UEFI clients (bootnetaa64.efi, Debian's signed shim, or an arm64 iPXE), when present
        pub arm64: Option<&'static str>,
        /// mode = "include": fragments an existing server includes (no subnets, leases or options of bootc's)
        pub include: bool,
        /// Lease time in seconds ([dhcp] lease-time, else 3600)
        pub lease_time: u32,
        /// Longest lease a client may ask for ([dhcp] lease-time, else 86400)
        pub max_lease_time: u32,
        /// [dhcp.options] ntp-servers
        pub ntp_servers: Vec<String>,
        /// [dhcp.options] domain-search
        pub domain_search: Vec<String>,
        /// [dhcp.options] mtu
        pub mtu: Option<u16>,
        /// [dhcp.options] time-offset, seconds east of UTC
        pub time_offset: Option<i32>,
        /// The subnets, in the order of [[dhcp.subnet]]
        pub subnets: Vec<SubnetView>,
        /// Every machine with a fixed address, one entry per MAC, whatever its subnet (include mode)
        pub hosts: Rows<HostRow>,
        /// The same, one entry per machine
        pub machines: Rows<Arc<DhcpReservation>>,
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
        pub hosts: Rows<HostRow>,
        /// The same, one entry per machine (with all its MACs)
        pub machines: Rows<Arc<DhcpReservation>>,
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
        /// Its UEFI firmware gets dhcp.efi64_other, not dhcp.efi64
        pub efi64_other: bool,
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
        /// Its UEFI firmware gets dhcp.efi64_other, not dhcp.efi64
        pub efi64_other: bool,
    }
}

/// A reservation with an address (a machine's or a `boot = false` one),
/// as the DHCP configurations list it: a [`DhcpMachine`] when read.
pub struct DhcpReservation {
    pub name: String,
    pub macs: Vec<Mac>,
    pub ip: Ipv4Addr,
    /// Its Secure Boot differs from the site's.
    pub efi64_other: bool,
}

impl Row for Arc<DhcpReservation> {
    type View = DhcpMachine;
    fn view(&self) -> DhcpMachine {
        DhcpMachine {
            name: self.name.clone(),
            macs: self.macs.iter().map(Mac::to_string).collect(),
            ip: self.ip.to_string(),
            efi64_other: self.efi64_other,
        }
    }
}

/// One MAC of a reservation: a [`HostView`] when read.
pub struct HostRow {
    pub of: Arc<DhcpReservation>,
    /// Which of its MACs.
    pub nic: usize,
}

impl Row for HostRow {
    type View = HostView;
    fn view(&self) -> HostView {
        let name = &self.of.name;
        HostView {
            name: name.clone(),
            id: match self.nic {
                0 => name.clone(),
                n => format!("{name}_nic{n}"),
            },
            mac: self.of.macs[self.nic].to_string(),
            ip: self.of.ip.to_string(),
            efi64_other: self.of.efi64_other,
        }
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
