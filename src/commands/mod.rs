//! The commands. Each lives in its own file; this one dispatches and holds
//! the output helpers they share. The pipeline itself is the library's
//! (`bootc::compile`).

mod build;
mod check;
mod diff;
mod explain;
mod init;
mod keygen;
mod serve;
mod templates;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Command;
pub use bootc::diag::color_stderr;
use bootc::diag::{Diags, Reporter, Sources};

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
        Command::Templates { command } => templates::run(match &command {
            Some(crate::cli::TemplatesCommand::Show { name }) => Some(name),
            None => None,
        }),
        Command::Keygen {
            out,
            unencrypted,
            force,
        } => keygen::run(&out, unencrypted, force),
    }
}

/// Prints problems rustc-style on stderr.
pub fn print_human(sources: &Sources, diags: &Diags) {
    if !diags.list.is_empty() {
        eprint!("{}", Reporter::new(sources).human(diags, color_stderr()));
    }
}
