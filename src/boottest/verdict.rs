//! What one boot proved: the fetch chain the server recorded (and, for
//! remote artifacts, what iPXE printed about them), then the kernel's
//! `Command line:` on the serial console. [`Watch`] says when the outcome
//! is known, so QEMU can be stopped; [`judge`] names where a boot stopped.
//! A boot through shim and GRUB (UEFI Secure Boot) is judged by the
//! console alone, in [`super::grub`].

use std::time::Duration;

use super::Firmware;
use super::fetched::{Fetch, fetched, san};
use super::grub;
use super::qemu::Run;
use crate::plan::{ImagePlan, Resolved};
use crate::serve::recorded::Record;

/// What kind of boot the script makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Kernel,
    /// `exit` to the firmware: boot from the local disk.
    Local,
    /// An ISO or a chain to another boot service.
    Other,
}

/// Why a kernel with a serial console prints no command line.
pub const QUIET: &str = "the args keep the kernel quiet";

/// What a good boot of one machine looks like.
#[derive(Clone, Debug)]
pub struct Expect {
    /// `machines/<mac>.ipxe`
    pub script: String,
    pub kind: Kind,
    pub image_kind: String,
    pub kernel: Option<Fetch>,
    pub initrds: Vec<Fetch>,
    pub others: Vec<Fetch>,
    /// The plan's kernel command line.
    pub args: Vec<String>,
    /// Words iPXE puts before the args: the kernel's name (under UEFI) and
    /// `initrd=NAME` for each initrd (the script's).
    pub loader_words: Vec<String>,
    /// Why the console proves nothing, when it does not.
    pub no_console: Option<&'static str>,
    /// Booted through shim and GRUB over TFTP: what GRUB prints when it
    /// reads the machine's config (`bootc: NAME (`). None: through iPXE.
    pub grub: Option<grub::Expect>,
    /// The image is an ISO attached with `sanboot`, which iPXE reads by
    /// ranges and reports as a SAN device, not as a download.
    pub sanboot: bool,
    /// What the machine's script prints first (`bootc: NAME (`): seen
    /// again, the machine booted into the site once more (an ISO or a
    /// chained script that network-boots again), which is not judged.
    pub round: String,
}

impl Expect {
    pub fn new(m: &Resolved, image: Option<&ImagePlan>, fw: Firmware) -> Expect {
        let image_kind = image.map_or("", |i| i.kind.as_str()).to_string();
        let kind = match image_kind.as_str() {
            "kernel" => Kind::Kernel,
            "iso" | "chain" => Kind::Other,
            _ => Kind::Local,
        };
        let script = m.fetches.get(1).cloned().unwrap_or_default();
        let rest: Vec<Fetch> = m.fetches.iter().skip(2).map(|f| Fetch::new(f)).collect();
        let (kernel, initrds, others) = match kind {
            Kind::Kernel => (
                rest.first().cloned(),
                rest[1.min(rest.len())..].to_vec(),
                vec![],
            ),
            _ => (None, vec![], rest),
        };
        let grub = (fw == Firmware::UefiSb).then(|| grub::Expect::new(m, image));
        let sanboot = image_kind == "iso"
            && image.is_none_or(|i| i.method.as_deref().is_none_or(|m| m == "sanboot"));
        let mut loader_words = Vec::new();
        if let Some(g) = &grub {
            // GRUB's `linux` puts BOOT_IMAGE=<the kernel's path> first.
            loader_words.extend(g.kernel.as_ref().map(|k| format!("BOOT_IMAGE={k}")));
        } else if let Some(i) = image {
            let mut names = i.artifacts.iter().map(|a| a.file_name().to_string());
            loader_words.extend(names.next());
            loader_words.extend(names.map(|n| format!("initrd={n}")));
        }
        let serial = serial_console(&m.kernel_args);
        let quiet = m.kernel_args.iter().any(|a| {
            a == "quiet"
                || a.strip_prefix("loglevel=")
                    .and_then(|l| l.parse::<u32>().ok())
                    .is_some_and(|l| l < 6)
        });
        let no_console = if !serial {
            Some("no serial console in the args")
        } else if quiet {
            Some(QUIET)
        } else {
            None
        };
        Expect {
            script,
            kind,
            image_kind,
            kernel,
            initrds,
            others,
            args: m.kernel_args.clone(),
            loader_words,
            no_console,
            grub,
            sanboot,
            round: format!("bootc: {} (", m.name),
        }
    }

