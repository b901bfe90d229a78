//! machines/: each machine's name, MACs, address and role, unique across
//! the site.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use super::dhcp::{check_ip_in_subnets, server_addresses};
use super::roles::check_role_ref;
use super::{Ctx, loc, parse_ip, templates_list};
use crate::diag::{Diag, FileId, Loc};
use crate::ipxe::is_host_label;
use crate::model::{self, S, Vars};
use crate::site::*;

/// What the machines seen so far hold: names, MACs and addresses must be
/// unique across the site.
struct Taken {
    names: HashMap<String, Loc>,
    macs: HashMap<Mac, (Loc, String)>,
    ips: HashMap<Ipv4Addr, (Loc, String)>,
    /// Role references reported already, by (file, offset).
    role_errors: BTreeSet<(FileId, usize)>,
}

fn merged_vars(base: &Vars, over: &Vars) -> Vars {
    let mut v = base.clone();
    v.extend(over.iter().map(|(k, x)| (k.clone(), x.clone())));
    v
}

pub(super) fn machines(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    dhcp: Option<&Dhcp>,
) -> Vec<Machine> {
    let mut out: Vec<Machine> = Vec::new();
    let mut taken = Taken {
        names: HashMap::new(),
        macs: HashMap::new(),
        // Addresses taken: the DHCP servers' first (a machine may not
        // reserve them), then each machine's.
        ips: match dhcp {
            Some(_) => server_addresses(cx),
            None => HashMap::new(),
        },
        role_errors: BTreeSet::new(),
    };
    for (file, mf) in &cx.loaded.machine_files {
        let file = *file;
        let d = &mf.defaults;
        if let Some(r) = &d.role {
            check_role_ref(cx, roles, file, r, &mut taken.role_errors);
        }
        for m in &mf.machine {
            out.push(machine(cx, roles, dhcp, file, d, m, &mut taken));
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One `[[machine]]` of a file, with the file's `[defaults]` under it.
fn machine(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    dhcp: Option<&Dhcp>,
    file: FileId,
    d: &model::Defaults,
    m: &S<model::Machine>,
    taken: &mut Taken,
) -> Machine {
    let ml = loc(file, m);
    let m = m.get_ref();
    let name = m.name.get_ref();
    let nl = loc(file, &m.name);
    if !is_host_label(name) {
        cx.diags.push(
            Diag::error(format!("machine name `{name}` is not a valid host name"))
                .at(nl.clone(), "not an RFC 1123 label")
                .help("use 1 to 63 letters, digits and '-', not starting or ending with '-'"),
        );
    }
    let key = name.to_ascii_lowercase();
    if let Some(first) = taken.names.get(&key) {
        cx.diags.push(
            Diag::error(format!("machine name `{name}` is used twice"))
                .at(nl.clone(), "second machine")
                .also(first.clone(), "first machine")
                .help("machine names become host names and folders: make them unique"),
        );
    } else {
        taken.names.insert(key, nl.clone());
    }
    let macs = macs(cx, file, &ml, m, taken);

    // IP
    let ip = m.ip.as_ref().and_then(|s| {
        let ip = parse_ip(file, s, "IP address", &mut cx.diags)?;
        let il = loc(file, s);
        if let Some((first, owner)) = taken.ips.get(&ip) {
            cx.diags.push(
                Diag::error(format!("IP address {ip} is used twice"))
                    .at(il.clone(), format!("again here, for `{name}`"))
                    .also(first.clone(), format!("first used by {owner}")),
            );
        } else {
            taken.ips.insert(ip, (il.clone(), format!("`{name}`")));
        }
        if let Some(d) = dhcp {
            check_ip_in_subnets(cx, d, ip, il);
        }
        Some(ip)
    });

    // Role
    let role = match (&m.role, &d.role) {
        (Some(r), _) | (None, Some(r)) => {
            check_role_ref(cx, roles, file, r, &mut taken.role_errors);
            r.get_ref().clone()
        }
        (None, None) => {
            cx.diags.push(
                Diag::error(format!("machine `{name}` has no role"))
                    .at(ml.clone(), "missing `role`")
                    .help("add role = \"…\" here or in the file's [defaults]"),
            );
            String::new()
        }
    };
    let mut labels: BTreeMap<String, String> = d
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    labels.extend(m.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    for key in labels.keys() {
        if crate::escape::line(key) != key.as_str() {
            cx.diags.push(
                Diag::error(format!(
                    "invalid label name `{}` on machine `{name}`",
                    crate::escape::line(key)
                ))
                .at(ml.clone(), "label names may not hold control characters"),
            );
        }
    }
    let mut kernel_args = templates_list(&d.kernel_args, file);
    kernel_args.extend(templates_list(&m.kernel_args, file));
    Machine {
        name: name.clone(),
        macs,
        ip,
        role,
        secure_boot: m.secure_boot.as_ref().map(|b| *b.get_ref()),
        kernel_args,
        labels,
        vars: merged_vars(&d.vars, &m.vars),
        loc: nl,
    }
}

/// The machine's MACs (`mac` or `macs`): each a NIC's own address, used by
/// no other machine.
fn macs(cx: &mut Ctx, file: FileId, ml: &Loc, m: &model::Machine, taken: &mut Taken) -> Vec<Mac> {
    let name = m.name.get_ref();
    let written: Vec<&S<String>> = match (&m.mac, &m.macs) {
        (Some(_), Some(list)) => {
            cx.diags.push(
                Diag::error(format!("machine `{name}` has both `mac` and `macs`"))
                    .at(loc(file, list), "second list of MACs")
                    .help("use mac = \"…\" for one NIC or macs = [\"…\", \"…\"] for several"),
            );
            Vec::new()
        }
        (Some(one), None) => vec![one],
        (None, Some(list)) => {
            if list.get_ref().is_empty() {
                cx.diags.push(
                    Diag::error(format!("machine `{name}` has an empty `macs`"))
                        .at(loc(file, list), "no MAC address"),
                );
            }
            list.get_ref().iter().collect()
        }
        (None, None) => {
            cx.diags.push(
                Diag::error(format!("machine `{name}` has no MAC address"))
                    .at(ml.clone(), "missing `mac`")
                    .help("add mac = \"52:54:00:…\" (or macs = […] for several NICs)"),
            );
            Vec::new()
        }
    };
    let mut parsed = Vec::new();
    for w in written {
        let wl = loc(file, w);
        match Mac::parse(w.get_ref()) {
            None => cx.diags.push(
                Diag::error(format!("invalid MAC address `{}`", w.get_ref()))
                    .at(wl, "not a MAC address")
                    .help("write six pairs of hex digits separated by ':' or '-' (52:54:00:aa:bb:01), three groups of four separated by '.' (5254.00aa.bb01), or twelve hex digits (525400aabb01)"),
            ),
            Some(mac) if mac.is_zero() => cx.diags.push(
                Diag::error(format!("MAC address `{}` is all zeros", w.get_ref()))
                    .at(wl, "no NIC has this address")
                    .help("firmware reports 00:00:00:00:00:00 when it knows no address: write the NIC's own, from its label or the DHCP server's log"),
            ),
            Some(mac) if mac.is_broadcast() => cx.diags.push(
                Diag::error(format!("MAC address `{}` is the broadcast address", w.get_ref()))
                    .at(wl, "every NIC of the segment, not one")
                    .help("write the NIC's own address, from its label or the DHCP server's log"),
            ),
            Some(mac) if mac.is_group() => cx.diags.push(
                Diag::error(format!("MAC address `{}` is a group (multicast) address", w.get_ref()))
                    .at(wl, "the lowest bit of the first byte is set")
                    .help("a NIC's own address is unicast: check for a typo in the first byte"),
            ),
            Some(mac) => {
                if let Some((first, owner)) = taken.macs.get(&mac) {
                    cx.diags.push(
                        Diag::error(format!("MAC address {mac} is used twice"))
                            .at(wl, format!("again here, for `{name}`"))
                            .also(first.clone(), format!("first used by `{owner}`"))
                            .help("one NIC belongs to one machine"),
                    );
                } else {
                    taken.macs.insert(mac, (wl, name.clone()));
                    parsed.push(mac);
                }
            }
        }
    }
    parsed
}

/// Warnings, when the site runs DHCP: the machines without a reservation.
pub(super) fn warn_unreserved(cx: &mut Ctx, machines: &[Machine]) {
    for m in machines.iter().filter(|m| m.ip.is_none()) {
        cx.diags.push(
            Diag::warning(format!("machine `{}` has no fixed IP address", m.name))
                .at(m.loc.clone(), "gets an address from the dynamic pool")
                .help("add ip = \"…\" to give it a reservation"),
        );
    }
}
