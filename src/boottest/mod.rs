//! `bootc test`: proving that machines boot (SPEC section 12).
//!
//! The site is compiled in process and written to a temporary folder; its
//! `http/` is served on 127.0.0.1 by the preview server's code
//! ([`crate::serve::recorded`]), one listener per boot so each boot's
//! requests are its own; each machine is network-booted in QEMU ([`qemu`])
//! through `boot.ipxe` and its per-MAC script, as in production; [`verdict`]
//! turns the requests and the serial console into a row. A Secure Boot
//! machine boots under OVMF with Secure Boot enforced, through shim, GRUB
//! and its GRUB config, all over QEMU's own TFTP server (the tree's
//! `tftp/`), which records nothing: [`grub`] judges it by the console.
//! [`choose`] says which machine boots under which firmware. One writer per
//! output format: [`human`], [`json`], [`markdown`], [`junit`].

pub mod choose;
pub mod fetched;
pub mod grub;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod qemu;
pub mod verdict;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::diag::{Diags, Severity, Sources};
use crate::plan::{Plan, Resolved};
use crate::serve::recorded::{Files, Record};
use crate::site::EfiName;
use crate::validate::missing_signed_loader;
use crate::{Compiled, write};
use verdict::{Expect, Watch};

/// The firmware a machine boots with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS and the NIC's iPXE ROM.
    Bios,
    /// OVMF and the NIC's EFI iPXE ROM.
    Uefi,
    /// OVMF with Microsoft's keys and Secure Boot enforced: its PXE loads
    /// shim, which loads GRUB, over TFTP (Secure Boot machines only).
    UefiSb,
}

impl Firmware {
    pub fn name(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
            Firmware::UefiSb => "uefi-sb",
        }
    }

    pub fn parse(s: &str) -> Option<Firmware> {
        match s {
            "bios" => Some(Firmware::Bios),
            "uefi" => Some(Firmware::Uefi),
            "uefi-sb" => Some(Firmware::UefiSb),
            _ => None,
        }
    }
}

/// QEMU's accelerator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// Which accelerator to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AccelChoice {
    /// KVM when /dev/kvm opens; a boot whose QEMU dies under KVM before
    /// the kernel starts (a nested KVM that cannot run the firmware) is
    /// booted again under TCG.
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// What `bootc test` boots, and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// These machines; none: the first machine (by name) of each role.
    pub machines: Vec<String>,
    /// These firmware; none: `bios`, and each machine's own UEFI chain
    /// (`uefi-sb` for a Secure Boot machine, else `uefi`).
    pub firmware: Vec<Firmware>,
    /// Per boot; None: 60 s under KVM, 120 s under TCG.
    pub timeout: Option<Duration>,
    /// Boots at once (at least 1).
    pub jobs: usize,
    pub accel: AccelChoice,
}

/// What stops `bootc test` before a boot has a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Compile(#[from] crate::Error),
    #[error("{what} ({packages})")]
    Missing {
        what: String,
        packages: &'static str,
    },
    #[error("the site has no machine named `{0}`{1}")]
    NoSuchMachine(String, String),
    #[error("{0}: {1}")]
    Io(&'static str, #[source] std::io::Error),
    #[error("writing the tree: {0}")]
    Write(#[from] write::WriteError),
}

/// The outcome of [`run`].
pub enum Tested {
    /// The site has errors: nothing was booted.
    Invalid {
        sources: Sources,
        diags: Diags,
    },
    Ran(Report),
}

/// Every boot's row.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    /// The accelerator of the boots (`tcg` when any boot ran under TCG).
    pub accel: &'static str,
    pub boots: Vec<Boot>,
    pub passed: usize,
    pub total: usize,
    /// Boots left out, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// One machine booted under one firmware.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Boot {
    pub machine: String,
    pub mac: String,
    pub role: String,
    pub firmware: &'static str,
    pub accel: &'static str,
    pub passed: bool,
    /// bootc's server recorded the fetch chain (`requests`); false for a
    /// chain over TFTP (shim, GRUB and its config, the kernel and initrds
    /// of a Secure Boot machine), served by QEMU.
    pub recorded: bool,
    /// One line: what was proved, or where the boot stopped and why.
    pub verdict: String,
    /// Where a failed boot stopped (`script 404`, `kernel fetch failed`, …).
    pub stopped_at: Option<String>,
    /// From QEMU's start to the kernel's command line (or the end of the
    /// fetch chain, or the failure).
    pub seconds: f64,
    pub requests: Vec<Request>,
    /// The kernel's command line as it printed it.
    pub cmdline: Option<String>,
}

/// One request of a boot's fetch chain.
#[derive(Clone, Debug, Serialize)]
pub struct Request {
    pub path: String,
    pub status: u16,
    /// Every byte was sent.
    pub complete: bool,
}

