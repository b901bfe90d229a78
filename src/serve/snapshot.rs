//! One build of the served site: the pipeline and the writer, then the
//! index of what is served (a [`Snapshot`]), or the [`Failure`] to show.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use minijinja::Value;
use rayon::prelude::*;

use super::overview::overview_env;
use super::{Body, Failure, FileEntry, Snapshot, http, log};
use crate::Compiled;
use crate::context::{INDEX_FILE, ReportIndex};
use crate::diag::{self, Diag, Diags, Reporter, Severity, Sources};
use crate::fleet::Reuse;
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

/// A good build, indexed and ready to serve, and its tree still to write.
pub(super) struct Built {
    pub snap: Snapshot,
    /// Its warnings (colored for the terminal), if any.
    pub warnings: Option<String>,
    pub unwritten: Unwritten,
}

/// A build's tree, to be written into the served folder.
pub(super) struct Unwritten {
    tree: Tree,
    summary: Summary,
}

/// One build of the site at `root`: the snapshot to serve (its files
/// share the tree's bytes) and the tree to write; or the failure (and its
/// text for the terminal). `previous`: the snapshot served until now;
/// `reuse`: the machines the builds before compiled.
pub(super) fn build(
    root: &Path,
    out: &Path,
    base_url: &str,
    previous: Option<&Snapshot>,
    reuse: &mut Reuse,
    t0: Instant,
) -> Result<Built, (Failure, String)> {
    let opts = crate::Options {
        media: true,
        base_url: Some(base_url.to_string()),
        ..Default::default()
    };
    let compiled = crate::check(root, &opts)
        .and_then(|checked| crate::compile_reusing(checked, &opts, Some(reuse)));
    let c = match compiled {
        Ok(c) => c,
        Err(e) => return Err(Failure::message(e.to_string())),
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
        build_id,
        diags,
        reused,
        ..
    } = *b;
    let warnings = (!diags.list.is_empty()).then(|| Reporter::new(&sources).human(&diags, color));

    // The page carries the machine index inline: the build's own.
    let inline = match tree.files.get(INDEX_FILE) {
        Some(Content::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(ReportIndex::json_of_script)
            .map(str::to_string),
        _ => None,
    }
    .unwrap_or_else(|| crate::context::index(&site, &plan, None).json());
    let files = index(&tree, previous.map(|p| &p.files), SystemTime::now());
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
    let report = render::report_context(
        &site,
        &sources,
        &plan,
        None,
        &diags,
        Some(inline),
        Value::from(false),
    );
    let snap = Snapshot {
        files,
        http_dir: out.join("http"),
        env: overview_env(&site, &sources),
        report,
        machines: log::Machines::from_plan(&plan),
        built_at: SystemTime::now(),
        took: t0.elapsed(),
        build_id,
        site_name: plan.site.clone(),
        machine_count: plan.machines.len(),
        reused,
        first_mac: plan
            .machines
            .first()
            .and_then(|m| m.macs.first().map(|mac| (m.name.clone(), *mac))),
        artifact_dirs,
    };
    let unwritten = Unwritten {
        summary: Summary::of(&plan),
        tree,
    };
    Ok(Built {
        snap,
        warnings,
        unwritten,
    })
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
            &self.tree,
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
        self.http_dir == served.http_dir && disk_files_in(&self.files, &served.files)
    }
}

/// Whether every file `files` serves from disk is served from disk by
/// `served` too, with the same content.
fn disk_files_in(files: &HashMap<String, FileEntry>, served: &HashMap<String, FileEntry>) -> bool {
    files.iter().all(|(rel, e)| match e.body {
        Body::Memory(_) => true,
        Body::Disk => served
            .get(rel)
            .is_some_and(|p| matches!(p.body, Body::Disk) && p.etag == e.etag),
    })
}

/// The served index of the tree's `http/` files: their ETags are the
/// hashes the manifest was made of (hashed once, kept by the tree), and a
/// file the `previous` index served with the same ETag keeps its
/// modification time (the writer kept the file); any other is modified
/// `now`. Nothing is read back from disk.
pub(super) fn index(
    tree: &Tree,
    previous: Option<&HashMap<String, FileEntry>>,
    now: SystemTime,
) -> HashMap<String, FileEntry> {
    let now_text = http::http_date(now);
    tree.files
        .par_iter()
        .filter_map(|(path, content)| {
            let rel = path.strip_prefix("http/")?;
            let etag = format!("\"{}\"", content.blake3());
            let (modified, last_modified) = match previous.and_then(|p| p.get(rel)) {
                Some(e) if e.etag == etag => (e.modified, e.last_modified.clone()),
                _ => (now, now_text.clone()),
            };
            let size = content.size();
            let body = match content {
                Content::Bytes(b) => Body::Memory(b.clone()),
                Content::Copy { .. } => Body::Disk,
            };
            let entry = FileEntry {
                size,
                etag,
                modified,
                last_modified,
                body,
            };
            Some((rel.to_string(), entry))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(etag: &str, disk: bool) -> FileEntry {
        FileEntry {
            size: 1,
            etag: format!("\"{etag}\""),
            modified: SystemTime::UNIX_EPOCH,
            last_modified: String::new(),
            body: match disk {
                true => Body::Disk,
                false => Body::Memory(b"x".to_vec().into()),
            },
        }
    }

    fn files(list: &[(&str, &str, bool)]) -> HashMap<String, FileEntry> {
        list.iter()
            .map(|(rel, etag, disk)| (rel.to_string(), entry(etag, *disk)))
            .collect()
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
        assert!(disk_files_in(&edited, &served));
        // Another artifact's bytes at the same path, a new artifact, or
        // one that was served from memory: not there yet.
        for changed in [
            files(&[("images/k", "a2", true)]),
            files(&[("images/k", "a1", true), ("images/i", "a1", true)]),
            files(&[("machines/m.ipxe", "s1", true)]),
        ] {
            assert!(!disk_files_in(&changed, &served));
        }
    }
}
