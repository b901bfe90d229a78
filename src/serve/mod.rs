//! `bootc serve`: a preview server a real iPXE client can boot from.
//!
//! The site is built with the same pipeline and writer as `bootc build`, into
//! a private tree `SITE/.bootc-serve/tree` (never `public/`), and its `http/`
//! is served by [`conn`]: a thread per open connection, up to a cap, so a
//! slow client never holds up the others. A change to the
//! site rebuilds it (see [`watch`]); the new tree is swapped in atomically by
//! the writer and served from then on, while downloads already running keep
//! reading the files they opened (a build whose artifacts are those served
//! already is served before its tree is written: its other files are served
//! from memory). A failed rebuild keeps the last good tree
//! and shows its errors in the log and on the overview page (`/`: the
//! report with live state, see [`crate::render::report_context`]).
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
mod index;
mod log;
mod overview;
pub mod recorded;
mod respond;
mod snapshot;
mod watch;

use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use minijinja::{Environment, Value};

use crate::diag::{self, Listed, warning_line};
use crate::site::Mac;
use overview::no_build_env;
use snapshot::stage;

pub struct Options {
    pub site: PathBuf,
    pub bind: SocketAddr,
    pub poll: bool,
    /// The base-url the preview is built with (default: the server's own
    /// address, `http://127.0.0.1:8080/`).
    pub base_url: Option<String>,
}

/// The private folder in the site: the served tree and a lock.
pub const WORK_DIR: &str = ".bootc-serve";

/// One good build, as served. Its files but the summaries are served as
/// soon as its machines are compiled; the summaries (the manifest) and the
/// overview once it is [`Finished`].
struct Snapshot {
    /// Path under http/ -> file: every file but the summaries.
    files: index::Index,
    /// The rest, once the build is finished.
    finished: snapshot::Finishing,
    /// The tree's http/ folder on disk (for files not kept in memory).
    http_dir: PathBuf,
    machines: log::Machines,
    built_at: SystemTime,
    /// From the rebuild's start to this snapshot, ready to serve (its
    /// summaries not yet rendered, its tree not yet written).
    took: Duration,
    site_name: String,
    machine_count: usize,
    /// How many of them were compiled before (see [`crate::fleet`]).
    reused: usize,
    /// The first machine's first MAC, for the QEMU command line.
    first_mac: Option<(String, Mac)>,
    /// Folders of local artifacts (to watch those outside the site).
    artifact_dirs: Vec<PathBuf>,
}

/// What a snapshot serves once its build is finished.
struct Finished {
    /// Path under http/ -> file: the summaries (the manifest).
    files: index::Index,
    /// The report's template context, and an environment holding the
    /// site's report.html.j2 (or the built-in one) and serve.html.j2.
    report: Value,
    env: Environment<'static>,
    build_id: String,
}

/// One file of the index: what its answers need, made into headers per
/// request (an index has an entry for each of 200,000 files at 100,000
/// machines, and it is made before a build is served).
#[derive(Clone)]
struct FileEntry {
    size: u64,
    modified: SystemTime,
    body: Body,
}

#[derive(Clone)]
enum Body {
    /// Scripts, rendered files, the manifest: the tree's bytes.
    Memory(crate::tree::Bytes),
    /// Artifacts: streamed from the tree on disk.
    Disk { blake3: String },
}

impl FileEntry {
    /// The BLAKE3 of its content (hex): the tree's, never hashed here.
    fn blake3(&self) -> &str {
        match &self.body {
            Body::Memory(bytes) => bytes.blake3(),
            Body::Disk { blake3 } => blake3,
        }
    }

    /// Its ETag: the quoted BLAKE3.
    fn etag(&self) -> String {
        format!("\"{}\"", self.blake3())
    }
}

/// A failed build: what the log and the overview show.
struct Failure {
    at: SystemTime,
    /// rustc-style text, no color.
    text: String,
    problems: Vec<Listed>,
}

struct State {
    root: PathBuf,
    out: PathBuf,
    url: String,
    /// The base-url every build uses: `url`, or `--base-url`.
    base_url: String,
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
    /// What the last build made: files parsed, machines compiled.
    kept: Mutex<snapshot::Kept>,
    log: log::Log,
    no_build_env: Environment<'static>,
}

