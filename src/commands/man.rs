//! `bootc man`: the manual pages (clap_mangen), bootc(1) on stdout, or with
//! `-o DIR` bootc.1 and one page per command (bootc-build.1, …) in DIR.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;

/// The arguments of `bootc man`.
#[derive(clap::Args)]
pub struct Args {
    /// Write bootc.1 and bootc-COMMAND.1 for each command into this folder
    /// (made if missing) [default: print bootc.1]
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let cmd = crate::cli::Cli::command();
        match &self.out {
            None => {
                // As generate_to makes it: no page for `help`, so none named.
                let mut cmd = cmd.disable_help_subcommand(true);
                cmd.build();
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd).render(&mut page)?;
                std::io::Write::write_all(&mut std::io::stdout(), &page)?;
            }
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                clap_mangen::generate_to(cmd, dir)
                    .with_context(|| format!("writing the pages into {}", dir.display()))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