    /// Whether `f` was fetched whole ([`fetched`]); a remote ISO under
    /// sanboot by iPXE's SAN messages.
    fn fetched(&self, f: &Fetch, console: &str, records: &[Record]) -> Option<Result<(), String>> {
        if self.sanboot
            && f.remote
            && self.others.first().is_some_and(|o| o.path == f.path)
            && let Some(r) = san(console)
        {
            return Some(r);
        }
        fetched(f, console, records)
    }

    /// The console of the first boot into the site: up to where the
    /// machine's script starts again.
    pub fn first_round<'c>(&self, console: &'c str) -> &'c str {
        let Some(first) = console.find(&self.round) else {
            return console;
        };
        let from = first + self.round.len();
        match console[from..].find(&self.round) {
            Some(again) => &console[..from + again],
            None => console,
        }
    }

    fn fetches(&self) -> impl Iterator<Item = &Fetch> {
        self.kernel.iter().chain(&self.initrds).chain(&self.others)
    }
}

/// The args put a console on the first serial port.
fn serial_console(args: &[String]) -> bool {
    args.iter().any(|a| {
        a.strip_prefix("console=")
            .is_some_and(|c| c.starts_with("ttyS0"))
    })
}

/// Lines that end a boot in iPXE (the site's scripts print them), or the
/// kernel's end.
pub(super) const STOPS: [&str; 4] = [
    "Kernel panic",
    "bootc: could not boot",
    "failed, leaving iPXE",
    "is not a machine of site",
];
pub(super) const LOCAL_DISK: &str = "bootc: booting from the local disk";
const COMMAND_LINE: &str = "Command line: ";

/// Follows a running boot: when its outcome is known.
pub struct Watch<'a> {
    expect: &'a Expect,
    /// When the kernel printed its command line.
    pub cmdline_at: Option<Duration>,
    /// When the last fetch of the chain was complete.
    pub chain_at: Option<Duration>,
}

impl<'a> Watch<'a> {
    pub fn new(expect: &'a Expect) -> Watch<'a> {
        Watch {
            expect,
            cmdline_at: None,
            chain_at: None,
        }
    }

    /// What the boot is expected to do.
    pub fn expect(&self) -> &'a Expect {
        self.expect
    }

    /// The outcome is known: QEMU may stop.
    pub fn settled(&mut self, console: &str, records: &[Record], t: Duration) -> bool {
        let e = self.expect;
        if let Some(g) = &e.grub {
            return g.settled(self, console, t);
        }
        let console = e.first_round(console);
        if STOPS.iter().any(|s| console.contains(s)) {
            return true;
        }
        if self.chain_at.is_none()
            && e.fetches()
                .all(|f| e.fetched(f, console, records) == Some(Ok(())))
        {
            let served = |p: &str| records.iter().any(|r| r.path == p && r.complete);
            if served("boot.ipxe") && served(&e.script) {
                self.chain_at = Some(t);
            }
        }
        match (e.kind, e.no_console) {
            (Kind::Kernel, None) => {
                let Some(line) = command_line(console) else {
                    return false;
                };
                self.cmdline_at.get_or_insert(t);
                !args_match(e, line) || console.contains(" as init process")
            }
            (Kind::Local, _) => console.contains(LOCAL_DISK),
            // A few seconds for an error after the last fetch.
            _ => self
                .chain_at
                .is_some_and(|at| t >= at + Duration::from_secs(3)),
        }
    }
}

/// The kernel's command line, once its line is complete.
pub(super) fn command_line(console: &str) -> Option<&str> {
    let at = console.find(COMMAND_LINE)? + COMMAND_LINE.len();
    let rest = &console[at..];
    let end = rest.find('\n')?;
    Some(rest[..end].trim())
}

/// The console's command line is the plan's, once iPXE's own words (the
/// kernel's name, `initrd=`) are set aside.
pub(super) fn args_match(e: &Expect, line: &str) -> bool {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| e.loader_words.first().is_some_and(|k| k == w))
    {
        words.remove(0);
    }
    words.retain(|w| !(w.starts_with("initrd=") && e.loader_words.iter().any(|l| l == w)));
    words == e.args.iter().map(String::as_str).collect::<Vec<_>>()
}

/// A boot's verdict.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub passed: bool,
    /// Where a failed boot stopped: `script 404`, `kernel fetch failed`, ….
    pub stopped_at: Option<String>,
    /// One line for people.
    pub text: String,
    pub cmdline: Option<String>,
    pub seconds: f64,
}