/// Compiles the site at `root`, serves it and boots the machines `opts`
/// names; `done` sees each row as its boot ends.
pub fn run(root: &Path, opts: &Options, done: &(dyn Fn(&Boot) + Sync)) -> Result<Tested, Error> {
    let qemu = qemu::find_qemu()?;
    let b = match crate::compile(root, &crate::Options::default())? {
        Compiled::Invalid { sources, diags } => {
            // Only Debian's signed loaders are missing: a tool, not the site.
            let errors = diags.list.iter().filter(|d| d.severity == Severity::Error);
            if errors.clone().count() > 0 && errors.clone().all(missing_signed_loader) {
                return Err(Error::Missing {
                    what: "Debian's signed shim and GRUB, which the site's Secure Boot machines boot, are not installed".into(),
                    packages: qemu::SB_PACKAGES,
                });
            }
            return Ok(Tested::Invalid { sources, diags });
        }
        Compiled::Built(b) => *b,
    };
    let (planned, skipped) = choose::boots(&b.plan, opts)?;
    let dir = tempfile::Builder::new()
        .prefix("bootc-test-")
        .tempdir()
        .map_err(|e| Error::Io("creating a temporary folder", e))?;
    let out = dir.path().join("tree");
    write::write(&out, &b.tree)?;
    let tftp = out.join("tftp");
    let firmware: Vec<Firmware> = planned.iter().map(|(_, fw)| *fw).collect();
    qemu::check_firmware(&firmware, &tftp)?;
    let files = Files::new(b.tree, &out);
    let accel = match opts.accel {
        AccelChoice::Auto if qemu::kvm_opens() => Accel::Kvm,
        AccelChoice::Kvm => Accel::Kvm,
        _ => Accel::Tcg,
    };
    let cx = Cx {
        qemu: &qemu,
        files: &files,
        plan: &b.plan,
        tftp: &tftp,
        scratch: dir.path(),
        auto: opts.accel == AccelChoice::Auto,
        timeout: opts.timeout,
    };
    let next = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Result<Boot, Error>>>> =
        Mutex::new((0..planned.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.clamp(1, planned.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((m, fw)) = planned.get(i) else {
                        return;
                    };
                    let row = cx.boot(i, m, *fw, accel);
                    if let Ok(r) = &row {
                        done(r);
                    }
                    rows.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(row);
                }
            });
        }
    });
    let mut boots = Vec::new();
    for row in rows.into_inner().unwrap_or_else(|e| e.into_inner()) {
        boots.extend(row.transpose()?);
    }
    let passed = boots.iter().filter(|b| b.passed).count();
    let any_tcg = boots.iter().any(|b| b.accel == "tcg");
    Ok(Tested::Ran(Report {
        accel: if any_tcg || boots.is_empty() && accel == Accel::Tcg {
            "tcg"
        } else {
            "kvm"
        },
        total: boots.len(),
        passed,
        boots,
        skipped,
    }))
}

/// What every boot shares.
struct Cx<'a> {
    qemu: &'a Path,
    files: &'a Files,
    plan: &'a Plan,
    /// The tree's `tftp/`, served by QEMU to Secure Boot machines.
    tftp: &'a Path,
    scratch: &'a Path,
    auto: bool,
    timeout: Option<Duration>,
}

