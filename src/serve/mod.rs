//! `bootc serve`: a preview server a real iPXE client can boot from.
//!
//! The site is built with the same pipeline and writer as `bootc build`, into
//! a private tree `SITE/.bootc-serve/tree` (never `public/`), and its `http/`
//! is served by [`conn`]: a thread per open connection, up to a cap, so a
//! slow client never holds up the others. A change to the
//! site rebuilds it (see [`watch`]); the new tree is swapped in atomically by
//! the writer and served from then on, while downloads already running keep
//! reading the files they opened. A failed rebuild keeps the last good tree
//! and shows its errors in the log and on the overview page (`/`: the
//! report with live state, see [`render::report_context`]).
//!
//! Requests are looked up by path in the build's in-memory index; the file
//! system is only opened for files of that index, beneath the tree and
//! without following symlinks (see [`http::resolve`] for what is refused).

/// `println!` and `eprint!` that never panic: the terminal may be gone (a
/// closed pipe) while the server goes on serving.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

mod conn;
mod head;
mod http;
mod log;
mod watch;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use minijinja::{Environment, Value};
use rustix::fs::{Mode, OFlags};
use serde::Serialize;

use crate::Compiled;
use crate::diag::{Diags, Reporter, Severity, Sources};
use crate::manifest::{MANIFEST, Manifest};
use crate::render;
use crate::site::{Artifact, Mac, Site};
use crate::tree::Content;
use crate::{templates, write};

pub struct Options {
    pub site: PathBuf,
    pub bind: SocketAddr,
    pub poll: bool,
}

/// The private folder in the site: the served tree and a lock.
pub const WORK_DIR: &str = ".bootc-serve";

const SERVE_TEMPLATE: &str = include_str!("../templates/serve.html.j2");
const LIVE_TEMPLATE: &str = include_str!("../templates/serve-live.html.j2");
/// The overview while there is no good build (no report to extend).
const NO_BUILD_TEMPLATE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bootc serve: no good build</title>
<style>
:root { --muted:#5b6578; --line:#dfe3ea; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; color:#1d2330; background:#f6f7f9; }
main { padding:20px 28px; max-width:1400px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 18px; }
table { border-collapse:collapse; width:100%; } th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line); }
.mono, code, pre { font-family:ui-monospace, monospace; font-size:12.5px; }
.sev-error { color:#b42318; font-weight:600; } .sev-warning { color:#9a6700; font-weight:600; }
</style></head>
<body><main>{% include "serve-live.html.j2" %}</main></body>
</html>
"#;

/// One good build, as served.
struct Snapshot {
    /// Path under http/ -> file.
    files: HashMap<String, FileEntry>,
    /// The tree's http/ folder on disk (for files not kept in memory).
    http_dir: PathBuf,
    /// The report's template context, and an environment holding the
    /// site's report.html.j2 (or the built-in one) and serve.html.j2.
    report: Value,
    env: Environment<'static>,
    machines: log::Machines,
    built_at: SystemTime,
    took: Duration,
    build_id: String,
    site_name: String,
    machine_count: usize,
    /// The first machine's first MAC, for the QEMU command line.
    first_mac: Option<(String, Mac)>,
    /// Folders of local artifacts (to watch those outside the site).
    artifact_dirs: Vec<PathBuf>,
}

struct FileEntry {
    size: u64,
    /// Quoted BLAKE3 of the content.
    etag: String,
    modified: SystemTime,
    last_modified: String,
    body: Body,
}

enum Body {
    /// Scripts, rendered files, the manifest: the bytes that were written.
    Memory(Vec<u8>),
    /// Artifacts: streamed from the tree on disk.
    Disk,
}

/// A failed build: what the log and the overview show.
struct Failure {
    at: SystemTime,
    /// rustc-style text, no color.
    text: String,
    problems: Vec<Problem>,
}

#[derive(Serialize, Clone)]
struct Problem {
    severity: &'static str,
    message: String,
    at: Option<String>,
    help: Vec<String>,
}

impl Failure {
    fn message(text: String) -> Failure {
        Failure {
            at: SystemTime::now(),
            problems: vec![Problem {
                severity: "error",
                message: text.clone(),
                at: None,
                help: Vec::new(),
            }],
            text,
        }
    }

    fn from_diags(sources: &Sources, diags: &Diags) -> Failure {
        let problems = diags
            .list
            .iter()
            .map(|d| Problem {
                severity: if d.severity == Severity::Error {
                    "error"
                } else {
                    "warning"
                },
                message: d.message.clone(),
                at: d.primary.as_ref().map(|(l, _)| sources.place(l)),
                help: d.help.clone(),
            })
            .collect();
        Failure {
            at: SystemTime::now(),
            text: Reporter::new(sources).human(diags, false),
            problems,
        }
    }

    fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == "error")
            .count()
    }
}

