//! Text from a site made safe to print. A site is written by whoever opens a
//! pull request: its file names, values and template text reach terminals
//! and CI logs through messages and source snippets, so control characters
//! (terminal escapes, carriage returns, NUL) and the bidirectional overrides
//! of "Trojan Source" are never printed raw.

use std::borrow::Cow;

/// A character that could change what a terminal or a log viewer shows.
fn is_hostile(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t' && c != '\r')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// One line of a message: every control character, newlines included, and
/// every bidirectional override written as an escape (`\u{1b}`).
pub fn line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_hostile(c) || c.is_control()) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hostile(c) || c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text of several lines for a terminal (explain, diff): every hostile
/// character escaped as in [`line`], newlines and tabs kept.
pub fn text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A source file for a snippet: hostile characters become `?`, one per byte,
/// so every byte offset into the text stays valid; lines stay lines.
pub fn source(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hostile(c) {
            out.extend(std::iter::repeat_n('?', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(line("node\u{1b}[2J"), "node\\u{1b}[2J");
        assert_eq!(line("a\nb"), "a\\nb");
        assert_eq!(line("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(line("plain `text` ü"), "plain `text` ü");
        let src = "a = \"\u{1b}[31m\u{202e}\"\nb\r\n";
        let shown = source(src);
        assert_eq!(shown.len(), src.len(), "offsets stay valid");
        assert_eq!(shown, "a = \"?[31m???\"\nb\r\n");
    }
}
