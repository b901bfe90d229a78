//! The words of a change, shared by the human and markdown writers: a
//! [`Style`] says whether values are plain or markdown code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::change::{Change, Lines, Own, placeholders};
use super::report::{ImageDelta, SiteChange};
use crate::diag::plural_with;
use crate::plan::Artifact;

/// How many machine names (or ranges of names) a group shows.
pub(super) const MAX_NAMES: usize = 12;

/// How many removed and added lines of a file a change shows.
const MAX_LINES: usize = 3;

fn lines_text(l: &Lines, m: Option<&Own>, s: Style) -> String {
    let show = |x: &String| {
        let x = match m {
            Some(m) => placeholders(x, m),
            None => x.clone(),
        };
        match s {
            Style::Plain => format!("`{x}`"),
            Style::Markdown => code(&x),
        }
    };
    let mut parts: Vec<String> = Vec::new();
    parts.extend(
        l.removed
            .iter()
            .take(MAX_LINES)
            .map(|x| format!("- {}", show(x))),
    );
    parts.extend(
        l.added
            .iter()
            .take(MAX_LINES)
            .map(|x| format!("+ {}", show(x))),
    );
    let hidden =
        l.removed.len().saturating_sub(MAX_LINES) + l.added.len().saturating_sub(MAX_LINES);
    if hidden > 0 {
        parts.push(format!(
            "and {}",
            plural_with(hidden, "more line", "more lines")
        ));
    }
    if parts.is_empty() {
        // Only the order or trailing spaces changed.
        return "changed".to_string();
    }
    format!("changed: {}", parts.join(", "))
}

impl Change {
    /// The exact text, for a machine on its own.
    pub(super) fn full(&self, s: Style) -> String {
        let v = |x: &str| s.v(x);
        let a = s.arrow();
        match self {
            Change::Renamed { old, .. } => format!("renamed from {}", v(old)),
            Change::Role { old, new } => format!("role {} {a} {}", v(old), v(new)),
            Change::Image { old, new } => format!("image {} {a} {}", v(old), v(new)),
            Change::ImageContent { image } => {
                format!("image {} has new content (see images)", v(image))
            }
            Change::Loader { old, new } => format!("UEFI boot {} {a} {}", v(old), v(new)),
            Change::KernelArg { old, new } => match (old, new) {
                (None, Some(n)) => format!("kernel arg added: {}", v(n)),
                (Some(o), None) => format!("kernel arg removed: {}", v(o)),
                (Some(o), Some(n)) => format!("kernel arg changed: {} {a} {}", v(o), v(n)),
                (None, None) => String::new(),
            },
            Change::KernelArgsOrder { old, new } => format!(
                "kernel args reordered: {} {a} {}",
                v(&old.join(" ")),
                v(&new.join(" "))
            ),
            Change::File {
                file,
                lines: Some(l),
                ..
            } => format!("file {} {}", v(file), lines_text(l, None, s)),
            Change::File { file, old, new, .. } => format!(
                "file {} {}",
                v(file),
                added_removed(old.is_some(), new.is_some())
            ),
            Change::Mac { old, new } => addr("MAC", old, new, s),
            Change::Ip { old, new } => addr("IP", old, new, s),
            Change::Script { .. } => {
                "iPXE script changed beyond what the plan shows (a script template?)".to_string()
            }
            Change::Label { label, old, new } => match (old, new) {
                (Some(o), Some(n)) => format!("label {}: {} {a} {}", v(label), v(o), v(n)),
                (None, Some(n)) => format!("label added: {}", v(&format!("{label}={n}"))),
                (Some(o), _) => format!("label removed: {}", v(&format!("{label}={o}"))),
                (None, None) => String::new(),
            },
            Change::Other { field, old, new } => {
                format!("{field}: {} {a} {}", v(&compact(old)), v(&compact(new)))
            }
        }
    }

    /// The text shared by a group of machines: per-machine values are left
    /// to [`Change::detail`] or replaced by placeholders (`{name}`, `{ip}`,
    /// `{mac}`) in kernel args.
    pub(super) fn shared(&self, m: &Own, s: Style) -> String {
        match self {
            Change::Renamed { .. } => "renamed".to_string(),
            Change::Mac { old, new } => {
                format!("MAC {}", added_removed(old.is_some(), new.is_some()))
            }
            Change::Ip { old, new } => {
                format!("IP {}", added_removed(old.is_some(), new.is_some()))
            }
            Change::KernelArg { old, new } => Change::KernelArg {
                old: old.as_deref().map(|x| placeholders(x, m)),
                new: new.as_deref().map(|x| placeholders(x, m)),
            }
            .full(s),
            Change::Other { field, .. } => format!("{field} changed"),
            Change::File {
                file,
                lines: Some(l),
                ..
            } => format!("file {} {}", s.v(file), lines_text(l, Some(m), s)),
            _ => self.full(s),
        }
    }

