//! The commands. Each lives in its own file; this one dispatches and holds
//! the output helpers they share. The pipeline itself is the library's
//! (`bootc::compile`).

pub mod build;
pub mod check;
pub mod diff;
pub mod explain;
pub mod init;
pub mod keygen;
pub mod media;
pub mod pin;
pub mod serve;
pub mod templates;
pub mod verify;

use std::process::ExitCode;

use anyhow::Result;

use crate::cli::Command;
pub use bootc::diag::color_stderr;
use bootc::diag::{Diags, Reporter, Sources};

pub fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Build(a) => a.run(),
        Command::Check(a) => a.run(),
        Command::Diff(a) => a.run(),
        Command::Explain(a) => a.run(),
        Command::Init(a) => a.run(),
        Command::Serve(a) => a.run(),
        Command::Verify(a) => a.run(),
        Command::Templates(a) => a.run(),
        Command::Keygen(a) => a.run(),
        Command::Media(a) => a.run(),
        Command::Pin(a) => a.run(),
    }
}

/// Prints problems rustc-style on stderr.
pub fn print_human(sources: &Sources, diags: &Diags) {
    if !diags.list.is_empty() {
        eprint!("{}", Reporter::new(sources).human(diags, color_stderr()));
    }
}
