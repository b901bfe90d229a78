//! `bootc pin URL…`: download each URL once and print its artifact line,
//! ready to paste into an image file (the download stays in the cache, so
//! a vendored build fetches nothing more).

use std::process::ExitCode;

use anyhow::Result;

/// The arguments of `bootc pin`.
#[derive(clap::Args)]
pub struct Args {
    /// The URLs of the files to pin (http or https)
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let mut failed = false;
        for url in &self.urls {
            if let Some(why) = bootc::url::problem(url) {
                eprintln!("error: {url}: {why}");
                failed = true;
                continue;
            }
            match bootc::fetch::pin(url) {
                Ok(got) => println!("{{ url = \"{url}\", sha256 = \"{}\" }}", got.sha256),
                Err(e) => {
                    eprintln!("error: {url}: {e}");
                    failed = true;
                }
            }
        }
        Ok(if failed {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        })
    }
}
