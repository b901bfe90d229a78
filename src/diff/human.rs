//! `bootc diff --format human`: for people, in a terminal.

use std::fmt::Write as _;

use super::report::{Report, SideInfo};
use super::text::Style;
use super::view::{Doc, Marks, View};
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
        l.write(&mut o, &marks(l.title));
    }
    for s in &d.sections {
        s.write(&mut o, Style::Plain, &marks(s.title), details);
    }
    o
}

/// Per-machine details: a line each.
fn details(o: &mut String, v: &View) {
    for (name, d) in &v.details {
        let _ = writeln!(o, "      {name}: {d}");
    }
    if v.more_details > 0 {
        let _ = writeln!(o, "      and {} more", v.more_details);
    }
}

fn marks(title: &str) -> Marks {
    Marks {
        heading: format!("\n{title}:"),
        item: "  ",
        sub: "    ",
    }
}
