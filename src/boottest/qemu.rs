//! The QEMU runner of `bootc test`: one network boot, its serial console
//! read from stdout, QEMU killed whatever happens (a guard that kills on
//! drop, also while unwinding). BIOS and UEFI boot QEMU's iPXE ROM (SeaBIOS
//! or OVMF), whose boot file is the served `boot.ipxe`; UEFI Secure Boot
//! boots OVMF with Microsoft's keys enrolled and Secure Boot enforced (SMM,
//! q35), whose own PXE loads shim from QEMU's built-in TFTP server (the
//! tree's `tftp/`), as a Secure Boot machine's DHCP server hands it out.
//!
//! ```text
//! qemu-system-x86_64 -nographic -no-reboot -accel kvm|tcg -m 512 -boot n
//!   [-drive if=pflash,…,readonly=on,file=OVMF_CODE_4M.fd -drive if=pflash,…,file=<copy of OVMF_VARS_4M.fd>]
//!   [-smbios type=1,uuid=UUID,serial=SERIAL]
//!   -netdev user,id=n0,bootfile=http://10.0.2.2:PORT/boot.ipxe
//!   -device virtio-net-pci,netdev=n0,mac=MAC
//!
//! uefi-sb: -machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on -m 1024
//!   -drive …OVMF_CODE_4M.ms.fd -drive …<copy of OVMF_VARS_4M.ms.fd>
//!   -netdev user,id=n0,tftp=TREE/tftp,bootfile=shimx64.efi
//!   -device virtio-net-pci,netdev=n0,mac=MAC,romfile=   (no iPXE ROM: the firmware's PXE)
//! ```

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{Accel, Error, Firmware};
use crate::site::EfiName;

/// OVMF (Debian's `ovmf`): the code, and the variable store copied per boot.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// OVMF with Microsoft's keys enrolled, Secure Boot enforced (also `ovmf`).
pub const OVMF_CODE_SB: &str = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
pub const OVMF_VARS_SB: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// QEMU's virtio-net iPXE ROM (BIOS and EFI), from Debian's `ipxe-qemu`.
pub const IPXE_ROM: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";
const QEMU: &str = "qemu-system-x86_64";
/// What to install, named in every "missing" error.
pub const PACKAGES: &str = "apt-get install qemu-system-x86 ovmf ipxe-qemu";
/// What a Secure Boot machine's chain needs (named when missing).
pub const SB_PACKAGES: &str = "apt-get install ovmf shim-signed grub-efi-amd64-signed";

fn missing(what: String, packages: &'static str) -> Error {
    Error::Missing { what, packages }
}

/// QEMU, or what is missing.
pub fn find_qemu() -> Result<PathBuf, Error> {
    find_program(QEMU).ok_or_else(|| {
        missing(
            format!("{QEMU} is not installed (Debian package qemu-system-x86)"),
            PACKAGES,
        )
    })
}

/// The files the boots under `firmware` need: QEMU's iPXE ROM (BIOS and
/// UEFI), OVMF (UEFI), OVMF with Secure Boot and the signed shim and GRUB
/// in the tree's `tftp/` (UEFI Secure Boot).
pub fn check_firmware(firmware: &[Firmware], tftp: &Path) -> Result<(), Error> {
    let needs = |f: Firmware| firmware.contains(&f);
    if (needs(Firmware::Bios) || needs(Firmware::Uefi)) && !Path::new(IPXE_ROM).is_file() {
        return Err(missing(
            format!("{IPXE_ROM} (QEMU's iPXE ROM, Debian package ipxe-qemu) is not installed"),
            PACKAGES,
        ));
    }
    if needs(Firmware::Uefi) {
        for f in [OVMF_CODE, OVMF_VARS] {
            if !Path::new(f).is_file() {
                return Err(missing(
                    format!("{f} (UEFI firmware, Debian package ovmf) is not installed"),
                    PACKAGES,
                ));
            }
        }
    }
    if needs(Firmware::UefiSb) {
        for f in [OVMF_CODE_SB, OVMF_VARS_SB] {
            if !Path::new(f).is_file() {
                return Err(missing(
                    format!(
                        "{f} (UEFI firmware with Secure Boot, Debian package ovmf) is not installed"
                    ),
                    SB_PACKAGES,
                ));
            }
        }
        for name in [EfiName::Shim, EfiName::Grub] {
            if !tftp.join(name.file()).is_file() {
                return Err(missing(
                    format!(
                        "the tree has no signed {} (tftp/{}; Debian packages shim-signed and grub-efi-amd64-signed)",
                        name.key(),
                        name.file()
                    ),
                    SB_PACKAGES,
                ));
            }
        }
    }
    Ok(())
}

/// `program` in a folder of PATH.
fn find_program(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// KVM for `auto`: /dev/kvm opens read-write.
pub fn kvm_opens() -> bool {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// The machine booted: its boot NIC's MAC, its SMBIOS identity, and where
/// its firmware boots from.
pub struct Machine<'a> {
    pub mac: String,
    pub uuid: Option<&'a str>,
    pub serial: Option<&'a str>,
    pub net: Net<'a>,
}

/// Where a machine's firmware finds its first loader.
pub enum Net<'a> {
    /// iPXE's boot file `http://10.0.2.2:PORT/boot.ipxe` (the port of its
    /// listener).
    Http(u16),
    /// QEMU's TFTP server serves `root`; the firmware's PXE loads `file`.
    Tftp { root: &'a Path, file: &'a str },
}

