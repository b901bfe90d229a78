//! URLs a site writes (base-url, artifact URLs, chain targets). They reach
//! iPXE scripts, DHCP configs (a quoted dhcpd string, a dnsmasq field
//! separated by commas, Kea JSON) and kernel command lines, none of which
//! can quote them. So a URL must be http or https, name a host, and hold only
//! the characters of RFC 3986 that none of those formats reads specially.

/// Why `url` cannot be used, if it can't.
pub fn problem(url: &str) -> Option<String> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Some("it must start with http:// or https://".into());
    };
    if url.contains("${") {
        return Some("it contains `${`, which iPXE expands as a setting".into());
    }
    if let Some(c) = url.chars().find(|&c| !allowed(c)) {
        return Some(match c {
            c if c.is_whitespace() || c.is_control() => format!(
                "it contains {}, which would split it or end its line",
                c.escape_debug()
            ),
            '"' | '\'' => format!("it contains `{c}`, which would end a quoted DHCP option"),
            ',' | ';' => {
                format!("it contains `{c}`, which separates fields in DHCP configs and scripts")
            }
            c => format!("it contains `{c}`, which is not a URL character (write it %-encoded)"),
        });
    }
    if host(rest).is_empty() {
        return Some("it names no host".into());
    }
    None
}

/// The host of a URL's part after `scheme://`: without user, port, path,
/// query or fragment (an IPv6 literal without its brackets); empty if none.
pub fn host(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    }
}

/// An `http://` URL as GRUB addresses it: the device `(http,HOST[:PORT])`
/// and the path from its first '/' on (`/` when it has none). None for any
/// other scheme, a URL with user info, a query or a fragment (GRUB has no
/// HTTPS and reads none of those).
pub fn grub_http(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    if rest.contains(['?', '#', '@']) {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!authority.is_empty()).then(|| (format!("(http,{authority})"), path.to_string()))
}

/// The characters of RFC 3986 (unreserved, reserved and `%`) less `'`, `,`
/// and `;`, which DHCP configs read as delimiters.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&()*+=%".contains(c)
}

/// Why a file name (the last part of an artifact's path or URL) cannot be
/// written into a URL and an `initrd=` argument, if it can't.
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+~%".contains(&b));
    (!ok).then_some(
        "use letters, digits, '.', '_', '-', '+', '~' and '%' only, not starting with '.'",
    )
}

/// Percent-encodes a '/'-separated path for a URL: every byte but the
/// unreserved characters and '/' (so a name with `#`, `?`, `%` or a space
/// stays one path).
pub fn encode_path(p: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_devices() {
        let dev = |u| grub_http(u);
        assert_eq!(
            dev("http://10.0.2.2:8080/fleet/"),
            Some(("(http,10.0.2.2:8080)".into(), "/fleet/".into()))
        );
        assert_eq!(
            dev("http://boot.example"),
            Some(("(http,boot.example)".into(), "/".into()))
        );
        assert_eq!(dev("https://boot.example/"), None);
        assert_eq!(dev("http://u@boot.example/"), None);
        assert_eq!(dev("http://boot.example/?x=1"), None);
    }

    #[test]
    fn urls() {
        for good in [
            "http://10.77.0.1:8080/",
            "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux",
            "http://[fd00::1]:8080/boot/",
            "http://user@mirror/x?a=b&c=d#f",
        ] {
            assert_eq!(problem(good), None, "{good}");
        }
        for bad in [
            "ftp://x/",
            "http:///etc/passwd",
            "http://:80/x",
            "http://10.77.0.1:8080/a\";filename\"http://127.0.0.1/evil.ipxe\";#/",
            "http://10.77.0.1:8080/a,evil.ipxe,,127.0.0.1/",
            "http://x/a b",
            "http://x/a\nb",
            "http://x/${net0/mac}",
            "http://x/a;b",
        ] {
            assert!(problem(bad).is_some(), "{bad}");
        }
        assert_eq!(file_name_problem("vmlinuz-6.1.0+deb12~1"), None);
        assert!(file_name_problem("a\"b").is_some());
        assert!(file_name_problem(".hidden").is_some());
    }
}
