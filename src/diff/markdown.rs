//! `bootc diff --format markdown`: for a pull request, a job summary or a
//! comment.

use std::fmt::Write as _;

use super::report::{Report, SideInfo};
use super::text::{Style, code, md_text};
use super::view::{Doc, MAX_CHANGES, Section};
use crate::diag::plural_with;

fn side_line(x: &SideInfo) -> String {
    format!(
        "{} (site {}, {})",
        code(&x.label),
        code(&x.site),
        plural_with(x.machines, "machine", "machines")
    )
}

pub fn write(r: &Report) -> String {
    let d = Doc::new(r, Style::Markdown);
    let mut o = String::new();
    let _ = writeln!(o, "### bootc diff: {}", md_text(&d.headline));
    let _ = writeln!(o);
    let _ = writeln!(o, "{} → {}", side_line(d.base), side_line(d.head));
    if !d.changed {
        return o;
    }
    let (changed, added, removed) = d.machines;
    if changed + added + removed > 0 {
        let mut cells: Vec<(&str, usize)> =
            vec![("changed", changed), ("added", added), ("removed", removed)];
        if changed > 0 {
            cells.extend(&d.cells);
        }
        table(&mut o, &cells);
    }
    if let Some(l) = &d.labels_only {
        let _ = writeln!(o, "\n{l}.");
    }
    for l in &d.lists {
        l.write(
            &mut o,
            &format!("\n#### {}\n", capital(l.title)),
            "- ",
            "  - ",
        );
    }
    for s in &d.sections {
        section(&mut o, s);
    }
    o
}

/// The summary: a header row of what is counted, a row of counts.
fn table(o: &mut String, cells: &[(&str, usize)]) {
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "| {} |",
        cells.iter().map(|c| c.0).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(o, "|{}", "---:|".repeat(cells.len()));
    let _ = writeln!(
        o,
        "| {} |",
        cells
            .iter()
            .map(|c| c.1.to_string())
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

fn section(o: &mut String, s: &Section) {
    if s.views.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n#### {}\n", capital(s.title));
    for v in &s.views {
        let labels = if v.labels.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.labels)
        };
        match (&v.names, v.lines.len()) {
            (None, 1) => {
                let _ = writeln!(o, "- **{}**{labels}: {}", md_text(&v.title), v.lines[0]);
                continue;
            }
            (None, _) => {
                let _ = writeln!(o, "- **{}**{labels}", md_text(&v.title));
            }
            (Some(names), _) => {
                let _ = writeln!(o, "- **{}**{labels}: {}", v.title, md_text(names));
            }
        }
        for l in v.lines.iter().take(MAX_CHANGES) {
            let _ = writeln!(o, "  - {l}");
        }
        if v.lines.len() > MAX_CHANGES {
            let _ = writeln!(o, "  - and {} more changes", v.lines.len() - MAX_CHANGES);
        }
        if !v.details.is_empty() {
            let mut d: Vec<String> = v
                .details
                .iter()
                .map(|(n, d)| format!("{}: {d}", md_text(n)))
                .collect();
            if v.more_details > 0 {
                d.push(format!("and {} more", v.more_details));
            }
            let _ = writeln!(o, "  - per machine: {}", d.join("; "));
        }
    }
    if let Some(m) = &s.more {
        let _ = writeln!(o, "- {m}");
    }
}

/// `added` -> `Added`.
fn capital(title: &str) -> String {
    let mut t = title.to_string();
    t[..1].make_ascii_uppercase();
    t
}
