//! What may reach an iPXE script. iPXE has no quoting, so a value that could
//! change the meaning of a script line is rejected, never escaped.

/// Why `s` cannot be written into an iPXE script as one argument, if it can't.
pub fn unsafe_reason(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("it is empty".into());
    }
    if plain(s, false) {
        return None;
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Some("it contains whitespace, which would split it into several arguments".into());
    }
    if s.contains("${") {
        return Some("it contains `${`, which iPXE expands as a setting".into());
    }
    // iPXE splits a line on whitespace and only then compares whole words
    // with its separators, so `ds=nocloud-net;s=http://x/` is one argument.
    if matches!(s, "||" | "&&" | ";") {
        return Some(format!(
            "it is `{s}`, which iPXE reads as a command separator"
        ));
    }
    if s.starts_with('#') {
        return Some("it starts with `#`, which iPXE reads as a comment".into());
    }
    None
}

/// Whether none of [`unsafe_reason`]'s rules can refuse `s` (a word, or
/// words when `spaces`), seen in one pass over the bytes, as most values
/// written into a script are: printable ASCII (and spaces) without `$`,
/// `#`, `|`, `&` or `;` (a value with one is left to the rules).
fn plain(s: &str, spaces: bool) -> bool {
    // By byte: 1 a plain character, 2 a space.
    const PLAIN: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            if c.is_ascii_graphic() && !matches!(c, b'$' | b'#' | b'|' | b'&' | b';') {
                t[b] = 1;
            }
            b += 1;
        }
        t[b' ' as usize] = 2;
        t
    };
    let allowed = if spaces { 2 } else { 1 };
    s.bytes()
        .all(|b| (1..=allowed).contains(&PLAIN[b as usize]))
}

/// Why free text (a description shown in a menu line) cannot be written into
/// an iPXE script, if it can't: as [`unsafe_reason`], but spaces are fine.
pub fn text_unsafe_reason(s: &str) -> Option<String> {
    if plain(s, true) {
        return None;
    }
    s.split(' ')
        .filter(|w| !w.is_empty())
        .find_map(unsafe_reason)
}

/// A name used as a word in scripts and paths (roles, images, files):
/// letters, digits, '.', '_' and '-', not starting with '.'.
pub fn is_plain_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// An RFC 1123 host label: 1 to 63 letters, digits and hyphens, not starting
/// or ending with a hyphen.
pub fn is_host_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_ipxe_would_misread() {
        for bad in [
            "a b",
            "a\tb",
            "x${net0/mac}",
            "||",
            "&&",
            ";",
            "#x",
            "a\u{7}",
            "",
        ] {
            assert!(unsafe_reason(bad).is_some(), "{bad:?} should be rejected");
        }
        for good in [
            "console=ttyS0,115200",
            "root=/dev/nvme0n1p2",
            "url=http://x/a?b=c#frag",
            "a#b",
            "quiet",
            "ds=nocloud-net;s=http://10.0.2.2/ci/",
            "a||b",
            "a&&b",
        ] {
            assert_eq!(unsafe_reason(good), None, "{good:?} should pass");
        }
    }

    #[test]
    fn text_is_refused_by_any_of_its_words() {
        for bad in [
            "menu #x",
            "a ${x}",
            "a || b",
            "a ; b",
            "a\tb",
            "a \u{1b}[31m",
        ] {
            assert!(
                text_unsafe_reason(bad).is_some(),
                "{bad:?} should be rejected"
            );
        }
        for good in ["Debian 12 (bookworm)", "a#b c", "", "  two  spaces  "] {
            assert_eq!(text_unsafe_reason(good), None, "{good:?} should pass");
        }
    }

    #[test]
    fn host_labels() {
        assert!(is_host_label("node01"));
        assert!(is_host_label("a"));
        assert!(!is_host_label("-a"));
        assert!(!is_host_label("a-"));
        assert!(!is_host_label("a_b"));
        assert!(!is_host_label("a.b"));
        assert!(!is_host_label(&"a".repeat(64)));
    }
}
