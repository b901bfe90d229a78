//! `bootc import`: an existing host list (ISC dhcpd, dnsmasq, Kea or CSV)
//! turned into one machines file (SPEC section 2, `machines/*.toml`).
//!
//! Each format's parser (a module here) reads its file into [`Entry`]s in
//! input order, each a [`Host`] as written or a [`Skip`] it could not read.
//! [`import`] then makes every host a machine or a skip: names made RFC 1123
//! labels, MACs normalised, the first of two hosts with one name or MAC kept.
//! The TOML it writes is laid out here, one `[[machine]]` per host, keys in a
//! fixed order, so the same input always gives the same bytes.

pub mod csv;
pub mod dhcpd;
pub mod dnsmasq;
pub mod kea;

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

use crate::ipxe::is_host_label;
use crate::site::Mac;

/// The formats `bootc import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// ISC dhcpd's `dhcpd.conf`: `host` declarations at any depth.
    Dhcpd,
    /// dnsmasq's configuration: `dhcp-host=` lines.
    Dnsmasq,
    /// kea-dhcp4's JSON (with comments): `reservations`.
    Kea,
    /// A CSV table with a header row.
    Csv,
}

/// A file that could not be read as its format at all.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// One host entry as its file wrote it, before any check.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Host {
    /// The line (from 1) where the entry starts.
    pub line: usize,
    /// What the format calls an entry, for messages: `host`, `dhcp-host`,
    /// `reservation`, `row`.
    pub kind: &'static str,
    /// The host's name as written, if it has one.
    pub name_as_written: Option<String>,
    /// The name the entry is declared under, when that is not its host
    /// name (dhcpd's `host NAME` beside an `option host-name`): messages
    /// name the entry so.
    pub declared: Option<String>,
    /// Its MACs as written (none when the entry has none).
    pub macs: Vec<String>,
    pub ip: Option<Ipv4Addr>,
    pub role: Option<String>,
    pub uuid: Option<String>,
    pub serial: Option<String>,
    /// Other values (CSV columns), in input order.
    pub labels: Vec<(String, String)>,
    /// Something the reader should know about the entry (an address that
    /// could not be imported), written as a comment above it.
    pub note: Option<String>,
}

impl Host {
    /// `host "web01"`, or `dhcp-host` for an entry without a name.
    pub fn entry(&self) -> String {
        match self.declared.as_ref().or(self.name_as_written.as_ref()) {
            Some(n) => format!("{} {}", self.kind, quoted(n)),
            None => self.kind.to_string(),
        }
    }

    /// A skip of this entry for `reason`.
    pub fn skip(&self, reason: impl Into<String>) -> Skip {
        Skip {
            line: self.line,
            entry: self.entry(),
            reason: reason.into(),
        }
    }
}

/// An entry that was not imported, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skip {
    pub line: usize,
    /// The entry as messages name it: `host "printer"`.
    pub entry: String,
    pub reason: String,
}

impl fmt::Display for Skip {
    /// `57: host "printer": no hardware ethernet` (the caller puts the file
    /// name in front).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.line, self.entry, self.reason)
    }
}

/// What a parser read: hosts and skips, in input order.
#[derive(Debug, PartialEq)]
pub enum Entry {
    Host(Host),
    Skip(Skip),
}

/// The result of an import.
#[derive(Debug)]
pub struct Imported {
    /// The machines file.
    pub toml: String,
    /// How many machines it holds.
    pub machines: usize,
    /// The entries left out, in line order.
    pub skipped: Vec<Skip>,
}

/// Reads `text` (the file `source`, named so in comments) as `format` and
/// writes its hosts as one machines file; with `role`, the file's
/// `[defaults]` set it.
pub fn import(
    format: Format,
    text: &str,
    source: &str,
    role: Option<&str>,
) -> Result<Imported, SyntaxError> {
    let mut entries = match format {
        Format::Dhcpd => dhcpd::parse(text)?,
        Format::Dnsmasq => dnsmasq::parse(text),
        Format::Kea => kea::parse(text)?,
        Format::Csv => csv::parse(text)?,
    };
    entries.sort_by_key(|e| match e {
        Entry::Host(h) => h.line,
        Entry::Skip(s) => s.line,
    });
    let (machines, skipped) = check(entries);
    Ok(Imported {
        toml: write(&machines, source, format, role),
        machines: machines.len(),
        skipped,
    })
}

