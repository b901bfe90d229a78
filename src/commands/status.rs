//! `bootc status`: what each machine booted last, from web-server logs,
//! and the edits that end finished reinstalls (`--converge [--write]`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::print_human;
use bootc::status::{self, converge, format};
use bootc::{Compiled, Options, compile};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum StatusFormat {
    Human,
    Json,
    Markdown,
}

/// The arguments of `bootc status`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml) [default: the nearest from the current folder up]
    site: Option<PathBuf>,
    /// Access logs: nginx/Apache combined or `bootc serve`'s, plain or .gz, any order
    #[arg(long = "access-log", value_name = "FILE", required = true, num_args = 1..)]
    logs: Vec<PathBuf>,
    /// Older plan.json files: an outdated boot says which one it was
    #[arg(long = "plan", value_name = "PLAN", num_args = 1..)]
    plans: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "human")]
    format: StatusFormat,
    /// Print the edits that remove `reinstall` from machines whose install was reported
    #[arg(long)]
    converge: bool,
    /// With --converge: apply them to the site's files (comments and layout kept)
    #[arg(long, requires = "converge")]
    write: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let site = super::site_or_nearest(self.site.clone());
        let b = match compile(&site, &Options::default())? {
            Compiled::Built(b) => b,
            invalid => {
                print_human(invalid.sources(), invalid.diags());
                return Ok(ExitCode::from(1));
            }
        };
        let history = status::read_plans(&self.plans).map_err(anyhow::Error::msg)?;
        let st = status::scan(&b.plan, &self.logs, &history).context("reading the access logs")?;
        if self.converge {
            let edits = converge::edits(&b, &st);
            for e in &edits {
                print!("{}", e.diff());
            }
            if edits.is_empty() {
                eprintln!(
                    "nothing to converge: no machine with `reinstall` has reported its install"
                );
            } else if self.write {
                converge::apply(&site, &edits)?;
                eprintln!("removed `reinstall` from {} machine(s)", edits.len());
            }
            return Ok(ExitCode::SUCCESS);
        }
        print!(
            "{}",
            match self.format {
                StatusFormat::Human => format::human(&st),
                StatusFormat::Json => format::json(&st),
                StatusFormat::Markdown => format::markdown(&st),
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}
