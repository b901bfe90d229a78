//! What may reach a GRUB config. bootc writes every value as one
//! single-quoted GRUB word: inside single quotes GRUB expands nothing (`$`,
//! `;`, `|`, `&`, `{` and spaces are literal), and a single quote cannot be
//! written at all, so a value holding one (or a line break or any other
//! control character) is refused, never escaped.

/// Why `s` cannot be written into a GRUB config as one quoted word.
pub fn unsafe_reason(s: &str) -> Option<String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character U+{:04X}",
            c as u32
        ));
    }
    if s.contains('\'') {
        return Some("it contains `'`, which would end GRUB's quoting".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::unsafe_reason;

    #[test]
    fn refuses_what_would_leave_the_quotes() {
        for bad in ["a'b", "'", "a\nb", "a\rb", "x\u{1b}[2J"] {
            assert!(unsafe_reason(bad).is_some(), "{bad:?}");
        }
        for good in [
            "console=ttyS0 ds=nocloud-net;s=http://10.0.2.2/ci/",
            "$prefix",
            "a{b}c|d&e",
            "quiet \"x\"",
            "",
        ] {
            assert_eq!(unsafe_reason(good), None, "{good:?}");
        }
    }
}