pub fn run(opts: Options) -> Result<ExitCode> {
    let root = match fs::canonicalize(&opts.site) {
        Ok(r) if r.join(crate::load::SITE_FILE).is_file() => r,
        _ => {
            let e = crate::load::LoadError::NotASite(opts.site.clone());
            eprint!("{}", diag::error_line(&e.to_string(), false));
            return Ok(ExitCode::from(2));
        }
    };
    let work = root.join(WORK_DIR);
    private_place(&work)?;
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    for name in [".gitignore", "lock", "tree"] {
        private_place(&work.join(name))?;
    }
    let ignore = work.join(".gitignore");
    if !ignore.exists() {
        let _ = no_follow(&ignore).and_then(|mut f| {
            std::io::Write::write_all(
                &mut f,
                b"# bootc serve's private build; never commit it\n*\n",
            )
        });
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
    let url = format!("http://{host}:{}/", addr.port());
    let state = Arc::new(State {
        out: work.join("tree"),
        base_url: opts.base_url.clone().unwrap_or_else(|| url.clone()),
        url,
        vm_host,
        port: addr.port(),
        root: root.clone(),
        current: RwLock::new(None),
        failure: Mutex::new(None),
        generation: AtomicU64::new(0),
        watch_kind: OnceLock::new(),
        warnings: Mutex::new(None),
        kept: Mutex::default(),
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
            say_err!(
                "{}",
                warning_line(&format!("watching the site: {e}"), false)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The site can hold `.bootc-serve` (a pull request can commit one): serve
/// never writes through a symbolic link there, which could truncate or
/// fill a file or folder outside the site.
fn private_place(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => anyhow::bail!(
            "{} is a symbolic link: bootc serve keeps its private build there and never writes \
             through a link; delete it (and keep {WORK_DIR}/ out of git)",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// Opens `path` for writing, creating it, never through a symbolic link.
fn no_follow(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Takes `WORK/lock`, so two servers never write one tree.
fn lock(work: &Path) -> Result<File> {
    let path = work.join("lock");
    let f = no_follow(&path).with_context(|| format!("creating {}", path.display()))?;
    if rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err() {
        anyhow::bail!(
            "another `bootc serve` is serving this site (it holds {})",
            path.display()
        );
    }
    Ok(f)
}

impl State {
    fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The snapshot served and its finished part (see [`snapshot::finished`]).
    fn finished(&self) -> Option<(Arc<Snapshot>, Arc<Finished>)> {
        snapshot::finished(&|| self.snapshot())
    }

    /// The snapshot served and `key`'s entry in it (see [`snapshot::find`]).
    fn find(&self, key: &str) -> Option<(Arc<Snapshot>, Option<FileEntry>)> {
        snapshot::find(&|| self.snapshot(), key)
    }

    /// Builds the site and, if it is good, serves the new tree. A build
    /// whose files served from disk (the artifacts) are all in the tree
    /// served already is served as soon as its machines are compiled (its
    /// summaries are served once rendered: requests for them wait), while
    /// it is finished and its tree written; if either fails, the previous
    /// build is served again.
    fn rebuild(&self) {
        let now = SystemTime::now();
        let t0 = Instant::now();
        let previous = self.snapshot();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let mut early = false;
        let result = stage(
            &self.root,
            &self.out,
            &self.base_url,
            previous.as_deref(),
            &mut kept,
            t0,
        )
        .and_then(|staging| {
            let snap = Arc::new(staging.snap);
            early = previous.as_ref().is_some_and(|p| snap.disk_files_in(p));
            if early {
                self.serve(Some(Arc::clone(&snap)));
            }
            // Requests are named by machine once answered: the names are
            // indexed meanwhile.
            let named = Arc::clone(&snap);
            rayon::spawn(move || named.machines.warm());
            let done = staging.pending.finish(&snap, previous.as_deref()).and_then(
                |(unwritten, warnings)| {
                    let stats = unwritten.write(&self.out)?;
                    Ok((stats, warnings))
                },
            );
            if done.is_err() {
                if early {
                    self.serve(previous.clone());
                }
                // Requests waiting for its summaries look again.
                snap.finished.fail();
            }
            done.map(|(stats, warnings)| (snap, stats, warnings))
        });
        drop((previous, kept));
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
                let unchanged = match snap.reused {
                    0 => String::new(),
                    n => format!(" ({n} unchanged)"),
                };
                let served = match early {
                    true => format!(" (served after {} ms)", snap.took.as_millis()),
                    false => String::new(),
                };
                say!(
                    "{time} built site {}: {}{unchanged}, {} ({} unchanged) in {} ms{served}",
                    snap.site_name,
                    crate::diag::plural(snap.machine_count, "machine"),
                    crate::diag::plural(stats.files, "file"),
                    stats.unchanged,
                    t0.elapsed().as_millis()
                );
                self.serve(Some(snap));
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

    /// Serves `snap` from now on.
    fn serve(&self, snap: Option<Arc<Snapshot>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = snap;
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
            "  built with base-url {} (every absolute URL points at this preview{})\n",
            self.base_url,
            if self.vm_host == "10.0.2.2" && self.base_url == self.url {
                format!(
                    "; for VMs under QEMU user networking: --base-url http://10.0.2.2:{}/",
                    self.port
                )
            } else {
                String::new()
            }
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
}
