//! The verdict of a boot through shim and GRUB (`--firmware uefi-sb`):
//! OVMF's PXE loads shim over TFTP, shim loads GRUB, GRUB reads grub.cfg
//! and the machine's config, then fetches the kernel and initrds and boots
//! the kernel through shim's check. QEMU's TFTP server records nothing, so
//! every step is read from the serial console: the firmware's `NBP file
//! downloaded`, GRUB's banner, the `bootc: NAME (MAC) …` line the machine's
//! config prints, GRUB's `error:` lines, and the kernel's `Command line:`
//! and `Secure boot enabled`.

use std::time::Duration;

use super::qemu::Run;
use super::verdict::{
    self, Kind, LOCAL_DISK, STOPS, Verdict, Watch, args_match, command_line, ending, fail,
    panic_line, pass,
};
use crate::plan::{ImagePlan, Resolved};

/// The firmware loaded shim over TFTP.
const SHIM_LOADED: &str = "NBP file downloaded successfully";
const GRUB_STARTED: &str = "Welcome to GRUB!";
/// shim refused what it was to start (GRUB), or the firmware refused shim.
const REFUSED: [&str; 2] = ["Verification failed", "Access Denied"];
/// The kernel's EFI stub ran: GRUB booted a kernel shim accepted.
const EFI_STUB: &str = "EFI stub: ";
/// The kernel saw Secure Boot enforced.
const SECURE_BOOT_ON: &str = "Secure boot enabled";
/// GRUB ran the fallback: it found no config for the MAC.
const UNKNOWN: &str = "bootc: unknown machine";
/// Said in every verdict: what could not be recorded.
const NOT_RECORDED: &str = "TFTP fetch chain not recorded";

/// What a boot through GRUB must show.
#[derive(Clone, Debug)]
pub struct Expect {
    /// What the machine's GRUB config prints first: `bootc: NAME (`.
    pub config_line: String,
    /// The config GRUB reads, on the TFTP server.
    pub config: String,
    /// The kernel's path on the TFTP server (`/images/<blake3>/<file>`).
    pub kernel: Option<String>,
    pub initrds: Vec<String>,
}

impl Expect {
    pub fn new(m: &Resolved, image: Option<&ImagePlan>) -> Expect {
        let mut paths = image
            .filter(|i| i.kind == "kernel")
            .into_iter()
            .flat_map(|i| &i.artifacts)
            .map(|a| format!("/{}", a.tree_path().unwrap_or_default()));
        let mac = m.macs.first().map(|m| m.to_string()).unwrap_or_default();
        Expect {
            config_line: format!("bootc: {} (", m.name),
            config: format!("grub/grub.cfg-01-{}", mac.replace(':', "-")),
            kernel: paths.next(),
            initrds: paths.collect(),
        }
    }

    /// [`Watch::settled`] for a boot through GRUB.
    pub(super) fn settled(&self, w: &mut Watch, console: &str, t: Duration) -> bool {
        let e = w.expect();
        if STOPS.iter().chain(&REFUSED).any(|s| console.contains(s)) {
            return true;
        }
        if console.contains(UNKNOWN) {
            return true;
        }
        match (e.kind, e.no_console) {
            (Kind::Kernel, None) => {
                let Some(line) = command_line(console) else {
                    return false;
                };
                w.cmdline_at.get_or_insert(t);
                !args_match(e, line) || console.contains(" as init process")
            }
            (Kind::Kernel, Some(_)) => {
                if console.contains(EFI_STUB) {
                    w.chain_at.get_or_insert(t);
                    return true;
                }
                false
            }
            (Kind::Local, _) => console.contains(LOCAL_DISK),
            // GRUB cannot boot it: its config says so and stops.
            (Kind::Other, _) => false,
        }
    }

