//! `[site] allowed-hosts` (SPEC section 10): the hosts a boot may reach.
//! URLs are found in artifact URLs, chain targets, kernel arguments
//! (`url=`, `preseed/url=`, `inst.ks=`, `ds=…;s=…`) and rendered
//! per-machine files; a host outside the list is an error at its place.

/// The hosts a boot may reach: the list, plus base-url's host. Lowercase.
#[derive(Clone, Debug, Default)]
pub struct Allowed {
    pub hosts: Vec<String>,
}

impl Allowed {
    pub fn permits(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The hosts of the URLs in `text` this list does not permit, each
    /// once, in order.
    pub fn outside(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for host in hosts_in(text) {
            if !self.permits(&host) && !out.contains(&host) {
                out.push(host);
            }
        }
        out
    }
}

/// The host of an http, https, tftp or ftp URL (lowercase, without port or
/// user), if `url` is one.
pub fn host_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !["http", "https", "tftp", "ftp"].contains(&scheme.to_ascii_lowercase().as_str()) {
        return None;
    }
    let host = crate::url::host(rest);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The hosts of every URL in `text` (in order, with repeats).
pub fn hosts_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    // What is searched has no letters: the text as it is (`host_of`
    // lowers the host it finds).
    static SCHEME_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("://"));
    for at in SCHEME_END.find_iter(text.as_bytes()) {
        let start = text[..at]
            .rfind(|c: char| !c.is_ascii_alphanumeric())
            .map_or(0, |i| i + 1);
        let end = text[at..]
            .find(|c: char| c.is_whitespace() || "\"'<>;,`()|".contains(c))
            .map_or(text.len(), |i| at + i);
        if let Some(h) = host_of(&text[start..end]) {
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hosts_in_kernel_args_and_files() {
        assert_eq!(
            hosts_in("ds=nocloud-net;s=http://Ci.Example:8080/x/ url=https://a.b/c"),
            ["ci.example", "a.b"]
        );
        assert_eq!(hosts_in("inst.ks=tftp://10.0.0.1/ks.cfg"), ["10.0.0.1"]);
        assert_eq!(hosts_in("url: \"http://[fd00::1]:80/p\""), ["fd00::1"]);
        assert!(hosts_in("no urls, file:///etc/x").is_empty());
        let a = Allowed {
            hosts: vec!["mirror.lab".into()],
        };
        assert_eq!(
            a.outside("http://mirror.lab/a http://evil.example/b http://evil.example/c"),
            ["evil.example"]
        );
    }
}
