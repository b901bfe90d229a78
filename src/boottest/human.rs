//! `bootc test` for people: a table, then the fetch chain of each failed
//! boot.

use std::fmt::Write as _;

use super::{Boot, Report};
use crate::escape;

/// One row's line, printed as each boot ends.
pub fn progress(b: &Boot) -> String {
    format!(
        "{} {} {} ({}): {} in {:.1} s",
        if b.passed { "ok" } else { "FAILED" },
        b.machine,
        b.firmware,
        b.accel,
        escape::line(&b.verdict),
        b.seconds
    )
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let head = ["MACHINE", "ROLE", "FIRMWARE", "RESULT", "TIME", "VERDICT"];
    let rows: Vec<[String; 6]> = r
        .boots
        .iter()
        .map(|b| {
            [
                b.machine.clone(),
                b.role.clone(),
                b.firmware.to_string(),
                if b.passed { "pass" } else { "FAIL" }.to_string(),
                format!("{:.1} s", b.seconds),
                escape::line(&b.verdict).into_owned(),
            ]
        })
        .collect();
    let mut width = head.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |o: &mut String, cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = width[i]);
            }
        }
        o.push_str(l.trim_end());
        o.push('\n');
    };
    line(&mut o, &head);
    for row in &rows {
        line(&mut o, &row.each_ref().map(String::as_str));
    }
    for b in r.boots.iter().filter(|b| !b.passed) {
        let _ = writeln!(o, "\n{} under {}: the fetch chain", b.machine, b.firmware);
        if !b.recorded {
            o.push_str("  (over TFTP, from QEMU's server: not recorded)\n");
        } else if b.requests.is_empty() {
            o.push_str("  (no request)\n");
        }
        for q in &b.requests {
            let _ = writeln!(
                o,
                "  {} {}{}",
                q.status,
                escape::line(&q.path),
                if q.complete { "" } else { " (cut off)" }
            );
        }
        if let Some(c) = &b.cmdline {
            let _ = writeln!(o, "  kernel command line: {}", escape::line(c));
        }
    }
    for s in &r.skipped {
        let _ = writeln!(o, "skipped: {}", escape::line(s));
    }
    let _ = writeln!(
        o,
        "\nboots: {}/{} passed (QEMU, {})",
        r.passed, r.total, r.accel
    );
    o
}
