//! `bootc check`: load and validate (templates included), write nothing.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use bootc::diag::{Format, Reporter, repo_prefix};
use bootc::{Compiled, Options, compile};

/// The arguments of `bootc check`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml) [default: the nearest from the current folder up]
    site: Option<PathBuf>,
    /// How to print problems
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also download every remote artifact again (never from the cache) and
    /// check it against its pin: a changed upstream file is caught
    #[arg(long)]
    online: bool,
    /// Fail (exit 1) when any warning is left after `[site] allow`
    #[arg(long)]
    deny_warnings: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let site = super::site_or_nearest(self.site);
        run(&site, self.format, self.online, self.deny_warnings)
    }
}

pub fn run(site: &Path, format: Format, online: bool, deny_warnings: bool) -> Result<ExitCode> {
    let opts = Options {
        online,
        problems_only: true,
        ..Options::default()
    };
    // Never freed: the process ends right after, and freeing a large
    // fleet's values would take longer than the report.
    let c: &Compiled = Box::leak(Box::new(compile(site, &opts)?));
    let mut reporter = Reporter::new(c.sources());
    match format {
        Format::Human => {
            super::print_human(c.sources(), c.diags());
            let denied = deny_warnings && !c.diags().has_errors() && super::denied(c.diags());
            if let Compiled::Built(b) = c
                && !super::quiet()
                && !denied
            {
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
    let failed = c.diags().has_errors() || (deny_warnings && c.diags().warnings() > 0);
    Ok(ExitCode::from(if failed { 1 } else { 0 }))
}
