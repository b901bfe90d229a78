//! What the shipped iPXE can do (SPEC section 10): Debian 12's iPXE has no
//! HTTPS and no `imgverify`, `imgtrust`, `imgextract`, `sha256sum` or
//! `poweroff`. A URL or script that needs one is an error at its place,
//! unless `[ipxe] features` declares a custom build that has it.

use super::{Ctx, loc};
use crate::diag::{Diag, FileId, Loc};
use crate::model::S;

/// The features a custom iPXE build may declare, and the commands each is.
pub const FEATURES: [&str; 7] = [
    "https",
    "imgverify",
    "imgtrust",
    "imgextract",
    "sha256sum",
    "sha1sum",
    "poweroff",
];

/// The declared features (unknown ones are errors at their place).
pub(super) fn declared(cx: &mut Ctx, file: FileId, list: Option<&[S<String>]>) -> Vec<String> {
    let mut out = Vec::new();
    for f in list.unwrap_or_default() {
        let name = f.get_ref();
        if FEATURES.contains(&name.as_str()) {
            out.push(name.clone());
        } else {
            cx.diags.push(
                Diag::error(format!("unknown iPXE feature `{name}`"))
                    .at(loc(file, f), "not a feature bootc knows")
                    .help(format!("features: {}", FEATURES.join(", "))),
            );
        }
    }
    out
}

/// What to do about an https URL an artifact names.
pub(super) const ARTIFACT_HELP: &str = "use http:// (the pin keeps the bytes honest), vendor it ([site] vendor = true), or declare a custom iPXE build: [ipxe] features = [\"https\"]";
/// What to do about an https base-url DHCP hands to iPXE.
pub(super) const BASE_URL_HELP: &str = "serve the tree over http:// for iPXE too (the signed manifest keeps it honest), or declare a custom iPXE build: [ipxe] features = [\"https\"]";

/// A URL iPXE fetches: `https://` needs the `https` feature.
pub(super) fn check_url(cx: &mut Ctx, url: &str, at: Loc, help: &str) {
    if url.starts_with("https://") && !cx.features.iter().any(|f| f == "https") {
        cx.diags.push(
            Diag::error(format!(
                "iPXE cannot fetch `{url}`: Debian 12's iPXE has no HTTPS"
            ))
            .at(at, "an https URL iPXE would fetch")
            .help(help),
        );
    }
}

/// Every line of `text` (an iPXE script's source) whose command is one the
/// shipped iPXE lacks, as (byte range, command).
pub fn unsupported_commands<'a>(
    text: &'a str,
    features: &[String],
) -> Vec<(std::ops::Range<usize>, &'a str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset + (line.len() - line.trim_start().len());
        offset += line.len();
        let word = line.split_whitespace().next().unwrap_or("");
        if FEATURES[1..].contains(&word) && !features.iter().any(|f| f == word) {
            out.push((start..start + word.len(), word));
        }
    }
    out
}

/// The site's iPXE templates (overrides of built-in scripts, role scripts,
/// any `*.ipxe` or `*.ipxe.j2` under templates/) may not run a command the
/// shipped iPXE lacks.
pub(super) fn check_scripts(cx: &mut Ctx, scripts: &[String]) {
    let loaded = cx.loaded;
    for (name, &file) in &loaded.templates {
        let ipxe = name.ends_with(".ipxe") || name.ends_with(".ipxe.j2") || scripts.contains(name);
        if !ipxe {
            continue;
        }
        let text = loaded.sources.text(file);
        for (span, command) in unsupported_commands(text, &cx.features) {
            cx.diags.push(
                Diag::error(format!("`{command}` is not a command of Debian 12's iPXE"))
                    .at(Loc::new(file, span), "\"command not found\" at boot")
                    .help(format!("remove it, or declare a custom iPXE build that has it: [ipxe] features = [\"{command}\"]")),
            );
        }
    }
}