/// A host that passed: its machine name and MACs, and the host itself.
struct Machine {
    name: String,
    macs: Vec<Mac>,
    host: Host,
}

/// Makes each host a machine, or a skip: the first of two hosts with one
/// name, MAC or address wins.
fn check(entries: Vec<Entry>) -> (Vec<Machine>, Vec<Skip>) {
    let mut machines = Vec::new();
    let mut skipped = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut macs: HashMap<Mac, usize> = HashMap::new();
    let mut ips: HashMap<Ipv4Addr, usize> = HashMap::new();
    for e in entries {
        let host = match e {
            Entry::Host(h) => h,
            Entry::Skip(s) => {
                skipped.push(s);
                continue;
            }
        };
        match machine(host, &names, &macs, &ips) {
            Ok(m) => {
                names.insert(m.name.clone(), m.host.line);
                for mac in &m.macs {
                    macs.insert(*mac, m.host.line);
                }
                if let Some(ip) = m.host.ip {
                    ips.insert(ip, m.host.line);
                }
                machines.push(m);
            }
            Err(s) => skipped.push(s),
        }
    }
    (machines, skipped)
}

/// One host checked against the machines taken so far (each by its line).
fn machine(
    host: Host,
    names: &HashMap<String, usize>,
    macs: &HashMap<Mac, usize>,
    ips: &HashMap<Ipv4Addr, usize>,
) -> Result<Machine, Skip> {
    if host.macs.is_empty() {
        return Err(host.skip("no MAC address"));
    }
    let mut parsed: Vec<Mac> = Vec::new();
    for written in &host.macs {
        let mac = parse_mac(written).map_err(|why| host.skip(why))?;
        if !parsed.contains(&mac) {
            parsed.push(mac);
        }
    }
    let Some(written) = &host.name_as_written else {
        return Err(host.skip("no host name"));
    };
    let name = normalise_name(written);
    if !is_host_label(&name) {
        return Err(host.skip(format!(
            "{} is not a valid host name (RFC 1123 label)",
            quoted(&name)
        )));
    }
    if let Some(line) = names.get(&name) {
        return Err(host.skip(format!(
            "duplicate name {} (first on line {line})",
            quoted(&name)
        )));
    }
    for mac in &parsed {
        if let Some(line) = macs.get(mac) {
            return Err(host.skip(format!("duplicate MAC {mac} (first on line {line})")));
        }
    }
    if let Some(line) = host.ip.and_then(|ip| ips.get(&ip)) {
        return Err(host.skip(format!(
            "duplicate address {} (first on line {line})",
            host.ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
        )));
    }
    Ok(Machine {
        name,
        macs: parsed,
        host,
    })
}

/// A MAC in any form `Mac::parse` reads, also with one-digit groups
/// (`52:54:0:aa:bb:1`, as dhcpd and Kea accept); only a NIC's own
/// (unicast, not all zeros) address.
pub fn parse_mac(written: &str) -> Result<Mac, String> {
    let s = written.trim();
    let padded: String;
    let s = if s.contains(':') && s.split(':').all(|g| g.len() == 1 || g.len() == 2) {
        padded = s
            .split(':')
            .map(|g| format!("{g:0>2}"))
            .collect::<Vec<_>>()
            .join(":");
        &padded
    } else {
        s
    };
    match Mac::parse(s) {
        None => Err(format!("MAC {} is in no known format", quoted(written))),
        Some(m) if m.is_zero() => Err(format!("MAC {m} is all zeros")),
        Some(m) if m.is_broadcast() => Err(format!("MAC {m} is the broadcast address")),
        Some(m) if m.is_group() => Err(format!("MAC {m} is a group (multicast) address")),
        Some(m) => Ok(m),
    }
}

