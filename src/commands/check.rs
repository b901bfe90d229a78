//! `bootc check`: load and validate (templates included), write nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use super::color_stderr;
use bootc::diag::{Format, Reporter, repo_prefix};
use bootc::{Compiled, Options, compile};

/// The arguments of `bootc check`.
#[derive(clap::Args)]
pub struct Args {
    #[arg(default_value = ".")]
    site: PathBuf,
    /// How to print problems
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also download every remote artifact again (never from the cache) and
    /// check it against its pin: a changed upstream file is caught
    #[arg(long)]
    online: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(&self.site, self.format, self.online)
    }
}

pub fn run(site: &Path, format: Format, online: bool) -> Result<ExitCode> {
    let opts = Options {
        online,
        ..Options::default()
    };
    let c = compile(site, &opts)?;
    let mut reporter = Reporter::new(c.sources());
    match format {
        Format::Human => {
            eprint!("{}", reporter.human(c.diags(), color_stderr()));
            if let Compiled::Built(b) = &c {
                let plan = &b.plan;
                eprintln!(
                    "site {} is valid: {}",
                    plan.site,
                    bootc::diag::plural(plan.machines.len(), "machine")
                );
            }
        }
        Format::Json => print!("{}", reporter.json(c.diags())),
        Format::Github => {
            reporter.repo_prefix = repo_prefix(site);
            print!("{}", reporter.github(c.diags()));
        }
    }
    Ok(ExitCode::from(if c.diags().has_errors() { 1 } else { 0 }))
}