pub(super) fn fail(stopped: &str, why: String, run: &Run) -> Verdict {
    Verdict {
        passed: false,
        stopped_at: Some(stopped.to_string()),
        text: format!("{stopped}: {why}"),
        cmdline: command_line(&run.console).map(str::to_string),
        seconds: run.elapsed.as_secs_f64(),
    }
}

pub(super) fn pass(text: String, at: Option<Duration>, run: &Run) -> Verdict {
    Verdict {
        passed: true,
        stopped_at: None,
        text,
        cmdline: command_line(&run.console).map(str::to_string),
        seconds: at.unwrap_or(run.elapsed).as_secs_f64(),
    }
}

/// How the boot ended, when it ended early.
pub(super) fn ending(run: &Run) -> String {
    if run.timed_out {
        "within the timeout".into()
    } else if run.exited {
        let err = run
            .stderr
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        format!(
            "QEMU exited{}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        )
    } else {
        let line = STOPS
            .iter()
            .find_map(|s| run.console.lines().find(|l| l.contains(s)));
        line.map_or_else(String::new, |l| format!("iPXE: {}", l.trim()))
    }
}

/// The verdict of a finished boot.
pub fn judge(e: &Expect, run: &Run, records: &[Record], w: &Watch) -> Verdict {
    if let Some(g) = &e.grub {
        return g.judge(e, run, w);
    }
    let first = Run {
        console: e.first_round(&run.console).to_string(),
        ..run.clone()
    };
    let run = &first;
    let script = |path: &str, what: &str| -> Option<Verdict> {
        let f = Fetch::new(path);
        match fetched(&f, &run.console, records) {
            Some(Ok(())) => None,
            Some(Err(s)) if s == "404" => {
                Some(fail("script 404", format!("{path} answered 404"), run))
            }
            Some(Err(s)) => Some(fail("script error", format!("{path}: {s}"), run)),
            None => Some(fail(
                "script error",
                format!("{what} was never fetched ({})", ending(run)),
                run,
            )),
        }
    };
    if let Some(v) = script("boot.ipxe", "boot.ipxe").or_else(|| script(&e.script, &e.script)) {
        return v;
    }
    let later = |i: usize| {
        e.fetches()
            .skip(i + 1)
            .any(|f| e.fetched(f, &run.console, records).is_some())
    };
    for (i, f) in e.fetches().enumerate() {
        let what = if Some(i) == e.kernel.as_ref().map(|_| 0) {
            "kernel"
        } else if i <= e.initrds.len() && e.kind == Kind::Kernel {
            "initrd"
        } else {
            "image"
        };
        match e.fetched(f, &run.console, records) {
            Some(Ok(())) => {}
            Some(Err(s)) if what == "initrd" && s == "404" => {
                return fail("initrd missing", format!("{} answered 404", f.path), run);
            }
            Some(Err(s)) => {
                return fail(
                    &format!("{what} fetch failed"),
                    format!("{}: {s}", f.path),
                    run,
                );
            }
            // A remote fetch iPXE said nothing clear about, while the boot
            // went further: it was fetched.
            None if f.remote && (later(i) || command_line(&run.console).is_some()) => {}
            None if f.remote => {
                return fail(
                    &format!("{what} fetch failed"),
                    format!("{} was not fetched ({})", f.path, ending(run)),
                    run,
                );
            }
            None => {
                return fail(
                    "script error",
                    format!("the script never fetched {} ({})", f.path, ending(run)),
                    run,
                );
            }
        }
    }
    match (e.kind, e.no_console) {
        (Kind::Kernel, None) => {
            if let Some(failed) = kernel_failed(e, run) {
                return failed;
            }
            pass(
                "kernel started with the expected command line".into(),
                w.cmdline_at,
                run,
            )
        }
        (Kind::Kernel, Some(why)) => {
            if run.console.contains("bootc: could not boot") {
                return fail("kernel did not start", ending(run), run);
            }
            pass(format!("fetch chain only ({why})"), w.chain_at, run)
        }
        (Kind::Local, _) if run.console.contains(LOCAL_DISK) => pass(
            "boots from the local disk (fetch chain only)".into(),
            w.chain_at,
            run,
        ),
        (Kind::Local, _) => fail(
            "script error",
            format!("no local-disk boot ({})", ending(run)),
            run,
        ),
        (Kind::Other, _) if run.console.contains("bootc: could not boot") => {
            fail("script error", ending(run), run)
        }
        (Kind::Other, _) => pass(
            format!("fetch chain only (an image of kind {})", e.image_kind),
            w.chain_at,
            run,
        ),
    }
}

/// Whether the kernel failed to say what it must: its command line,
/// printed in full and the plan's, with no panic. The failure, if any.
pub(super) fn kernel_failed(e: &Expect, run: &Run) -> Option<Verdict> {
    let panicked = run.console.contains("Kernel panic");
    let Some(line) = command_line(&run.console) else {
        return Some(if panicked {
            fail("kernel panicked", panic_line(run), run)
        } else {
            fail("kernel did not start", ending(run), run)
        });
    };
    if !args_match(e, line) {
        return Some(fail(
            "wrong command line",
            format!("expected `{}`", e.args.join(" ")),
            run,
        ));
    }
    panicked.then(|| fail("kernel panicked", panic_line(run), run))
}

pub(super) fn panic_line(run: &Run) -> String {
    run.console
        .lines()
        .find(|l| l.contains("Kernel panic"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(args: &[&str]) -> Expect {
        Expect {
            script: "machines/52-54-00-aa-bb-01.ipxe".into(),
            kind: Kind::Kernel,
            image_kind: "kernel".into(),
            kernel: Some(Fetch::new("http://10.0.2.2:9/vmlinuz")),
            initrds: vec![Fetch::new("images/b3/initrd.img")],
            others: vec![],
            args: args.iter().map(|s| s.to_string()).collect(),
            loader_words: vec!["vmlinuz".into(), "initrd=initrd.img".into()],
            no_console: None,
            grub: None,
            sanboot: false,
            round: "bootc: node01 (".into(),
        }
    }

    #[test]
    fn the_command_line_without_ipxes_own_words() {
        let e = expect(&["console=ttyS0", "a=1"]);
        assert!(args_match(&e, "initrd=initrd.img console=ttyS0 a=1"));
        assert!(args_match(
            &e,
            "vmlinuz initrd=initrd.img console=ttyS0 a=1"
        ));
        assert!(!args_match(&e, "initrd=initrd.img console=ttyS0 a=2"));
        assert!(!args_match(&e, "initrd=other.img console=ttyS0 a=1"));
        let c = "[    0.000000] Command line: initrd=initrd.img console=ttyS0 a=1\n[    0.0] x\n";
        assert_eq!(command_line(c), Some("initrd=initrd.img console=ttyS0 a=1"));
        assert_eq!(command_line("Command line: cut"), None);
    }

    /// An ISO that is iPXE itself: sanboot boots it, and it network-boots
    /// into the site again, where (under UEFI) a nested sanboot fails. The
    /// first round is judged.
    #[test]
    fn a_remote_iso_under_sanboot_and_the_next_round() {
        let iso = "http://10.0.2.2:9/ipxe.iso";
        let e = Expect {
            kind: Kind::Other,
            image_kind: "iso".into(),
            kernel: None,
            initrds: vec![],
            others: vec![Fetch::new(iso)],
            loader_words: vec![],
            sanboot: true,
            ..expect(&[])
        };
        let rec = |path: &str| Record {
            path: path.into(),
            status: 200,
            complete: true,
            bytes: 5,
            at: Duration::ZERO,
        };
        let records = [
            rec("boot.ipxe"),
            rec(&e.script),
            rec("boot.ipxe"),
            rec(&e.script),
        ];
        let round =
            "bootc: node01 (52:54:00:aa:bb:01) role cd, image cd\n52-54-00-aa-bb-01.ipxe... ok\n";
        let console = format!(
            "{round}Registered SAN device 0x80\nBooting from SAN device 0x80\niPXE initialising devices...ok\n{round}Could not open SAN device: Error 0x7f222094\nbootc: could not boot node01 (image cd)\n"
        );
        let run = Run {
            console: console.clone(),
            exited: false,
            timed_out: false,
            elapsed: Duration::from_secs(9),
            stderr: String::new(),
            kvm_failed: false,
        };
        let mut w = Watch::new(&e);
        assert!(!w.settled(&console, &records, Duration::from_secs(5)));
        assert!(w.settled(&console, &records, Duration::from_secs(8)));
        let v = judge(&e, &run, &records, &w);
        assert!(v.passed, "{v:?}");
        assert_eq!(v.text, "fetch chain only (an image of kind iso)");
        let refused = format!(
            "{round}Could not open SAN device: Error 0x7f222094 (http://ipxe.org/7f222094)\nbootc: could not boot node01 (image cd)\n"
        );
        let v = judge(
            &e,
            &Run {
                console: refused,
                ..run
            },
            &records,
            &Watch::new(&e),
        );
        assert_eq!(v.stopped_at.as_deref(), Some("image fetch failed"), "{v:?}");
    }
}
