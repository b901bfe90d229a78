//! Whether a file of a boot's fetch chain was fetched whole: a file of
//! the tree by what bootc's server recorded, a remote file by what iPXE
//! printed about it (`URL... ok`, or its error), a remote ISO under
//! sanboot by iPXE's SAN messages (it reads the ISO by ranges and prints
//! no download).

use crate::serve::recorded::Record;

/// What the machine fetches after its script.
#[derive(Clone, Debug)]
pub struct Fetch {
    /// A path of the tree (served by bootc test) or an absolute URL.
    pub path: String,
    pub remote: bool,
}

impl Fetch {
    pub fn new(path: &str) -> Fetch {
        let remote = path.starts_with("http://") || path.starts_with("https://");
        Fetch {
            path: path.to_string(),
            remote,
        }
    }
}

/// Whether `f` was fetched whole: Some(Ok) yes, Some(Err) it failed (why),
/// None not (yet) asked for. A remote file is judged by what iPXE printed:
/// `URL... ok`, or `URL... <error> (http://ipxe.org/…)`.
pub fn fetched(f: &Fetch, console: &str, records: &[Record]) -> Option<Result<(), String>> {
    if f.remote {
        let at = console.rfind(&format!("{}...", f.path))? + f.path.len() + 3;
        let line = console[at..].lines().next().unwrap_or("");
        let line: String = line.chars().filter(|c| *c != '\u{8}').collect();
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| !w.ends_with('%'))
            .collect();
        return match words.as_slice() {
            [.., "ok"] => Some(Ok(())),
            [] => None,
            _ if line.contains("ipxe.org/") => Some(Err(words.join(" "))),
            _ => None,
        };
    }
    let r = records.iter().rev().find(|r| r.path == f.path)?;
    if r.status == 404 {
        Some(Err("404".into()))
    } else if !(200..300).contains(&r.status) {
        Some(Err(format!("HTTP {}", r.status)))
    } else if !r.complete {
        Some(Err(format!("cut off after {} bytes", r.bytes)))
    } else {
        Some(Ok(()))
    }
}

/// sanboot opened the ISO over HTTP and boots it; or could not.
const SAN_BOOTING: &str = "Booting from SAN device";
const SAN_FAILED: [&str; 2] = ["Could not open SAN device", "Could not register SAN device"];

/// What iPXE's sanboot said: Some(Ok) it opened the ISO and boots it,
/// Some(Err) it could not (the line), None nothing yet.
pub fn san(console: &str) -> Option<Result<(), String>> {
    if console.contains(SAN_BOOTING) {
        return Some(Ok(()));
    }
    console
        .lines()
        .find(|l| SAN_FAILED.iter().any(|s| l.contains(s)))
        .map(|l| Err(l.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn remote_fetches_as_ipxe_printed_them() {
        let f = Fetch::new("http://10.0.2.2:9/vmlinuz");
        let ok = "http://10.0.2.2:9/vmlinuz...  0%\u{8}\u{8}\u{8}\u{8} ok\n";
        assert_eq!(fetched(&f, ok, &[]), Some(Ok(())));
        let gone =
            "http://10.0.2.2:9/vmlinuz... No such file or directory (http://ipxe.org/2d0c613b)\n";
        assert_eq!(
            fetched(&f, gone, &[]),
            Some(Err(
                "No such file or directory (http://ipxe.org/2d0c613b)".into()
            ))
        );
        assert_eq!(fetched(&f, "http://10.0.2.2:9/vmlinuz... ", &[]), None);
        let local = Fetch::new("images/b3/initrd.img");
        let rec = |status, complete| Record {
            path: "images/b3/initrd.img".into(),
            status,
            complete,
            bytes: 5,
            at: Duration::ZERO,
        };
        assert_eq!(fetched(&local, "", &[rec(200, true)]), Some(Ok(())));
        assert_eq!(
            fetched(&local, "", &[rec(404, true)]),
            Some(Err("404".into()))
        );
        assert_eq!(
            fetched(&local, "", &[rec(200, false)]),
            Some(Err("cut off after 5 bytes".into()))
        );
    }

    #[test]
    fn sanboot_as_ipxe_printed_it() {
        assert_eq!(
            san("Registered SAN device 0x80\nBooting from SAN device 0x80\n"),
            Some(Ok(()))
        );
        assert_eq!(
            san("Could not open SAN device: Error 0x7f222094 (http://ipxe.org/7f222094)\n"),
            Some(Err(
                "Could not open SAN device: Error 0x7f222094 (http://ipxe.org/7f222094)".into()
            ))
        );
        assert_eq!(san("Registered SAN device 0x80\n"), None);
    }
}
