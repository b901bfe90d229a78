//! `bootc verify TREE|URL --pubkey FILE`: the signature, then every file.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use super::color_stderr;
use bootc::{sign, verify};

pub fn run(target: &str, pubkey: &Path, timeout: f64) -> Result<ExitCode> {
    let Some(timeout) = Duration::try_from_secs_f64(timeout)
        .ok()
        .filter(|t| *t >= Duration::from_millis(100) && *t <= Duration::from_secs(86_400))
    else {
        bail!("--timeout {timeout}: give a number of seconds from 0.1 to 86400");
    };
    let pk = sign::load_public_key(pubkey)?;
    let report = verify::verify(target, &pk, timeout)?;
    eprint!("{}", report.human(color_stderr()));
    if report.ok() {
        println!("{}", report.summary());
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
