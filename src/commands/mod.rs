//! The commands. Each lives in its own file; this one holds the shared
//! compile pipeline (load -> validate -> resolve -> render) and output helpers.

mod build;
mod check;
mod diff;
mod explain;
mod init;
mod keygen;
mod serve;
mod verify;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Command;
use crate::diag::{Diags, Reporter, Sources};
use crate::render::Tree;
use crate::resolve::{Plan, Resolver};
use crate::site::Site;
use crate::{load, render, validate};

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Build {
            site,
            out,
            sign_key,
        } => build::run(&site, out.as_deref(), sign_key.as_deref()),
        Command::Check { site, format } => check::run(&site, format),
        Command::Diff {
            base,
            head,
            format,
            exit_code,
        } => diff::run(&base, &head, format, exit_code),
        Command::Explain { args } => {
            let (site, what) = match args.as_slice() {
                [what] => (PathBuf::from("."), what.clone()),
                [site, what] => (PathBuf::from(site), what.clone()),
                _ => unreachable!("clap enforces 1 or 2 arguments"),
            };
            explain::run(&site, &what)
        }
        Command::Init { dir } => init::run(&dir),
        Command::Serve { site, bind, poll } => serve::run(&site, &bind, poll),
        Command::Verify {
            target,
            pubkey,
            timeout,
        } => verify::run(&target, &pubkey, timeout),
        Command::Keygen {
            out,
            unencrypted,
            force,
        } => keygen::run(&out, unencrypted, force),
    }
}

/// Everything known about a site after compiling it in memory.
pub struct Compiled {
    pub sources: Sources,
    pub site: Option<Site>,
    pub plan: Option<Plan>,
    pub tree: Option<Tree>,
    pub diags: Diags,
}

/// Runs the pipeline up to an in-memory tree. Stops early (with the problems
/// found so far) when a stage leaves nothing usable for the next.
pub fn compile(root: &Path) -> Result<Compiled, load::LoadError> {
    let (loaded, mut diags) = load::load(root)?;
    let (site, vdiags) = validate::validate(&loaded);
    diags.extend(vdiags);
    let sources = loaded.sources;
    let Some(mut site) = site else {
        diags.sort();
        return Ok(Compiled {
            sources,
            site: None,
            plan: None,
            tree: None,
            diags,
        });
    };
    validate::hash_artifacts(&mut site, &mut diags);
    let resolver = Resolver::new(&site, &sources, &mut diags);
    let plan = resolver.plan(&mut diags);
    let tree = if diags.has_errors() {
        None
    } else {
        Some(render::render(
            &site, &sources, &resolver, &plan, &mut diags,
        ))
    };
    drop(resolver);
    diags.sort();
    Ok(Compiled {
        sources,
        site: Some(site),
        plan: Some(plan),
        tree,
        diags,
    })
}

/// Whether to color output on stderr: a terminal, and NO_COLOR unset.
pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Prints problems rustc-style on stderr.
pub fn print_human(sources: &Sources, diags: &Diags) {
    if !diags.list.is_empty() {
        eprint!("{}", Reporter::new(sources).human(diags, color_stderr()));
    }
}