struct State {
    root: PathBuf,
    out: PathBuf,
    url: String,
    /// The host a VM under QEMU user networking reaches this server at.
    vm_host: String,
    port: u16,
    current: RwLock<Option<Arc<Snapshot>>>,
    failure: Mutex<Option<Failure>>,
    /// Bumped by every build, good or not.
    generation: AtomicU64,
    watch_kind: OnceLock<String>,
    /// The last good build's warnings, as printed.
    warnings: Mutex<Option<String>>,
    log: log::Log,
    no_build_env: Environment<'static>,
}

pub fn run(opts: Options) -> Result<ExitCode> {
    let root = match fs::canonicalize(&opts.site) {
        Ok(r) if r.join(crate::load::SITE_FILE).is_file() => r,
        _ => {
            eprintln!(
                "error: {}",
                crate::load::LoadError::NotASite(opts.site.clone())
            );
            return Ok(ExitCode::from(2));
        }
    };
    let work = root.join(WORK_DIR);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let ignore = work.join(".gitignore");
    if !ignore.exists() {
        let _ = fs::write(
            &ignore,
            "# bootc serve's private build; never commit it\n*\n",
        );
    }
    let _lock = lock(&work)?;
    let listener =
        TcpListener::bind(opts.bind).with_context(|| format!("cannot listen on {}", opts.bind))?;
    let addr = listener.local_addr().context("listening address")?;
    let vm_host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "10.0.2.2".to_string()
    } else {
        addr.ip().to_string()
    };
    let host = match addr {
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
        SocketAddr::V4(a) => a.ip().to_string(),
    };
    let state = Arc::new(State {
        out: work.join("tree"),
        url: format!("http://{host}:{}/", addr.port()),
        vm_host,
        port: addr.port(),
        root: root.clone(),
        current: RwLock::new(None),
        failure: Mutex::new(None),
        generation: AtomicU64::new(0),
        watch_kind: OnceLock::new(),
        warnings: Mutex::new(None),
        log: log::Log::start(),
        no_build_env: no_build_env(),
    });

    state.rebuild();

    let (tx, rx) = mpsc::channel();
    let mut watcher = watch::Watch::start(&root, opts.poll, tx).context("watching the site")?;
    let _ = state.watch_kind.set(watcher.kind());
    if let Some(s) = state.snapshot() {
        let _ = watcher.sync(&s.artifact_dirs);
    }

    conn::start(listener, Arc::clone(&state) as Arc<dyn conn::Handler>)
        .with_context(|| format!("cannot serve on {addr}"))?;
    state.banner();

    // The main thread rebuilds on change.
    while let Ok(mut paths) = rx.recv() {
        while let Ok(more) = rx.recv_timeout(Duration::from_millis(20)) {
            paths.extend(more);
        }
        paths.sort();
        paths.dedup();
        let names: Vec<String> = paths
            .iter()
            .map(|p| crate::load::rel_name(&root, p))
            .collect();
        let shown = if names.len() > 3 {
            format!("{} (and {} more)", names[..3].join(", "), names.len() - 3)
        } else {
            names.join(", ")
        };
        say!(
            "{} changed: {}",
            log::clock(SystemTime::now()),
            log::escape(&shown)
        );
        state.rebuild();
        let dirs = state
            .snapshot()
            .map(|s| s.artifact_dirs.clone())
            .unwrap_or_default();
        if let Err(e) = watcher.sync(&dirs) {
            say_err!("warning: watching the site: {e}\n");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes `WORK/lock`, so two servers never write one tree.
fn lock(work: &Path) -> Result<File> {
    let path = work.join("lock");
    let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        anyhow::bail!(
            "another `bootc serve` is serving this site (it holds {})",
            path.display()
        );
    }
    Ok(f)
}

fn new_env() -> Environment<'static> {
    let mut env = templates::base_env();
    env.add_template("serve-live.html.j2", LIVE_TEMPLATE)
        .expect("the live template compiles");
    env
}

