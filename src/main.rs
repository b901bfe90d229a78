//! bootc: a declarative GitOps boot-config compiler.

mod beneath;
mod binaries;
mod cli;
mod commands;
mod dhcp;
mod diag;
mod diff;
mod ipxe;
mod load;
mod model;
mod render;
mod resolve;
mod serve;
mod sign;
mod site;
mod templates;
mod validate;
mod verify;
mod write;

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
    match commands::run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
