//! Watching the site for `bootc serve`: native file events (inotify) through
//! notify's full debouncer, or polling where native events fail (or
//! `--poll`). Reads (the build's own: inotify reports opens) never count.
//!
//! The poller is this module's own: notify's PollWatcher compares
//! modification times in whole seconds, so a second save within the same
//! second as the first would go unseen for good. This one compares size,
//! mtime and ctime to the nanosecond and the inode of every watched file.
//!
//! Watched: the site root itself (bootc.toml, new top-level folders), each
//! top-level folder recursively except hidden ones and `public/` (so the
//! private output `.bootc-serve/`, `.git` and a `bootc build`'s output never
//! wake it), and the folders of local artifacts outside the site. Changes to
//! hidden files and editor temporaries (`.x.swp`, `x~`, `#x#`, vim's `4913`)
//! are ignored, as the loader skips them too.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};

use crate::diag::warning_line;

/// Quiet time after the last event before a rebuild.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// How often the polling watcher looks.
pub const POLL_EVERY: Duration = Duration::from_millis(500);

enum Backend {
    Native(Debouncer<RecommendedWatcher, NoCache>),
    /// The watched paths, shared with the polling thread.
    Poll(Arc<Mutex<Vec<(PathBuf, RecursiveMode)>>>),
}

pub struct Watch {
    backend: Backend,
    root: PathBuf,
    watched: BTreeSet<PathBuf>,
}

/// Says that native events `why` and the watcher polls instead.
fn polling_instead(why: &str) {
    let text = format!(
        "native file events {why}; polling every {:.1} s instead",
        POLL_EVERY.as_secs_f64()
    );
    eprint!("{}", warning_line(&text, false));
}

impl Watch {
    /// Starts watching `root` (canonical); each batch of relevant changed
    /// paths is sent on `tx`. Native events unless `poll`; falls back to
    /// polling when they cannot be set up (no inotify, its limits reached).
    pub fn start(root: &Path, poll: bool, tx: Sender<Vec<PathBuf>>) -> anyhow::Result<Watch> {
        if !poll {
            let native = new_debouncer_opt::<_, RecommendedWatcher, _>(
                DEBOUNCE,
                None,
                handler(root, tx.clone()),
                NoCache,
                notify::Config::default(),
            );
            match native {
                Ok(d) => {
                    let mut w = Watch {
                        backend: Backend::Native(d),
                        root: root.to_path_buf(),
                        watched: BTreeSet::new(),
                    };
                    match w.sync(&[]) {
                        Ok(()) => return Ok(w),
                        Err(e) => polling_instead(&format!("failed ({e})")),
                    }
                }
                Err(e) => polling_instead(&format!("unavailable ({e})")),
            }
        }
        let roots = Arc::new(Mutex::new(Vec::new()));
        let mut w = Watch {
            backend: Backend::Poll(Arc::clone(&roots)),
            root: root.to_path_buf(),
            watched: BTreeSet::new(),
        };
        w.sync(&[])?;
        let root = root.to_path_buf();
        // The first look is taken now: a change from here on is seen.
        let first = scan(&root, &roots.lock().unwrap_or_else(|e| e.into_inner()));
        thread::Builder::new()
            .name("bootc-serve-poll".into())
            .spawn(move || poll_loop(&root, &roots, &tx, first))?;
        Ok(w)
    }

    /// How changes are seen, for the start banner.
    pub fn kind(&self) -> String {
        match self.backend {
            Backend::Native(_) => "native file events".into(),
            Backend::Poll(_) => format!("polling every {:.1} s", POLL_EVERY.as_secs_f64()),
        }
    }

    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> notify::Result<()> {
        match &mut self.backend {
            Backend::Native(d) => d.watch(path, mode),
            Backend::Poll(roots) => {
                roots
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((path.to_path_buf(), mode));
                Ok(())
            }
        }
    }

    /// Watches what is not watched yet: the root, its top-level folders
    /// (new ones appear), and `outside` (folders of artifacts outside the
    /// site). Folders gone are forgotten.
    pub fn sync(&mut self, outside: &[PathBuf]) -> notify::Result<()> {
        let mut want: Vec<(PathBuf, RecursiveMode)> =
            vec![(self.root.clone(), RecursiveMode::NonRecursive)];
        if let Ok(entries) = std::fs::read_dir(&self.root) {
            let mut dirs: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    !n.starts_with('.') && n != "public"
                })
                .map(|e| e.path())
                .collect();
            dirs.sort();
            want.extend(dirs.into_iter().map(|d| (d, RecursiveMode::Recursive)));
        }
        for d in outside {
            if !d.starts_with(&self.root) {
                want.push((d.clone(), RecursiveMode::NonRecursive));
            }
        }
        self.watched.retain(|p| p.exists());
        for (path, mode) in want {
            if self.watched.contains(&path) {
                continue;
            }
            self.watch(&path, mode)?;
            self.watched.insert(path);
        }
        Ok(())
    }
}

