//! Command-line interface (clap).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::diag::Format;

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
        #[arg(long, value_enum, default_value_t = crate::diff::DiffFormat::Human)]
        format: crate::diff::DiffFormat,
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
    /// Scaffold a new site that builds at once
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}
