//! `bootc diff --format human`: for people, in a terminal.

use std::fmt::Write as _;

use super::report::{Report, SideInfo};
use super::text::Style;
use super::view::{Doc, MAX_CHANGES, Section};
use crate::diag::plural_with;

fn side_line(side: &SideInfo) -> String {
    format!(
        "{} (site {}, {})",
        side.label,
        side.site,
        plural_with(side.machines, "machine", "machines")
    )
}

pub fn write(r: &Report) -> String {
    let d = Doc::new(r, Style::Plain);
    let mut o = String::new();
    let _ = writeln!(o, "base: {}", side_line(d.base));
    let _ = writeln!(o, "head: {}", side_line(d.head));
    let _ = writeln!(o);
    let _ = writeln!(o, "{}", d.headline);
    if !d.changed {
        return o;
    }
    if d.machines.0 > 0 {
        let cells: Vec<String> = d.cells.iter().map(|(w, n)| format!("{w} {n}")).collect();
        let _ = writeln!(o, "  machines changing: {}", cells.join(", "));
    }
    if let Some(l) = &d.labels_only {
        let _ = writeln!(o, "  {l}");
    }
    for l in &d.lists {
        l.write(&mut o, &format!("\n{}:", l.title), "  ", "    ");
    }
    for s in &d.sections {
        section(&mut o, s);
    }
    o
}

fn section(o: &mut String, s: &Section) {
    if s.views.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n{}:", s.title);
    for v in &s.views {
        let labels = if v.labels.is_empty() {
            String::new()
        } else {
            format!(" ({})", v.labels)
        };
        match (&v.names, v.lines.len()) {
            (None, 1) => {
                let _ = writeln!(o, "  {}{labels}: {}", v.title, v.lines[0]);
                continue;
            }
            (None, _) => {
                let _ = writeln!(o, "  {}{labels}", v.title);
            }
            (Some(names), _) => {
                let _ = writeln!(o, "  {}{labels}: {names}", v.title);
            }
        }
        for l in v.lines.iter().take(MAX_CHANGES) {
            let _ = writeln!(o, "    {l}");
        }
        if v.lines.len() > MAX_CHANGES {
            let _ = writeln!(o, "    and {} more changes", v.lines.len() - MAX_CHANGES);
        }
        for (name, d) in &v.details {
            let _ = writeln!(o, "      {name}: {d}");
        }
        if v.more_details > 0 {
            let _ = writeln!(o, "      and {} more", v.more_details);
        }
    }
    if let Some(m) = &s.more {
        let _ = writeln!(o, "  {}", m.replace('`', ""));
    }
}
