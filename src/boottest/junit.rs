//! `bootc test --format junit`: one testsuite, one testcase per boot, a
//! `failure` element for each failed one (for CI test reports).

use std::fmt::Write as _;

use super::Report;

/// Text and attribute values: markup escaped, characters XML 1.0 cannot
/// hold dropped.
fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\n' | '\t' => o.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => o.push(c),
        }
    }
    o
}

pub fn render(r: &Report) -> String {
    let failures = r.total - r.passed;
    let time: f64 = r.boots.iter().map(|b| b.seconds).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"bootc test\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{time:.1}\">",
        r.total
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"bootc test ({})\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time:.1}\">",
        r.accel, r.total
    );
    for b in &r.boots {
        let _ = write!(
            o,
            "    <testcase classname=\"bootc.{}\" name=\"{} ({})\" time=\"{:.1}\"",
            b.firmware,
            xml(&b.machine),
            xml(&b.role),
            b.seconds
        );
        let mut chain = String::new();
        for q in &b.requests {
            let _ = writeln!(
                chain,
                "{} {}{}",
                q.status,
                q.path,
                if q.complete { "" } else { " (cut off)" }
            );
        }
        if let Some(c) = &b.cmdline {
            let _ = writeln!(chain, "kernel command line: {c}");
        }
        o.push_str(">\n");
        if !b.passed {
            let _ = writeln!(
                o,
                "      <failure message=\"{}\" type=\"{}\">{}</failure>",
                xml(&b.verdict),
                xml(b.stopped_at.as_deref().unwrap_or("failed")),
                xml(&chain)
            );
        }
        let _ = writeln!(
            o,
            "      <system-out>{}\n{}</system-out>",
            xml(&b.verdict),
            xml(&chain)
        );
        o.push_str("    </testcase>\n");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}
