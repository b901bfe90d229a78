//! `bootc verify TREE|URL --pubkey FILE`: the signature, then every file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};

use super::color_stderr;
use bootc::{sign, verify};

/// The arguments of `bootc verify`.
#[derive(clap::Args)]
pub struct Args {
    /// An output tree (public/), a web root as deployed (public/http/), or the URL serving it
    #[arg(value_name = "TREE|URL")]
    target: String,
    /// The minisign public key (PREFIX.pub of `bootc keygen`, or minisign's)
    #[arg(long, value_name = "FILE")]
    pubkey: PathBuf,
    /// Over HTTP: give up on a server that connects, answers or sends
    /// nothing for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    timeout: f64,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(&self.target, &self.pubkey, self.timeout)
    }
}

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
