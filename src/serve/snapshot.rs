//! One build of the served site, in two steps: staged (its machines
//! compiled: the index of what is served, a [`Snapshot`]), then finished
//! (its summaries rendered and indexed, [`Finished`]) and its tree
//! written; or the [`Failure`] to show.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use minijinja::Value;

use super::index::Index;
use super::overview::overview_env;
use super::{Failure, FileEntry, Finished, Snapshot, log};
use crate::Compiled;
use crate::context::{INDEX_FILE, ReportIndex};
use crate::diag::{self, Diag, Diags, Reporter, Severity, Sources};
use crate::fleet::Reuse;
use crate::load::Parsed;
use crate::render;
use crate::site::Artifact;
use crate::tree::{Content, Tree};
use crate::write;
use crate::write::record::{Record, Summary};

impl Failure {
    /// A failure with no place in the site, and its text for the terminal.
    fn message(text: String) -> (Failure, String) {
        let failure = Failure {
            at: SystemTime::now(),
            problems: vec![Diag::error(text.clone()).listed(&Sources::default())],
            text,
        };
        let shown = diag::error_line(&failure.text, false);
        (failure, shown)
    }

    pub(super) fn from_diags(sources: &Sources, diags: &Diags) -> Failure {
        let problems = diags.list.iter().map(|d| d.listed(sources)).collect();
        Failure {
            at: SystemTime::now(),
            text: Reporter::new(sources).human(diags, false),
            problems,
        }
    }

    pub(super) fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }
}

/// What the builds before made that the next one takes instead of making
/// it again: the machine files parsed, the machines compiled.
#[derive(Default)]
pub(super) struct Kept {
    parsed: Parsed,
    machines: Reuse,
}

/// A build staged ([`crate::stage`]), indexed and ready to serve, and
/// what is left to do.
pub(super) struct Staging {
    pub snap: Snapshot,
    pub pending: Pending,
}

/// What is left of a staged build: its summaries, then its tree to write.
pub(super) struct Pending {
    staged: Box<crate::Staged>,
    opts: crate::Options,
    color: bool,
}

/// A build's tree, to be written into the served folder.
pub(super) struct Unwritten {
    tree: Tree,
    summary: Summary,
}

/// A snapshot's [`Finished`] part: set once its build is finished, or
/// failed; requests for what only it serves wait for it.
#[derive(Default)]
pub(super) struct Finishing {
    /// None until set; then None again if the build failed.
    slot: Mutex<Option<Option<Arc<Finished>>>>,
    set: Condvar,
}

impl Finishing {
    fn lock(&self) -> MutexGuard<'_, Option<Option<Arc<Finished>>>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, finished: Option<Arc<Finished>>) {
        let mut slot = self.lock();
        if slot.is_none() {
            *slot = Some(finished);
            self.set.notify_all();
        }
    }

    /// The build failed (or its tree could not be written): nothing more
    /// will be set. A part set already stays.
    pub(super) fn fail(&self) {
        self.finish(None);
    }

    /// The finished part, once set: None if the build failed.
    pub(super) fn wait(&self) -> Option<Arc<Finished>> {
        let mut slot = self.lock();
        loop {
            match &*slot {
                Some(finished) => return finished.clone(),
                None => slot = self.set.wait(slot).unwrap_or_else(|e| e.into_inner()),
            }
        }
    }

    /// The finished part, if it is set already.
    pub(super) fn now(&self) -> Option<Arc<Finished>> {
        self.lock().clone().flatten()
    }
}

/// The snapshot `current` serves and its finished part, once there is
/// one: a snapshot served while its build is finished is waited for, and
/// one whose build then failed gives way to the one served again.
pub(super) fn finished(
    current: &dyn Fn() -> Option<Arc<Snapshot>>,
) -> Option<(Arc<Snapshot>, Arc<Finished>)> {
    loop {
        let snap = current()?;
        if let Some(finished) = snap.finished.wait() {
            return Some((snap, finished));
        }
    }
}

/// The snapshot `current` serves and the entry of `key` (a path under
/// http/) in it, if any; None before the first good build. A path a
/// snapshot does not hold before it is finished is looked for once it is
/// (see [`finished`]).
pub(super) fn find(
    current: &dyn Fn() -> Option<Arc<Snapshot>>,
    key: &str,
) -> Option<(Arc<Snapshot>, Option<FileEntry>)> {
    let snap = current()?;
    if let Some(entry) = snap.files.get(key) {
        let entry = entry.clone();
        return Some((snap, Some(entry)));
    }
    let (snap, finished) = finished(current)?;
    let entry = snap.files.get(key).or_else(|| finished.files.get(key));
    let entry = entry.cloned();
    Some((snap, entry))
}

