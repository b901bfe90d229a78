//! `bootc import dhcpd|dnsmasq|kea|csv FILE`: an existing host list turned
//! into one machines file (on stdout, or written atomically with `-o`); the
//! entries left out are listed on stderr with their line. The reading and
//! writing are the library's (`bootc::import`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bootc::escape;
use bootc::import::{self, Format};

/// The formats, as the command line spells them.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Kind {
    /// ISC dhcpd's dhcpd.conf
    Dhcpd,
    /// dnsmasq's dhcp-host lines
    Dnsmasq,
    /// kea-dhcp4's JSON configuration
    Kea,
    /// A CSV table with a header row (name, mac, ip, role, uuid, serial, labels)
    Csv,
}

/// The arguments of `bootc import`.
#[derive(clap::Args)]
pub struct Args {
    /// The format of FILE
    #[arg(value_enum)]
    format: Kind,
    /// The host list to read
    file: PathBuf,
    /// Write the machines file here (atomically) instead of to stdout
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The role of every machine, written as the file's [defaults]
    #[arg(long, value_name = "ROLE")]
    role: Option<String>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let format = match self.format {
            Kind::Dhcpd => Format::Dhcpd,
            Kind::Dnsmasq => Format::Dnsmasq,
            Kind::Kea => Format::Kea,
            Kind::Csv => Format::Csv,
        };
        let shown = self.file.display().to_string();
        let shown = escape::line(&shown);
        let bytes = std::fs::read(&self.file).with_context(|| format!("cannot read {shown}"))?;
        let text = String::from_utf8_lossy(&bytes);
        let source = self
            .file
            .file_name()
            .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned());
        let got = match import::import(format, &text, &source, self.role.as_deref()) {
            Ok(got) => got,
            Err(e) => {
                eprintln!(
                    "error: {shown}:{}: {}; nothing was imported",
                    e.line,
                    escape::line(&e.message)
                );
                return Ok(ExitCode::from(1));
            }
        };
        for s in &got.skipped {
            eprintln!("skipped: {shown}:{}", escape::line(&s.to_string()));
        }
        if got.machines == 0 {
            eprintln!("error: no machine could be imported from {shown}");
            return Ok(ExitCode::from(1));
        }
        match &self.output {
            Some(out) => bootc::write::write_one(out, got.toml.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?,
            None => print!("{}", got.toml),
        }
        eprintln!(
            "imported {} machine{}, skipped {} entr{}",
            got.machines,
            if got.machines == 1 { "" } else { "s" },
            got.skipped.len(),
            if got.skipped.len() == 1 { "y" } else { "ies" }
        );
        Ok(ExitCode::SUCCESS)
    }
}