    /// The per-machine part left out of [`Change::shared`], labelled.
    pub(super) fn detail(&self, s: Style) -> Option<String> {
        let a = s.arrow();
        let values = |old: &Option<String>, new: &Option<String>| match (old, new) {
            (Some(o), Some(n)) => format!("{} {a} {}", s.v(o), s.v(n)),
            (Some(x), None) | (None, Some(x)) => s.v(x),
            (None, None) => String::new(),
        };
        match self {
            Change::Renamed { old, .. } => Some(format!("was {}", s.v(old))),
            Change::Mac { old, new } => Some(format!("MAC {}", values(old, new))),
            Change::Ip { old, new } => Some(format!("IP {}", values(old, new))),
            Change::Other { field, old, new } => Some(format!(
                "{field} {} {a} {}",
                s.v(&compact(old)),
                s.v(&compact(new))
            )),
            _ => None,
        }
    }
}

fn added_removed(old: bool, new: bool) -> &'static str {
    match (old, new) {
        (false, true) => "added",
        (true, false) => "removed",
        _ => "changed",
    }
}

fn addr(what: &str, old: &Option<String>, new: &Option<String>, s: Style) -> String {
    let a = s.arrow();
    match (old, new) {
        (Some(o), Some(n)) => format!("{what} changed: {} {a} {}", s.v(o), s.v(n)),
        (None, Some(n)) => format!("{what} added: {}", s.v(n)),
        (Some(o), None) => format!("{what} removed: {}", s.v(o)),
        (None, None) => String::new(),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_string(),
        other => other.to_string(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Style {
    Plain,
    Markdown,
}

impl Style {
    /// A value: as is, or as markdown inline code.
    pub(super) fn v(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Markdown => code(s),
        }
    }

    /// Text outside values: as is, or escaped for markdown.
    pub(super) fn text(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Markdown => md_text(s),
        }
    }

    /// A name that heads an item: as is, or in bold.
    pub(super) fn strong(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Markdown => format!("**{}**", md_text(s)),
        }
    }

    pub(super) fn arrow(self) -> &'static str {
        match self {
            Style::Plain => "->",
            Style::Markdown => "→",
        }
    }

    pub(super) fn range(self) -> &'static str {
        match self {
            Style::Plain => "..",
            Style::Markdown => "–",
        }
    }
}

/// Markdown inline code that holds any text: a fence longer than any run
/// of backticks inside, padded when the text starts or ends with one.
pub(super) fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ");
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if s.starts_with('`') || s.ends_with('`') || s.is_empty() {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

/// Text outside code in markdown: escapes what GitHub would interpret.
pub(super) fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' | '~' | '!' | '@'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(8)]
}

/// Machine names with runs of consecutive numbers folded: `node01..node40`.
fn name_runs(names: &[&str], s: Style) -> Vec<String> {
    fn split(n: &str) -> (&str, &str) {
        let digits = n.bytes().rev().take_while(u8::is_ascii_digit).count();
        n.split_at(n.len() - digits)
    }
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let (prefix, num) = split(names[i]);
        let mut j = i;
        if !num.is_empty() && num.len() <= 18 {
            let mut cur: u64 = num.parse().unwrap_or(0);
            while j + 1 < names.len() {
                let (p2, n2) = split(names[j + 1]);
                if p2 == prefix && n2.len() == num.len() && n2.parse::<u64>().ok() == Some(cur + 1)
                {
                    cur += 1;
                    j += 1;
                } else {
                    break;
                }
            }
        }
        match j - i {
            0 => out.push(names[i].to_string()),
            1 => {
                out.push(names[i].to_string());
                out.push(names[j].to_string());
            }
            _ => out.push(format!("{}{}{}", names[i], s.range(), names[j])),
        }
        i = j + 1;
    }
    out
}

