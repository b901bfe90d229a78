//! The commands. Each lives in its own file; this one dispatches and holds
//! the output helpers they share. The pipeline itself is the library's
//! (`bootc::compile`).

pub mod build;
pub mod check;
pub mod completions;
pub mod diff;
pub mod explain;
pub mod import;
pub mod init;
pub mod keygen;
pub mod man;
pub mod media;
pub mod pin;
pub mod serve;
pub mod status;
pub mod templates;
pub mod test;
pub mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;

use crate::cli::Command;
pub use bootc::diag::color_stderr;
use bootc::diag::{Diags, Reporter, Severity, Sources};

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Build(a) => a.run(),
        Command::Check(a) => a.run(),
        Command::Diff(a) => a.run(),
        Command::Explain(a) => a.run(),
        Command::Import(a) => a.run(),
        Command::Init(a) => a.run(),
        Command::Serve(a) => a.run(),
        Command::Status(a) => a.run(),
        Command::Verify(a) => a.run(),
        Command::Templates(a) => a.run(),
        Command::Keygen(a) => a.run(),
        Command::Media(a) => a.run(),
        Command::Pin(a) => a.run(),
        Command::Test(a) => a.run(),
        Command::Completions(a) => a.run(),
        Command::Man(a) => a.run(),
    }
}

/// `-q`: print only errors.
static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given: warnings and summaries are left out.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints problems rustc-style on stderr (only the errors with `-q`).
pub fn print_human(sources: &Sources, diags: &Diags) {
    let shown;
    let diags = if quiet() {
        shown = Diags {
            list: diags
                .list
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .cloned()
                .collect(),
        };
        &shown
    } else {
        diags
    };
    if !diags.list.is_empty() {
        eprint!("{}", Reporter::new(sources).human(diags, color_stderr()));
    }
}

/// The site a command works on: SITE when given, else the nearest folder
/// holding a bootc.toml from the current one up (else the current folder,
/// whose missing bootc.toml is then reported).
pub fn site_or_nearest(site: Option<PathBuf>) -> PathBuf {
    if let Some(s) = site {
        return s;
    }
    let Ok(cwd) = std::env::current_dir() else {
        return PathBuf::from(".");
    };
    let mut rel = PathBuf::from(".");
    let mut dir: &Path = &cwd;
    loop {
        if dir.join("bootc.toml").is_file() {
            return rel;
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return PathBuf::from("."),
        }
        rel = if rel == Path::new(".") {
            PathBuf::from("..")
        } else {
            rel.join("..")
        };
    }
}

/// `--deny-warnings`: a site with warnings left (after `[site] allow`)
/// fails, and says why.
pub fn denied(diags: &Diags) -> bool {
    let w = diags.warnings();
    if w > 0 {
        eprintln!(
            "{}",
            bootc::diag::error_line(
                &format!(
                    "{} and --deny-warnings",
                    bootc::diag::plural_with(w, "warning is left", "warnings are left")
                ),
                color_stderr()
            )
            .trim_end()
        );
    }
    w > 0
}
