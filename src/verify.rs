//! `bootc verify`: check a built or deployed tree against its signed
//! manifest. Every problem is collected (signature, each file's size and
//! hash, missing and unlisted files, unsafe manifest paths), then reported
//! the way the compiler reports a site's problems, then a summary.
//!
//! A target is one of:
//! - an output tree (`public/`, holding `http/manifest.json`): every file;
//! - a web root as deployed (`rsync public/http/ server:/var/www/boot/`,
//!   holding `manifest.json`): the `http/` files; the others are skipped;
//! - an `http://` or `https://` URL where `http/` is served: its files are
//!   fetched (streamed, never held in memory), the others are skipped.

mod local;
mod place;
mod remote;

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use rayon::prelude::*;

use crate::diag::{self, Diag};
use crate::manifest::{MANIFEST, MANIFEST_FORMAT, Manifest, ManifestFile, SIGNATURE};
use crate::sign::{self, Checked, PublicKey};
use place::{Place, Small};

/// Why nothing could be verified (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{}: not a bootc output tree or web root (no http/manifest.json, no manifest.json)",
        .0.display()
    )]
    NotATree(PathBuf),
    #[error("{url}: {why}")]
    Http { url: String, why: String },
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// Signature problems first, then manifest, then files by path.
    order: u8,
    /// The file concerned, relative to the tree root ('' when none).
    pub path: String,
    pub message: String,
    /// `= …` lines under the message.
    pub notes: Vec<String>,
}

impl Problem {
    fn file(path: &str, message: impl Into<String>) -> Self {
        Problem {
            order: 2,
            path: path.to_string(),
            message: message.into(),
            notes: Vec::new(),
        }
    }

    fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The problem for the diagnostics renderer: an error at a path.
    pub fn diag(&self) -> Diag {
        let d = Diag::error(self.message.clone());
        let d = if self.path.is_empty() {
            d
        } else {
            d.on(self.path.clone())
        };
        self.notes.iter().fold(d, |d, n| d.note(n.clone()))
    }
}

/// The signature's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signature {
    Good { trusted_comment: String },
    Failed,
}

/// What `verify` found.
pub struct Report {
    pub target: String,
    pub key_id: String,
    pub signature: Signature,
    pub site: Option<String>,
    pub build_id: Option<String>,
    /// Files whose size and hash were checked (and matched or not).
    pub checked: usize,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    /// `note:` lines: what was skipped and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, rustc-style, then a summary line if verification failed
    /// (for stderr); the notes go first.
    pub fn human(&self, color: bool) -> String {
        let mut out: String = self
            .notes
            .iter()
            .map(|n| diag::note_line(n, color))
            .collect();
        let problems: Vec<Diag> = self.problems.iter().map(Problem::diag).collect();
        out.push_str(&diag::plain(&problems, color));
        if !self.ok() {
            let sig = match &self.signature {
                Signature::Good { .. } => "signature good",
                Signature::Failed => "signature NOT verified",
            };
            out.push_str(&diag::error_line(
                &format!(
                    "verification of {} failed: {}; {sig}, {} checked",
                    self.target,
                    diag::plural(self.problems.len(), "problem"),
                    diag::plural(self.checked, "file"),
                ),
                color,
            ));
        }
        out
    }

    /// The one-line success summary (for stdout).
    pub fn summary(&self) -> String {
        let text = format!(
            "verified {}: site {}, build {}, signed by key {}; {} ({}) match the manifest",
            self.target,
            self.site.as_deref().unwrap_or("?"),
            self.build_id.as_deref().unwrap_or("?"),
            self.key_id,
            crate::diag::plural(self.checked, "file"),
            crate::templates::human_size(self.bytes),
        );
        crate::escape::line(&text).into_owned()
    }
}

/// Why a manifest path must not be used, if it must not.
pub fn unsafe_path(p: &str) -> Option<&'static str> {
    if p.is_empty() {
        return Some("it is empty");
    }
    if p.starts_with('/') {
        return Some("it is absolute");
    }
    if p.contains('\0') {
        return Some("it holds a NUL byte");
    }
    for c in p.split('/') {
        match c {
            ".." => return Some("it contains `..`"),
            "" | "." => return Some("it has an empty or `.` component"),
            _ => {}
        }
    }
    None
}

/// Verifies `target` (a folder or URL) against `pk`.
pub fn verify(target: &str, pk: &PublicKey, timeout: Duration) -> Result<Report, VerifyError> {
    let place = Place::open(target, timeout)?;
    let mut report = Report {
        target: target.to_string(),
        key_id: pk.id(),
        signature: Signature::Failed,
        site: None,
        build_id: None,
        checked: 0,
        bytes: 0,
        problems: Vec::new(),
        notes: Vec::new(),
    };
    let Some(manifest) = read_manifest(&place, &mut report)? else {
        return Ok(report);
    };
    check_signature(&place, pk, &manifest, &mut report)?;
    let Some(doc) = read_doc(&manifest, &mut report) else {
        report.problems.sort();
        return Ok(report);
    };
    let (seen, to_check) = listed(&doc, &place, &mut report);
    report.checked = to_check.len();
    report.bytes = to_check.iter().map(|f| f.size).sum();
    check_files(&place, &to_check, &seen, &mut report)?;
    if let Place::Url { .. } = place {
        report
            .notes
            .push("files the manifest does not list cannot be seen over HTTP".into());
    }
    report.problems.sort();
    Ok(report)
}