fn no_build_env() -> Environment<'static> {
    let mut env = new_env();
    env.add_template("serve-nobuild.html.j2", NO_BUILD_TEMPLATE)
        .expect("the no-build template compiles");
    env
}

/// The overview's environment: the site's templates (its report.html.j2
/// override, and what that may include) over the built-in report.
fn overview_env(site: &Site, sources: &Sources) -> Environment<'static> {
    let mut env = new_env();
    for (name, src) in templates::BUILTINS {
        if name.ends_with(".html.j2") && !site.templates.contains_key(*name) {
            let _ = env.add_template(name, src);
        }
    }
    for (name, &id) in &site.templates {
        let _ = env.add_template_owned(name.clone(), sources.text(id).to_string());
    }
    env.add_template("serve.html.j2", SERVE_TEMPLATE)
        .expect("the serve template compiles");
    env
}

impl State {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Builds the site and, if it is good, serves the new tree.
    fn rebuild(&self) {
        let now = SystemTime::now();
        let t0 = Instant::now();
        let result = build(&self.root, &self.out, t0);
        let time = log::clock(now);
        match result {
            Ok((snap, stats, warnings)) => {
                // The same warnings again after every save would drown the
                // log: printed when they change.
                let mut last = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(w) = &warnings
                    && last.as_ref() != Some(w)
                {
                    say_err!("{w}");
                }
                *last = warnings;
                drop(last);
                say!(
                    "{time} built site {}: {}, {} ({} unchanged) in {} ms",
                    snap.site_name,
                    crate::diag::plural(snap.machine_count, "machine"),
                    crate::diag::plural(stats.files, "file"),
                    stats.unchanged,
                    snap.took.as_millis()
                );
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(snap));
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Err((f, colored)) => {
                say_err!("{colored}");
                let kept = match self.snapshot() {
                    Some(s) => format!("still serving the build of {}", log::clock(s.built_at)),
                    None => "nothing to serve until it is fixed".to_string(),
                };
                let n = f.errors();
                say!(
                    "{time} build failed ({n} error{}): {kept}; the errors are also on {}",
                    if n == 1 { "" } else { "s" },
                    self.url
                );
                *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            }
        }
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn qemu_command(&self) -> String {
        let mac = self
            .snapshot()
            .and_then(|s| s.first_mac.as_ref().map(|(_, m)| m.to_string()))
            .unwrap_or_else(|| "52:54:00:12:34:56".into());
        format!(
            "qemu-system-x86_64 -nographic -m 512 -boot n -netdev user,id=n0,bootfile=http://{}:{}/boot.ipxe -device virtio-net-pci,netdev=n0,mac={mac}",
            self.vm_host, self.port
        )
    }

    fn banner(&self) {
        let snap = self.snapshot();
        let mut o = String::new();
        o.push_str(&format!(
            "serving {} (the overview is at /, the entry script at /boot.ipxe)\n",
            self.url
        ));
        o.push_str(&format!(
            "  built into {} (not public/); watching {} ({})\n",
            self.out.display(),
            self.root.display(),
            self.watch_kind.get().map(String::as_str).unwrap_or("?")
        ));
        let who = match snap.as_ref().and_then(|s| s.first_mac.clone()) {
            Some((name, _)) => format!(" as {name}"),
            None => " as an unknown machine".into(),
        };
        o.push_str(&format!(
            "boot a VM against it{who} (QEMU user networking reaches this host's {} at {}):\n  {}\n",
            if self.vm_host == "10.0.2.2" {
                "127.0.0.1"
            } else {
                "address"
            },
            self.vm_host,
            self.qemu_command()
        ));
        o.push_str("requests (Ctrl-C stops):");
        say!("{o}");
    }

    fn live(&self) -> serde_json::Value {
        let snap = self.snapshot();
        let failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({
            "url": self.url,
            "site": self.root.display().to_string(),
            "watch": self.watch_kind.get().cloned().unwrap_or_default(),
            "qemu": self.qemu_command(),
            "generation": self.generation.load(Ordering::SeqCst),
            "requests": self.log.count(),
            "built": snap.as_ref().map(|s| serde_json::json!({
                "time": log::clock(s.built_at),
                "ms": s.took.as_millis() as u64,
                "id": s.build_id,
                "site": s.site_name,
                "machines": s.machine_count,
            })),
            "error": failure.as_ref().map(|f| serde_json::json!({
                "time": log::clock(f.at),
                "text": f.text,
                "problems": f.problems,
            })),
            "clients": self.log.recent(),
        })
    }

    fn overview(&self) -> Result<String, String> {
        let live = templates::val(self.live());
        match self.snapshot() {
            Some(s) => {
                let ctx = minijinja::context! { live => live.clone(), ..s.report.clone() };
                let page = s
                    .env
                    .get_template("serve.html.j2")
                    .and_then(|t| t.render(ctx))
                    .map_err(|e| format!("{e:#}"))?;
                if page.contains("id=\"bootc-live\"") {
                    return Ok(page);
                }
                // A site's report.html.j2 without `{% block live %}`: put the
                // live section first in its body.
                let section = s
                    .env
                    .get_template("serve-live.html.j2")
                    .and_then(|t| t.render(minijinja::context! { live }))
                    .map_err(|e| format!("{e:#}"))?;
                let at = page
                    .find("<body")
                    .and_then(|i| page[i..].find('>').map(|j| i + j + 1))
                    .unwrap_or(0);
                Ok(format!("{}{section}{}", &page[..at], &page[at..]))
            }
            None => self
                .no_build_env
                .get_template("serve-nobuild.html.j2")
                .and_then(|t| t.render(minijinja::context! { live }))
                .map_err(|e| format!("{e:#}")),
        }
    }
}

/// One build into `out`: the snapshot to serve and the writer's stats, plus
/// the warnings (colored for the terminal); or the failure (and its text
/// for the terminal).
fn build(
    root: &Path,
    out: &Path,
    t0: Instant,
) -> Result<(Snapshot, write::Stats, Option<String>), (Failure, String)> {
    let c = match crate::compile(root) {
        Ok(c) => c,
        Err(e) => {
            let f = Failure::message(e.to_string());
            let text = format!("error: {e}\n");
            return Err((f, text));
        }
    };
    let color = crate::diag::color_stderr();
    let b = match c {
        Compiled::Built(b) => b,
        Compiled::Invalid { sources, diags } => {
            let f = Failure::from_diags(&sources, &diags);
            let text = Reporter::new(&sources).human(&diags, color);
            return Err((f, text));
        }
    };
    let crate::Build {
        sources,
        site,
        plan,
        tree,
        diags,
    } = *b;
    let stats = match write::write(out, &tree) {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("writing the tree: {e}");
            return Err((Failure::message(msg.clone()), format!("error: {msg}\n")));
        }
    };
    let warnings = (!diags.list.is_empty()).then(|| Reporter::new(&sources).human(&diags, color));

