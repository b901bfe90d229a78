//! `bootc media [SITE] [--machine NAME] -o FILE`: a bootable ISO/USB image
//! that enters the site: the generic one (DHCP on every card), or one
//! machine's with its static address (SPEC section 9).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::print_human;
use bootc::{Compiled, ImageFor, Options, compile};

/// The arguments of `bootc media`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml) [default: the nearest from the current folder up]
    site: Option<PathBuf>,
    /// The machine whose image to write: it configures the machine's
    /// static address (no DHCP needed) [default: the generic image]
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// The image file to write (replaced atomically)
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let image = match &self.machine {
            Some(name) => ImageFor::Machine(name.clone()),
            None => ImageFor::Generic,
        };
        let opts = Options {
            image: Some(image),
            ..Options::default()
        };
        let site = super::site_or_nearest(self.site);
        let c = compile(&site, &opts)?;
        print_human(c.sources(), c.diags());
        let Compiled::Built(b) = c else {
            eprintln!("nothing was written");
            return Ok(ExitCode::from(1));
        };
        let bytes = b.image.context("no image was made")?;
        bootc::write::write_one(&self.out, &bytes).context("writing the image")?;
        println!(
            "wrote {} ({} bytes): boot media of {}, entering the site at {}",
            self.out.display(),
            bytes.len(),
            match &self.machine {
                Some(m) => format!("machine {m} (static address)"),
                None => format!("site {} (DHCP on every card)", b.site.name),
            },
            b.site.base_url.as_deref().unwrap_or_default()
        );
        Ok(ExitCode::SUCCESS)
    }
}