/// Stages a build of the site at `root` ([`crate::stage`]): the snapshot
/// to serve (its files share the tree's bytes), and the rest to do; or the
/// failure (and its text for the terminal). `previous`: the snapshot served
/// until now; `kept`: what the builds before made.
pub(super) fn stage(
    root: &Path,
    out: &Path,
    base_url: &str,
    previous: Option<&Snapshot>,
    kept: &mut Kept,
    t0: Instant,
) -> Result<Staging, (Failure, String)> {
    let opts = crate::Options {
        media: true,
        base_url: Some(base_url.to_string()),
        ..Default::default()
    };
    let staged = crate::check_reusing(root, &opts, Some(&mut kept.parsed))
        .and_then(|checked| crate::stage(checked, &opts, Some(&mut kept.machines)))
        .map_err(|e| Failure::message(e.to_string()))?;
    let color = crate::diag::color_stderr();
    let staged = match staged {
        Compiled::Built(b) => b,
        Compiled::Invalid { sources, diags } => return Err(invalid(&sources, &diags, color)),
    };
    let plan = &staged.plan;
    let files = served_before(previous, |before| {
        Index::of(&staged.tree, before, SystemTime::now(), &Index::default())
    });
    let mut artifact_dirs: Vec<PathBuf> = staged
        .site
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
    let snap = Snapshot {
        files,
        finished: Finishing::default(),
        http_dir: out.join("http"),
        machines: log::Machines::from_plan(plan),
        built_at: SystemTime::now(),
        took: t0.elapsed(),
        site_name: plan.site.clone(),
        machine_count: plan.machines.len(),
        reused: staged.reused,
        first_mac: plan
            .machines
            .first()
            .and_then(|m| m.macs.first().map(|mac| (m.name.clone(), *mac))),
        artifact_dirs,
    };
    Ok(Staging {
        snap,
        pending: Pending {
            staged,
            opts,
            color,
        },
    })
}

/// `f` of the indexes `previous` serves: its own and its finished part's.
fn served_before<R>(previous: Option<&Snapshot>, f: impl FnOnce(&[&Index]) -> R) -> R {
    let finished = previous.and_then(|p| p.finished.now());
    let before: Vec<&Index> = (previous.map(|p| &p.files).into_iter())
        .chain(finished.as_deref().map(|f| &f.files))
        .collect();
    f(&before)
}

/// The failure of an invalid site, and its text for the terminal.
fn invalid(sources: &Sources, diags: &Diags, color: bool) -> (Failure, String) {
    let f = Failure::from_diags(sources, diags);
    (f, Reporter::new(sources).human(diags, color))
}

impl Pending {
    /// Finishes the build ([`crate::Staged::finish`]) and sets `snap`'s
    /// finished part (`previous`: the snapshot served before it): returns
    /// the tree to write and the warnings (colored for the terminal), if
    /// any.
    pub(super) fn finish(
        self,
        snap: &Snapshot,
        previous: Option<&Snapshot>,
    ) -> Result<(Unwritten, Option<String>), (Failure, String)> {
        let b = match self.staged.finish(&self.opts) {
            Ok(Compiled::Built(b)) => b,
            Ok(Compiled::Invalid { sources, diags }) => {
                return Err(invalid(&sources, &diags, self.color));
            }
            Err(e) => return Err(Failure::message(e.to_string())),
        };
        let crate::Build {
            sources,
            site,
            plan,
            tree,
            build_id,
            diags,
            ..
        } = *b;
        let warnings =
            (!diags.list.is_empty()).then(|| Reporter::new(&sources).human(&diags, self.color));
        // The page carries the machine index inline: the build's own.
        let inline = match tree.files.get(INDEX_FILE) {
            Some(Content::Bytes(b)) => std::str::from_utf8(b)
                .ok()
                .and_then(ReportIndex::json_of_script)
                .map(str::to_string),
            _ => None,
        }
        .unwrap_or_else(|| crate::context::index(&site, &plan, None).json());
        let report = render::report_context(
            &site,
            &sources,
            &plan,
            None,
            &diags,
            Some(inline),
            Value::from(false),
        );
        let finished = Finished {
            files: served_before(previous, |before| {
                Index::of(&tree, before, SystemTime::now(), &snap.files)
            }),
            env: overview_env(&site, &sources),
            report,
            build_id,
        };
        snap.finished.finish(Some(Arc::new(finished)));
        let unwritten = Unwritten {
            summary: Summary::of(&plan),
            tree,
        };
        Ok((unwritten, warnings))
    }
}

impl Unwritten {
    /// Writes the tree into `out` (the files the record of the last build
    /// there proves are not read) and records it.
    pub(super) fn write(self, out: &Path) -> Result<write::Stats, (Failure, String)> {
        let last = Record::load(out);
        let stats = write::write_with(out, &self.tree, last.as_ref())
            .map_err(|e| Failure::message(format!("writing the tree: {e}")))?;
        // No fingerprint: serve never skips a build, it only reuses files.
        if let Ok(mut r) = Record::make(
            out,
            &stats,
            self.tree.into_hashes(),
            String::new(),
            self.summary,
            Diags::default(),
        ) {
            r.keep_spare(out, last, stats.swapped);
            r.save(out);
        }
        Ok(stats)
    }
}

