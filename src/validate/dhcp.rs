//! `[dhcp]`: the server's settings and its subnets, and the checks of the
//! machines' fixed addresses against them.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{Ctx, loc, parse_ip};
use crate::diag::{Diag, Diags, FileId, Loc, did_you_mean};
use crate::ipxe::{is_host_label, is_plain_name};
use crate::model::{self, S, SiteFile};
use crate::site::*;

/// The `[dhcp]` section of the site file, when there is one and it is
/// usable. It needs the site's base URL.
pub(super) fn section(cx: &mut Ctx, file: FileId, site_file: &SiteFile) -> Option<Dhcp> {
    let d = site_file.dhcp.as_ref()?;
    let dhcp = dhcp(cx, file, d);
    if site_file.site.base_url.is_none() {
        cx.diags.push(
            Diag::error("[dhcp] needs [site] base-url")
                .at(
                    Loc::new(file, d.span().start..d.span().start + 6),
                    "DHCP hands iPXE the absolute URL of boot.ipxe",
                )
                .help("add base-url = \"http://SERVER/\" to [site]: where public/http/ is served"),
        );
    }
    dhcp
}

fn dhcp(cx: &mut Ctx, file: FileId, d: &S<model::DhcpSection>) -> Option<Dhcp> {
    let dl = loc(file, d);
    let d = d.get_ref();
    let include = d.mode.as_ref().is_some_and(|m| m.get_ref() == "include");
    if d.subnet.is_empty() && !include {
        cx.diags.push(
            Diag::error("[dhcp] declares no subnet")
                .at(dl, "no [[dhcp.subnet]] in this section")
                .help("add [[dhcp.subnet]] with cidr = \"10.77.0.0/24\" (and a pool, unless mode = \"proxy\"), or remove [dhcp]"),
        );
    }
    let next_server = parse_ip(file, &d.next_server, "next-server", &mut cx.diags);
    const MODES: [&str; 3] = ["authoritative", "proxy", "include"];
    let proxy = match d.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
        None | Some((_, "authoritative" | "include")) => false,
        Some((_, "proxy")) => true,
        Some((m, other)) => {
            cx.diags.push(
                Diag::error(format!("unknown DHCP mode `{other}`"))
                    .at(
                        loc(file, m),
                        "expected \"authoritative\", \"proxy\" or \"include\"",
                    )
                    .help_opt(did_you_mean(other, MODES)),
            );
            false
        }
    };
    let lease_time = d.lease_time.as_ref().and_then(|l| lease_time(cx, file, l));
    let options = d
        .options
        .as_ref()
        .map(|o| super::dhcp_options::options(cx, file, o.get_ref()))
        .unwrap_or_default();
    if include {
        let whole_only = [
            d.lease_time.as_ref().map(|l| ("lease-time", loc(file, l))),
            d.options.as_ref().map(|o| ("[dhcp.options]", loc(file, o))),
        ];
        for (what, at) in whole_only.into_iter().flatten() {
            cx.diags.push(
                Diag::error(format!("{what} is not used with mode = \"include\""))
                    .at(at, "your own server's config sets this")
                    .help("in include mode bootc writes host entries and the boot-file logic only; leases and options stay in the config that includes them"),
            );
        }
    }
    if let Some(i) = &d.interface
        && !is_plain_name(i.get_ref())
    {
        cx.diags.push(
            Diag::error(format!("invalid interface name `{}`", i.get_ref()))
                .at(loc(file, i), "not an interface name"),
        );
    }
    let mut subnets: Vec<(Subnet, Loc)> = Vec::new();
    for sn in &d.subnet {
        let sl = loc(file, sn);
        let Some(subnet) = subnet(cx, file, sn.get_ref(), next_server, &d.next_server) else {
            continue;
        };
        let cidr = subnet.cidr;
        for (other, ol) in &subnets {
            if other.cidr.contains(&cidr.network()) || cidr.contains(&other.cidr.network()) {
                cx.diags.push(
                    Diag::error(format!("subnets {} and {} overlap", other.cidr, cidr))
                        .at(sl.clone(), "this subnet")
                        .also(ol.clone(), "overlaps this one"),
                );
            }
        }
        subnets.push((subnet, sl));
    }
    Some(Dhcp {
        next_server: next_server?,
        interface: d.interface.as_ref().map(|i| i.get_ref().clone()),
        proxy,
        include,
        lease_time,
        options,
        subnets: subnets.into_iter().map(|(s, _)| s).collect(),
    })
}

