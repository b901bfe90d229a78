//! machines/: each machine's name, MACs, address, UUID, serial and role,
//! unique across the site; `boot = false` machines become reservations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use super::artifacts::Checked;
use super::claims;
use super::dhcp::{check_ip_in_subnets, server_addresses};
use super::roles::{check_role_ref, in_chain};
use super::{Ctx, loc, parse_ip, templates_list};
use crate::diag::{Diag, Diags, FileId, Lint, Loc, did_you_mean};
use crate::ipxe::is_host_label;
use crate::load::Loaded;
use crate::model::{self, S, Vars};
use crate::site::*;

fn merged_vars(base: &Vars, over: &Vars) -> Vars {
    let mut v = base.clone();
    v.extend(over.iter().map(|(k, x)| (k.clone(), x.clone())));
    v
}

/// One `[[machine]]` checked on its own (the machines on all cores), and
/// what the claims across machines ([`claims`]) need of it.
pub(super) struct Candidate<'l> {
    pub machine: Machine,
    boots: bool,
    file: FileId,
    /// The role it names (its own, else its file's) and whether that role
    /// must give it an image.
    role: Option<(&'l S<String>, bool)>,
    /// Its name as names are compared (lowercase).
    pub name_key: String,
    /// Each valid MAC and where it is written: `machine.macs` gets those
    /// no machine before it has.
    pub macs: Vec<(Mac, Loc)>,
    /// Where its IP address is written.
    pub ip: Option<Loc>,
    /// Its UUID's and serial number's keys among the site's ids (`uuid-…`,
    /// `serial-…`), and where they are written.
    pub uuid: Option<(String, Loc)>,
    pub serial: Option<(String, Loc)>,
    diags: Diags,
}