    /// [`verdict::judge`] for a boot through GRUB.
    pub(super) fn judge(&self, e: &verdict::Expect, run: &Run, w: &Watch) -> Verdict {
        let c = &run.console;
        let line_of = |s: &str| {
            c.lines()
                .find(|l| l.contains(s))
                .map(|l| l.trim().to_string())
                .unwrap_or_default()
        };
        if !c.contains(SHIM_LOADED) {
            return fail(
                "shim fetch failed",
                format!(
                    "the firmware did not load shimx64.efi over TFTP ({})",
                    ending(run)
                ),
                run,
            );
        }
        if !c.contains(GRUB_STARTED) {
            if let Some(s) = REFUSED.iter().find(|s| c.contains(*s)) {
                return fail("GRUB refused by Secure Boot", line_of(s), run);
            }
            return fail(
                "GRUB did not start",
                format!("shim did not start grubx64.efi ({})", ending(run)),
                run,
            );
        }
        let Some(at) = c.find(&self.config_line) else {
            let why = if c.contains(UNKNOWN) {
                format!("GRUB did not find {} and ran the fallback", self.config)
            } else {
                format!("GRUB did not run {} ({})", self.config, ending(run))
            };
            return fail("GRUB config not read", why, run);
        };
        // What GRUB said after the machine's config began.
        let after = &c[at..];
        if let Some(err) = after.lines().find(|l| l.trim_start().starts_with("error:")) {
            let err = err.trim().to_string();
            let names = |p: &Option<String>| p.as_ref().is_some_and(|p| err.contains(p.as_str()));
            let stopped = if err.contains("shim") || err.contains("signature") {
                "kernel refused by Secure Boot"
            } else if names(&self.kernel) {
                "kernel fetch failed"
            } else if self.initrds.iter().any(|i| err.contains(i.as_str())) {
                if err.contains("not found") {
                    "initrd missing"
                } else {
                    "initrd fetch failed"
                }
            } else {
                "script error"
            };
            return fail(stopped, format!("GRUB: {err}"), run);
        }
        if after.contains("bootc: could not boot") || after.contains("bootc: image ") {
            return fail("script error", line_of("bootc: "), run);
        }
        let panicked = c.contains("Kernel panic");
        match (e.kind, e.no_console) {
            (Kind::Kernel, None) => {
                if let Some(failed) = verdict::kernel_failed(e, run) {
                    return failed;
                }
                if !c.contains(SECURE_BOOT_ON) {
                    return fail(
                        "Secure Boot not enforced",
                        "the kernel did not say `Secure boot enabled`".into(),
                        run,
                    );
                }
                pass(
                    format!(
                        "kernel started with the expected command line under Secure Boot ({NOT_RECORDED})"
                    ),
                    w.cmdline_at,
                    run,
                )
            }
            (Kind::Kernel, Some(why)) if c.contains(EFI_STUB) => pass(
                format!(
                    "fetch chain only ({why}; GRUB read the machine's config and started the kernel; {NOT_RECORDED})"
                ),
                w.chain_at,
                run,
            ),
            // A quiet kernel prints nothing, not even its EFI stub's line:
            // GRUB loading it and its initrds without an error, and no
            // panic up to the timeout, is all there is to see.
            (Kind::Kernel, Some(_)) if panicked => fail("kernel panicked", panic_line(run), run),
            (Kind::Kernel, Some(why)) if why == verdict::QUIET => pass(
                format!(
                    "fetch chain only ({why}; GRUB loaded the kernel and its initrds without an error; {NOT_RECORDED})"
                ),
                w.chain_at,
                run,
            ),
            (Kind::Kernel, Some(_)) => fail("kernel did not start", ending(run), run),
            (Kind::Local, _) if c.contains(LOCAL_DISK) => pass(
                format!("boots from the local disk (fetch chain only; {NOT_RECORDED})"),
                w.chain_at,
                run,
            ),
            (Kind::Local | Kind::Other, _) => fail(
                "script error",
                format!("no boot from GRUB's config ({})", ending(run)),
                run,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(args: &[&str]) -> verdict::Expect {
        let g = Expect {
            config_line: "bootc: sb-01 (".into(),
            config: "grub/grub.cfg-01-52-54-00-77-02-20".into(),
            kernel: Some("/images/aa/linux".into()),
            initrds: vec!["/images/bb/initrd.gz".into()],
        };
        verdict::Expect {
            script: String::new(),
            kind: Kind::Kernel,
            image_kind: "kernel".into(),
            kernel: None,
            initrds: vec![],
            others: vec![],
            args: args.iter().map(|s| s.to_string()).collect(),
            loader_words: vec!["BOOT_IMAGE=/images/aa/linux".into()],
            no_console: None,
            grub: Some(g),
            sanboot: false,
            round: "bootc: sb-01 (".into(),
        }
    }

    fn run(console: &str) -> Run {
        Run {
            console: console.into(),
            exited: false,
            timed_out: false,
            elapsed: Duration::from_secs(30),
            stderr: String::new(),
            kvm_failed: false,
        }
    }

    const HEAD: &str = "  NBP file downloaded successfully.\nFetching Netboot Image grubx64.efi\nWelcome to GRUB!\n\nbootc: sb-01 (52:54:00:77:02:20) role secure-installer, image x\n";

    fn judged(e: &verdict::Expect, console: &str) -> Verdict {
        let w = Watch::new(e);
        e.grub.as_ref().unwrap().judge(e, &run(console), &w)
    }

    #[test]
    fn a_good_boot_and_where_others_stop() {
        let e = expect(&["console=ttyS0", "a=1"]);
        let good = format!(
            "{HEAD}EFI stub: UEFI Secure Boot is enabled.\n[0.0] Command line: BOOT_IMAGE=/images/aa/linux console=ttyS0 a=1\n[0.0] secureboot: Secure boot enabled\n"
        );
        let v = judged(&e, &good);
        assert!(v.passed, "{v:?}");
        assert_eq!(
            v.text,
            "kernel started with the expected command line under Secure Boot (TFTP fetch chain not recorded)"
        );
        let stopped = |console: &str| judged(&e, console).stopped_at.unwrap_or_default();
        assert_eq!(stopped(">>Start PXE over IPv4.\n"), "shim fetch failed");
        assert_eq!(
            stopped(
                "  NBP file downloaded successfully.\nVerification failed: (0x1A) Security Violation\n"
            ),
            "GRUB refused by Secure Boot"
        );
        assert_eq!(
            stopped(
                "  NBP file downloaded successfully.\nWelcome to GRUB!\nbootc: unknown machine, booting role x\n"
            ),
            "GRUB config not read"
        );
        assert_eq!(
            stopped(&format!(
                "{HEAD}error: file `/images/aa/linux' not found.\nbootc: could not boot sb-01\n"
            )),
            "kernel fetch failed"
        );
        assert_eq!(
            stopped(&format!(
                "{HEAD}error: file `/images/bb/initrd.gz' not found.\n"
            )),
            "initrd missing"
        );
        assert_eq!(
            stopped(&format!(
                "{HEAD}error: bad shim signature.\nbootc: could not boot sb-01\n"
            )),
            "kernel refused by Secure Boot"
        );
        assert_eq!(
            stopped(&format!(
                "{HEAD}[0.0] Command line: BOOT_IMAGE=/images/aa/linux console=ttyS0 a=2\n"
            )),
            "wrong command line"
        );
        assert_eq!(
            stopped(&format!(
                "{HEAD}[0.0] Command line: BOOT_IMAGE=/images/aa/linux console=ttyS0 a=1\n[0.0] secureboot: Secure boot disabled\n"
            )),
            "Secure Boot not enforced"
        );
    }

    #[test]
    fn without_a_serial_console_the_efi_stub_is_the_proof() {
        let mut e = expect(&["quietly"]);
        e.no_console = Some("no serial console in the args");
        let v = judged(
            &e,
            &format!("{HEAD}EFI stub: UEFI Secure Boot is enabled.\n"),
        );
        assert!(v.passed, "{v:?}");
        assert!(
            v.text
                .starts_with("fetch chain only (no serial console in the args;"),
            "{}",
            v.text
        );
        assert_eq!(
            judged(&e, HEAD).stopped_at.as_deref(),
            Some("kernel did not start")
        );
    }

    #[test]
    fn a_quiet_kernel_passes_on_grubs_word_unless_it_panics() {
        let mut e = expect(&["console=ttyS0", "quiet"]);
        e.no_console = Some(verdict::QUIET);
        let v = judged(&e, HEAD);
        assert!(v.passed, "{v:?}");
        assert!(v.text.contains("GRUB loaded the kernel"), "{}", v.text);
        let panic = format!("{HEAD}[1.0] Kernel panic - not syncing: No working init found.\n");
        assert_eq!(
            judged(&e, &panic).stopped_at.as_deref(),
            Some("kernel panicked")
        );
    }
}
