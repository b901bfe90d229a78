//! What a machine may not share with the machines before it (in the order
//! of the files): its name, MACs, address, UUID and serial number. Each
//! kind is claimed on its own, on all cores: the machines' claims of one
//! kind in order, each against the first holder of its key.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::net::Ipv4Addr;

use super::machines::Candidate;
use crate::diag::{Diag, Loc};

/// The claims that another (or the same machine, earlier) made first.
#[derive(Default)]
pub(super) struct Clashes {
    /// Their errors.
    pub diags: Vec<Diag>,
    /// MACs taken first: (machine, position among its MACs).
    pub macs: HashSet<(usize, usize)>,
    /// Machines whose UUID, whose serial number, was taken first.
    pub uuids: HashSet<usize>,
    pub serials: HashSet<usize>,
}

/// The clashes among the claims of `candidates` (by their index) and
/// the addresses the DHCP servers hold (`servers`: address -> where it is
/// written, what it is).
pub(super) fn clashes(
    candidates: &[Candidate],
    servers: &HashMap<Ipv4Addr, (Loc, String)>,
) -> Clashes {
    let n = candidates.len();
    let each = || candidates.iter().enumerate();
    let names = || {
        let claims = each().map(|(i, c)| (i, c.name_key.as_str(), &c.machine.loc));
        first_holders([].into_iter(), claims, n)
            .into_iter()
            .map(|(i, first)| {
                let m = &candidates[i].machine;
                Diag::error(format!("machine name `{}` is used twice", m.name))
                    .at(m.loc.clone(), "second machine")
                    .also(first.clone(), "first machine")
                    .help("machine names become host names and folders: make them unique")
            })
            .collect::<Vec<_>>()
    };
    let macs = || {
        let claims = each().flat_map(|(i, c)| {
            let name = c.machine.name.as_str();
            c.macs
                .iter()
                .enumerate()
                .map(move |(j, (mac, at))| ((i, j), *mac, (at, name)))
        });
        first_holders([].into_iter(), claims, n)
    };
    let ips = || {
        let seed = (servers.iter()).map(|(ip, (at, what))| (*ip, (at, Holder::Server(what))));
        let claims = each().filter_map(|(i, c)| {
            let name = c.machine.name.as_str();
            Some((i, c.machine.ip?, (c.ip.as_ref()?, Holder::Machine(name))))
        });
        first_holders(seed, claims, n)
            .into_iter()
            .map(|(i, (first, holder))| {
                let c = &candidates[i];
                let (Some(at), Some(ip)) = (&c.ip, c.machine.ip) else {
                    unreachable!("a claim has both");
                };
                Diag::error(format!("IP address {ip} is used twice"))
                    .at(at.clone(), format!("again here, for `{}`", c.machine.name))
                    .also(first.clone(), format!("first used by {holder}"))
            })
            .collect::<Vec<_>>()
    };
    // UUIDs and serial numbers: one set of keys (`uuid-…`, `serial-…`).
    let ids = || {
        let claims = each().flat_map(|(i, c)| {
            let name = c.machine.name.as_str();
            [(&c.uuid, true), (&c.serial, false)]
                .into_iter()
                .filter_map(move |(id, uuid)| {
                    let (key, at) = id.as_ref()?;
                    Some(((i, uuid), key.as_str(), (at, name)))
                })
        });
        first_holders([].into_iter(), claims, n)
    };
    let ((names, macs), (ips, ids)) =
        rayon::join(|| rayon::join(names, macs), || rayon::join(ips, ids));
    let mut out = Clashes {
        diags: names,
        ..Default::default()
    };
    for ((i, j), (first, owner)) in macs {
        let c = &candidates[i];
        let (mac, at) = &c.macs[j];
        out.diags.push(
            Diag::error(format!("MAC address {mac} is used twice"))
                .at(at.clone(), format!("again here, for `{}`", c.machine.name))
                .also(first.clone(), format!("first used by `{owner}`"))
                .help("one NIC belongs to one machine"),
        );
        out.macs.insert((i, j));
    }
    out.diags.extend(ips);
    for ((i, uuid), (first, owner)) in ids {
        let c = &candidates[i];
        let (id, what, taken) = match uuid {
            true => (&c.uuid, "UUID", &mut out.uuids),
            false => (&c.serial, "serial number", &mut out.serials),
        };
        let (key, at) = id.as_ref().expect("claimed");
        taken.insert(i);
        out.diags.push(
            Diag::error(format!(
                "{what} `{}` belongs to two machines",
                key.split_once('-').map_or("", |x| x.1)
            ))
            .at(at.clone(), format!("claimed here by `{}`", c.machine.name))
            .also(first.clone(), format!("first claimed by `{owner}`"))
            .help("a machine is found by MAC, else UUID, else serial: each must name one machine"),
        );
    }
    out
}

/// Who holds an address: a machine (by name), or a DHCP server (what
/// it is).
#[derive(Clone, Copy)]
enum Holder<'a> {
    Machine(&'a str),
    Server(&'a str),
}

impl std::fmt::Display for Holder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Machine(name) => write!(f, "`{name}`"),
            Holder::Server(what) => f.write_str(what),
        }
    }
}

/// The claims of one kind in order (who claims, the key, what an error
/// names it by), after `seed`'s (held before any): each claim whose key
/// was held already, in order, with its first holder.
fn first_holders<I, K: Eq + Hash, V: Copy>(
    seed: impl Iterator<Item = (K, V)>,
    claims: impl Iterator<Item = (I, K, V)>,
    n: usize,
) -> Vec<(I, V)> {
    let mut held: HashMap<K, V> = HashMap::with_capacity(n);
    for (key, v) in seed {
        held.entry(key).or_insert(v);
    }
    let mut clashes = Vec::new();
    for (who, key, v) in claims {
        match held.entry(key) {
            Entry::Occupied(first) => clashes.push((who, *first.get())),
            Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
    clashes
}
