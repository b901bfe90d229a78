//! DHCP server configurations (ISC dhcpd, Kea, dnsmasq) from `[dhcp]`.
//! One view of the network is computed here and handed to three templates,
//! so the formats cannot drift apart: plain PXE firmware gets an iPXE
//! chainloader over TFTP chosen by architecture (option 93), UEFI HTTP Boot
//! clients get an EFI iPXE over HTTP, and iPXE itself (user-class "iPXE")
//! gets the URL of boot.ipxe, so it never loops.

use std::net::Ipv4Addr;

use std::sync::Arc;

use crate::context::{DhcpReservation, DhcpView as View, HostRow, Rows, SubnetView};
use crate::plan::Plan;
use crate::site::{Dhcp, EfiName, Mac, Site};
use rayon::prelude::*;

/// Built-in templates of the three formats, with the output file of each:
/// whole configs, or with `mode = "include"` the fragments an existing
/// server includes (the same templates, `dhcp.include` set).
pub fn outputs(dhcp: &Dhcp) -> [(&'static str, &'static str); 3] {
    if dhcp.include {
        [
            ("dhcpd.conf.j2", "dhcp/dhcpd-bootc.conf"),
            ("kea-dhcp4.json.j2", "dhcp/kea-bootc.json"),
            ("dnsmasq.conf.j2", "dhcp/dnsmasq.d/bootc.conf"),
        ]
    } else {
        [
            ("dhcpd.conf.j2", "dhcp/dhcpd.conf"),
            ("kea-dhcp4.json.j2", "dhcp/kea-dhcp4.json"),
            ("dnsmasq.conf.j2", "dhcp/dnsmasq.conf"),
        ]
    }
}

/// Chainloader file names in tftp/, by client architecture.
pub const BIOS_LOADER: &str = "undionly.kpxe";
pub const ARM64_LOADER: &str = "snponly-arm64.efi";

/// The EFI iPXE handed to x86-64 UEFI clients: snponly.efi (uses the
/// firmware's network driver) when present, else ipxe.efi.
pub fn efi_loader(site: &Site) -> Option<&'static str> {
    ["snponly.efi", "ipxe.efi"]
        .into_iter()
        .find(|n| site.ipxe.binaries.contains_key(*n))
}

pub fn view(site: &Site, dhcp: &Dhcp, plan: &Plan) -> View {
    let base = site.base_url.clone().unwrap_or_default();
    let efi64 = efi_loader(site);
    // Without binaries (a warning) the standard names are still handed
    // out: the TFTP server may have them from elsewhere.
    let ipxe_efi64 = efi64.unwrap_or("snponly.efi");
    let shim = EfiName::Shim.file();
    let (default, other) = if site.uefi.secure_boot {
        (shim, ipxe_efi64)
    } else {
        (ipxe_efi64, shim)
    };
    // An x86-64 machine whose Secure Boot differs from the site's gets the
    // other loader in its own host entry.
    let differs =
        |m: &crate::plan::Resolved| m.arch.is_empty() && m.secure_boot != site.uefi.secure_boot;
    // Every reservation with an address, by name: the machines', and
    // `boot = false` ones (a host name and an address, no boot logic of
    // their own). The site's lists hold each once; a subnet's pick some.
    let reservation = |name: &str, macs: &[Mac], ip: Option<Ipv4Addr>, other| {
        Some(Arc::new(DhcpReservation {
            name: name.to_string(),
            macs: macs.to_vec(),
            ip: ip?,
            efi64_other: other,
        }))
    };
    let mut machines: Vec<Arc<DhcpReservation>> = plan
        .machines
        .iter()
        .filter_map(|m| reservation(&m.name, &m.macs, m.ip, differs(m)))
        .chain(
            site.reservations
                .iter()
                .filter_map(|r| reservation(&r.name, &r.macs, r.ip, false)),
        )
        .collect();
    machines.sort_by(|a, b| a.name.cmp(&b.name));
    let hosts: Vec<HostRow> = machines
        .iter()
        .flat_map(|m| {
            (0..m.macs.len()).map(|nic| HostRow {
                of: Arc::clone(m),
                nic,
            })
        })
        .collect();
    let (hosts, machines) = (Rows::new(hosts), Rows::new(machines));
    let subnets = dhcp
        .subnets
        .par_iter()
        .enumerate()
        .map(|(i, s)| SubnetView {
            id: i + 1,
            cidr: s.cidr.to_string(),
            network: s.cidr.network().to_string(),
            netmask: s.cidr.netmask().to_string(),
            broadcast: s.cidr.broadcast().to_string(),
            prefix: s.cidr.prefix_len(),
            pool_start: s.pool.map(|p| p.0.to_string()),
            pool_end: s.pool.map(|p| p.1.to_string()),
            gateway: s.gateway.map(|g| g.to_string()),
            dns: s.dns.iter().map(|d| d.to_string()).collect(),
            domain: s.domain.clone(),
            hosts: hosts.pick(|h| s.cidr.contains(&h.of.ip)),
            machines: machines.pick(|m| s.cidr.contains(&m.ip)),
        })
        .collect();
    let o = &dhcp.options;
    View {
        next_server: dhcp.next_server.to_string(),
        interface: dhcp.interface.clone(),
        proxy: dhcp.proxy,
        include: dhcp.include,
        lease_time: dhcp.lease_time.unwrap_or(3600),
        max_lease_time: dhcp.lease_time.unwrap_or(86400),
        ntp_servers: o.ntp_servers.iter().map(|a| a.to_string()).collect(),
        domain_search: o.domain_search.clone(),
        mtu: o.mtu,
        time_offset: o.time_offset,
        hosts,
        machines,
        boot_url: format!("{base}boot.ipxe"),
        http_boot_url: efi64
            .filter(|_| site.uefi.http_boot)
            .map(|e| format!("{base}{e}")),
        bios: BIOS_LOADER,
        efi64: default,
        efi64_other: plan.machines.iter().any(|m| differs(m)).then_some(other),
        arm64: if site.uefi.loaders.contains_key(&EfiName::Arm64Shim) {
            Some(EfiName::Arm64Shim.file())
        } else {
            site.ipxe
                .binaries
                .contains_key(ARM64_LOADER)
                .then_some(ARM64_LOADER)
        },
        subnets,
    }
}