/// A DNS domain name (`domain`, `domain-search`).
pub(super) fn domain(cx: &mut Ctx, file: FileId, dm: &S<String>) -> Option<String> {
    let ok = dm.get_ref().len() <= 253 && dm.get_ref().split('.').all(is_host_label);
    if !ok {
        cx.diags.push(
            Diag::error(format!("invalid domain `{}`", dm.get_ref()))
                .at(loc(file, dm), "not a DNS domain name"),
        );
    }
    ok.then(|| dm.get_ref().clone())
}

/// `lease-time`: seconds, at least dnsmasq's minimum of two minutes.
fn lease_time(cx: &mut Ctx, file: FileId, l: &S<i64>) -> Option<u32> {
    match u32::try_from(*l.get_ref()) {
        Ok(n) if n >= 120 => Some(n),
        _ => {
            cx.diags.push(
                Diag::error(format!("lease-time {} is out of range", l.get_ref()))
                    .at(loc(file, l), "seconds, from 120 to 4294967295")
                    .help("a lease time in seconds: 3600 is an hour, 86400 a day"),
            );
            None
        }
    }
}

/// One `[[dhcp.subnet]]`: every part is checked, and the subnet is kept
/// when its CIDR is understood.
fn subnet(
    cx: &mut Ctx,
    file: FileId,
    sn: &model::Subnet,
    next_server: Option<Ipv4Addr>,
    next_server_at: &S<String>,
) -> Option<Subnet> {
    let cidr = match sn.cidr.get_ref().parse::<Ipv4Net>() {
        Ok(net) if net.addr() != net.network() => {
            cx.diags.push(
                Diag::error(format!("subnet `{}` has host bits set", sn.cidr.get_ref()))
                    .at(loc(file, &sn.cidr), "not a network address")
                    .help(format!("did you mean `{}`?", net.trunc())),
            );
            None
        }
        Ok(net) => Some(net),
        Err(_) => {
            cx.diags.push(
                Diag::error(format!("invalid subnet `{}`", sn.cidr.get_ref()))
                    .at(loc(file, &sn.cidr), "not an IPv4 network")
                    .help("write it as ADDRESS/PREFIX, like 10.77.0.0/24"),
            );
            None
        }
    };
    let pool = sn.pool.as_ref().and_then(|p| pool(cx, file, cidr, p));
    let gateway = sn
        .gateway
        .as_ref()
        .and_then(|g| host(cx, file, cidr, g, "gateway"));
    // The pool must not hand out the addresses of the servers the
    // clients depend on.
    if let (Some((a, b)), Some(p)) = (pool, &sn.pool) {
        let servers = [
            (gateway, sn.gateway.as_ref(), "gateway"),
            (next_server, Some(next_server_at), "next-server"),
        ];
        for (ip, at, what) in servers {
            if let (Some(ip), Some(at)) = (ip, at)
                && a <= ip
                && ip <= b
            {
                cx.diags.push(
                    Diag::error(format!("the pool {a}-{b} holds the {what} {ip}"))
                        .at(loc(file, p), format!("would lease {ip} to a client"))
                        .also(loc(file, at), format!("the {what}"))
                        .help(format!("start or end the pool so that it leaves out {ip}")),
                );
            }
        }
    }
    let dns = sn
        .dns
        .iter()
        .filter_map(|x| parse_ip(file, x, "DNS server", &mut cx.diags))
        .collect();
    let domain = sn.domain.as_ref().and_then(|dm| domain(cx, file, dm));
    Some(Subnet {
        cidr: cidr?,
        pool,
        gateway,
        dns,
        domain,
    })
}

