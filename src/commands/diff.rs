//! `bootc diff BASE HEAD`: turns each side (a site folder, a built tree, or
//! `git:REV[:PATH]`) into a plan, compares the two and prints the report.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, anyhow, bail};

use super::color_stderr;
use bootc::diag::{Diags, Reporter, Severity};
use bootc::diff::{self, DiffFormat, PlanDoc, Side, Texts};
use bootc::tree::Content;
use bootc::{Compiled, compile};

pub fn run(base: &str, head: &str, format: DiffFormat, exit_code: bool) -> Result<ExitCode> {
    // Both sides first, so an invalid BASE and an invalid HEAD are both shown.
    let b = side(base, head, "BASE")?;
    let h = side(head, base, "HEAD")?;
    let (Some(b), Some(h)) = (b, h) else {
        return Ok(ExitCode::from(1));
    };
    let report = diff::diff(&b, &h);
    print!("{}", report.render(format));
    Ok(ExitCode::from(u8::from(exit_code && report.changed)))
}

/// One side, or None when its site is invalid (its errors are printed).
fn side(spec: &str, other: &str, which: &str) -> Result<Option<Side>> {
    if let Some(rest) = spec.strip_prefix("git:") {
        let (rev, path) = match rest.split_once(':') {
            Some((rev, path)) => (rev, Some(PathBuf::from(path))),
            None => (rest, None),
        };
        if rev.is_empty() {
            bail!(
                "{spec}: a revision is missing after `git:` (for example git:main or git:HEAD~1)"
            );
        }
        // Which site: the one named, else the other side's when it is a site
        // folder (`bootc diff git:HEAD .`), else the site holding the current
        // folder (the nearest with a bootc.toml), else the current folder.
        let anchor = path.unwrap_or_else(|| {
            let o = Path::new(other);
            if !other.starts_with("git:") && o.join("bootc.toml").is_file() {
                return o.to_path_buf();
            }
            let mut dir = PathBuf::from(".");
            for _ in 0..64 {
                if dir.join("bootc.toml").is_file() {
                    return dir;
                }
                if dir.join(".git").exists() {
                    break;
                }
                dir.push("..");
            }
            PathBuf::from(".")
        });
        let export = GitExport::new(rev, &anchor).with_context(|| format!("{which} {spec}"))?;
        return from_site(&export.site, export.label.clone(), which);
    }
    let p = Path::new(spec);
    if p.is_file() {
        let root = p.parent().unwrap_or(Path::new("."));
        return from_tree(p, root, spec).map(Some);
    }
    if p.join("bootc.toml").is_file() {
        return from_site(p, spec.to_string(), which);
    }
    if p.join("plan.json").is_file() {
        return from_tree(&p.join("plan.json"), p, spec).map(Some);
    }
    if !p.exists() {
        bail!("{which} {spec}: no such file or folder");
    }
    bail!(
        "{which} {spec} is neither a site (it has no bootc.toml) nor a built tree (it has no plan.json)"
    )
}

/// Compiles a site in memory; its plan is the plan.json `build` would write.
fn from_site(dir: &Path, label: String, which: &str) -> Result<Option<Side>> {
    let tree = match compile(dir)? {
        Compiled::Built(b) => b.tree,
        Compiled::Invalid { sources, diags } => {
            let errors = Diags {
                list: diags
                    .list
                    .into_iter()
                    .filter(|d| d.severity == Severity::Error)
                    .collect(),
            };
            eprintln!("error: {which} {label} is not a valid site");
            eprint!("{}", Reporter::new(&sources).human(&errors, color_stderr()));
            return Ok(None);
        }
    };
    let plan = match tree.files.get("plan.json") {
        Some(Content::Bytes(b)) => serde_json::from_slice::<PlanDoc>(b)
            .with_context(|| format!("reading back the plan of {label}"))?,
        _ => bail!("{label}: the compiled tree has no plan.json"),
    };
    let files = tree
        .files
        .iter()
        .filter(|(p, _)| diff::tracked(p))
        .map(|(p, c)| (p.clone(), c.blake3()))
        .collect();
    // Per-machine files, for the lines that change in them.
    let texts = tree
        .files
        .into_iter()
        .filter_map(|(p, c)| match c {
            Content::Bytes(b)
                if p.strip_prefix("http/machines/")
                    .is_some_and(|rest| rest.contains('/')) =>
            {
                Some((p, b))
            }
            _ => None,
        })
        .collect();
    Ok(Some(Side {
        label,
        plan,
        files: Some(files),
        texts: Texts::Map(texts),
    }))
}