impl Cx<'_> {
    /// Boots `m` under `fw`; under `auto`, again under TCG when KVM could
    /// not run it.
    fn boot(&self, i: usize, m: &Resolved, fw: Firmware, accel: Accel) -> Result<Boot, Error> {
        let row = self.boot_once(i, m, fw, accel)?;
        let kvm_died = accel == Accel::Kvm && self.auto && !row.0.passed && row.1;
        if kvm_died {
            return Ok(self.boot_once(i, m, fw, Accel::Tcg)?.0);
        }
        Ok(row.0)
    }

    /// A row, and whether QEMU exited by itself before the kernel started.
    fn boot_once(
        &self,
        i: usize,
        m: &Resolved,
        fw: Firmware,
        accel: Accel,
    ) -> Result<(Boot, bool), Error> {
        let listener = self
            .files
            .listen()
            .map_err(|e| Error::Io("listening on 127.0.0.1", e))?;
        let scratch = self.scratch.join(format!("boot-{i}-{}", accel.name()));
        std::fs::create_dir_all(&scratch).map_err(|e| Error::Io("creating a scratch folder", e))?;
        let expect = Expect::new(m, self.plan.images.get(&m.image), fw);
        let mut watch = Watch::new(&expect);
        let grub = fw == Firmware::UefiSb;
        let machine = qemu::Machine {
            mac: m.macs[0].to_string(),
            uuid: m.uuid.as_deref(),
            serial: m.serial.as_deref(),
            net: if grub {
                qemu::Net::Tftp {
                    root: self.tftp,
                    file: EfiName::Shim.file(),
                }
            } else {
                qemu::Net::Http(listener.port())
            },
        };
        let timeout = self.timeout.unwrap_or(match accel {
            Accel::Kvm => Duration::from_secs(60),
            Accel::Tcg => Duration::from_secs(120),
        });
        let run = qemu::boot(
            self.qemu,
            fw,
            accel,
            &machine,
            timeout,
            &scratch,
            &mut |console, t| watch.settled(console, &listener.records(), t),
        )
        .map_err(|e| Error::Io("running qemu-system-x86_64", e))?;
        let records: Vec<Record> = listener.records();
        drop(listener);
        let v = verdict::judge(&expect, &run, &records, &watch);
        let died = (run.exited || run.kvm_failed) && v.cmdline.is_none();
        let boot = Boot {
            machine: m.name.clone(),
            mac: machine.mac,
            role: m.role.clone(),
            firmware: fw.name(),
            accel: accel.name(),
            passed: v.passed,
            recorded: !grub,
            verdict: v.text,
            stopped_at: v.stopped_at,
            seconds: (v.seconds * 10.0).round() / 10.0,
            requests: records
                .into_iter()
                .map(|r| Request {
                    path: r.path,
                    status: r.status,
                    complete: r.complete,
                })
                .collect(),
            cmdline: v.cmdline,
        };
        Ok((boot, died))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let req = |path: &str, status, complete| Request {
            path: path.into(),
            status,
            complete,
        };
        let ok = Boot {
            machine: "node01".into(),
            mac: "52:54:00:aa:bb:01".into(),
            role: "worker".into(),
            firmware: "bios",
            accel: "tcg",
            passed: true,
            recorded: true,
            verdict: "kernel started with the expected command line".into(),
            stopped_at: None,
            seconds: 9.8,
            requests: vec![
                req("boot.ipxe", 200, true),
                req("machines/52-54-00-aa-bb-01.ipxe", 200, true),
            ],
            cmdline: Some("console=ttyS0 a=<b>&\"c\"".into()),
        };
        let bad = Boot {
            machine: "node|02".into(),
            passed: false,
            verdict: "kernel fetch failed: images/x/vmlinuz: cut off after 10 bytes".into(),
            stopped_at: Some("kernel fetch failed".into()),
            requests: vec![req("images/x/vmlinuz", 200, false)],
            cmdline: None,
            ..ok.clone()
        };
        Report {
            accel: "tcg",
            boots: vec![ok, bad],
            passed: 1,
            total: 2,
            skipped: vec![],
        }
    }

    #[test]
    fn markdown_starts_with_the_summary_and_escapes_cells() {
        let md = markdown::render(&report());
        assert!(
            md.starts_with("boots: 1/2 passed, 1 failed (QEMU, tcg)\n"),
            "{md}"
        );
        assert!(
            md.contains("| node\\|02 | worker | bios | **FAIL** |"),
            "{md}"
        );
        assert!(md.contains("- 200 images/x/vmlinuz (cut off)"), "{md}");
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = junit::render(&report());
        assert!(
            x.contains("<testsuite name=\"bootc test (tcg)\" tests=\"2\" failures=\"1\""),
            "{x}"
        );
        assert_eq!(x.matches("<testcase ").count(), 2);
        assert_eq!(x.matches("<failure ").count(), 1);
        assert!(x.contains("type=\"kernel fetch failed\""), "{x}");
        assert!(x.contains("a=&lt;b&gt;&amp;&quot;c&quot;"), "{x}");
    }

    #[test]
    fn human_table_and_chain_of_failed_boots() {
        let h = human::render(&report());
        let lines: Vec<&str> = h.lines().collect();
        assert!(
            lines[0].starts_with("MACHINE  ROLE    FIRMWARE  RESULT  TIME"),
            "{h}"
        );
        assert!(
            lines[2].starts_with("node|02  worker  bios      FAIL    9.8 s"),
            "{h}"
        );
        assert!(
            h.contains("node|02 under bios: the fetch chain\n  200 images/x/vmlinuz (cut off)\n"),
            "{h}"
        );
        assert!(h.ends_with("boots: 1/2 passed (QEMU, tcg)\n"), "{h}");
    }

    #[test]
    fn json_keys() {
        let v: serde_json::Value = serde_json::from_str(&json::render(&report())).unwrap();
        assert_eq!(v["passed"], 1);
        assert_eq!(v["boots"][1]["stopped-at"], "kernel fetch failed");
        assert_eq!(v["boots"][1]["requests"][0]["complete"], false);
    }
}
