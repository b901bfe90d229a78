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
    /// Print only errors: no warnings, no summaries
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Color the messages on stderr: auto (a terminal, NO_COLOR unset), always or never
    #[arg(long, value_enum, global = true, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
pub enum Command {
    /// Validate the site, then write the output tree
    Build(commands::build::Args),
    /// Validate the site without writing anything
    Check(commands::check::Args),
    /// Show what a change does to how machines boot (for review)
    Diff(commands::diff::Args),
    /// Show how machines boot: role chain, image, kernel args, files, fetch chain
    Explain(commands::explain::Args),
    /// Check a built tree, a deployed web root or a URL against its signed manifest
    Verify(commands::verify::Args),
    /// Write a minisign key pair for signing manifests: PREFIX.key and PREFIX.pub
    Keygen(commands::keygen::Args),
    /// Write a bootable ISO/USB image that enters the site (the generic one, or a machine's with its static address)
    Media(commands::media::Args),
    /// Download each URL once and print its pinned artifact line (kept in the cache for vendored builds)
    Pin(commands::pin::Args),
    /// Boot machines of the site in QEMU against its tree and report each boot (fetch chain, kernel command line)
    Test(commands::test::Args),
    /// Build the site, serve its http/ tree and rebuild on change (a preview server)
    Serve(commands::serve::Args),
    /// What each machine booted last, from web-server logs; --converge ends finished reinstalls
    Status(commands::status::Args),
    /// List the built-in templates and the variables each sees
    Templates(commands::templates::Args),
    /// Turn an existing dhcpd, dnsmasq, Kea or CSV host list into a machines file
    Import(commands::import::Args),
    /// Scaffold a new site that builds at once
    Init(commands::init::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(commands::completions::Args),
    /// Print the manual page bootc(1), or write every page into a folder
    Man(commands::man::Args),
}
