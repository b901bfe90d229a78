//! A side at a git revision: the site exported into a temporary folder from
//! git's objects (read-only: the working tree, the index and HEAD are never
//! touched).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use super::side::SideError;

type Result<T> = std::result::Result<T, SideError>;

fn msg(text: impl Into<String>) -> SideError {
    SideError::Message(text.into())
}

/// The site at a git revision. What git ignores in the working tree's copy
/// of the site (local artifacts, typically) is linked in, since no revision
/// has it.
pub struct GitExport {
    _dir: tempfile::TempDir,
    pub site: PathBuf,
    /// `git:REV (short)`, or `git:short` when REV is a commit.
    pub label: String,
    /// What was linked in from the working tree (for a note).
    pub linked: Vec<String>,
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(SideError::io("running git"))?;
    if !out.status.success() {
        return Err(msg(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `path` made absolute and without `.` or `..`, without touching the disk.
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::env::current_dir()
        .map_err(SideError::io("the current folder"))?
        .join(path);
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The repository holding `anchor`, and the site's path inside it.
fn locate(anchor: &Path) -> Result<(PathBuf, String)> {
    // The nearest folder of the anchor that exists finds the repository;
    // the site itself may exist only in the revision.
    let abs = absolute(anchor)?;
    let mut existing = abs.as_path();
    while !existing.is_dir() {
        existing = existing
            .parent()
            .ok_or_else(|| msg(format!("{}: no such folder", abs.display())))?;
    }
    let top = git(existing, &["rev-parse", "--show-toplevel"])
        .map_err(|e| e.context(format!("{} is not inside a git repository", abs.display())))?;
    let top = PathBuf::from(top.trim_end_matches('\n'));
    let inner = git(existing, &["rev-parse", "--show-prefix"])?;
    let mut prefix = inner
        .trim_end_matches('\n')
        .trim_end_matches('/')
        .to_string();
    for c in abs
        .strip_prefix(existing)
        .unwrap_or(Path::new(""))
        .components()
    {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(&c.as_os_str().to_string_lossy());
    }
    Ok((top, prefix))
}

/// Writes the files of `commit` under `prefix` into `dest`, read from git's
/// objects (`ls-tree`, `cat-file`): the tree exactly as committed. Not
/// `git archive`, which obeys the commit's own `.gitattributes`, so a pull
/// request could hide a file from the diff with `export-ignore` or rewrite
/// one with `export-subst`.
fn extract(
    top: &Path,
    rev: &str,
    commit: &str,
    short: &str,
    prefix: &str,
    dest: &Path,
) -> Result<()> {
    let mut args = vec!["ls-tree", "-r", "-z", "--full-tree", commit];
    if !prefix.is_empty() {
        args.extend(["--", prefix]);
    }
    let listing = git(top, &args)?;
    let mut entries = Vec::new();
    for entry in listing.split('\0').filter(|e| !e.is_empty()) {
        let (meta, path) = entry
            .split_once('\t')
            .ok_or_else(|| msg(format!("git ls-tree {rev}: unexpected line {entry:?}")))?;
        let mut meta = meta.split(' ');
        let (mode, kind, oid) = (meta.next(), meta.next(), meta.next());
        let (Some(mode), Some("blob"), Some(oid)) = (mode, kind, oid) else {
            continue; // submodules: no files of the site
        };
        let safe = Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(n) if n != ".git"));
        if !safe {
            return Err(msg(format!(
                "{rev} ({short}) holds a path git would never check out: {path:?}"
            )));
        }
        entries.push((mode.to_string(), oid.to_string(), path.to_string()));
    }
    if entries.is_empty() {
        return Err(msg(format!(
            "{} does not exist at {rev} ({short})",
            if prefix.is_empty() {
                "the site"
            } else {
                prefix
            }
        )));
    }
    let mut cat = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SideError::io("running git cat-file"))?;
    let mut input = cat.stdin.take().expect("piped");
    let oids: String = entries
        .iter()
        .map(|(_, oid, _)| format!("{oid}\n"))
        .collect();
    let writer = std::thread::spawn(move || input.write_all(oids.as_bytes()));
    let mut out = BufReader::new(cat.stdout.take().expect("piped"));
    for (mode, oid, path) in &entries {
        let mut header = String::new();
        out.read_line(&mut header)
            .map_err(SideError::io("reading git cat-file"))?;
        let size: usize = header
            .trim_end()
            .strip_prefix(oid.as_str())
            .and_then(|h| h.strip_prefix(" blob "))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| msg(format!("git cat-file {oid}: {}", header.trim())))?;
        let mut body = vec![0; size + 1];
        out.read_exact(&mut body)
            .map_err(SideError::io("reading git cat-file"))?;
        body.pop(); // the newline after each object
        let to = dest.join(path);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(SideError::io("writing the export"))?;
        }
        if mode == "120000" {
            let target = String::from_utf8_lossy(&body).into_owned();
            std::os::unix::fs::symlink(target, &to).map_err(SideError::io("writing the export"))?;
        } else {
            std::fs::write(&to, &body).map_err(SideError::io("writing the export"))?;
        }
    }
    drop(out);
    let _ = writer.join();
    let status = cat.wait().map_err(SideError::io("git cat-file"))?;
    if !status.success() {
        return Err(msg(format!("git cat-file ({rev}) failed")));
    }
    Ok(())
}