/// A host name made a machine name: an FQDN's first label, `_` as `-`,
/// lowercase. The result may still be no valid label (`is_host_label`).
pub fn normalise_name(written: &str) -> String {
    let first = written.trim().split('.').next().unwrap_or_default();
    first.replace('_', "-").to_lowercase()
}

/// A name or value quoted for a message or a comment: one line, control
/// characters escaped.
fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// A TOML string.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        string(k)
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Dhcpd => "dhcpd",
        Format::Dnsmasq => "dnsmasq",
        Format::Kea => "kea",
        Format::Csv => "csv",
    }
}

/// The machines file: a header comment, `[defaults]` with `role`, then one
/// `[[machine]]` per machine with comments on what changed.
fn write(machines: &[Machine], source: &str, format: Format, role: Option<&str>) -> String {
    let mut out = format!(
        "# Imported from {} by `bootc import {}`.\n",
        quoted(source),
        format_name(format)
    );
    if let Some(r) = role {
        out += &format!("\n[defaults]\nrole = {}\n", string(r));
    }
    for m in machines {
        let h = &m.host;
        out.push('\n');
        let renamed = h.name_as_written.as_ref().filter(|w| **w != m.name);
        if let Some(w) = renamed {
            out += &format!("# imported from {} ({source} line {})\n", quoted(w), h.line);
        }
        if let Some(n) = &h.note {
            if renamed.is_some() {
                out += &format!("# {n}\n");
            } else {
                out += &format!("# {n} ({source} line {})\n", h.line);
            }
        }
        out += "[[machine]]\n";
        out += &format!("name = {}\n", string(&m.name));
        match m.macs.as_slice() {
            [one] => out += &format!("mac = {}\n", string(&one.to_string())),
            many => {
                let list: Vec<String> = many.iter().map(|m| string(&m.to_string())).collect();
                out += &format!("macs = [{}]\n", list.join(", "));
            }
        }
        if let Some(ip) = h.ip {
            out += &format!("ip = {}\n", string(&ip.to_string()));
        }
        for (k, v) in [("role", &h.role), ("uuid", &h.uuid), ("serial", &h.serial)] {
            if let Some(v) = v {
                out += &format!("{k} = {}\n", string(v));
            }
        }
        if !h.labels.is_empty() {
            let list: Vec<String> = h
                .labels
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), string(v)))
                .collect();
            out += &format!("labels = {{ {} }}\n", list.join(", "));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(line: usize, name: &str, mac: &str) -> Entry {
        Entry::Host(Host {
            line,
            kind: "host",
            name_as_written: Some(name.into()),
            macs: vec![mac.into()],
            ..Host::default()
        })
    }

    #[test]
    fn names_become_labels() {
        assert_eq!(normalise_name("Web_01.example.com"), "web-01");
        assert_eq!(normalise_name("DB01"), "db01");
        assert_eq!(normalise_name("web01."), "web01");
        assert!(!is_host_label(&normalise_name("bad name")));
    }

    #[test]
    fn macs_in_every_form_and_short_groups() {
        for s in [
            "52:54:00:AA:BB:01",
            "52-54-00-aa-bb-01",
            "5254.00aa.bb01",
            "525400aabb01",
            "52:54:0:aa:bb:1",
        ] {
            assert_eq!(
                parse_mac(s).unwrap().to_string(),
                "52:54:00:aa:bb:01",
                "{s}"
            );
        }
        assert!(parse_mac("52:54:00:aa:bb").is_err());
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("00:00:00:00:00:00").is_err());
    }

    #[test]
    fn the_first_of_two_wins() {
        let (machines, skipped) = check(vec![
            host(1, "a", "52:54:00:00:00:01"),
            host(2, "A", "52:54:00:00:00:02"),
            host(3, "b", "52-54-00-00-00-01"),
            host(4, "c", "52:54:00:00:00:03"),
        ]);
        let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        let why: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            why,
            [
                "2: host \"A\": duplicate name \"a\" (first on line 1)",
                "3: host \"b\": duplicate MAC 52:54:00:00:00:01 (first on line 1)"
            ]
        );
    }
}