    // ETags: the manifest's hashes, not a second hashing.
    let manifest: Option<Manifest> = match tree.files.get(MANIFEST) {
        Some(Content::Bytes(b)) => serde_json::from_slice(b).ok(),
        _ => None,
    };
    let mut hashes: HashMap<&str, &str> = HashMap::new();
    if let Some(m) = &manifest {
        for f in &m.files {
            hashes.insert(f.path.as_str(), f.blake3.as_str());
        }
    }
    let http_dir = out.join("http");
    let mut files = HashMap::new();
    for (path, content) in tree.files {
        let Some(rel) = path.strip_prefix("http/") else {
            continue;
        };
        let blake3 = match hashes.get(path.as_str()) {
            Some(h) => h.to_string(),
            None => content.blake3(),
        };
        let modified = fs::metadata(http_dir.join(rel))
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| SystemTime::now());
        let size = content.size();
        let body = match content {
            Content::Bytes(b) => Body::Memory(b),
            Content::Copy { .. } => Body::Disk,
        };
        files.insert(
            rel.to_string(),
            FileEntry {
                size,
                etag: format!("\"{blake3}\""),
                modified,
                last_modified: http::http_date(modified),
                body,
            },
        );
    }
    let mut artifact_dirs: Vec<PathBuf> = site
        .images
        .values()
        .flat_map(|i| i.boot.artifacts())
        .filter_map(|a| match a {
            Artifact::Local { source, .. } => source.path.parent().map(Path::to_path_buf),
            _ => None,
        })
        .collect();
    artifact_dirs.sort();
    artifact_dirs.dedup();
    let report = render::report_context(&site, &sources, &plan, &diags, Value::from(false));
    let snap = Snapshot {
        files,
        http_dir,
        env: overview_env(&site, &sources),
        report,
        machines: log::Machines::from_plan(&plan),
        built_at: SystemTime::now(),
        took: t0.elapsed(),
        build_id: manifest.map(|m| m.build_id).unwrap_or_default(),
        site_name: plan.site.clone(),
        machine_count: plan.machines.len(),
        first_mac: plan
            .machines
            .first()
            .and_then(|m| m.macs.first().map(|mac| (m.name.clone(), *mac))),
        artifact_dirs,
    };
    Ok((snap, stats, warnings))
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

