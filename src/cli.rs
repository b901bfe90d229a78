//! Command-line interface (clap).

use clap::{Parser, Subcommand};

use crate::commands;

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
    Build(commands::build::Args),
    /// Validate the site without writing anything
    Check(commands::check::Args),
    /// Show what a change does to how machines boot (for review)
    Diff(commands::diff::Args),
    /// Show how one machine boots: role chain, image, kernel args, files, fetch chain
    Explain(commands::explain::Args),
    /// Check a built tree, a deployed web root or a URL against its signed manifest
    Verify(commands::verify::Args),
    /// Write a minisign key pair for signing manifests: PREFIX.key and PREFIX.pub
    Keygen(commands::keygen::Args),
    /// Write a bootable ISO/USB image that enters the site (the generic one, or a machine's with its static address)
    Media(commands::media::Args),
    /// Download each URL once and print its pinned artifact line (kept in the cache for vendored builds)
    Pin(commands::pin::Args),
    /// Build the site, serve its http/ tree and rebuild on change (a preview server)
    Serve(commands::serve::Args),
    /// List the built-in templates and the variables each sees
    Templates(commands::templates::Args),
    /// Scaffold a new site that builds at once
    Init(commands::init::Args),
}
