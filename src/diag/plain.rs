//! Problems with no place in a source file (the files of a built tree, a
//! server's own), one headline each with its `= …` lines under it: how
//! `bootc verify` and `bootc serve` show them. Site problems, which point
//! into a file, are drawn with their snippet by [`super::Reporter::human`].

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU8, Ordering};

use super::{Diag, Severity};

const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";
const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";

/// `--color`: 0 auto, 1 always, 2 never.
static COLOR: AtomicU8 = AtomicU8::new(0);

/// `--color always` (Some(true)), `never` (Some(false)) or `auto` (None).
pub fn set_color(when: Option<bool>) {
    COLOR.store(
        match when {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        },
        Ordering::Relaxed,
    );
}

/// Whether to color output on stderr: as `--color` says; by default, a
/// terminal and NO_COLOR unset.
pub fn color_stderr() -> bool {
    use std::io::IsTerminal;
    match COLOR.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// `word: text`, the word in `style` and the text bold when colored. The
/// text (paths and messages from a tree, a server, a site) is escaped: no
/// control character reaches the terminal, no newline forges a line.
fn line(word: &str, style: &str, text: &str, color: bool) -> String {
    let text = crate::escape::line(text);
    if color {
        format!("{style}{word}{RESET}{BOLD}: {text}{RESET}\n")
    } else {
        format!("{word}: {text}\n")
    }
}

/// `error: text` on a line of its own.
pub fn error_line(text: &str, color: bool) -> String {
    line("error", RED, text, color)
}

/// `warning: text` on a line of its own.
pub fn warning_line(text: &str, color: bool) -> String {
    line("warning", YELLOW, text, color)
}

/// `note: text` on a line of its own.
pub fn note_line(text: &str, color: bool) -> String {
    line("note", YELLOW, text, color)
}

/// Each problem's headline (`error: path: message`), its notes and help as
/// `  = …` lines, then a blank line.
pub fn plain<'a>(diags: impl IntoIterator<Item = &'a Diag>, color: bool) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&match d.severity {
            Severity::Error => error_line(&d.headline(), color),
            Severity::Warning => match d.lint {
                Some(l) => line(&format!("warning[{l}]"), YELLOW, &d.headline(), color),
                None => warning_line(&d.headline(), color),
            },
        });
        for n in &d.notes {
            let _ = writeln!(out, "  = {}", crate::escape::line(n));
        }
        for h in &d.help {
            let _ = writeln!(out, "  = help: {}", crate::escape::line(h));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headlines_notes_and_help() {
        let d = [
            Diag::error("size differs")
                .on("http/a")
                .note("expected: 1 byte")
                .help("rebuild"),
            Diag::error("no path"),
        ];
        assert_eq!(
            plain(&d, false),
            "error: http/a: size differs\n  = expected: 1 byte\n  = help: rebuild\n\nerror: no path\n\n"
        );
        assert_eq!(
            plain(&d[1..], true),
            "\x1b[1;31merror\x1b[0m\x1b[1m: no path\x1b[0m\n\n"
        );
        assert_eq!(
            note_line("skipped", true),
            "\x1b[1;33mnote\x1b[0m\x1b[1m: skipped\x1b[0m\n"
        );
    }
}