impl Snapshot {
    /// Whether `served`'s tree on disk already holds every file this
    /// snapshot serves from disk (the same path, the same content): then it
    /// can be served before its own tree is written, as its other files
    /// are served from memory.
    pub(super) fn disk_files_in(&self, served: &Snapshot) -> bool {
        self.http_dir == served.http_dir && self.files.disk_files_in(&served.files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::Body;

    /// A file whose content is `tag`; on disk, its hash is `tag`.
    fn entry(tag: &str, disk: bool) -> FileEntry {
        FileEntry {
            size: 1,
            modified: SystemTime::UNIX_EPOCH,
            body: match disk {
                true => Body::Disk {
                    blake3: tag.to_string(),
                },
                false => Body::Memory(tag.as_bytes().to_vec().into()),
            },
        }
    }

    /// The ETag of a file in memory whose content is `tag`.
    fn etag(tag: &str) -> Option<String> {
        Some(entry(tag, false).etag())
    }

    fn files(list: &[(&str, &str, bool)]) -> Index {
        list.iter()
            .map(|(rel, etag, disk)| (rel.to_string(), entry(etag, *disk)))
            .collect()
    }

    fn snapshot(files: Index) -> Arc<Snapshot> {
        Arc::new(Snapshot {
            files,
            finished: Finishing::default(),
            http_dir: PathBuf::new(),
            machines: Default::default(),
            built_at: SystemTime::UNIX_EPOCH,
            took: std::time::Duration::ZERO,
            site_name: String::new(),
            machine_count: 0,
            reused: 0,
            first_mac: None,
            artifact_dirs: Vec::new(),
        })
    }

    fn finished_with(files: Index) -> Option<Arc<Finished>> {
        Some(Arc::new(Finished {
            files,
            report: Value::from(()),
            env: minijinja::Environment::new(),
            build_id: String::new(),
        }))
    }

    /// The ETag `find` gives for `key`, asked on another thread, which
    /// must still be waiting 100 ms later; then `then` runs.
    fn asked_while(
        current: &Mutex<Arc<Snapshot>>,
        key: &str,
        then: impl FnOnce(),
    ) -> Option<String> {
        let current = || Some(current.lock().unwrap().clone());
        std::thread::scope(|scope| {
            let asked = scope.spawn(|| find(&current, key).and_then(|(_, e)| e).map(|e| e.etag()));
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(
                !asked.is_finished(),
                "{key} was answered before the build finished"
            );
            then();
            asked.join().unwrap()
        })
    }

    #[test]
    fn a_summary_asked_for_while_its_build_finishes_waits_for_it() {
        let staged = snapshot(files(&[("machines/m.ipxe", "s2", false)]));
        let current = Mutex::new(Arc::clone(&staged));
        let found = |key: &str| {
            let current = || Some(current.lock().unwrap().clone());
            find(&current, key).and_then(|(_, e)| e).map(|e| e.etag())
        };
        // The staged files are served at once.
        assert_eq!(found("machines/m.ipxe"), etag("s2"));
        let manifest = asked_while(&current, "manifest.json", || {
            staged
                .finished
                .finish(finished_with(files(&[("manifest.json", "m2", false)])));
        });
        assert_eq!(manifest, etag("m2"));
        // Once finished, a path neither part holds is not found.
        assert_eq!(found("nothing"), None);
    }

    #[test]
    fn a_build_that_fails_to_finish_gives_way_to_the_one_served_before() {
        let before = snapshot(files(&[("machines/m.ipxe", "s1", false)]));
        before
            .finished
            .finish(finished_with(files(&[("manifest.json", "m1", false)])));
        let staged = snapshot(files(&[("machines/m.ipxe", "s2", false)]));
        let current = Mutex::new(Arc::clone(&staged));
        let manifest = asked_while(&current, "manifest.json", || {
            // As `rebuild` does: the build before is served again first.
            *current.lock().unwrap() = Arc::clone(&before);
            staged.finished.fail();
        });
        assert_eq!(manifest, etag("m1"));
        // A failed build's part stays unset; one set already stays.
        assert!(staged.finished.now().is_none());
        before.finished.fail();
        assert!(before.finished.now().is_some());
    }

    #[test]
    fn a_build_is_served_early_only_when_its_disk_files_are_served_already() {
        let served = files(&[("images/k", "a1", true), ("machines/m.ipxe", "s1", false)]);
        // Another script, the same artifact: its disk file is there.
        let edited = files(&[
            ("images/k", "a1", true),
            ("machines/m.ipxe", "s2", false),
            ("machines/new.ipxe", "s3", false),
        ]);
        assert!(edited.disk_files_in(&served));
        // Another artifact's bytes at the same path, a new artifact, or
        // one that was served from memory: not there yet.
        for changed in [
            files(&[("images/k", "a2", true)]),
            files(&[("images/k", "a1", true), ("images/i", "a1", true)]),
            files(&[("machines/m.ipxe", "s1", true)]),
        ] {
            assert!(!changed.disk_files_in(&served));
        }
    }
}