/// A subnet's dynamic pool: two host addresses of the subnet, in order.
fn pool(
    cx: &mut Ctx,
    file: FileId,
    cidr: Option<Ipv4Net>,
    p: &S<Vec<S<String>>>,
) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let items = p.get_ref();
    if items.len() != 2 {
        cx.diags.push(
            Diag::error("a pool is a range of two addresses")
                .at(loc(file, p), format!("{} addresses given", items.len()))
                .help("write pool = [\"FIRST\", \"LAST\"]"),
        );
        return None;
    }
    let a = host(cx, file, cidr, &items[0], "pool start");
    let b = host(cx, file, cidr, &items[1], "pool end");
    let (a, b) = (a?, b?);
    if a > b {
        cx.diags.push(
            Diag::error(format!("pool starts at {a}, after its end {b}"))
                .at(loc(file, p), "reversed range"),
        );
        return None;
    }
    Some((a, b))
}

/// An address that must be a usable host address of the subnet (when the
/// subnet is understood).
fn host(
    cx: &mut Ctx,
    file: FileId,
    cidr: Option<Ipv4Net>,
    s: &S<String>,
    what: &str,
) -> Option<Ipv4Addr> {
    let ip = parse_ip(file, s, what, &mut cx.diags)?;
    let net = cidr?;
    let problem = if !net.contains(&ip) {
        Some(format!("not inside subnet {net}"))
    } else if net.prefix_len() < 31 && ip == net.network() {
        Some(format!("the network address of {net}"))
    } else if net.prefix_len() < 31 && ip == net.broadcast() {
        Some(format!("the broadcast address of {net}"))
    } else {
        None
    };
    match problem {
        Some(p) => {
            cx.diags
                .push(Diag::error(format!("{what} {ip} is {p}")).at(loc(file, s), p));
            None
        }
        None => Some(ip),
    }
}

/// The next-server's and the gateways' addresses, with where they are set.
pub(super) fn server_addresses(cx: &Ctx) -> HashMap<Ipv4Addr, (Loc, String)> {
    let mut out = HashMap::new();
    let Some((file, Some(d))) = cx.loaded.site.as_ref().map(|(f, s)| (*f, s.dhcp.as_ref())) else {
        return out;
    };
    let d = d.get_ref();
    let mut add = |s: &S<String>, what: String| {
        if let Ok(ip) = s.get_ref().parse::<Ipv4Addr>() {
            out.entry(ip).or_insert((loc(file, s), what));
        }
    };
    add(
        &d.next_server,
        "the next-server (the TFTP server)".to_string(),
    );
    for sn in &d.subnet {
        if let Some(g) = &sn.get_ref().gateway {
            add(g, format!("the gateway of {}", sn.get_ref().cidr.get_ref()));
        }
    }
    out
}

pub(super) fn check_ip_in_subnets(diags: &mut Diags, d: &Dhcp, ip: Ipv4Addr, il: Loc) {
    if d.subnets.is_empty() {
        return; // no subnet, or none valid: reported at [dhcp] already
    }
    let Some(sn) = d.subnets.iter().find(|s| s.cidr.contains(&ip)) else {
        let nets = d
            .subnets
            .iter()
            .map(|s| s.cidr.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        diags.push(
            Diag::error(format!("IP address {ip} is not inside any subnet"))
                .at(il, "outside every [[dhcp.subnet]]")
                .help(format!("subnets: {nets}")),
        );
        return;
    };
    let net = sn.cidr;
    let problem = if net.prefix_len() < 31 && ip == net.network() {
        Some((
            format!("IP address {ip} is the network address of {net}"),
            "network address",
        ))
    } else if net.prefix_len() < 31 && ip == net.broadcast() {
        Some((
            format!("IP address {ip} is the broadcast address of {net}"),
            "broadcast address",
        ))
    } else if sn.pool.is_some_and(|(a, b)| a <= ip && ip <= b) {
        let (a, b) = sn.pool.unwrap_or((ip, ip));
        Some((
            format!("IP address {ip} is inside the dynamic pool {a}-{b}"),
            "inside the pool",
        ))
    } else {
        None
    };
    if let Some((msg, label)) = problem {
        diags.push(
            Diag::error(msg)
                .at(il, label)
                .help("fixed addresses must be outside the pool and be usable host addresses"),
        );
    }
}
