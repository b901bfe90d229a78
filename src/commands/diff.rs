//! `bootc diff BASE HEAD`: turns each side (a site folder, a built tree, or
//! `git:REV[:PATH]`) into a plan, compares the two and prints the report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::color_stderr;
use bootc::diag::{Diags, Reporter, Severity};
use bootc::diff::git::GitExport;
use bootc::diff::{self, DiffFormat, Side};
use bootc::{Compiled, Options, compile};

/// The arguments of `bootc diff`.
#[derive(clap::Args)]
pub struct Args {
    /// The old side: a site folder, a built tree (its plan.json), or
    /// git:REV[:PATH] (the site at a revision, read without touching the work tree)
    base: String,
    /// The new side, in the same forms
    head: String,
    /// How to print the changes
    #[arg(long, value_enum, default_value_t = bootc::diff::DiffFormat::Human)]
    format: bootc::diff::DiffFormat,
    /// Exit 1 when anything changes, like `git diff --exit-code`
    #[arg(long)]
    exit_code: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(&self.base, &self.head, self.format, self.exit_code)
    }
}

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
        let anchor = path.unwrap_or_else(|| anchor(other));
        let export = GitExport::new(rev, &anchor).with_context(|| format!("{which} {spec}"))?;
        if !export.linked.is_empty() {
            eprintln!(
                "note: {}: using the working tree's {} (ignored by git, so in no revision)",
                export.label,
                export.linked.join(", ")
            );
        }
        return from_site(&export.site, export.label.clone(), which);
    }
    let p = Path::new(spec);
    if p.is_file() {
        let root = p.parent().unwrap_or(Path::new("."));
        return Ok(Some(Side::built(p, root, spec)?));
    }
    if p.join("bootc.toml").is_file() {
        return from_site(p, spec.to_string(), which);
    }
    if p.join("plan.json").is_file() {
        return Ok(Some(Side::built(&p.join("plan.json"), p, spec)?));
    }
    if !p.exists() {
        bail!("{which} {spec}: no such file or folder");
    }
    bail!(
        "{which} {spec} is neither a site (it has no bootc.toml) nor a built tree (it has no plan.json)"
    )
}

/// Which site a `git:REV` without a path means: the other side's when it is
/// a site folder (`bootc diff git:HEAD .`), else the site holding the current
/// folder (the nearest with a bootc.toml), else the current folder.
fn anchor(other: &str) -> PathBuf {
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
}

/// Compiles a site in memory; its plan is the plan.json `build` would write.
fn from_site(dir: &Path, label: String, which: &str) -> Result<Option<Side>> {
    match compile(dir, &Options::default())? {
        Compiled::Built(b) => Ok(Some(Side::compiled(label, b.plan, b.tree))),
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
            Ok(None)
        }
    }
}