fn handler(
    root: &Path,
    tx: Sender<Vec<PathBuf>>,
) -> impl FnMut(DebounceEventResult) + Send + use<> {
    let root = root.to_path_buf();
    move |res: DebounceEventResult| match res {
        Ok(events) => {
            let paths: Vec<PathBuf> = events
                .into_iter()
                .filter(|e| changes(&e.kind))
                .flat_map(|e| e.event.paths)
                .filter(|p| relevant(&root, p))
                .collect();
            if !paths.is_empty() {
                let _ = tx.send(paths);
            }
        }
        Err(errors) => {
            for e in errors {
                let _ = write!(
                    std::io::stderr(),
                    "{}",
                    warning_line(&format!("watching the site: {e}"), false)
                );
            }
        }
    }
}

/// What a file looks like to the poller.
type Stamp = (u64, i64, i64, i64, i64, u64);

fn stamp(m: &std::fs::Metadata) -> Stamp {
    (
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
        m.ino(),
    )
}

/// Stamps of everything under the watched paths (hidden names and
/// `public/` skipped, as the loader does).
fn scan(root: &Path, roots: &[(PathBuf, RecursiveMode)]) -> BTreeMap<PathBuf, Stamp> {
    let mut out = BTreeMap::new();
    for (path, mode) in roots {
        let depth = if *mode == RecursiveMode::Recursive {
            usize::MAX
        } else {
            1
        };
        let walk = walkdir::WalkDir::new(path)
            .max_depth(depth)
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for e in walk.flatten() {
            if e.depth() == 0 && e.file_type().is_dir() {
                continue;
            }
            if !relevant(root, e.path()) {
                continue;
            }
            if let Ok(m) = e.metadata() {
                out.insert(e.into_path(), stamp(&m));
            }
        }
    }
    out
}

/// The polling loop: every [`POLL_EVERY`], the paths that appeared,
/// changed or went away.
fn poll_loop(
    root: &Path,
    roots: &Mutex<Vec<(PathBuf, RecursiveMode)>>,
    tx: &Sender<Vec<PathBuf>>,
    mut before: BTreeMap<PathBuf, Stamp>,
) {
    let current = || {
        let r = roots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        scan(root, &r)
    };
    loop {
        thread::sleep(POLL_EVERY);
        let now = current();
        let mut changed: Vec<PathBuf> = now
            .iter()
            .filter(|(p, s)| before.get(*p) != Some(s))
            .map(|(p, _)| p.clone())
            .collect();
        changed.extend(before.keys().filter(|p| !now.contains_key(*p)).cloned());
        before = now;
        if !changed.is_empty() && tx.send(changed).is_err() {
            return;
        }
    }
}

/// Whether an event is a change: not an open or a read (a close after
/// writing is).
fn changes(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Whether a change at `path` can change the build.
pub fn relevant(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return true; // an artifact folder outside the site
    };
    let mut parts = rel.components().map(|c| c.as_os_str().to_string_lossy());
    if let Some(first) = rel.components().next()
        && first.as_os_str() == "public"
    {
        return false;
    }
    if parts.any(|p| p.starts_with('.')) {
        return false;
    }
    let Some(name) = rel.file_name().map(|n| n.to_string_lossy()) else {
        return false; // the root folder itself
    };
    !(name.ends_with('~')
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_wakes_a_rebuild() {
        let root = Path::new("/site");
        for p in [
            "/site/bootc.toml",
            "/site/machines/rack1.toml",
            "/site/templates/ipxe/x.ipxe.j2",
            "/site/artifacts/vmlinuz",
            "/srv/artifacts/vmlinuz",
        ] {
            assert!(relevant(root, Path::new(p)), "{p}");
        }
        for p in [
            "/site/.bootc-serve/tree/http/boot.ipxe",
            "/site/.git/index",
            "/site/public/http/boot.ipxe",
            "/site/.public.bootc-staging-12/plan.json",
            "/site/machines/.rack1.toml.swp",
            "/site/machines/rack1.toml~",
            "/site/machines/#rack1.toml#",
            "/site/machines/.#rack1.toml",
            "/site/machines/4913",
        ] {
            assert!(!relevant(root, Path::new(p)), "{p}");
        }
    }
}
