//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use bootc::diag::Format;

#[derive(Parser)]
#[command(
    name = "bootc",
    version,
    about = "Compile a GitOps boot site (machines, roles, images in TOML) into a static iPXE/DHCP/TFTP tree"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate the site, then write the output tree
    Build {
        /// The site's root (holds bootc.toml)
        #[arg(default_value = ".")]
        site: PathBuf,
        /// Output folder [default: SITE/public]
        #[arg(short, long)]
        out: Option<PathBuf>,
        /// Sign http/manifest.json with this minisign secret key (a protected
        /// key's password: BOOTC_SIGN_KEY_PASSWORD, else asked on a terminal)
        #[arg(long, env = "BOOTC_SIGN_KEY", value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
    /// Validate the site without writing anything
    Check {
        #[arg(default_value = ".")]
        site: PathBuf,
        /// How to print problems
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Show what a change does to how machines boot (for review)
    Diff {
        /// The old side: a site folder, a built tree (its plan.json), or
        /// git:REV[:PATH] (the site at a revision, read without touching the work tree)
        base: String,
        /// The new side, in the same forms
        head: String,
        /// How to print the changes
        #[arg(long, value_enum, default_value_t = bootc::diff::DiffFormat::Human)]
        format: bootc::diff::DiffFormat,
        /// Exit 1 when anything changes, like `git diff --exit-code`
        #[arg(long)]
        exit_code: bool,
    },
    /// Show how one machine boots: role chain, image, kernel args, files, fetch chain
    Explain {
        /// MAC address or machine name (with SITE first when given)
        #[arg(num_args = 1..=2, required = true, value_names = ["SITE", "MAC|NAME"])]
        args: Vec<String>,
    },
    /// Check a built tree, a deployed web root or a URL against its signed manifest
    Verify {
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
    },
    /// Write a minisign key pair for signing manifests: PREFIX.key and PREFIX.pub
    Keygen {
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
    },
    /// Build the site, serve its http/ tree and rebuild on change (a preview server)
    Serve {
        /// The site's root (holds bootc.toml)
        #[arg(default_value = ".")]
        site: PathBuf,
        /// Address to listen on: IP:PORT, or a port on 127.0.0.1
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        bind: String,
        /// Watch the site by polling (for file systems without change events)
        #[arg(long)]
        poll: bool,
    },
    /// List the built-in templates and the variables each sees
    Templates {
        #[command(subcommand)]
        command: Option<TemplatesCommand>,
    },
    /// Scaffold a new site that builds at once
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum TemplatesCommand {
    /// Print a built-in template, to copy to the site's templates/ and edit
    Show {
        /// The template's name, as `bootc templates` lists it
        name: String,
    },
}