impl conn::Handler for State {
    fn request(&self, req: &head::Request, w: &mut dyn Write) -> bool {
        handle(self, req, w)
    }

    fn refused(&self, peer: SocketAddr, status: u16, line: &str) {
        // `METHOD TARGET VERSION` as far as it goes
        let (method, rest) = line.split_once(' ').unwrap_or(("-", line));
        let target = rest.rsplit_once(' ').map_or(rest, |(t, _)| t);
        let entry = log::Entry {
            time: log::clock(SystemTime::now()),
            client: peer.to_string(),
            machine: None,
            method: method.to_string(),
            raw: target.to_string(),
            path: target.to_string(),
            served: None,
            status,
            bytes: 0,
            size: "-".into(),
            ms: 0,
        };
        self.log.submit(log::Logged {
            entry,
            client: Some(peer),
            from_path: None,
            tree: false,
        });
    }
}

/// What happened to one request, for the log.
struct Outcome {
    status: u16,
    path: String,
    served: Option<String>,
    sent: u64,
    len: u64,
    body: bool,
    complete: bool,
    /// Tree requests go in the per-machine table; the overview's own don't.
    tree: bool,
    /// `/.bootc/*` polls are not logged at all.
    quiet: bool,
}

impl Outcome {
    fn new(status: u16, path: String) -> Outcome {
        Outcome {
            status,
            path,
            served: None,
            sent: 0,
            len: 0,
            body: false,
            complete: true,
            tree: false,
            quiet: false,
        }
    }
}

/// Answers one request; false: the connection closes.
fn handle(state: &State, req: &head::Request, w: &mut dyn Write) -> bool {
    let t0 = Instant::now();
    let conds = http::Conditions {
        if_match: req.header("If-Match"),
        if_none_match: req.header("If-None-Match"),
        if_modified_since: req.header("If-Modified-Since"),
        if_unmodified_since: req.header("If-Unmodified-Since"),
        if_range: req.header("If-Range"),
        range: req.header("Range"),
    };
    let out = respond(state, &req.method, &req.target, &conds, req.close, w);
    let keep = !req.close && out.complete;
    if out.quiet {
        return keep;
    }
    let from_path = if out.tree {
        state.snapshot().and_then(|s| {
            s.machines
                .named_by(out.served.as_deref().unwrap_or(&out.path))
        })
    } else {
        None
    };
    let entry = log::Entry {
        time: log::clock(SystemTime::now()),
        client: req.peer.to_string(),
        machine: None,
        method: req.method.clone(),
        raw: req.target.clone(),
        path: out.path,
        served: out.served,
        status: out.status,
        bytes: out.sent,
        size: log::size_text(out.sent, out.len, out.body, out.complete),
        ms: t0.elapsed().as_millis() as u64,
    };
    state.log.submit(log::Logged {
        entry,
        client: Some(req.peer),
        from_path,
        tree: out.tree,
    });
    keep
}