/// A built tree: its plan.json, and the hashes of its files when it has http/.
fn from_tree(plan: &Path, root: &Path, label: &str) -> Result<Side> {
    // The plan.json of a tree is its own file, never a link to another.
    let text = {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(plan)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => anyhow!(
                    "{}: a symbolic link; bootc reads a tree's own plan.json only",
                    plan.display()
                ),
                _ => anyhow!("{}: {e}", plan.display()),
            })?;
        if !f.metadata().is_ok_and(|m| m.is_file()) {
            bail!("{}: not a regular file", plan.display());
        }
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut text)
            .with_context(|| plan.display().to_string())?;
        text
    };
    let plan: PlanDoc = read_plan(&text).map_err(|why| {
        anyhow!(
            "{}: not a plan.json written by bootc: {why}",
            plan.display()
        )
    })?;
    let (files, texts) = if root.join("http").is_dir() {
        (Some(tree_hashes(root)?), Texts::Dir(root.to_path_buf()))
    } else {
        (None, Texts::None)
    };
    Ok(Side {
        label: label.to_string(),
        plan,
        files,
        texts,
    })
}

/// The plan format this bootc reads. bootc's plan.json has no `format`
/// key yet; one that has a `format` (or `version`) other than this is not
/// a plan this bootc can compare.
const PLAN_FORMAT: u64 = 1;

/// Reads a plan.json, refusing JSON that is not bootc's (anything read is
/// compared and printed, so a random document must not pass as an empty
/// fleet): the keys and types bootc writes must be there.
fn read_plan(bytes: &[u8]) -> Result<PlanDoc, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
    let Value::Object(top) = &doc else {
        return Err("not a JSON object".into());
    };
    for key in ["format", "version"] {
        match top.get(key) {
            None => {}
            Some(v) if key == "format" && v.as_u64() == Some(PLAN_FORMAT) => {}
            Some(v) => {
                // JSON text: control characters come escaped.
                let mut shown: String = v.to_string().chars().take(40).collect();
                if shown.len() < v.to_string().len() {
                    shown.push('…');
                }
                return Err(format!(
                    "its `{key}` is {shown}, not a plan format this bootc reads ({PLAN_FORMAT})"
                ));
            }
        }
    }
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let want = |obj: &serde_json::Map<String, Value>,
                key: &str,
                what: &str,
                ok: fn(&Value) -> bool,
                at: &str| {
        match obj.get(key) {
            None => Err(format!("{at}has no `{key}`")),
            Some(v) if !ok(v) => Err(format!("{at}`{key}` is {}, not {what}", kind(v))),
            Some(_) => Ok(()),
        }
    };
    want(top, "site", "a string", Value::is_string, "")?;
    want(top, "fallback", "a string", Value::is_string, "")?;
    want(top, "images", "an object", Value::is_object, "")?;
    want(top, "machines", "an array", Value::is_array, "")?;
    for (i, m) in top["machines"].as_array().into_iter().flatten().enumerate() {
        let at = format!("machines[{i}] ");
        let Value::Object(m) = m else {
            return Err(format!("{at}is {}, not an object", kind(m)));
        };
        want(m, "name", "a string", Value::is_string, &at)?;
        want(m, "macs", "an array", Value::is_array, &at)?;
        want(m, "image", "a string", Value::is_string, &at)?;
    }
    serde_json::from_value(doc).map_err(|e| e.to_string())
}