/// The machines that boot, and the reservations (`boot = false`), each
/// sorted by name.
pub(super) fn machines(
    cx: &mut Ctx,
    roles: &BTreeMap<String, Role>,
    images: &BTreeMap<String, Image<Checked>>,
    dhcp: Option<&Dhcp>,
) -> (Vec<Machine>, Vec<Reservation>) {
    let loaded = cx.loaded;
    // Each file's `[defaults]` labels, made once: shared by its machines
    // that add none.
    let labels: Vec<Arc<BTreeMap<String, String>>> = loaded
        .machine_files
        .iter()
        .map(|(_, mf)| Arc::new(label_map(&mf.defaults.labels)))
        .collect();
    let each: Vec<(FileId, FileDefaults, &S<model::Machine>)> = loaded
        .machine_files
        .iter()
        .zip(&labels)
        .flat_map(|((file, mf), labels)| {
            mf.machine
                .iter()
                .map(move |m| (*file, (&mf.defaults, labels), m))
        })
        .collect();
    let candidates = each
        .into_par_iter()
        .map(|(file, d, m)| candidate(loaded, roles, images, dhcp, file, d, m))
        .collect::<Vec<_>>();
    let n = candidates.len();
    let servers = match dhcp {
        // Addresses the DHCP servers hold: a machine may not reserve them.
        Some(_) => server_addresses(cx),
        None => HashMap::new(),
    };
    let clashes = claims::clashes(&candidates, &servers);
    cx.diags.list.extend(clashes.diags);
    let mut candidates = candidates.into_iter().enumerate();
    let mut out: Vec<Machine> = Vec::with_capacity(n);
    let mut reservations = Vec::new();
    // Role references reported already, by (file, offset); the last one
    // checked (file, offset, whether it must give an image): checking it
    // again reports nothing, and the machines of a file mostly share its
    // `[defaults]` one.
    let mut role_errors = BTreeSet::new();
    let mut last_role = None;
    for (file, mf) in &loaded.machine_files {
        if let Some(r) = &mf.defaults.role {
            check_role_ref(cx, roles, *file, r, false, &mut role_errors);
        }
        for (i, c) in candidates.by_ref().take(mf.machine.len()) {
            if let Some((r, needs_image)) = c.role {
                let place = Some((c.file, r.span().start, needs_image));
                if last_role != place {
                    check_role_ref(cx, roles, c.file, r, needs_image, &mut role_errors);
                    last_role = place;
                }
            }
            cx.diags.extend(c.diags);
            let mut machine = c.machine;
            machine.macs = (c.macs.iter().enumerate())
                .filter(|(j, _)| !clashes.macs.contains(&(i, *j)))
                .map(|(_, (mac, _))| *mac)
                .collect();
            if clashes.uuids.contains(&i) {
                machine.uuid = None;
            }
            if clashes.serials.contains(&i) {
                machine.serial = None;
            }
            if c.boots {
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

/// One `[[machine]]` of a file, with the file's `[defaults]` under it,
/// checked on its own: everything but what it must not share with other
/// machines (see [`claim_all`]).
fn candidate<'l>(
    loaded: &Loaded,
    roles: &BTreeMap<String, Role>,
    images: &BTreeMap<String, Image<Checked>>,
    dhcp: Option<&Dhcp>,
    file: FileId,
    (d, default_labels): FileDefaults<'l>,
    m: &'l S<model::Machine>,
) -> Candidate<'l> {
    let mut diags = Diags::default();
    let ml = loc(file, m);
    let m = m.get_ref();
    // Not `boot = false` (then it needs no role).
    let boots = m.boot.as_ref().is_none_or(|b| *b.get_ref());
    let name = m.name.get_ref();
    let nl = loc(file, &m.name);
    if !is_host_label(name) {
        diags.push(
            Diag::error(format!("machine name `{name}` is not a valid host name"))
                .at(nl.clone(), "not an RFC 1123 label")
                .help("use 1 to 63 letters, digits and '-', not starting or ending with '-'"),
        );
    }
    let macs = macs(&mut diags, file, &ml, m);

    // IP
    let ip = m.ip.as_ref().and_then(|s| {
        let ip = parse_ip(file, s, "IP address", &mut diags)?;
        if let Some(d) = dhcp {
            check_ip_in_subnets(&mut diags, d, ip, loc(file, s));
        }
        Some(ip)
    });

    let uuid = m.uuid.as_ref().and_then(|u| uuid(&mut diags, file, u));
    let serial = m.serial.as_ref().and_then(|s| serial(&mut diags, file, s));
    let uuid_key = uuid.as_ref().map(|u| format!("uuid-{u}"));
    let serial_key = serial.as_ref().map(|s| format!("serial-{s}"));
    if !boots {
        unused_by_reservation(&mut diags, file, m);
    }
    let image = m.image.as_ref().filter(|_| boots).and_then(|i| {
        let written = i.get_ref();
        if images.contains_key(written) || loaded.images.contains_key(written) {
            return Some(written.clone());
        }
        diags.push(
            Diag::error(format!(
                "machine `{name}` boots image `{written}`, which does not exist"
            ))
            .at(loc(file, i), "no such image")
            .help(
                did_you_mean(written, loaded.images.keys().map(String::as_str)).unwrap_or_else(
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
    let (role, role_ref) = match (&m.role, &d.role) {
        _ if !boots => (String::new(), None),
        (Some(r), _) | (None, Some(r)) => (r.get_ref().clone(), Some((r, m.image.is_none()))),
        (None, None) => {
            diags.push(
                Diag::error(format!("machine `{name}` has no role"))
                    .at(ml.clone(), "missing `role`")
                    .help("add role = \"…\" here or in the file's [defaults]"),
            );
            (String::new(), None)
        }
    };
    let labels = match m.labels.is_empty() {
        true => Arc::clone(default_labels),
        false => {
            let mut labels = BTreeMap::clone(default_labels);
            labels.extend(label_map(&m.labels));
            Arc::new(labels)
        }
    };
    for key in labels.keys() {
        if crate::escape::line(key) != key.as_str() {
            diags.push(
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
    let reinstall = m
        .reinstall
        .as_ref()
        .filter(|_| boots)
        .and_then(|t| reinstall(&mut diags, file, t, roles, &role_name_for_reinstall(m, d)));
    Candidate {
        machine: Machine {
            name: name.clone(),
            macs: Vec::new(),
            ip,
            role,
            image,
            uuid,
            serial,
            reinstall,
            secure_boot: m.secure_boot.as_ref().map(|b| *b.get_ref()),
            kernel_args,
            labels,
            vars: merged_vars(&d.vars, &m.vars),
            loc: nl,
        },
        boots,
        file,
        role: role_ref,
        name_key: name.to_ascii_lowercase(),
        macs,
        ip: m.ip.as_ref().map(|s| loc(file, s)),
        uuid: m
            .uuid
            .as_ref()
            .zip(uuid_key)
            .map(|(s, key)| (key, loc(file, s))),
        serial: m
            .serial
            .as_ref()
            .zip(serial_key)
            .map(|(s, key)| (key, loc(file, s))),
        diags,
    }
}

/// A machine file's `[defaults]`, and its labels made once.
type FileDefaults<'l> = (&'l model::Defaults, &'l Arc<BTreeMap<String, String>>);

/// Labels as written (a map of `model::Label`s) as text.
fn label_map(labels: &BTreeMap<String, model::Label>) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// The machine's MACs (`mac` or `macs`), each a NIC's own address, and
/// where each is written.
fn macs(diags: &mut Diags, file: FileId, ml: &Loc, m: &model::Machine) -> Vec<(Mac, Loc)> {
    let name = m.name.get_ref();
    let written: Vec<&S<String>> = match (&m.mac, &m.macs) {
        (Some(_), Some(list)) => {
            diags.push(
                Diag::error(format!("machine `{name}` has both `mac` and `macs`"))
                    .at(loc(file, list), "second list of MACs")
                    .help("use mac = \"…\" for one NIC or macs = [\"…\", \"…\"] for several"),
            );
            Vec::new()
        }
        (Some(one), None) => vec![one],
        (None, Some(list)) => {
            if list.get_ref().is_empty() {
                diags.push(
                    Diag::error(format!("machine `{name}` has an empty `macs`"))
                        .at(loc(file, list), "no MAC address"),
                );
            }
            list.get_ref().iter().collect()
        }
        (None, None) => {
            diags.push(
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
            None => diags.push(
                Diag::error(format!("invalid MAC address `{}`", w.get_ref()))
                    .at(wl, "not a MAC address")
                    .help("write six pairs of hex digits separated by ':' or '-' (52:54:00:aa:bb:01), three groups of four separated by '.' (5254.00aa.bb01), or twelve hex digits (525400aabb01)"),
            ),
            Some(mac) if mac.is_zero() => diags.push(
                Diag::error(format!("MAC address `{}` is all zeros", w.get_ref()))
                    .at(wl, "no NIC has this address")
                    .help("firmware reports 00:00:00:00:00:00 when it knows no address: write the NIC's own, from its label or the DHCP server's log"),
            ),
            Some(mac) if mac.is_broadcast() => diags.push(
                Diag::error(format!("MAC address `{}` is the broadcast address", w.get_ref()))
                    .at(wl, "every NIC of the segment, not one")
                    .help("write the NIC's own address, from its label or the DHCP server's log"),
            ),
            Some(mac) if mac.is_group() => diags.push(
                Diag::error(format!("MAC address `{}` is a group (multicast) address", w.get_ref()))
                    .at(wl, "the lowest bit of the first byte is set")
                    .help("a NIC's own address is unicast: check for a typo in the first byte"),
            ),
            Some(mac) => parsed.push((mac, wl)),
        }
    }
    parsed
}

/// A machine's `uuid`: an SMBIOS system UUID (written with or without
/// dashes, any case), held by no other machine; lowercase with dashes, as
/// iPXE's `${uuid}` prints it.
fn uuid(diags: &mut Diags, file: FileId, u: &S<String>) -> Option<String> {
    let hex: String = u.get_ref().chars().filter(|c| *c != '-').collect();
    let dashes = u.get_ref().matches('-').count();
    if hex.len() != 32
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
        || !(dashes == 0 || dashes == 4)
    {
        diags.push(
            Diag::error(format!("invalid UUID `{}`", crate::escape::line(u.get_ref())))
                .at(loc(file, u), "not a UUID")
                .help("write the SMBIOS system UUID as 8-4-4-4-12 hex digits (`dmidecode -s system-uuid` prints it)"),
        );
        return None;
    }
    let h = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// A machine's `serial`: letters, digits, '.', '_' and '-' (it is part of
/// a URL), held by no other machine.
fn serial(diags: &mut Diags, file: FileId, s: &S<String>) -> Option<String> {
    let v = s.get_ref();
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        diags.push(
            Diag::error(format!("serial number `{}` cannot be part of a URL", crate::escape::line(v)))
                .at(loc(file, s), "only letters, digits, '.', '_' and '-'")
                .help("boot.ipxe fetches machines/serial-${serial}.ipxe: give the serial as the firmware reports it (`dmidecode -s system-serial-number`), or identify this machine by MAC or UUID"),
        );
        return None;
    }
    Some(v.clone())
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
    diags: &mut Diags,
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
        diags.push(
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
        diags.push(
            Diag::error(format!("reinstall needs an installer, and role `{role}` has none"))
                .at(loc(file, t), "no `installer` in the machine's role chain")
                .help(format!("add installer = \"ROLE\" to roles/{role}.toml (or a role it extends): the role the machine boots until its installer reports installed={token}")),
        );
    }
    None
}

/// `boot = false`: the keys that say how a machine boots are not used.
fn unused_by_reservation(diags: &mut Diags, file: FileId, m: &model::Machine) {
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
            diags.push(
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
