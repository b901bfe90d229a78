//! machines/: each machine's name, MACs, address, UUID, serial and role,
//! unique across the site; `boot = false` machines become reservations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use super::artifacts::Checked;
use super::dhcp::{check_ip_in_subnets, server_addresses};
use super::roles::{check_role_ref, in_chain};
use super::{Ctx, loc, parse_ip, templates_list};
use crate::diag::{Diag, FileId, Lint, Loc, did_you_mean};
use crate::ipxe::is_host_label;
use crate::model::{self, S, Vars};
use crate::site::*;

/// What the machines seen so far hold: names, MACs and addresses must be
/// unique across the site.
struct Taken {
    names: HashMap<String, Loc>,
    macs: HashMap<Mac, (Loc, String)>,
    ips: HashMap<Ipv4Addr, (Loc, String)>,
    /// UUIDs and serials: `uuid-…`/`serial-…` -> (place, machine).
    ids: HashMap<String, (Loc, String)>,
    /// Role references reported already, by (file, offset).
    role_errors: BTreeSet<(FileId, usize)>,
}

fn merged_vars(base: &Vars, over: &Vars) -> Vars {
    let mut v = base.clone();
    v.extend(over.iter().map(|(k, x)| (k.clone(), x.clone())));
    v
}

/// The machines that boot, and the reservations (`boot = false`), each
/// sorted by name.
pub(super) fn machines(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    images: &BTreeMap<String, Image<Checked>>,
    dhcp: Option<&Dhcp>,
) -> (Vec<Machine>, Vec<Reservation>) {
    let mut out: Vec<Machine> = Vec::new();
    let mut reservations = Vec::new();
    let mut taken = Taken {
        names: HashMap::new(),
        macs: HashMap::new(),
        // Addresses taken: the DHCP servers' first (a machine may not
        // reserve them), then each machine's.
        ips: match dhcp {
            Some(_) => server_addresses(cx),
            None => HashMap::new(),
        },
        ids: HashMap::new(),
        role_errors: BTreeSet::new(),
    };
    for (file, mf) in &cx.loaded.machine_files {
        let file = *file;
        let d = &mf.defaults;
        if let Some(r) = &d.role {
            check_role_ref(cx, roles, file, r, false, &mut taken.role_errors);
        }
        for m in &mf.machine {
            let boots = m.get_ref().boot.as_ref().is_none_or(|b| *b.get_ref());
            let machine = machine(cx, roles, images, dhcp, file, d, m, boots, &mut taken);
            if boots {
                out.push(machine);
            } else {
                reservations.push(Reservation {
                    name: machine.name,
                    macs: machine.macs,
                    ip: machine.ip,
                    loc: machine.loc,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    reservations.sort_by(|a, b| a.name.cmp(&b.name));
    (out, reservations)
}

/// One `[[machine]]` of a file, with the file's `[defaults]` under it;
/// `boots`: not `boot = false` (then it needs no role).
#[allow(clippy::too_many_arguments)]
fn machine(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    images: &BTreeMap<String, Image<Checked>>,
    dhcp: Option<&Dhcp>,
    file: FileId,
    d: &model::Defaults,
    m: &S<model::Machine>,
    boots: bool,
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

    let uuid = m.uuid.as_ref().and_then(|u| uuid(cx, file, u, name, taken));
    let serial = m
        .serial
        .as_ref()
        .and_then(|s| serial(cx, file, s, name, taken));
    if !boots {
        unused_by_reservation(cx, file, m);
    }
    let image = m.image.as_ref().filter(|_| boots).and_then(|i| {
        let written = i.get_ref();
        if images.contains_key(written) || cx.loaded.images.contains_key(written) {
            return Some(written.clone());
        }
        cx.diags.push(
            Diag::error(format!(
                "machine `{name}` boots image `{written}`, which does not exist"
            ))
            .at(loc(file, i), "no such image")
            .help(
                did_you_mean(written, cx.loaded.images.keys().map(String::as_str)).unwrap_or_else(
                    || {
                        format!(
                            "images are the files images/*.toml; this needs images/{written}.toml"
                        )
                    },
                ),
            ),
        );
        None
    });

    // Role
    let role = match (&m.role, &d.role) {
        _ if !boots => String::new(),
        (Some(r), _) | (None, Some(r)) => {
            check_role_ref(
                cx,
                roles,
                file,
                r,
                m.image.is_none(),
                &mut taken.role_errors,
            );
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
        image,
        uuid,
        serial,
        reinstall: m
            .reinstall
            .as_ref()
            .filter(|_| boots)
            .and_then(|t| reinstall(cx, file, t, roles, &role_name_for_reinstall(m, d))),
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

/// A machine's `uuid`: an SMBIOS system UUID (written with or without
/// dashes, any case), held by no other machine; lowercase with dashes, as
/// iPXE's `${uuid}` prints it.
fn uuid(
    cx: &mut Ctx,
    file: FileId,
    u: &S<String>,
    name: &str,
    taken: &mut Taken,
) -> Option<String> {
    let hex: String = u.get_ref().chars().filter(|c| *c != '-').collect();
    let dashes = u.get_ref().matches('-').count();
    if hex.len() != 32
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || !(dashes == 0 || dashes == 4)
    {
        cx.diags.push(
            Diag::error(format!("invalid UUID `{}`", crate::escape::line(u.get_ref())))
                .at(loc(file, u), "not a UUID")
                .help("write the SMBIOS system UUID as 8-4-4-4-12 hex digits (`dmidecode -s system-uuid` prints it)"),
        );
        return None;
    }
    let h = hex.to_ascii_lowercase();
    let canonical = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    claim(
        cx,
        taken,
        format!("uuid-{canonical}"),
        loc(file, u),
        name,
        "UUID",
    )?;
    Some(canonical)
}

/// A machine's `serial`: letters, digits, '.', '_' and '-' (it is part of
/// a URL), held by no other machine.
fn serial(
    cx: &mut Ctx,
    file: FileId,
    s: &S<String>,
    name: &str,
    taken: &mut Taken,
) -> Option<String> {
    let v = s.get_ref();
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        cx.diags.push(
            Diag::error(format!("serial number `{}` cannot be part of a URL", crate::escape::line(v)))
                .at(loc(file, s), "only letters, digits, '.', '_' and '-'")
                .help("boot.ipxe fetches machines/serial-${serial}.ipxe: give the serial as the firmware reports it (`dmidecode -s system-serial-number`), or identify this machine by MAC or UUID"),
        );
        return None;
    }
    claim(
        cx,
        taken,
        format!("serial-{v}"),
        loc(file, s),
        name,
        "serial number",
    )?;
    Some(v.clone())
}

/// Records `key` (`uuid-…`, `serial-…`) for machine `name`; an error with
/// both places when another machine holds it.
fn claim(
    cx: &mut Ctx,
    taken: &mut Taken,
    key: String,
    at: Loc,
    name: &str,
    what: &str,
) -> Option<()> {
    if let Some((first, owner)) = taken.ids.get(&key) {
        cx.diags.push(
            Diag::error(format!(
                "{what} `{}` belongs to two machines",
                key.split_once('-').map_or("", |x| x.1)
            ))
            .at(at, format!("claimed here by `{name}`"))
            .also(first.clone(), format!("first claimed by `{owner}`"))
            .help("a machine is found by MAC, else UUID, else serial: each must name one machine"),
        );
        return None;
    }
    taken.ids.insert(key, (at, name.to_string()));
    Some(())
}

/// The role a machine names (its own, else its file's `[defaults]`).
fn role_name_for_reinstall(m: &model::Machine, d: &model::Defaults) -> String {
    m.role
        .as_ref()
        .or(d.role.as_ref())
        .map(|r| r.get_ref().clone())
        .unwrap_or_default()
}

/// `reinstall = "TOKEN"`: a token that can be part of a URL query, and an
/// `installer` in the machine's role chain to boot meanwhile.
fn reinstall(
    cx: &mut Ctx,
    file: FileId,
    t: &S<String>,
    roles: &BTreeMap<String, Role>,
    role: &str,
) -> Option<String> {
    let token = t.get_ref();
    if token.is_empty()
        || token.len() > 64
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        cx.diags.push(
            Diag::error(format!("reinstall token `{}` cannot be part of a URL", crate::escape::line(token)))
                .at(loc(file, t), "only letters, digits, '.', '_' and '-'")
                .help("the installer reports `installed=TOKEN` in a URL: use something like a date, `2026-12-01`"),
        );
        return None;
    }
    if in_chain(roles, role, |r| r.installer.as_deref()).is_some() {
        return Some(token.clone());
    }
    if roles.contains_key(role) {
        cx.diags.push(
            Diag::error(format!("reinstall needs an installer, and role `{role}` has none"))
                .at(loc(file, t), "no `installer` in the machine's role chain")
                .help(format!("add installer = \"ROLE\" to roles/{role}.toml (or a role it extends): the role the machine boots until its installer reports installed={token}")),
        );
    }
    None
}

/// `boot = false`: the keys that say how a machine boots are not used.
fn unused_by_reservation(cx: &mut Ctx, file: FileId, m: &model::Machine) {
    let keys: [(&str, Option<Loc>); 6] = [
        ("role", m.role.as_ref().map(|x| loc(file, x))),
        ("image", m.image.as_ref().map(|x| loc(file, x))),
        ("uuid", m.uuid.as_ref().map(|x| loc(file, x))),
        ("serial", m.serial.as_ref().map(|x| loc(file, x))),
        ("secure-boot", m.secure_boot.as_ref().map(|x| loc(file, x))),
        ("kernel-args", m.kernel_args.first().map(|x| loc(file, x))),
    ];
    for (key, at) in keys {
        if let Some(at) = at {
            cx.diags.push(
                Diag::warning(Lint::UnusedReservationKey, format!("`{key}` is not used: machine `{}` has boot = false", m.name.get_ref()))
                    .at(at, "a reservation boots nothing")
                    .help("boot = false gives the machine its DHCP reservation only; remove the key, or boot = false"),
            );
        }
    }
}

/// Warnings, when the site runs DHCP: the machines without a reservation.
pub(super) fn warn_unreserved(cx: &mut Ctx, machines: &[Machine]) {
    for m in machines.iter().filter(|m| m.ip.is_none()) {
        cx.diags.push(
            Diag::warning(
                Lint::NoFixedIp,
                format!("machine `{}` has no fixed IP address", m.name),
            )
            .at(m.loc.clone(), "gets an address from the dynamic pool")
            .help("add ip = \"…\" to give it a reservation"),
        );
    }
}
