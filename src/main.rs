//! The `bootc` command line: a thin layer over the library (src/lib.rs).

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    bootc::diag::set_color(match cli.color {
        cli::ColorWhen::Auto => None,
        cli::ColorWhen::Always => Some(true),
        cli::ColorWhen::Never => Some(false),
    });
    commands::set_quiet(cli.quiet);
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