fn text_answer(
    w: &mut dyn Write,
    mut head: http::Head,
    date: &str,
    text: &str,
    head_only: bool,
    out: &mut Outcome,
) {
    head = head
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Cache-Control", "no-store")
        .length(text.len() as u64);
    let body: &[u8] = if head_only { b"" } else { text.as_bytes() };
    out.len = text.len() as u64;
    out.body = !head_only;
    match http::send_bytes(w, &head, date, body) {
        Ok(n) => out.sent = n,
        Err(_) => out.complete = false,
    }
}

fn respond(
    state: &State,
    method: &str,
    raw: &str,
    conds: &http::Conditions,
    close: bool,
    w: &mut dyn Write,
) -> Outcome {
    let date = http::http_date(SystemTime::now());
    let head_only = method == "HEAD";
    let head = |status: u16| {
        let mut h = http::Head::new(status);
        h.close = close;
        h
    };
    let resolved = match http::resolve(raw) {
        Ok(r) => r,
        Err(why) => {
            let mut out = Outcome::new(400, raw.to_string());
            let text = format!("bad request: {why}\n");
            text_answer(w, head(400), &date, &text, head_only, &mut out);
            return out;
        }
    };
    let shown = if resolved.path.is_empty() {
        "/".to_string()
    } else {
        resolved.path.clone()
    };
    let mut out = Outcome::new(200, shown);
    if method != "GET" && !head_only {
        out.status = 405;
        let h = head(405).header("Allow", "GET, HEAD");
        text_answer(
            w,
            h,
            &date,
            "only GET and HEAD are served\n",
            false,
            &mut out,
        );
        return out;
    }
    match resolved.target {
        http::Target::Overview => match state.overview() {
            Ok(page) => {
                let h = head(200)
                    .header("Content-Type", "text/html; charset=utf-8")
                    .header("Cache-Control", "no-store")
                    .length(page.len() as u64);
                out.len = page.len() as u64;
                out.body = !head_only;
                let body = if head_only { "" } else { page.as_str() };
                match http::send_bytes(w, &h, &date, body.as_bytes()) {
                    Ok(n) => out.sent = n,
                    Err(_) => out.complete = false,
                }
            }
            Err(e) => {
                out.status = 500;
                let text = format!("the overview page failed to render: {e}\n");
                text_answer(w, head(500), &date, &text, head_only, &mut out);
            }
        },
        http::Target::Status | http::Target::Requests => {
            out.quiet = true;
            let json = if resolved.target == http::Target::Status {
                let mut v = state.live();
                if let Some(o) = v.as_object_mut() {
                    o.remove("clients");
                }
                v
            } else {
                serde_json::to_value(state.log.all()).unwrap_or_default()
            };
            let body = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
            let h = head(200)
                .header("Content-Type", "application/json")
                .header("Cache-Control", "no-store")
                .length(body.len() as u64);
            let body = if head_only { "" } else { body.as_str() };
            let _ = http::send_bytes(w, &h, &date, body.as_bytes());
        }
        http::Target::Redirect(location) => {
            out.status = 302;
            let h = head(302).header("Location", location.clone());
            let text = format!("see {location}\n");
            text_answer(w, h, &date, &text, head_only, &mut out);
        }
        http::Target::File(key) => {
            out.tree = true;
            if key != resolved.path {
                out.served = Some(key.clone());
            }
            let Some(snap) = state.snapshot() else {
                out.status = 503;
                let text = format!("no good build yet: the errors are on {}\n", state.url);
                text_answer(w, head(503), &date, &text, head_only, &mut out);
                return out;
            };
            let Some(entry) = snap.files.get(&key) else {
                // A browser's own request on the overview: not worth a line.
                out.quiet = key == "favicon.ico";
                out.status = 404;
                let text = format!("not found: /{}\n", resolved.path);
                text_answer(w, head(404), &date, &text, head_only, &mut out);
                return out;
            };
            serve_file(
                &snap, &key, entry, conds, head_only, &date, head, w, &mut out,
            );
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn serve_file(
    snap: &Snapshot,
    key: &str,
    entry: &FileEntry,
    conds: &http::Conditions,
    head_only: bool,
    date: &str,
    mut head: impl FnMut(u16) -> http::Head,
    w: &mut dyn Write,
    out: &mut Outcome,
) {
    let answer = http::answer(conds, !head_only, &entry.etag, entry.modified, entry.size);
    let validators = |h: http::Head| {
        h.header("ETag", entry.etag.clone())
            .header("Last-Modified", entry.last_modified.clone())
            .header("Cache-Control", http::cache_control(key))
    };
    let (status, start, end) = match answer {
        http::Answer::NotModified => {
            out.status = 304;
            let h = validators(head(304));
            let _ = http::send_bytes(w, &h, date, b"");
            return;
        }
        http::Answer::PreconditionFailed => {
            out.status = 412;
            text_answer(w, head(412), date, "precondition failed\n", head_only, out);
            return;
        }
        http::Answer::Unsatisfiable => {
            out.status = 416;
            let h = head(416).header("Content-Range", format!("bytes */{}", entry.size));
            text_answer(w, h, date, "range not satisfiable\n", head_only, out);
            return;
        }
        http::Answer::Full => (200, 0, entry.size),
        http::Answer::Partial { start, end } => (206, start, end),
    };
    out.status = status;
    let len = end - start;
    let mut h = validators(head(status))
        .header("Content-Type", http::content_type(key))
        .header("Accept-Ranges", "bytes")
        .length(len);
    if status == 206 {
        h = h.header(
            "Content-Range",
            format!("bytes {start}-{}/{}", end - 1, entry.size),
        );
    }
    out.len = len;
    out.body = !head_only;
    if head_only {
        let _ = http::send_bytes(w, &h, date, b"");
        return;
    }
    match &entry.body {
        Body::Memory(b) => match http::send_bytes(w, &h, date, &b[start as usize..end as usize]) {
            Ok(n) => out.sent = n,
            Err(_) => out.complete = false,
        },
        Body::Disk => {
            let mut file = match open_beneath(&snap.http_dir, key) {
                Ok(f)
                    if f.metadata()
                        .is_ok_and(|m| m.is_file() && m.len() == entry.size) =>
                {
                    f
                }
                Ok(_) | Err(_) => {
                    // Gone (a newer build removed it) or not a plain file of
                    // the tree (a symlink put there is never followed).
                    out.status = 404;
                    out.body = !head_only;
                    let text = format!("not found: /{key}\n");
                    text_answer(w, head(404), date, &text, head_only, out);
                    return;
                }
            };
            if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
                out.status = 500;
                text_answer(w, head(500), date, "cannot read the file\n", head_only, out);
                return;
            }
            let mut sent = 0;
            let r = http::send_file(w, &h, date, &mut file, len, &mut sent);
            out.sent = sent;
            out.complete = r.is_ok();
        }
    }
}

/// Opens `rel` ('/'-separated, from the tree's index) beneath `dir`, one
/// component at a time, never following a symlink: nothing outside the
/// tree can be reached, whatever was put into it.
fn open_beneath(dir: &Path, rel: &str) -> io::Result<File> {
    let mut fd: OwnedFd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad path"));
        }
        let flags = if i + 1 < parts.len() {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
        };
        fd = rustix::fs::openat(&fd, *part, flags, Mode::empty())?;
    }
    Ok(File::from(fd))
}
