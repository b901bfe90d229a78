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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rayon::prelude::*;
use serde::Deserialize;

use crate::render::{MANIFEST, MANIFEST_FORMAT, ManifestFile, hash_file};
use crate::sign::{self, Checked, PublicKey};

pub const SIGNATURE: &str = "http/manifest.json.minisig";

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
        let (red, yellow, bold, reset) = if color {
            ("\x1b[1;31m", "\x1b[1;33m", "\x1b[1m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        let mut out = String::new();
        for n in &self.notes {
            let _ = writeln!(out, "{yellow}note{reset}{bold}: {n}{reset}");
        }
        for p in &self.problems {
            let what = if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            };
            let _ = writeln!(out, "{red}error{reset}{bold}: {what}{reset}");
            for n in &p.notes {
                let _ = writeln!(out, "  = {n}");
            }
            out.push('\n');
        }
        if !self.ok() {
            let sig = match &self.signature {
                Signature::Good { .. } => "signature good",
                Signature::Failed => "signature NOT verified",
            };
            let _ = writeln!(
                out,
                "{red}error{reset}{bold}: verification of {} failed: {}; {sig}, {} checked{reset}",
                self.target,
                crate::diag::plural(self.problems.len(), "problem"),
                crate::diag::plural(self.checked, "file"),
            );
        }
        out
    }

    /// The one-line success summary (for stdout).
    pub fn summary(&self) -> String {
        format!(
            "verified {}: site {}, build {}, signed by key {}; {} ({}) match the manifest",
            self.target,
            self.site.as_deref().unwrap_or("?"),
            self.build_id.as_deref().unwrap_or("?"),
            self.key_id,
            crate::diag::plural(self.checked, "file"),
            crate::templates::human_size(self.bytes),
        )
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Doc {
    format: u32,
    site: String,
    build_id: String,
    files: Vec<ManifestFile>,
    #[serde(default)]
    remote: Vec<serde_json::Value>,
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

/// Where the tree is.
enum Place {
    /// A folder; `http_only`: it is a web root (the `http/` folder).
    Dir { root: PathBuf, http_only: bool },
    /// The URL `http/` is served at, ending in '/'.
    Url { base: String, agent: ureq::Agent },
}

impl Place {
    fn open(target: &str) -> Result<Place, VerifyError> {
        if target.starts_with("http://") || target.starts_with("https://") {
            let mut base = target.to_string();
            if let Some(stripped) = base.strip_suffix("manifest.json") {
                base = stripped.to_string();
            }
            if !base.ends_with('/') {
                base.push('/');
            }
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_connect(Some(Duration::from_secs(15)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                .user_agent(format!("bootc/{}", env!("CARGO_PKG_VERSION")))
                .build()
                .into();
            return Ok(Place::Url { base, agent });
        }
        let root = PathBuf::from(target);
        if let Err(source) = fs::metadata(&root) {
            return Err(VerifyError::Io { path: root, source });
        }
        if root.join(MANIFEST).is_file() {
            Ok(Place::Dir {
                root,
                http_only: false,
            })
        } else if root.join("manifest.json").is_file() {
            Ok(Place::Dir {
                root,
                http_only: true,
            })
        } else {
            Err(VerifyError::NotATree(root))
        }
    }

    /// Whether a tree path (`http/…`, `tftp/…`) is at this place.
    fn holds(&self, path: &str) -> bool {
        match self {
            Place::Dir {
                http_only: false, ..
            } => true,
            _ => path.starts_with("http/"),
        }
    }

    fn local(&self, path: &str) -> Option<PathBuf> {
        match self {
            Place::Dir {
                root,
                http_only: false,
            } => Some(root.join(path)),
            Place::Dir {
                root,
                http_only: true,
            } => path.strip_prefix("http/").map(|p| root.join(p)),
            Place::Url { .. } => None,
        }
    }

    fn url(&self, path: &str) -> Option<String> {
        match self {
            Place::Url { base, .. } => path
                .strip_prefix("http/")
                .map(|p| format!("{base}{}", encode_path(p))),
            Place::Dir { .. } => None,
        }
    }

    /// A small file (manifest, signature), or `None` when it is not there.
    fn read_small(&self, path: &str) -> Result<Option<Vec<u8>>, VerifyError> {
        match self {
            Place::Dir { .. } => {
                let full = self.local(path).expect("manifest paths are under http/");
                match fs::read(&full) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(VerifyError::Io { path: full, source }),
                }
            }
            Place::Url { agent, .. } => {
                let url = self.url(path).expect("manifest paths are under http/");
                let http = |why: String| VerifyError::Http {
                    url: url.clone(),
                    why,
                };
                let mut resp = agent.get(&url).call().map_err(|e| http(e.to_string()))?;
                match resp.status().as_u16() {
                    200 => {}
                    404 | 410 => return Ok(None),
                    s => return Err(http(format!("HTTP {s}"))),
                }
                let bytes = resp
                    .body_mut()
                    .with_config()
                    .limit(1 << 30)
                    .read_to_vec()
                    .map_err(|e| http(e.to_string()))?;
                Ok(Some(bytes))
            }
        }
    }
}

/// Percent-encodes each segment of a '/'-separated path for a URL.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Verifies `target` (a folder or URL) against `pk`.
pub fn verify(target: &str, pk: &PublicKey) -> Result<Report, VerifyError> {
    let place = Place::open(target)?;
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
    let Some(manifest) = place.read_small(MANIFEST)? else {
        return Err(match &place {
            Place::Url { base, .. } => VerifyError::Http {
                url: format!("{base}manifest.json"),
                why: "not found (HTTP 404): is this where http/ is served?".into(),
            },
            Place::Dir { root, .. } => VerifyError::NotATree(root.clone()),
        });
    };
    let sig_problem = |message: String| Problem {
        order: 0,
        path: SIGNATURE.to_string(),
        message,
        notes: Vec::new(),
    };
    match place.read_small(SIGNATURE)? {
        None => report.problems.push(
            sig_problem("missing: the manifest is not signed".into())
                .note("help: build with `--sign-key FILE` (or BOOTC_SIGN_KEY=FILE) and deploy the .minisig with the tree"),
        ),
        Some(sig) => {
            let text = String::from_utf8_lossy(&sig);
            match sign::check(pk, &text, &manifest) {
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
    let doc: Doc = match serde_json::from_slice(&manifest) {
        Ok(d) => d,
        Err(e) => {
            report.problems.push(Problem {
                order: 1,
                path: MANIFEST.into(),
                message: format!("not a bootc manifest: {e}"),
                notes: Vec::new(),
            });
            report.problems.sort();
            return Ok(report);
        }
    };
    if doc.format != MANIFEST_FORMAT {
        report.problems.push(Problem {
            order: 1,
            path: MANIFEST.into(),
            message: format!(
                "manifest format {} is not the one this bootc reads ({MANIFEST_FORMAT})",
                doc.format
            ),
            notes: Vec::new(),
        });
        report.problems.sort();
        return Ok(report);
    }
    if let Signature::Good { trusted_comment } = &report.signature {
        let expected = sign::trusted_comment(&doc.site, &doc.build_id);
        if trusted_comment.starts_with("site:") && *trusted_comment != expected {
            report.problems.push(Problem {
                order: 1,
                path: MANIFEST.into(),
                message: format!(
                    "the signature's trusted comment `{trusted_comment}` does not name this manifest's site and build (`{expected}`)"
                ),
                notes: Vec::new(),
            });
        }
    }
    report.site = Some(doc.site.clone());
    report.build_id = Some(doc.build_id.clone());

    // Which listed files can be checked here.
    let mut seen = BTreeSet::new();
    let mut to_check: Vec<&ManifestFile> = Vec::new();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    for f in &doc.files {
        if let Some(why) = unsafe_path(&f.path) {
            report.problems.push(Problem {
                order: 1,
                path: MANIFEST.into(),
                message: format!("lists the path `{}`, which is refused: {why}", f.path),
                notes: Vec::new(),
            });
            continue;
        }
        if f.path == MANIFEST || f.path == SIGNATURE {
            report.problems.push(Problem {
                order: 1,
                path: MANIFEST.into(),
                message: format!("lists itself or its signature (`{}`)", f.path),
                notes: Vec::new(),
            });
            continue;
        }
        if !seen.insert(f.path.as_str()) {
            report.problems.push(Problem {
                order: 1,
                path: MANIFEST.into(),
                message: format!("lists `{}` twice", f.path),
                notes: Vec::new(),
            });
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
                    format!("{g} ({})", crate::diag::plural(*n, "file"))
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
            crate::diag::plural(skipped.values().sum(), "listed file"),
            list.join(", ")
        ));
    }
    if !doc.remote.is_empty() {
        report.notes.push(format!(
            "{} listed with their pins are not fetched (iPXE gets them from their own URLs)",
            crate::diag::plural(doc.remote.len(), "remote artifact")
        ));
    }

    report.checked = to_check.len();
    report.bytes = to_check.iter().map(|f| f.size).sum();
    let mut file_problems = match &place {
        Place::Dir { .. } => to_check
            .par_iter()
            .filter_map(|f| check_local(&place.local(&f.path).expect("a folder"), f))
            .collect::<Vec<_>>(),
        Place::Url { agent, .. } => check_remote(agent, &place, &to_check),
    };
    report.problems.append(&mut file_problems);

    match &place {
        Place::Dir { root, http_only } => {
            for rel in walk(root).map_err(|(path, source)| VerifyError::Io { path, source })? {
                let path = if *http_only {
                    format!("http/{rel}")
                } else {
                    rel
                };
                if path != MANIFEST && path != SIGNATURE && !seen.contains(path.as_str()) {
                    report.problems.push(
                        Problem::file(&path, "not listed in the manifest")
                            .note("help: a file the build did not write; remove it (rsync --delete) or rebuild"),
                    );
                }
            }
        }
        Place::Url { .. } => report
            .notes
            .push("files the manifest does not list cannot be seen over HTTP".into()),
    }
    report.problems.sort();
    Ok(report)
}

fn size_problem(path: &str, expected: u64, found: String) -> Problem {
    Problem::file(path, "size differs from the manifest")
        .note(format!("expected: {expected} bytes"))
        .note(format!("found:    {found}"))
}

fn hash_problem(path: &str, expected: &str, found: &str) -> Problem {
    Problem::file(path, "content differs from the manifest")
        .note(format!("expected: blake3 {expected}"))
        .note(format!("found:    blake3 {found}"))
}

fn check_local(full: &Path, f: &ManifestFile) -> Option<Problem> {
    let meta = match fs::metadata(full) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Some(Problem::file(&f.path, "missing"));
        }
        Err(e) => return Some(Problem::file(&f.path, format!("cannot be read: {e}"))),
    };
    if !meta.is_file() {
        return Some(Problem::file(&f.path, "is not a regular file"));
    }
    if meta.len() != f.size {
        return Some(size_problem(
            &f.path,
            f.size,
            format!("{} bytes", meta.len()),
        ));
    }
    match hash_file(full) {
        Err(e) => Some(Problem::file(&f.path, format!("cannot be read: {e}"))),
        Ok((_, h)) if h != f.blake3 => Some(hash_problem(&f.path, &f.blake3, &h)),
        Ok(_) => None,
    }
}

/// Every file under `root` (not folders), '/'-separated and relative.
fn walk(root: &Path) -> Result<Vec<String>, (PathBuf, io::Error)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            (path, io::Error::other(e.to_string()))
        })?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(root).expect("under root");
        out.push(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
        );
    }
    Ok(out)
}