/// How a boot ended.
#[derive(Clone, Debug)]
pub struct Run {
    /// The serial console, ANSI sequences and carriage returns removed.
    pub console: String,
    /// QEMU exited by itself (a power-off, or an error of its own).
    pub exited: bool,
    /// The boot was still running at the timeout.
    pub timed_out: bool,
    pub elapsed: Duration,
    /// What QEMU wrote to stderr.
    pub stderr: String,
    /// KVM could not run the machine (QEMU stops it: "KVM internal error").
    pub kvm_failed: bool,
}

/// A child process (QEMU), killed and reaped when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Boots `machine` until `settled(console, elapsed)` says the outcome is
/// known, QEMU exits, or `timeout` passes. `scratch` holds the copy of the
/// UEFI variables.
pub fn boot(
    qemu: &Path,
    firmware: Firmware,
    accel: Accel,
    machine: &Machine,
    timeout: Duration,
    scratch: &Path,
    settled: &mut dyn FnMut(&str, Duration) -> bool,
) -> io::Result<Run> {
    let args = arguments(firmware, accel, machine, scratch)?;
    let start = Instant::now();
    let mut child = Guard(
        Command::new(qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?,
    );
    let stdout = collect(child.0.stdout.take());
    let stderr = collect(child.0.stderr.take());
    let mut exited = false;
    let mut timed_out = false;
    let mut kvm_failed = false;
    loop {
        if child.0.try_wait()?.is_some() {
            exited = true;
            break;
        }
        if accel == Accel::Kvm
            && String::from_utf8_lossy(&lock(&stderr)).contains("KVM internal error")
        {
            kvm_failed = true;
            break;
        }
        let text = clean_console(&lock(&stdout));
        if settled(&text, start.elapsed()) {
            break;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let elapsed = start.elapsed();
    drop(child);
    // The readers end with the pipes; a moment for the last bytes.
    thread::sleep(Duration::from_millis(100));
    let console = clean_console(&lock(&stdout));
    let stderr = String::from_utf8_lossy(&lock(&stderr)).into_owned();
    Ok(Run {
        console,
        exited,
        timed_out,
        elapsed,
        stderr,
        kvm_failed,
    })
}

/// QEMU's arguments for one boot (the UEFI variables copied to `scratch`).
fn arguments(
    firmware: Firmware,
    accel: Accel,
    machine: &Machine,
    scratch: &Path,
) -> io::Result<Vec<String>> {
    let mut args: Vec<String> = ["-nographic", "-no-reboot", "-accel", accel.name()]
        .map(String::from)
        .to_vec();
    let memory = if firmware == Firmware::UefiSb {
        // Secure Boot's variable store is written from SMM only.
        args.extend(
            [
                "-machine",
                "q35,smm=on",
                "-global",
                "driver=cfi.pflash01,property=secure,value=on",
            ]
            .map(String::from),
        );
        "1024"
    } else {
        "512"
    };
    args.extend(["-m", memory, "-boot", "n"].map(String::from));
    let ovmf = match firmware {
        Firmware::Bios => None,
        Firmware::Uefi => Some((OVMF_CODE, OVMF_VARS)),
        Firmware::UefiSb => Some((OVMF_CODE_SB, OVMF_VARS_SB)),
    };
    if let Some((code, vars_template)) = ovmf {
        let vars = scratch.join("OVMF_VARS.fd");
        fs::copy(vars_template, &vars)?;
        args.push("-drive".into());
        args.push(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={code}"
        ));
        args.push("-drive".into());
        args.push(format!(
            "if=pflash,format=raw,unit=1,file={}",
            vars.display()
        ));
    }
    let mut smbios = String::new();
    if let Some(u) = machine.uuid {
        smbios.push_str(&format!(",uuid={u}"));
    }
    if let Some(s) = machine.serial {
        // QEMU's option syntax: a comma is written twice.
        smbios.push_str(&format!(",serial={}", s.replace(',', ",,")));
    }
    if !smbios.is_empty() {
        args.push("-smbios".into());
        args.push(format!("type=1{smbios}"));
    }
    args.push("-netdev".into());
    let device = format!("virtio-net-pci,netdev=n0,mac={}", machine.mac);
    match &machine.net {
        Net::Http(port) => {
            args.push(format!(
                "user,id=n0,bootfile=http://10.0.2.2:{port}/boot.ipxe"
            ));
            args.push("-device".into());
            args.push(device);
        }
        Net::Tftp { root, file } => {
            // QEMU's option syntax: a comma is written twice.
            let root = root.display().to_string().replace(',', ",,");
            args.push(format!("user,id=n0,tftp={root},bootfile={file}"));
            args.push("-device".into());
            // No iPXE ROM: the firmware's own PXE, which Secure Boot trusts.
            args.push(format!("{device},romfile="));
        }
    }
    Ok(args)
}

fn lock(m: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads a pipe to its end on a thread, into a shared buffer.
pub fn collect(pipe: Option<impl Read + Send + 'static>) -> Arc<Mutex<Vec<u8>>> {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let out = Arc::clone(&buf);
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                lock(&out).extend_from_slice(&chunk[..n]);
            }
        });
    }
    buf
}

/// Console bytes as text without ANSI escape sequences and carriage returns.
pub fn clean_console(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            0x1b => {
                i += 1;
                match raw.get(i) {
                    Some(b'[') => {
                        i += 1;
                        while i < raw.len() && !(0x40..=0x7e).contains(&raw[i]) {
                            i += 1;
                        }
                        i += 1;
                    }
                    Some(b'(' | b')') => i += 2,
                    Some(_) => i += 1,
                    None => {}
                }
            }
            b'\r' => i += 1,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_cleaning() {
        assert_eq!(
            clean_console(b"\x1b[2J\x1b[01;01Hhello\r\n\x1b(Bworld\x1b[0m\n"),
            "hello\nworld\n"
        );
    }
}