impl GitExport {
    /// The site holding `anchor` (a folder, which may exist only in the
    /// revision) at `rev`.
    pub fn new(rev: &str, anchor: &Path) -> Result<GitExport> {
        let (top, prefix) = locate(anchor)?;
        let commit = git(
            &top,
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                &format!("{rev}^{{commit}}"),
            ],
        )
        .map_err(|_| {
            msg(format!(
                "{rev} is not a commit of the repository at {}",
                top.display()
            ))
        })?;
        let commit = commit.trim().to_string();
        let short = git(&top, &["rev-parse", "--short", &commit])?
            .trim()
            .to_string();
        let label = if rev.len() >= 7 && commit.starts_with(rev) {
            format!("git:{short}")
        } else {
            format!("git:{rev} ({short})")
        };

        let dir = tempfile::Builder::new()
            .prefix("bootc-diff-")
            .tempdir()
            .map_err(SideError::io("a temporary folder"))?;
        extract(&top, rev, &commit, &short, &prefix, dir.path())?;
        let site = dir.path().join(&prefix);
        if !site.join("bootc.toml").is_file() {
            return Err(msg(format!(
                "{} at {rev} ({short}) is not a site: it has no bootc.toml",
                if prefix.is_empty() {
                    "the repository's root".to_string()
                } else {
                    prefix.clone()
                }
            )));
        }
        let linked = link_ignored(&top.join(&prefix), &site)?;
        if !linked.is_empty() {
            // What is linked in stays part of this site (artifact roots).
            crate::beneath::add_site_alias(&top.join(&prefix));
        }
        Ok(GitExport {
            _dir: dir,
            site,
            label,
            linked,
        })
    }
}

/// Links what git ignores in `worktree_site` (local artifacts, typically)
/// into the exported `site`, where it is missing. Returns what was linked.
fn link_ignored(worktree_site: &Path, site: &Path) -> Result<Vec<String>> {
    if !worktree_site.is_dir() {
        return Ok(Vec::new());
    }
    let list = git(
        worktree_site,
        &[
            "ls-files",
            "-z",
            "--others",
            "--ignored",
            "--exclude-standard",
            "--directory",
        ],
    )?;
    let mut linked = Vec::new();
    for entry in list.split('\0').filter(|e| !e.is_empty()) {
        let rel = entry.trim_end_matches('/');
        // The output tree is not an input.
        if rel == "public" || rel.starts_with("../") {
            continue;
        }
        let dest = site.join(rel);
        if dest.symlink_metadata().is_ok() {
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(SideError::io(parent.display().to_string()))?;
        }
        // Site files (small text) are copied, symlinks as they are: a link
        // out of the exported site would be refused as leaving it. Anything
        // else (artifacts, typically large) is linked: artifact roots
        // resolve through links.
        let first = rel.split('/').next().unwrap_or("");
        if rel == "bootc.toml" || ["machines", "roles", "images", "templates"].contains(&first) {
            mirror(&worktree_site.join(rel), &dest)?;
        } else {
            std::os::unix::fs::symlink(worktree_site.join(rel), &dest)
                .map_err(SideError::io(dest.display().to_string()))?;
        }
        linked.push(entry.to_string());
    }
    Ok(linked)
}

/// Copies `from` to `to`: folders walked, regular files copied, symlinks
/// recreated with the same target (never followed).
fn mirror(from: &Path, to: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(from) {
        let e = e.map_err(|source| SideError::Walk {
            what: from.display().to_string(),
            source,
        })?;
        let dest = match e.path().strip_prefix(from) {
            Ok(rel) if !rel.as_os_str().is_empty() => to.join(rel),
            _ => to.to_path_buf(),
        };
        let ft = e.file_type();
        let r = if ft.is_dir() {
            std::fs::create_dir_all(&dest)
        } else if ft.is_symlink() {
            std::fs::read_link(e.path()).and_then(|t| std::os::unix::fs::symlink(t, &dest))
        } else if ft.is_file() {
            std::fs::copy(e.path(), &dest).map(|_| ())
        } else {
            Ok(())
        };
        r.map_err(SideError::io(dest.display().to_string()))?;
    }
    Ok(())
}