/// Above this many bytes in all, downloads show a progress bar (on a terminal).
const PROGRESS_MIN_BYTES: u64 = 16 << 20;
const WORKERS: usize = 4;

fn check_remote(agent: &ureq::Agent, place: &Place, files: &[&ManifestFile]) -> Vec<Problem> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = if io::stderr().is_terminal() && total >= PROGRESS_MIN_BYTES {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bytes:>10}/{total_bytes} [{bar:30}] {bytes_per_sec} {eta} {wide_msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(files.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let url = place.url(&f.path).expect("http/ paths");
                    if f.size >= PROGRESS_MIN_BYTES {
                        bar.set_message(f.path.clone());
                    }
                    if let Some(p) = fetch_and_check(agent, &url, f, &bar) {
                        problems.lock().expect("no panics while held").push(p);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    problems.into_inner().expect("no panics while held")
}

/// Downloads one file, hashing it as it comes; stops reading past the
/// expected size.
fn fetch_and_check(
    agent: &ureq::Agent,
    url: &str,
    f: &ManifestFile,
    bar: &indicatif::ProgressBar,
) -> Option<Problem> {
    let mut done = 0u64;
    let result = (|| -> Option<Problem> {
        let mut resp = match agent.get(url).call() {
            Ok(r) => r,
            Err(e) => {
                return Some(
                    Problem::file(&f.path, format!("could not be fetched: {e}")).note(url),
                );
            }
        };
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => {
                return Some(
                    Problem::file(
                        &f.path,
                        format!("missing (HTTP {})", resp.status().as_u16()),
                    )
                    .note(url),
                );
            }
            s => return Some(Problem::file(&f.path, format!("HTTP {s}")).note(url)),
        }
        if let Some(len) = resp.body().content_length()
            && len != f.size
        {
            return Some(size_problem(
                &f.path,
                f.size,
                format!("{len} bytes (Content-Length)"),
            ));
        }
        let mut reader = resp.body_mut().as_reader();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Some(Problem::file(
                        &f.path,
                        format!("download failed after {done} bytes: {e}"),
                    ));
                }
            };
            hasher.update(&buf[..n]);
            done += n as u64;
            bar.inc(n as u64);
            if done > f.size {
                return Some(size_problem(
                    &f.path,
                    f.size,
                    "more bytes (stopped reading)".into(),
                ));
            }
        }
        if done != f.size {
            return Some(size_problem(&f.path, f.size, format!("{done} bytes")));
        }
        let h = hasher.finalize().to_hex().to_string();
        (h != f.blake3).then(|| hash_problem(&f.path, &f.blake3, &h))
    })();
    // Keep the bar's total right when a download stopped early.
    if done < f.size {
        bar.inc(f.size - done);
    } else if done > f.size {
        bar.dec(done - f.size);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

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
