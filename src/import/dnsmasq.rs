//! dnsmasq's configuration read for `bootc import dnsmasq`: every
//! `dhcp-host=` line, its comma-separated fields told apart the way dnsmasq
//! tells them (MACs hold `:`, then `id:`, `set:`/`tag:`, an IPv4 address, a
//! lease time, `ignore`; anything else is the host name), in any order.
//! Other directives are ignored; `conf-file` and `conf-dir` are not followed.

use std::net::Ipv4Addr;

use super::{Entry, Host};

/// Every `dhcp-host` of dnsmasq configuration `text`, in input order.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = uncomment(raw).trim();
        let line = line.strip_prefix("--").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "dhcp-host" {
            out.push(dhcp_host(value.trim(), i + 1));
        }
    }
    out
}

/// A line without its comment: dnsmasq starts one at a `#` outside quotes
/// that begins a word.
fn uncomment(line: &str) -> &str {
    let mut quoted = false;
    let mut word_start = true;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted && word_start => return &line[..i],
            _ => {}
        }
        word_start = c.is_whitespace();
    }
    line
}

/// A lease time: `infinite`, or a number with an optional s/m/h/d/w unit.
fn is_lease_time(s: &str) -> bool {
    let digits = s.strip_suffix(['s', 'm', 'h', 'd', 'w']).unwrap_or(s);
    s == "infinite" || (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// One `dhcp-host=` value.
fn dhcp_host(value: &str, line: usize) -> Entry {
    let mut h = Host {
        line,
        kind: "dhcp-host",
        ..Host::default()
    };
    let mut client_id = false;
    let mut ignore = false;
    let mut wildcard = None;
    for field in value.split(',') {
        let f = field.trim().trim_matches('"');
        let lower = f.to_ascii_lowercase();
        if f.is_empty() {
            continue;
        } else if lower.starts_with("id:") {
            client_id = true;
        } else if ["set:", "tag:", "net:"]
            .iter()
            .any(|p| lower.starts_with(p))
        {
            // a tag: what dnsmasq does for the host, not who it is
        } else if f.starts_with('[') {
            // an IPv6 address: machines hold IPv4 only
        } else if f.contains(':') {
            if f.contains('*') {
                wildcard = Some(f.to_string());
            } else {
                h.macs.push(f.to_string());
            }
        } else if let Ok(ip) = f.parse::<Ipv4Addr>() {
            h.ip = Some(ip);
        } else if lower == "ignore" {
            ignore = true;
        } else if !is_lease_time(&lower) {
            h.name_as_written = Some(f.to_string());
        }
    }
    if ignore {
        return Entry::Skip(h.skip("`ignore`: the host gets no address from dnsmasq"));
    }
    if let Some(w) = wildcard {
        return Entry::Skip(h.skip(format!(
            "wildcard MAC {w:?} matches many NICs, not one machine"
        )));
    }
    if h.macs.is_empty() {
        let why = if client_id {
            "no MAC address (matched by client id only)"
        } else {
            "no MAC address"
        };
        return Entry::Skip(h.skip(why));
    }
    Entry::Host(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Entry {
        let mut e = parse(line);
        assert_eq!(e.len(), 1, "{line}");
        e.remove(0)
    }

    #[test]
    fn fields_in_any_order() {
        for line in [
            "dhcp-host=52:54:00:aa:bb:01,10.0.0.5,web,12h",
            "dhcp-host=web,10.0.0.5,52:54:00:aa:bb:01,infinite",
            "dhcp-host=set:pxe,52:54:00:aa:bb:01,id:*,web,10.0.0.5,3600 # web server",
            "  dhcp-host = tag:!known,10.0.0.5,45m,52:54:00:aa:bb:01,\"web\"",
        ] {
            let Entry::Host(h) = one(line) else {
                panic!("{line}")
            };
            assert_eq!(h.name_as_written.as_deref(), Some("web"), "{line}");
            assert_eq!(h.macs, ["52:54:00:aa:bb:01"], "{line}");
            assert_eq!(h.ip, Some(Ipv4Addr::new(10, 0, 0, 5)), "{line}");
        }
    }

    #[test]
    fn comments_start_words_only() {
        assert_eq!(uncomment("dhcp-host=a#b,c # d"), "dhcp-host=a#b,c ");
        assert_eq!(uncomment("# all"), "");
        assert_eq!(uncomment("x=\"a #b\" #c"), "x=\"a #b\" ");
        assert!(parse("#dhcp-host=52:54:00:aa:bb:01,web").is_empty());
    }

    #[test]
    fn what_cannot_be_imported() {
        for (line, why) in [
            ("dhcp-host=52:54:00:aa:bb:01,web,ignore", "`ignore`"),
            ("dhcp-host=52:54:00:*:*:*,web", "wildcard"),
            ("dhcp-host=id:01:02:03,web,10.0.0.5", "client id only"),
        ] {
            let Entry::Skip(s) = one(line) else {
                panic!("{line}")
            };
            assert!(s.reason.contains(why), "{line}: {}", s.reason);
        }
    }
}
