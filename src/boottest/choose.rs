//! Which boots `bootc test` makes: the machines (one per role, or the named
//! ones), each under the firmware that applies to it, and the boots left
//! out with the reason.
//!
//! A machine boots under a firmware when its boot chain there is the one
//! production gives it: under `uefi` the machines whose UEFI firmware gets
//! iPXE, under `uefi-sb` the Secure Boot machines (shim and GRUB; Secure
//! Boot refuses iPXE), under `bios` every x86-64 machine. By default
//! (no `--firmware`) each machine boots under `bios` and under its own
//! UEFI chain: `uefi-sb` for a Secure Boot machine, else `uefi`.

use super::{Error, Firmware, Options};
use crate::plan::{Plan, Resolved};

/// The boots planned: each machine with its firmware, in order.
pub type Planned<'p> = Vec<(&'p Resolved, Firmware)>;

/// The machines and firmware to boot, in order, and the boots left out.
pub fn boots<'p>(plan: &'p Plan, opts: &Options) -> Result<(Planned<'p>, Vec<String>), Error> {
    let chosen = machines(plan, &opts.machines)?;
    let explicit = !opts.firmware.is_empty();
    let firmware: Vec<Firmware> = if explicit {
        opts.firmware.clone()
    } else {
        vec![Firmware::Bios, Firmware::Uefi, Firmware::UefiSb]
    };
    let mut boots = Vec::new();
    let mut skipped = Vec::new();
    for m in chosen {
        if !m.arch.is_empty() && m.arch != "x86_64" {
            skipped.push(format!(
                "{}: {} machines are not booted by bootc test yet",
                m.name, m.arch
            ));
            continue;
        }
        if m.macs.is_empty() {
            skipped.push(format!("{}: no MAC address", m.name));
            continue;
        }
        let memdisk = plan
            .images
            .get(&m.image)
            .is_some_and(|i| i.method.as_deref() == Some("memdisk"));
        for &fw in &firmware {
            match why_not(m, fw, memdisk, &firmware) {
                None => boots.push((m, fw)),
                // The default leaves out quietly the UEFI chain a machine
                // does not have (it boots its own), not a memdisk image.
                Some(why) if explicit || (fw == Firmware::Uefi && memdisk && !m.secure_boot) => {
                    skipped.push(format!("{} under {}: {why}", m.name, fw.name()))
                }
                Some(_) => {}
            }
        }
    }
    Ok((boots, skipped))
}

/// Why `m` is not booted under `fw` (None: it is).
fn why_not(m: &Resolved, fw: Firmware, memdisk: bool, all: &[Firmware]) -> Option<String> {
    match fw {
        Firmware::Bios => None,
        Firmware::Uefi if m.secure_boot => Some(if all.contains(&Firmware::UefiSb) {
            "Secure Boot is on for it (its UEFI firmware gets shim and GRUB): booted under uefi-sb"
                .to_string()
        } else {
            "Secure Boot is on for it (its UEFI firmware gets shim and GRUB): add uefi-sb to --firmware"
                .to_string()
        }),
        Firmware::Uefi if !m.uefi_loader.is_empty() => Some(format!(
            "its UEFI firmware gets {}, which bootc test boots under uefi-sb only",
            m.uefi_loader
        )),
        Firmware::Uefi if memdisk => {
            Some("its image boots memdisk, which runs under BIOS only".into())
        }
        Firmware::Uefi => None,
        Firmware::UefiSb if !m.secure_boot => Some(
            "Secure Boot is off for it (its UEFI firmware gets iPXE, which Secure Boot refuses)"
                .into(),
        ),
        Firmware::UefiSb => None,
    }
}

/// The named machines, or the first machine (by name) of each role.
fn machines<'p>(plan: &'p Plan, names: &[String]) -> Result<Vec<&'p Resolved>, Error> {
    let mut chosen: Vec<&Resolved> = Vec::new();
    if names.is_empty() {
        let mut by_name: Vec<&Resolved> = plan.machines.iter().map(|m| &**m).collect();
        by_name.sort_by(|a, b| (&a.role, &a.name).cmp(&(&b.role, &b.name)));
        for m in by_name {
            if chosen.last().is_none_or(|c| c.role != m.role) {
                chosen.push(m);
            }
        }
        return Ok(chosen);
    }
    for name in names {
        let Some(m) = plan.machines.iter().find(|m| &m.name == name) else {
            let hint =
                crate::diag::did_you_mean(name, plan.machines.iter().map(|m| m.name.as_str()))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
            return Err(Error::NoSuchMachine(name.clone(), hint));
        };
        chosen.push(m);
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ImagePlan;

    fn machine(name: &str, role: &str, image: &str, secure_boot: bool) -> Resolved {
        Resolved {
            name: name.into(),
            role: role.into(),
            image: image.into(),
            macs: vec![crate::site::Mac::parse("52:54:00:aa:bb:01").unwrap()],
            secure_boot,
            uefi_loader: if secure_boot {
                "shim-grub".into()
            } else {
                String::new()
            },
            ..Resolved::default()
        }
    }

    fn plan() -> Plan {
        let image = |method: Option<&str>| ImagePlan {
            kind: if method.is_some() { "iso" } else { "kernel" }.into(),
            method: method.map(String::from),
            artifacts: vec![],
            extra: Default::default(),
        };
        Plan {
            site: "t".into(),
            fallback: "local".into(),
            machines: [
                machine("w2", "worker", "linux", false),
                machine("w1", "worker", "linux", false),
                machine("sb", "secure", "linux", true),
                machine("old", "cd", "cd", false),
            ]
            .map(Into::into)
            .into(),
            reservations: vec![],
            images: [
                ("linux".to_string(), image(None)),
                ("cd".to_string(), image(Some("memdisk"))),
            ]
            .into(),
            extra: Default::default(),
        }
    }

    fn opts(firmware: &[Firmware]) -> Options {
        Options {
            machines: vec![],
            firmware: firmware.to_vec(),
            timeout: None,
            jobs: 1,
            accel: Default::default(),
        }
    }

    fn names(p: &Planned) -> Vec<String> {
        p.iter()
            .map(|(m, fw)| format!("{} {}", m.name, fw.name()))
            .collect()
    }

    #[test]
    fn by_default_each_machine_boots_its_own_uefi_chain() {
        let plan = plan();
        let (boots, skipped) = boots(&plan, &opts(&[])).unwrap();
        assert_eq!(
            names(&boots),
            ["old bios", "sb bios", "sb uefi-sb", "w1 bios", "w1 uefi"]
        );
        assert_eq!(
            skipped,
            ["old under uefi: its image boots memdisk, which runs under BIOS only"]
        );
    }

    #[test]
    fn asked_for_firmware_the_others_are_listed() {
        let plan = plan();
        let (boots, skipped) = boots(&plan, &opts(&[Firmware::Uefi])).unwrap();
        assert_eq!(names(&boots), ["w1 uefi"]);
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(
            skipped[1].starts_with("sb under uefi: Secure Boot is on for it")
                && skipped[1].ends_with("add uefi-sb to --firmware"),
            "{skipped:?}"
        );
        let (boots, skipped) = super::boots(&plan, &opts(&[Firmware::UefiSb])).unwrap();
        assert_eq!(names(&boots), ["sb uefi-sb"]);
        assert_eq!(
            skipped,
            [
                "old under uefi-sb: Secure Boot is off for it (its UEFI firmware gets iPXE, which Secure Boot refuses)",
                "w1 under uefi-sb: Secure Boot is off for it (its UEFI firmware gets iPXE, which Secure Boot refuses)",
            ]
        );
    }
}
