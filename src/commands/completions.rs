//! `bootc completions SHELL`: a completion script on stdout (clap_complete).

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory;
use clap_complete::Shell;

/// The arguments of `bootc completions`.
#[derive(clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    shell: Shell,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let mut cmd = crate::cli::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "bootc", &mut std::io::stdout());
        Ok(ExitCode::SUCCESS)
    }
}
