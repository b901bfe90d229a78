//! `bootc keygen -o PREFIX`: a minisign key pair for signing manifests.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Result, bail};

use bootc::sign::{self, PASSWORD_ENV};

/// The arguments of `bootc keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Path prefix of the two files
    #[arg(short, long, value_name = "PREFIX")]
    out: PathBuf,
    /// No password on the secret key (for a key kept as a CI secret);
    /// otherwise BOOTC_SIGN_KEY_PASSWORD, else asked on a terminal
    #[arg(long)]
    unencrypted: bool,
    /// Replace existing key files
    #[arg(long)]
    force: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        run(&self.out, self.unencrypted, self.force)
    }
}

pub fn run(prefix: &Path, unencrypted: bool, force: bool) -> Result<ExitCode> {
    let password = if unencrypted {
        None
    } else {
        Some(new_password()?)
    };
    let id = sign::keygen(prefix, password.clone(), force)?;
    let key = sign::with_suffix(prefix, ".key");
    let public = sign::with_suffix(prefix, ".pub");
    println!(
        "wrote {} (secret, {}) and {} (public), key id {id}",
        key.display(),
        if password.is_some() {
            "password-protected"
        } else {
            "no password"
        },
        public.display()
    );
    println!(
        "sign with `bootc build --sign-key {}`; verify with `bootc verify TREE|URL --pubkey {}`; keep the .key out of git",
        key.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The password of a new key: `BOOTC_SIGN_KEY_PASSWORD`, else asked twice on
/// the terminal.
fn new_password() -> Result<String> {
    if let Some(p) = std::env::var_os(PASSWORD_ENV).filter(|p| !p.is_empty()) {
        return p
            .into_string()
            .map_err(|_| anyhow::anyhow!("{PASSWORD_ENV} is not valid UTF-8"));
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "a password is needed for the secret key: set {PASSWORD_ENV}, run on a terminal, or pass --unencrypted (for a key kept as a CI secret)"
        );
    }
    let p = rpassword::prompt_password("password for the new secret key: ")?;
    if p.is_empty() {
        bail!("empty password: pass --unencrypted for a key without one");
    }
    let again = rpassword::prompt_password("the same password again: ")?;
    if p != again {
        bail!("the two passwords differ");
    }
    Ok(p)
}
