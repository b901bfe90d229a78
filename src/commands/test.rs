//! `bootc test`: boot machines of the site in QEMU and report each boot.
//! The work is the library's (`bootc::boottest`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::print_human;
use bootc::boottest::{self, AccelChoice, Firmware, Tested};
use bootc::diag::error_line;

/// The arguments of `bootc test`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml)
    #[arg(default_value = ".")]
    site: PathBuf,
    /// Boot these machines [default: the first machine of each role]
    #[arg(long = "machine", value_name = "NAME", num_args = 1..)]
    machines: Vec<String>,
    /// Firmware to boot each machine with: bios, uefi (iPXE), uefi-sb (Secure
    /// Boot machines: shim and GRUB over TFTP) [default: bios, and each
    /// machine's own UEFI chain: uefi-sb for Secure Boot machines, else uefi]
    #[arg(long, value_delimiter = ',', value_parser = parse_firmware)]
    firmware: Vec<Firmware>,
    /// How to print the report
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Also write the JUnit report to FILE (for CI test reports)
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Seconds each boot may take [default: 60 under KVM, 120 under TCG]
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Boots at once [default: the number of cores]
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// QEMU's accelerator: auto (KVM when /dev/kvm opens, TCG again for a
    /// boot KVM cannot run), kvm or tcg
    #[arg(long, value_enum, default_value_t = Accel::Auto)]
    accel: Accel,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Markdown,
    Junit,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Accel {
    Auto,
    Kvm,
    Tcg,
}

fn parse_firmware(s: &str) -> Result<Firmware, String> {
    Firmware::parse(s).ok_or_else(|| format!("`{s}`: expected bios, uefi or uefi-sb"))
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let opts = boottest::Options {
            machines: self.machines,
            firmware: self.firmware,
            timeout: self.timeout.map(Duration::from_secs),
            jobs: jobs.max(1),
            accel: match self.accel {
                Accel::Auto => AccelChoice::Auto,
                Accel::Kvm => AccelChoice::Kvm,
                Accel::Tcg => AccelChoice::Tcg,
            },
        };
        let human = matches!(self.format, Format::Human);
        // Each row on stderr as its boot ends (stdout keeps the report).
        let done = |b: &boottest::Boot| {
            let _ = writeln!(std::io::stderr(), "{}", boottest::human::progress(b));
        };
        let quiet = |_: &boottest::Boot| {};
        let progress: &(dyn Fn(&boottest::Boot) + Sync) = if human { &done } else { &quiet };
        let report = match boottest::run(&self.site, &opts, progress) {
            Ok(Tested::Ran(r)) => r,
            Ok(Tested::Invalid { sources, diags }) => {
                print_human(&sources, &diags);
                eprintln!("nothing was booted");
                return Ok(ExitCode::from(1));
            }
            Err(e @ boottest::Error::Missing { .. }) => {
                eprint!("{}", error_line(&e.to_string(), super::color_stderr()));
                return Ok(ExitCode::from(2));
            }
            Err(e) => return Err(e.into()),
        };
        let text = match self.format {
            Format::Human => boottest::human::render(&report),
            Format::Json => boottest::json::render(&report),
            Format::Markdown => boottest::markdown::render(&report),
            Format::Junit => boottest::junit::render(&report),
        };
        let _ = std::io::stdout().write_all(text.as_bytes());
        if let Some(path) = &self.junit {
            std::fs::write(path, boottest::junit::render(&report))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(if report.passed == report.total {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