fn tree_hashes(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let beneath = bootc::beneath::Root::new(root).with_context(|| root.display().to_string())?;
    let walk = walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            !(rel == Path::new("http/images") || rel == Path::new("report"))
        });
    for e in walk {
        let e = e.with_context(|| root.display().to_string())?;
        if e.file_type().is_dir() {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap_or(e.path());
        let rel = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        if !diff::tracked(&rel) {
            continue;
        }
        // Beneath the tree: a symlink out of it is refused, not followed.
        let f = beneath
            .open(Path::new(&rel))
            .map_err(|err| anyhow!("{}: {err}", e.path().display()))?;
        let (_, hash) = f.hash().with_context(|| f.path.display().to_string())?;
        out.insert(rel, hash);
    }
    Ok(out)
}

/// The site at a git revision, exported into a temporary folder with
/// `git archive` (read-only: the working tree, the index and HEAD are never
/// touched). What git ignores in the working tree's copy of the site (local
/// artifacts, typically) is linked in, since no revision has it.
struct GitExport {
    _dir: tempfile::TempDir,
    site: PathBuf,
    label: String,
}

fn git(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `path` made absolute and without `.` or `..`, without touching the disk.
fn absolute(path: &Path) -> Result<PathBuf> {
    let abs = std::env::current_dir()
        .context("the current folder")?
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

impl GitExport {
    fn new(rev: &str, anchor: &Path) -> Result<GitExport> {
        // The nearest folder of the anchor that exists finds the repository;
        // the site itself may exist only in the revision.
        let abs = absolute(anchor)?;
        let mut existing = abs.as_path();
        while !existing.is_dir() {
            existing = existing
                .parent()
                .ok_or_else(|| anyhow!("{}: no such folder", abs.display()))?;
        }
        let top = git(existing, &["rev-parse", "--show-toplevel"])
            .with_context(|| format!("{} is not inside a git repository", abs.display()))?;
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
            anyhow!(
                "{rev} is not a commit of the repository at {}",
                top.display()
            )
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
            .context("a temporary folder")?;
        let mut archive = Command::new("git");
        archive
            .arg("-C")
            .arg(&top)
            .args(["archive", "--format=tar", &commit]);
        if !prefix.is_empty() {
            archive.args(["--", &prefix]);
        }
        let mut git_child = archive
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running git archive")?;
        let tar_out = Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dir.path())
            .stdin(git_child.stdout.take().expect("piped"))
            .stderr(Stdio::piped())
            .output()
            .context("running tar")?;
        let git_out = git_child.wait_with_output().context("git archive")?;
        if !git_out.status.success() {
            let err = String::from_utf8_lossy(&git_out.stderr);
            if err.contains("did not match any files") {
                bail!(
                    "{} does not exist at {rev} ({short})",
                    if prefix.is_empty() {
                        "the site"
                    } else {
                        &prefix
                    }
                );
            }
            bail!("git archive {rev}: {}", err.trim());
        }
        if !tar_out.status.success() {
            bail!(
                "tar (extracting {rev}): {}",
                String::from_utf8_lossy(&tar_out.stderr).trim()
            );
        }
        let site = dir.path().join(&prefix);
        if !site.join("bootc.toml").is_file() {
            bail!(
                "{} at {rev} ({short}) is not a site: it has no bootc.toml",
                if prefix.is_empty() {
                    "the repository's root".to_string()
                } else {
                    prefix.clone()
                }
            );
        }
        let linked = link_ignored(&top.join(&prefix), &site)?;
        if !linked.is_empty() {
            // What is linked in stays part of this site (artifact roots).
            bootc::beneath::add_site_alias(&top.join(&prefix));
            eprintln!(
                "note: {label}: using the working tree's {} (ignored by git, so in no revision)",
                linked.join(", ")
            );
        }
        Ok(GitExport {
            _dir: dir,
            site,
            label,
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
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
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
                .with_context(|| dest.display().to_string())?;
        }
        linked.push(entry.to_string());
    }
    Ok(linked)
}

/// Copies `from` to `to`: folders walked, regular files copied, symlinks
/// recreated with the same target (never followed).
fn mirror(from: &Path, to: &Path) -> Result<()> {
    for e in walkdir::WalkDir::new(from) {
        let e = e.with_context(|| from.display().to_string())?;
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
        r.with_context(|| dest.display().to_string())?;
    }
    Ok(())
}