/// At most [`MAX_NAMES`] names or runs, then "and N more".
pub(super) fn name_list(names: &[&str], s: Style) -> String {
    let runs = name_runs(names, s);
    if runs.len() <= MAX_NAMES {
        return runs.join(", ");
    }
    let shown = &runs[..MAX_NAMES];
    let count_shown: usize = shown
        .iter()
        .map(|r| match r.split_once(s.range()) {
            Some((a, b)) => {
                let a = names.iter().position(|n| *n == a).unwrap_or(0);
                let b = names.iter().position(|n| *n == b).unwrap_or(a);
                b - a + 1
            }
            None => 1,
        })
        .sum();
    format!(
        "{}, and {} more",
        shown.join(", "),
        names.len().saturating_sub(count_shown)
    )
}

pub(super) fn labels_text(labels: &BTreeMap<String, String>, s: Style) -> String {
    labels
        .iter()
        .map(|(k, v)| s.v(&format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(", ")
}

fn artifact_text(a: &Artifact, s: Style) -> String {
    match a.pin() {
        Some((alg, h)) => format!("{} ({alg} {})", s.v(a.location()), s.v(short_hash(h))),
        None => s.v(a.location()),
    }
}

pub(super) fn delta_text(d: &ImageDelta, s: Style) -> String {
    let a = s.arrow();
    let opt = |o: &Option<String>| s.v(o.as_deref().unwrap_or("(none)"));
    match d {
        ImageDelta::Kind { old, new } => format!("kind {} {a} {}", s.v(old), s.v(new)),
        ImageDelta::Method { old, new } => format!("method {} {a} {}", opt(old), opt(new)),
        ImageDelta::Artifact { role, old, new } => match (old, new) {
            (Some(o), Some(n)) if o.location() == n.location() => {
                let mut t = format!("{role} {}:", s.v(o.location()));
                match (o.pin(), n.pin()) {
                    (Some((oa, oh)), Some((na, nh))) if oa == na => {
                        let _ = write!(
                            t,
                            " {oa} {} {a} {}",
                            s.v(short_hash(oh)),
                            s.v(short_hash(nh))
                        );
                    }
                    (op, np) => {
                        let p = |x: Option<(&str, &str)>| {
                            x.map(|(al, h)| format!("{al} {}", s.v(short_hash(h))))
                                .unwrap_or_else(|| "unpinned".to_string())
                        };
                        let _ = write!(t, " {} {a} {}", p(op), p(np));
                    }
                }
                if let (Some(os), Some(ns)) = (o.size(), n.size())
                    && os != ns
                {
                    let _ = write!(t, ", {os} {a} {ns} bytes");
                }
                t
            }
            (Some(o), Some(n)) => {
                format!("{role} {} {a} {}", artifact_text(o, s), artifact_text(n, s))
            }
            (None, Some(n)) => format!("{role} added: {}", artifact_text(n, s)),
            (Some(o), None) => format!("{role} removed: {}", artifact_text(o, s)),
            (None, None) => String::new(),
        },
        ImageDelta::Other { field, old, new } => {
            format!("{field}: {} {a} {}", s.v(&compact(old)), s.v(&compact(new)))
        }
    }
}

pub(super) fn site_text(c: &SiteChange, s: Style) -> String {
    let a = s.arrow();
    match (c.what.as_str(), &c.path) {
        ("file", Some(p)) => format!(
            "{} {}",
            s.v(p),
            added_removed(!c.old.is_null(), !c.new.is_null())
        ),
        ("reservation", Some(name)) => format!(
            "reservation {} (boot = false): {} {a} {}",
            s.v(name),
            s.v(&compact(&c.old)),
            s.v(&compact(&c.new))
        ),
        ("site", _) => format!(
            "site name {} {a} {}",
            s.v(&compact(&c.old)),
            s.v(&compact(&c.new))
        ),
        (what, _) => format!(
            "{what}: {} {a} {}",
            s.v(&compact(&c.old)),
            s.v(&compact(&c.new))
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_into_runs() {
        let n = ["node01", "node02", "node03", "node05", "node06", "x"];
        assert_eq!(
            name_runs(&n, Style::Plain),
            vec!["node01..node03", "node05", "node06", "x"]
        );
        let many: Vec<String> = (0..40).map(|i| format!("n{:03}", i * 2)).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(name_list(&refs, Style::Plain).ends_with(", and 28 more"));
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a"), "`a`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a"), "`` `a ``");
    }
}
