//! `bootc templates`: the built-in templates and the variables each sees;
//! `bootc templates show NAME` prints one, to copy into a site's templates/.

use std::process::ExitCode;

use anyhow::Result;

use bootc::diag::did_you_mean;
use bootc::templates::{BUILTINS, builtin, listing};

/// The arguments of `bootc templates`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<TemplatesCommand>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(match &self.command {
            Some(TemplatesCommand::Show { name }) => Some(name),
            None => None,
        })
    }
}

pub fn run(show: Option<&str>) -> Result<ExitCode> {
    let Some(name) = show else {
        print!("{}", listing());
        return Ok(ExitCode::SUCCESS);
    };
    match builtin(name) {
        Some(src) => {
            print!("{src}");
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let names = BUILTINS.iter().map(|(n, _)| *n);
            let hint = did_you_mean(name, names.clone())
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            eprintln!("error: no built-in template `{name}`{hint}");
            eprintln!(
                "help: the built-in templates are {}",
                names.collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::from(2))
        }
    }
}

#[derive(clap::Subcommand)]
pub enum TemplatesCommand {
    /// Print a built-in template, to copy to the site's templates/ and edit
    Show {
        /// The template's name, as `bootc templates` lists it
        name: String,
    },
}
