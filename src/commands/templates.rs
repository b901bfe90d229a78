//! `bootc templates`: the built-in templates and the variables each sees;
//! `bootc templates show NAME` prints one, to copy into a site's templates/.

use std::process::ExitCode;

use anyhow::Result;

use bootc::diag::did_you_mean;
use bootc::templates::{BUILTINS, builtin, listing};

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