/// A problem of the manifest itself.
fn manifest_problem(message: String) -> Problem {
    Problem {
        order: 1,
        path: MANIFEST.into(),
        message,
        notes: Vec::new(),
    }
}

/// The manifest's bytes; `None` when it is there but refused (the problem
/// is in `report`).
fn read_manifest(place: &Place, report: &mut Report) -> Result<Option<Vec<u8>>, VerifyError> {
    match place.read_small(MANIFEST, remote::MANIFEST_MAX)? {
        Small::Bytes(b) => Ok(Some(b)),
        Small::Missing => Err(match place {
            Place::Url { base, .. } => VerifyError::Http {
                url: format!("{base}manifest.json"),
                why: "not found (HTTP 404): is this where http/ is served?".into(),
            },
            Place::Dir { root, .. } => VerifyError::NotATree(root.clone()),
        }),
        Small::Refused(why) => {
            report.problems.push(manifest_problem(why));
            Ok(None)
        }
    }
}

/// Checks the manifest's signature against `pk`: sets `report.signature`,
/// or adds why not.
fn check_signature(
    place: &Place,
    pk: &PublicKey,
    manifest: &[u8],
    report: &mut Report,
) -> Result<(), VerifyError> {
    let sig_problem = |message: String| Problem {
        order: 0,
        path: SIGNATURE.to_string(),
        message,
        notes: Vec::new(),
    };
    match place.read_small(SIGNATURE, remote::SIGNATURE_MAX)? {
        Small::Refused(why) => report.problems.push(sig_problem(why)),
        Small::Missing => report.problems.push(
            sig_problem("missing: the manifest is not signed".into())
                .note("help: build with `--sign-key FILE` (or BOOTC_SIGN_KEY=FILE) and deploy the .minisig with the tree"),
        ),
        Small::Bytes(sig) => {
            let text = String::from_utf8_lossy(&sig);
            match sign::check(pk, &text, manifest) {
                Checked::Good { trusted_comment } => {
                    report.signature = Signature::Good { trusted_comment }
                }
                Checked::OtherKey { signed_by } => report.problems.push(
                    sig_problem(format!(
                        "signed by another key: {signed_by}, not {}",
                        pk.id()
                    ))
                    .note("help: check --pubkey, or whether the tree was built and signed by someone else"),
                ),
                Checked::Bad { why } => report.problems.push(
                    sig_problem(format!(
                        "the signature does not match {MANIFEST}: the manifest or its signature was changed after signing"
                    ))
                    .note(format!("minisign: {why}")),
                ),
                Checked::Unreadable { why } => report
                    .problems
                    .push(sig_problem(format!("not a minisign signature ({why})"))),
            }
        }
    }
    Ok(())
}

/// The manifest, parsed, if it is one of the format this bootc reads; its
/// site and build go in `report`, and a good signature's trusted comment
/// must name them.
fn read_doc(manifest: &[u8], report: &mut Report) -> Option<Manifest> {
    let doc: Manifest = match serde_json::from_slice(manifest) {
        Ok(d) => d,
        Err(e) => {
            let p = manifest_problem(format!("not a bootc manifest: {e}"));
            report.problems.push(p);
            return None;
        }
    };
    if doc.format != MANIFEST_FORMAT {
        report.problems.push(manifest_problem(format!(
            "manifest format {} is not the one this bootc reads ({MANIFEST_FORMAT})",
            doc.format
        )));
        return None;
    }
    if let Signature::Good { trusted_comment } = &report.signature {
        let expected = sign::trusted_comment(&doc.site, &doc.build_id);
        if trusted_comment.starts_with("site:") && *trusted_comment != expected {
            report.problems.push(manifest_problem(format!(
                "the signature's trusted comment `{trusted_comment}` does not name this manifest's site and build (`{expected}`)"
            )));
        }
    }
    report.site = Some(doc.site.clone());
    report.build_id = Some(doc.build_id.clone());
    Some(doc)
}

