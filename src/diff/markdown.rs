//! `bootc diff --format markdown`: for a pull request, a job summary or a
//! comment.

use std::fmt::Write as _;

use super::report::{Report, SideInfo};
use super::text::{Style, code, md_text};
use super::view::{Doc, Marks, View};
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
        l.write(&mut o, &marks(l.title));
    }
    for s in &d.sections {
        s.write(&mut o, Style::Markdown, &marks(s.title), details);
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

/// Per-machine details: one line for the group.
fn details(o: &mut String, v: &View) {
    if v.details.is_empty() {
        return;
    }
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

/// A heading with a capital: `added` -> `#### Added`.
fn marks(title: &str) -> Marks {
    let mut t = title.to_string();
    t[..1].make_ascii_uppercase();
    Marks {
        heading: format!("\n#### {t}\n"),
        item: "- ",
        sub: "  - ",
    }
}
