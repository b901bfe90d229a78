//! `bootc test --format json`: the report as one JSON document.

use super::Report;

pub fn render(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}