/// Which listed files can be checked here: the paths listed (each once,
/// safe ones only) and the files to check. What is refused is a problem,
/// what is skipped a note.
fn listed<'a>(
    doc: &'a Manifest,
    place: &Place,
    report: &mut Report,
) -> (BTreeSet<&'a str>, Vec<&'a ManifestFile>) {
    let mut seen = BTreeSet::new();
    let mut to_check: Vec<&ManifestFile> = Vec::new();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for f in &doc.files {
        if let Some(why) = unsafe_path(&f.path) {
            report.problems.push(manifest_problem(format!(
                "lists the path `{}`, which is refused: {why}",
                f.path
            )));
            continue;
        }
        if f.path == MANIFEST || f.path == SIGNATURE {
            report.problems.push(manifest_problem(format!(
                "lists itself or its signature (`{}`)",
                f.path
            )));
            continue;
        }
        if !seen.insert(f.path.as_str()) {
            let p = manifest_problem(format!("lists `{}` twice", f.path));
            report.problems.push(p);
            continue;
        }
        if place.holds(&f.path) {
            to_check.push(f);
        } else {
            let group = match f.path.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => f.path.clone(),
            };
            *skipped.entry(group).or_default() += 1;
        }
    }
    if !skipped.is_empty() {
        let list: Vec<String> = skipped
            .iter()
            .map(|(g, n)| {
                if g.ends_with('/') {
                    format!("{g} ({})", diag::plural(*n, "file"))
                } else {
                    g.clone()
                }
            })
            .collect();
        let why = match place {
            Place::Url { .. } => "only http/ is served over HTTP",
            Place::Dir { .. } => "this is a web root: only http/ is deployed here",
        };
        report.notes.push(format!(
            "skipped {} outside http/ ({why}): {}",
            diag::plural(skipped.values().sum(), "listed file"),
            list.join(", ")
        ));
    }
    if !doc.remote.is_empty() {
        report.notes.push(format!(
            "{} listed with their pins are not fetched (iPXE gets them from their own URLs)",
            diag::plural(doc.remote.len(), "remote artifact")
        ));
    }
    (seen, to_check)
}

/// Checks each file's size and hash; in a folder, every file not listed
/// (`seen`) is a problem too.
fn check_files(
    place: &Place,
    to_check: &[&ManifestFile],
    seen: &BTreeSet<&str>,
    report: &mut Report,
) -> Result<(), VerifyError> {
    match place {
        Place::Dir { root, http_only } => {
            let walk =
                local::walk(root).map_err(|(path, source)| VerifyError::Io { path, source })?;
            let mut file_problems = to_check
                .par_iter()
                .filter_map(|f| {
                    let (root, rel) = place.local(&f.path).expect("a folder");
                    local::check(root, rel, f, &walk)
                })
                .collect::<Vec<_>>();
            report.problems.append(&mut file_problems);
            for (rel, link) in &walk.entries {
                let path = if *http_only {
                    format!("http/{rel}")
                } else {
                    rel.clone()
                };
                if path == MANIFEST || path == SIGNATURE || seen.contains(path.as_str()) {
                    continue;
                }
                report.problems.push(if *link {
                    Problem::file(&path, "a symbolic link, not listed in the manifest")
                        .note("help: the build writes no links; remove it (rsync --delete) or rebuild")
                } else {
                    Problem::file(&path, "not listed in the manifest")
                        .note("help: a file the build did not write; remove it (rsync --delete) or rebuild")
                });
            }
        }
        Place::Url { agent, timeout, .. } => {
            let mut file_problems = remote::check_all(agent, place, to_check, *timeout);
            report.problems.append(&mut file_problems);
        }
    }
    Ok(())
}

/// `1 byte`, `2 bytes`.
fn bytes(n: u64) -> String {
    crate::diag::plural(usize::try_from(n).unwrap_or(usize::MAX), "byte")
}

fn size_problem(path: &str, expected: u64, found: String) -> Problem {
    Problem::file(path, "size differs from the manifest")
        .note(format!("expected: {}", bytes(expected)))
        .note(format!("found:    {found}"))
}

fn hash_problem(path: &str, expected: &str, found: &str) -> Problem {
    Problem::file(path, "content differs from the manifest")
        .note(format!("expected: blake3 {expected}"))
        .note(format!("found:    blake3 {found}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::encode_path;

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(unsafe_path("http/boot.ipxe"), None);
        assert_eq!(unsafe_path("plan.json"), None);
        assert_eq!(unsafe_path("http/machines/a..b/x"), None);
        assert_eq!(unsafe_path("/etc/passwd"), Some("it is absolute"));
        assert_eq!(unsafe_path("http/../../x"), Some("it contains `..`"));
        assert_eq!(unsafe_path(".."), Some("it contains `..`"));
        assert_eq!(
            unsafe_path("http//x"),
            Some("it has an empty or `.` component")
        );
        assert_eq!(unsafe_path("./x"), Some("it has an empty or `.` component"));
        assert_eq!(unsafe_path(""), Some("it is empty"));
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(
            encode_path("machines/52-54-00-aa-bb-01.ipxe"),
            "machines/52-54-00-aa-bb-01.ipxe"
        );
        assert_eq!(
            encode_path("machines/n1/a b#?%"),
            "machines/n1/a%20b%23%3F%25"
        );
    }
}
