//! `bootc test --format markdown`: for a pull-request comment or a job
//! summary. The first line is the summary (`boots: 11/12 passed …`).

use std::fmt::Write as _;

use super::Report;

/// Text safe in a table cell: no line breaks, `|` and markup escaped.
fn cell(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '~' => {
                o.push('\\');
                o.push(c);
            }
            c if c.is_control() => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let failed = r.total - r.passed;
    let _ = writeln!(
        o,
        "boots: {}/{} passed{} (QEMU, {})",
        r.passed,
        r.total,
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        },
        r.accel
    );
    o.push_str("\n| machine | role | firmware | result | time | verdict |\n");
    o.push_str("|---|---|---|---|---:|---|\n");
    for b in &r.boots {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.1} s | {} |",
            cell(&b.machine),
            cell(&b.role),
            b.firmware,
            if b.passed { "pass" } else { "**FAIL**" },
            b.seconds,
            cell(&b.verdict)
        );
    }
    for b in r.boots.iter().filter(|b| !b.passed) {
        let _ = writeln!(
            o,
            "\n<details><summary>{} under {}: the fetch chain</summary>\n",
            cell(&b.machine),
            b.firmware
        );
        for q in &b.requests {
            let _ = writeln!(
                o,
                "- {} {}{}",
                q.status,
                cell(&q.path),
                if q.complete { "" } else { " (cut off)" }
            );
        }
        if !b.recorded {
            o.push_str("- over TFTP, from QEMU's server: not recorded\n");
        } else if b.requests.is_empty() {
            o.push_str("- no request\n");
        }
        o.push_str("\n</details>\n");
    }
    for s in &r.skipped {
        let _ = writeln!(o, "\nskipped: {}", cell(s));
    }
    o
}
