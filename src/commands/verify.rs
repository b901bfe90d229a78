//! `bootc verify TREE|URL --pubkey FILE`: the signature, then every file.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::color_stderr;
use crate::{sign, verify};

pub fn run(target: &str, pubkey: &Path) -> Result<ExitCode> {
    let pk = sign::load_public_key(pubkey)?;
    let report = verify::verify(target, &pk)?;
    eprint!("{}", report.human(color_stderr()));
    if report.ok() {
        println!("{}", report.summary());
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
