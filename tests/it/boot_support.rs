//! Support for integration tests that really boot a machine.
//!
//! The pieces fit together like this:
//!
//! 1. [`need`], [`need_root`], [`need_busybox_static`], [`need_uefi`] and
//!    [`need_boot_tools`] decide whether a test can run here. Outside CI a
//!    missing tool makes the test print `skipping: …` and return early; with
//!    `CI=true` it is a hard failure, because CI must have every tool.
//! 2. [`debian_kernel`] gives a real Debian amd64 `vmlinuz` (downloaded once
//!    with apt and cached), [`busybox_initramfs`] writes a tiny initramfs whose
//!    `/init` prints [`MARKER_PREFIX`] followed by the kernel command line and
//!    powers the machine off.
//! 3. [`Nginx`] serves a directory on `127.0.0.1:<free port>`.
//! 4. [`qemu_boot`] network-boots QEMU (BIOS or UEFI) through its built-in iPXE
//!    ROM from `http://10.0.2.2:<port>/boot.ipxe`; 10.0.2.2 is QEMU user
//!    networking's alias for the host's 127.0.0.1, so nothing leaves loopback.
//!
//! Only std, `tempfile` and `serde_json` are used.

#![allow(dead_code)] // every test module uses a different subset of this module

use std::env;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Skipping (or failing, in CI) when a tool is missing
// ---------------------------------------------------------------------------

/// True when running in CI (`CI=true` or `CI=1`): missing tools are then a
/// test failure, not a skip.
pub fn in_ci() -> bool {
    matches!(env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Reports that `what` is unavailable: panics in CI, otherwise prints
/// `skipping: <what> (<hint>)` to stderr. Always returns false, so callers can
/// write `return unavailable(..)`.
pub fn unavailable(what: &str, hint: &str) -> bool {
    if in_ci() {
        panic!("{what} ({hint}); CI=true, so this is an error rather than a skip");
    }
    eprintln!("skipping: {what} ({hint})");
    false
}

/// The Debian package that provides `program`, for the hint in skip messages.
/// Unknown programs map to their own name.
pub fn debian_package(program: &str) -> &str {
    let base = program.rsplit('/').next().unwrap_or(program);
    match base {
        "qemu-system-x86_64" | "qemu-img" => "qemu-system-x86",
        "nginx" => "nginx-light",
        "busybox" => "busybox-static",
        "apt-get" | "apt-cache" => "apt",
        "dpkg" | "dpkg-deb" => "dpkg",
        "tar" => "tar",
        "minisign" => "minisign",
        "dhcpd" => "isc-dhcp-server",
        "kea-dhcp4" => "kea-dhcp4-server",
        "dnsmasq" => "dnsmasq-base",
        "in.tftpd" => "tftpd-hpa",
        "ip" | "bridge" => "iproute2",
        "rsync" => "rsync",
        "sbattach" => "sbsigntool",
        "qemu-system-aarch64" => "qemu-system-arm",
        "mkfs.vfat" => "dosfstools",
        "mmd" | "mcopy" => "mtools",
        "grub-mkimage" => "grub-common",
        other => other,
    }
}

/// Finds `program` like a shell would: an absolute or relative path is taken
/// as is; a bare name is searched on `PATH`, then in `/usr/local/sbin`,
/// `/usr/sbin` and `/sbin` (a non-root `PATH` often lacks the sbin
/// directories, where `nginx` lives).
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True if `program` is installed (see [`find_program`]). If it is missing:
/// with `CI=true` this panics naming the program and its Debian package;
/// otherwise it prints `skipping: <program> not installed (apt-get install
/// <pkg>)` to stderr and returns false.
///
/// ```ignore
/// if !need("qemu-system-x86_64") { return; }
/// ```
pub fn need(program: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    let pkg = debian_package(program);
    unavailable(
        &format!("{program} not installed"),
        &format!("apt-get install {pkg}"),
    )
}

/// The effective user id, read from `/proc/self/status` (no libc needed).
pub fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// True if running as root. Otherwise skips (prints `skipping: not running as
/// root (run the tests as root)`) or, with `CI=true`, panics.
/// True if the file `path` exists; else skipped (or, under CI, a failure)
/// with the Debian package that has it.
pub fn need_file(path: &str, package: &str) -> bool {
    Path::new(path).is_file()
        || unavailable(
            &format!("{path} not installed"),
            &format!("apt-get install {package}"),
        )
}

/// Debian's signed shim and network GRUB (the Secure Boot chain) are
/// installed (else: skipped, or a failure under CI).
pub fn need_signed_loaders() -> bool {
    need_file("/usr/lib/shim/shimx64.efi.signed", "shim-signed")
        && need_file(
            "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
            "grub-efi-amd64-signed",
        )
}

pub fn need_root() -> bool {
    if effective_uid() == Some(0) {
        return true;
    }
    unavailable("not running as root", "run the tests as root")
}

/// The busybox that goes into the initramfs (Debian's `busybox-static`).
pub const BUSYBOX: &str = "/bin/busybox";

/// True if [`BUSYBOX`] exists and is statically linked (Debian's dynamic
/// `busybox` package also installs `/bin/busybox`, which cannot run in an
/// initramfs without its libraries). Skip/panic logic as for [`need`].
pub fn need_busybox_static() -> bool {
    match elf_is_static(Path::new(BUSYBOX)) {
        Ok(true) => true,
        Ok(false) => unavailable(
            &format!("{BUSYBOX} is dynamically linked"),
            "apt-get install busybox-static",
        ),
        Err(_) => unavailable(
            &format!("{BUSYBOX} not installed"),
            "apt-get install busybox-static",
        ),
    }
}

/// Whether an ELF64 little-endian file has no `PT_INTERP` program header.
fn elf_is_static(path: &Path) -> io::Result<bool> {
    let data = fs::read(path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not an ELF64 LE file");
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 || data[5] != 1 {
        return Err(bad());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(data[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        let p_type = data.get(o..o + 4).ok_or_else(bad)?;
        if u32::from_le_bytes(p_type.try_into().unwrap()) == 3 {
            return Ok(false); // PT_INTERP: needs a dynamic loader
        }
    }
    Ok(true)
}

/// UEFI firmware code (read-only) from Debian's `ovmf`.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// UEFI variable store template from Debian's `ovmf`; each boot gets a copy.
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// QEMU's virtio-net iPXE ROM (BIOS + EFI) from Debian's `ipxe-qemu`.
pub const IPXE_VIRTIO_ROM: &str = "/usr/lib/ipxe/qemu/efi-virtio.rom";

/// True if the OVMF firmware files exist (no skip message).
pub fn uefi_available() -> bool {
    Path::new(OVMF_CODE).is_file() && Path::new(OVMF_VARS).is_file()
}

/// [`uefi_available`] with the skip/panic logic of [`need`] (package `ovmf`).
pub fn need_uefi() -> bool {
    uefi_available()
        || unavailable(
            &format!("{OVMF_CODE} not installed"),
            "apt-get install ovmf",
        )
}

/// True if `/dev/kvm` can be opened read-write. That is necessary, not
/// sufficient, for KVM to boot firmware: see [`accel`].
pub fn kvm_usable() -> bool {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Everything a [`qemu_boot`] test needs besides the kernel: QEMU, QEMU's
/// iPXE ROMs, nginx, a static busybox, and OVMF for [`Firmware::Uefi`].
/// Stops at the first missing piece, with the skip/panic logic of [`need`].
pub fn need_boot_tools(firmware: Firmware) -> bool {
    need("qemu-system-x86_64")
        && (Path::new(IPXE_VIRTIO_ROM).is_file()
            || unavailable(
                &format!("{IPXE_VIRTIO_ROM} not installed"),
                "apt-get install ipxe-qemu",
            ))
        && need("nginx")
        && need_busybox_static()
        && match firmware {
            Firmware::Bios => true,
            Firmware::Uefi => need_uefi(),
            other => other.available(),
        }
}

// ---------------------------------------------------------------------------
// A real Debian kernel
// ---------------------------------------------------------------------------

/// Directory for cached test assets: `<CARGO_TARGET_TMPDIR>/test-assets`
/// (`target/tmp/test-assets`), or `target/test-assets` when cargo did not set
/// `CARGO_TARGET_TMPDIR`.
pub fn assets_dir() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
        PathBuf::from,
    );
    base.join("test-assets")
}

static KERNEL_LOCK: Mutex<()> = Mutex::new(());

fn lock_ignoring_poison(m: &Mutex<()>) -> MutexGuard<'_, ()> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A real Debian amd64 kernel (`vmlinuz`, with the EFI stub, so it boots under
/// BIOS and UEFI).
///
/// In order: the file named by env `BOOTC_TEST_KERNEL` (panics if it does not
/// exist); the cache `<assets_dir>/vmlinuz`; else it is fetched with the
/// ordinary apt clients: `apt-cache depends linux-image-amd64` names the real
/// `linux-image-<abi>-amd64` package behind the metapackage (`apt-get update`
/// is run once if apt has no lists yet), `apt-get download` fetches it into a
/// private work directory, and `boot/vmlinuz-*` is extracted from it
/// (`dpkg-deb --fsys-tarfile | tar -x`, which avoids writing the several
/// hundred MB of modules that `dpkg -x` would) and renamed into the cache.
/// The package name is recorded next to it in `vmlinuz.package`.
///
/// Safe to call concurrently: threads of one test binary are serialized by a
/// mutex, separate processes by the lock file `<assets_dir>/vmlinuz.lock`
/// (holding the owner's pid; a lock whose process is gone is taken over), and
/// the cache file only ever appears complete, by rename.
///
/// Returns None after printing `skipping: …` when apt-get, apt-cache,
/// dpkg-deb or tar is missing or the download fails; panics instead with
/// `CI=true`.
pub fn debian_kernel() -> Option<PathBuf> {
    if let Some(p) = env::var_os("BOOTC_TEST_KERNEL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "BOOTC_TEST_KERNEL={} does not name a file",
            p.display()
        );
        return Some(p);
    }
    let dir = assets_dir();
    let cached = dir.join("vmlinuz");
    if cached.is_file() {
        return Some(cached);
    }
    if !(need("apt-get") && need("apt-cache") && need("dpkg-deb") && need("tar")) {
        return None;
    }
    let _thread_guard = lock_ignoring_poison(&KERNEL_LOCK);
    fs::create_dir_all(&dir).expect("create test assets dir");
    let _file_lock = FileLock::acquire(&dir.join("vmlinuz.lock"), Duration::from_secs(1200));
    if cached.is_file() {
        return Some(cached); // another process fetched it while we waited
    }
    match fetch_debian_kernel(&dir, &cached) {
        Ok(()) => Some(cached),
        Err(e) => {
            unavailable(
                "could not fetch a Debian kernel",
                &format!("{e}; or set BOOTC_TEST_KERNEL=/path/to/vmlinuz"),
            );
            None
        }
    }
}

fn fetch_debian_kernel(dir: &Path, dest: &Path) -> Result<(), String> {
    let pkg = match kernel_package() {
        Some(p) => p,
        None => {
            // Fresh machines may have no apt lists yet.
            run(Command::new("apt-get").args(["update", "-q"]))?;
            kernel_package().ok_or("apt-cache depends linux-image-amd64 names no kernel package")?
        }
    };
    let work = tempfile::Builder::new()
        .prefix("kernel-fetch-")
        .tempdir_in(dir)
        .map_err(|e| format!("tempdir in {}: {e}", dir.display()))?;
    run(Command::new("apt-get")
        .args(["download", "-q", &pkg])
        .current_dir(work.path()))?;
    let deb = fs::read_dir(work.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension() == Some(OsStr::new("deb")))
        .ok_or_else(|| format!("apt-get download {pkg} left no .deb"))?;
    let extract = work.path().join("x");
    fs::create_dir(&extract).map_err(|e| e.to_string())?;
    run(Command::new("sh")
        .arg("-c")
        .arg("dpkg-deb --fsys-tarfile \"$1\" | tar -x -C \"$2\" --wildcards './boot/vmlinuz-*'")
        .args(["sh".as_ref(), deb.as_os_str(), extract.as_os_str()]))?;
    let vmlinuz = fs::read_dir(extract.join("boot"))
        .map_err(|e| format!("{pkg} has no boot/: {e}"))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .ok_or_else(|| format!("{pkg} has no boot/vmlinuz-*"))?;
    let tmp = work.path().join("vmlinuz");
    fs::copy(&vmlinuz, &tmp).map_err(|e| e.to_string())?;
    let _ = fs::write(dir.join("vmlinuz.package"), format!("{pkg}\n"));
    fs::rename(&tmp, dest).map_err(|e| format!("rename to {}: {e}", dest.display()))
}

/// The real package behind the `linux-image-amd64` metapackage, e.g.
/// `linux-image-6.1.0-56-amd64` (or its `-unsigned` twin).
fn kernel_package() -> Option<String> {
    let out = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|d| d.trim().trim_matches(['<', '>']).to_string())
        .find(|d| {
            d.starts_with("linux-image-")
                && (d.ends_with("-amd64") || d.ends_with("-amd64-unsigned"))
                && d != "linux-image-amd64"
        })
}

/// Runs a command, turning a failure into its output for the error message.
fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A cross-process lock: a file created with `create_new` holding our pid,
/// removed on drop. A lock whose pid no longer runs is stale and taken over.
struct FileLock(PathBuf);

impl FileLock {
    fn acquire(path: &Path, timeout: Duration) -> FileLock {
        let start = Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return FileLock(path.to_path_buf());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(path).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                    // An empty file may be a lock being written right now.
                    if !alive && !owner.is_empty() {
                        let _ = fs::remove_file(path);
                        continue;
                    }
                    assert!(
                        start.elapsed() < timeout,
                        "timed out waiting for lock {} (held by pid {owner})",
                        path.display()
                    );
                    thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("cannot create lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------
// A busybox initramfs that reports the kernel command line
// ---------------------------------------------------------------------------

/// What `/init` of [`busybox_initramfs`] prints. The whole line, on the serial
/// console when the kernel has `console=ttyS0`, is exactly
///
/// ```text
/// BOOTC-MARKER cmdline=<contents of /proc/cmdline, without its final newline>
/// ```
///
/// e.g. `BOOTC-MARKER cmdline=initrd=initrd.img console=ttyS0 bootc.test=1`.
/// [`qemu_boot`] puts everything after `cmdline=` (trailing whitespace
/// trimmed) in [`BootResult::marker`].
pub const MARKER_PREFIX: &str = "BOOTC-MARKER cmdline=";

/// The `/init` script of [`busybox_initramfs`].
pub const INIT_SCRIPT: &str = "#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
# Kernel messages printed while the marker is written would split its line
# (seen in CI: \"nomodeset[    2.72] tsc: Refined TSC ...\"): only emergencies.
echo 1 > /proc/sys/kernel/printk
echo \"BOOTC-MARKER cmdline=$(cat /proc/cmdline)\" > /dev/console
poweroff -f
";

/// Writes `dir/initrd.img`, an uncompressed newc cpio archive, and returns its
/// path. It holds `/bin/busybox` (a copy of [`BUSYBOX`], which must be
/// Debian's static build: check [`need_busybox_static`] first), symlinks
/// `/bin/{sh,cat,echo,poweroff,mount,mkdir,sleep}` to it, the directories
/// `/dev`, `/proc`, `/sys`, the device node `/dev/console` (5,1), and `/init`
/// (mode 0755, [`INIT_SCRIPT`]): it mounts /proc, silences kernel messages, prints the line described at
/// [`MARKER_PREFIX`] to /dev/console, and runs `poweroff -f` (QEMU with
/// `-no-reboot` then exits). The archive is deterministic (mtime 0, uid 0).
pub fn busybox_initramfs(dir: &Path) -> PathBuf {
    let busybox = fs::read(BUSYBOX).unwrap_or_else(|e| {
        panic!("read {BUSYBOX}: {e} (apt-get install busybox-static)");
    });
    let mut cpio = Cpio::default();
    for d in ["bin", "dev", "proc", "sys"] {
        cpio.entry(d, 0o040_755, 0, b"");
    }
    cpio.entry("bin/busybox", 0o100_755, 0, &busybox);
    for applet in ["sh", "cat", "echo", "poweroff", "mount", "mkdir", "sleep"] {
        cpio.entry(&format!("bin/{applet}"), 0o120_777, 0, b"busybox");
    }
    cpio.entry("dev/console", 0o020_600, (5 << 8) | 1, b"");
    cpio.entry("init", 0o100_755, 0, INIT_SCRIPT.as_bytes());
    let path = dir.join("initrd.img");
    fs::write(&path, cpio.finish()).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A minimal writer of the cpio "newc" (SVR4, `070701`) format that the Linux
/// kernel unpacks as an initramfs.
#[derive(Default)]
struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// Adds one entry. `mode` includes the file type bits; `rdev` is
    /// `major << 8 | minor` for device nodes; `data` is the symlink target for
    /// symlinks.
    fn entry(&mut self, name: &str, mode: u32, rdev: u32, data: &[u8]) {
        self.ino += 1;
        let nlink = if mode & 0o170_000 == 0o040_000 { 2 } else { 1 };
        let fields = [
            self.ino,
            mode,
            0, // uid
            0, // gid
            nlink,
            0, // mtime
            u32::try_from(data.len()).expect("cpio entry over 4 GiB"),
            0, // devmajor
            0, // devminor
            rdev >> 8,
            rdev & 0xff,
            u32::try_from(name.len() + 1).unwrap(),
            0, // check
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.out.len() % 4 != 0 {
            self.out.push(0);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 0, b"");
        // The kernel ignores trailing zeros; round up to 512 like cpio(1).
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

// ---------------------------------------------------------------------------
// nginx serving a directory on 127.0.0.1
// ---------------------------------------------------------------------------

/// An nginx (Debian `nginx-light`, `/usr/sbin/nginx`) serving one directory on
/// `127.0.0.1:<port>`, in the foreground (`daemon off; master_process off;`)
/// with its config, pid file, error log, access log and temp directories in a
/// private temp dir. Killed on drop.
///
/// The access log has one line per request in the format
/// `<method> <request_uri> <status> <body_bytes_sent>`, e.g.
/// `GET /boot.ipxe 200 58`; `request_uri` is as the client sent it (not
/// percent-decoded). See [`Nginx::requests`].
pub struct Nginx {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

/// One line of [`Nginx`]'s access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The path and query as sent, e.g. `/machines/52-54-00-aa-bb-01.ipxe`.
    pub uri: String,
    /// The HTTP status nginx answered.
    pub status: u16,
}

impl Nginx {
    /// Starts nginx serving `root` (made absolute) and waits until its port
    /// accepts connections. Panics with nginx's error log if it cannot start.
    /// Check `need("nginx")` first.
    pub fn start(root: &Path) -> Nginx {
        let root =
            fs::canonicalize(root).unwrap_or_else(|e| panic!("nginx root {}: {e}", root.display()));
        let (nginx, features) = nginx_and_features();
        let mut last_error = String::new();
        // The port is picked by binding :0 and closing it, so another process
        // may grab it before nginx does: retry a few times.
        for _attempt in 0..5 {
            let dir = tempfile::Builder::new()
                .prefix("bootc-nginx-")
                .tempdir()
                .expect("nginx tempdir");
            let port = free_port();
            let conf = nginx_config(dir.path(), &root, &format!("127.0.0.1:{port}"), &features);
            let conf_path = dir.path().join("nginx.conf");
            fs::write(&conf_path, conf).expect("write nginx.conf");
            let stderr = File::create(dir.path().join("stderr.log")).expect("nginx stderr log");
            let mut child = Command::new(&nginx)
                .args(nginx_args(dir.path(), &conf_path))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", nginx.display()));
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().expect("wait for nginx") {
                    last_error = format!(
                        "nginx exited with {status}:\n{}{}",
                        fs::read_to_string(dir.path().join("error.log")).unwrap_or_default(),
                        fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
                    );
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Nginx { child, port, dir };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!(
                        "nginx did not listen on 127.0.0.1:{port} within 10 s:\n{}",
                        fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
                    );
                    break;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start nginx for {}: {last_error}", root.display());
    }

    /// Starts nginx inside the network namespace `netns`, serving `root` on
    /// `listen` (an address of that namespace, like `10.77.0.1:8080`), and
    /// waits until it answers there. [`Nginx::port`] is then that port.
    pub fn start_in_netns(root: &Path, netns: &str, listen: &str) -> Nginx {
        let root =
            fs::canonicalize(root).unwrap_or_else(|e| panic!("nginx root {}: {e}", root.display()));
        let (nginx, features) = nginx_and_features();
        let dir = tempfile::Builder::new()
            .prefix("bootc-nginx-")
            .tempdir()
            .expect("nginx tempdir");
        let conf_path = dir.path().join("nginx.conf");
        fs::write(
            &conf_path,
            nginx_config(dir.path(), &root, listen, &features),
        )
        .expect("write nginx.conf");
        let mut child = Command::new("ip")
            .args(["netns", "exec", netns])
            .arg(&nginx)
            .args(nginx_args(dir.path(), &conf_path))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx in netns");
        let (host, port) = listen.rsplit_once(':').expect("listen is ADDRESS:PORT");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().expect("wait for nginx") {
                panic!(
                    "nginx in {netns} exited with {status}:\n{}",
                    fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
                );
            }
            let probe = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    netns,
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/{host}/{port}"),
                ])
                .stderr(Stdio::null())
                .status();
            if probe.is_ok_and(|s| s.success()) {
                return Nginx {
                    child,
                    port: port.parse().expect("port"),
                    dir,
                };
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {listen} in {netns}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The TCP port on 127.0.0.1 (and, from inside QEMU user networking, on
    /// 10.0.2.2).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/`, for requests from the test itself.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The whole access log so far (format in the type's docs).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// The path of the same log in nginx's standard `combined` format (what
    /// a production nginx writes).
    pub fn combined_log(&self) -> PathBuf {
        self.dir.path().join("combined.log")
    }

    /// The access log parsed, in request order.
    pub fn requests(&self) -> Vec<Request> {
        self.access_log()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                Some(Request {
                    method: f.next()?.to_string(),
                    uri: f.next()?.to_string(),
                    status: f.next()?.parse().ok()?,
                })
            })
            .collect()
    }

    /// The URIs answered with 200, in request order.
    pub fn served(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.status == 200)
            .map(|r| r.uri)
            .collect()
    }

    /// nginx's error log so far, for diagnosis.
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx's arguments: its prefix, error log and config in `dir`.
fn nginx_args(dir: &Path, conf: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "-p".into(),
        dir.into(),
        "-e".into(),
        dir.join("error.log").into(),
        "-c".into(),
        conf.into(),
    ]
}

/// The nginx binary and its `nginx -V` output (which modules it lacks).
fn nginx_and_features() -> (PathBuf, String) {
    let nginx = find_program("nginx").expect("nginx not installed (apt-get install nginx-light)");
    let features = Command::new(&nginx)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .unwrap_or_default();
    (nginx, features)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// The nginx config. Temp path directives are emitted only for modules the
/// binary has (`nginx -V` lists `--without-…` for the missing ones), since
/// each compiled-in module otherwise wants its default dir under /var/lib.
fn nginx_config(dir: &Path, root: &Path, listen: &str, features: &str) -> String {
    let q = |p: &Path| {
        let s = p.display().to_string();
        assert!(!s.contains(['"', '\\', '$']), "awkward path for nginx: {s}");
        format!("\"{s}\"")
    };
    let mut temp_paths = format!("    client_body_temp_path {};\n", q(&dir.join("body")));
    for module in ["proxy", "fastcgi", "uwsgi", "scgi"] {
        if !features.contains(&format!("--without-http_{module}_module")) {
            temp_paths.push_str(&format!(
                "    {module}_temp_path {};\n",
                q(&dir.join(module))
            ));
        }
    }
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {pid};
error_log {error_log} info;
events {{
    worker_connections 64;
}}
http {{
{temp_paths}    log_format bootc '$request_method $request_uri $status $body_bytes_sent $remote_addr';
    access_log {access_log} bootc;
    access_log {combined_log} combined;
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen {listen};
        root {root};
        autoindex off;
    }}
}}
",
        pid = q(&dir.join("nginx.pid")),
        error_log = q(&dir.join("error.log")),
        access_log = q(&dir.join("access.log")),
        combined_log = q(&dir.join("combined.log")),
        root = q(root),
    )
}

// ---------------------------------------------------------------------------
// QEMU network boot
// ---------------------------------------------------------------------------

/// The firmware QEMU boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default), booting the NIC's legacy iPXE ROM.
    Bios,
    /// OVMF ([`OVMF_CODE`] read-only plus a private copy of [`OVMF_VARS`]),
    /// booting the NIC's EFI iPXE ROM.
    Uefi,
    /// OVMF with Microsoft's keys enrolled and Secure Boot enforced (SMM,
    /// so TCG: this host's KVM has none).
    UefiSecureBoot,
    /// AAVMF on qemu-system-aarch64 (TCG).
    Arm64,
}

/// OVMF with Microsoft's keys, Secure Boot enforced (Debian's `ovmf`).
pub const OVMF_CODE_MS: &str = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
pub const OVMF_VARS_MS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// arm64 UEFI (Debian's `qemu-efi-aarch64`).
pub const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
pub const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

impl Firmware {
    /// QEMU, its machine arguments, and the firmware's code and variable
    /// store template (None for SeaBIOS).
    fn qemu(
        self,
    ) -> (
        &'static str,
        Vec<String>,
        Option<(&'static str, &'static str)>,
    ) {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            Firmware::Bios => (
                "qemu-system-x86_64",
                v(&["-accel", accel(), "-m", "512", "-boot", "n"]),
                None,
            ),
            Firmware::Uefi => (
                "qemu-system-x86_64",
                v(&["-accel", accel(), "-m", "512", "-boot", "n"]),
                Some((OVMF_CODE, OVMF_VARS)),
            ),
            Firmware::UefiSecureBoot => (
                "qemu-system-x86_64",
                v(&[
                    "-machine",
                    "q35,smm=on,accel=tcg",
                    "-global",
                    "driver=cfi.pflash01,property=secure,value=on",
                    "-m",
                    "1024",
                    "-boot",
                    "n",
                ]),
                Some((OVMF_CODE_MS, OVMF_VARS_MS)),
            ),
            Firmware::Arm64 => (
                "qemu-system-aarch64",
                v(&[
                    "-M",
                    "virt,accel=tcg",
                    "-cpu",
                    "max,pauth-impdef=on",
                    "-m",
                    "1024",
                ]),
                Some((AAVMF_CODE, AAVMF_VARS)),
            ),
        }
    }

    /// The firmware files and QEMU are here (else: skipped, or a failure
    /// under CI).
    pub fn available(self) -> bool {
        let (qemu, _, files) = self.qemu();
        need(qemu)
            && files.is_none_or(|(code, vars)| {
                [code, vars].iter().all(|f| {
                    Path::new(f).is_file()
                        || unavailable(
                            &format!("{f} not installed"),
                            "apt-get install ovmf qemu-efi-aarch64",
                        )
                })
            })
    }
}

/// What a [`qemu_boot`] saw.
#[derive(Debug, Clone)]
pub struct BootResult {
    /// Everything QEMU wrote to stdout, i.e. the serial console: firmware and
    /// iPXE messages, the kernel log, the marker. ANSI escape sequences and
    /// `\r` are removed. Put it in panic messages (see [`Self::diagnostics`]).
    pub output: String,
    /// The kernel command line reported by the initramfs: the text after
    /// [`MARKER_PREFIX`] on the marker line, trailing whitespace trimmed. None
    /// if the marker never appeared.
    pub marker: Option<String>,
    /// True if the timeout expired before the marker appeared or QEMU exited
    /// (QEMU was then killed).
    pub timed_out: bool,
    /// Time from starting QEMU to the marker (or exit, or timeout).
    pub elapsed: Duration,
    /// What QEMU wrote to stderr (its own errors, e.g. bad arguments).
    pub qemu_stderr: String,
    /// QEMU's exit status, if it exited by itself (e.g. after `poweroff -f`).
    pub exit_status: Option<ExitStatus>,
    /// The command line that was run.
    pub command: String,
}

impl BootResult {
    /// The marker's kernel command line; panics with [`Self::diagnostics`] if
    /// the boot never reached the marker.
    pub fn cmdline(&self) -> &str {
        match &self.marker {
            Some(m) => m,
            None => panic!("boot did not reach the marker\n{}", self.diagnostics()),
        }
    }

    /// A multi-line description for panic messages: the command, how it
    /// ended, QEMU's stderr and the serial output.
    pub fn diagnostics(&self) -> String {
        format!(
            "command: {}\nended: {}after {:.1?}\nqemu stderr:\n{}\n--- serial output ---\n{}\n--- end of serial output ---",
            self.command,
            if self.timed_out {
                "TIMED OUT ".to_string()
            } else if let Some(s) = self.exit_status {
                format!("qemu exited ({s}) ")
            } else {
                "marker seen ".to_string()
            },
            self.elapsed,
            self.qemu_stderr,
            self.output
        )
    }
}

/// A timeout generous enough for one boot that should succeed on this kind of
/// machine (2 cores, TCG; a boot takes 10-15 s when the machine is idle and
/// maybe 3 times that under a parallel `cargo test`): 120 s. A test that
/// expects a boot to fail (no marker) should pass a shorter timeout.
pub fn default_boot_timeout() -> Duration {
    Duration::from_secs(120)
}

/// The QEMU accelerator: `kvm` only when env `BOOTC_TEST_ACCEL=kvm` and
/// [`kvm_usable`], else `tcg` (QEMU's own default, which the timings in SPEC
/// section 7 were measured with).
///
/// KVM is opt-in because opening `/dev/kvm` does not prove it works: on this
/// project's machines it is a nested KVM on which firmware boots die (SeaBIOS:
/// QEMU quits right after iPXE starts; OVMF: `KVM internal error. Suberror:
/// 1` on an x87 `fninit`), while TCG boots in about 10 s (BIOS) / 15 s (UEFI).
pub fn accel() -> &'static str {
    if env::var("BOOTC_TEST_ACCEL").as_deref() == Ok("kvm") && kvm_usable() {
        "kvm"
    } else {
        "tcg"
    }
}

static QEMU_LOCK: Mutex<()> = Mutex::new(());

/// Waits for this test process's turn to run QEMU (see [`qemu_boot`]), for
/// tests that start QEMU themselves.
pub fn qemu_turn() -> MutexGuard<'static, ()> {
    lock_ignoring_poison(&QEMU_LOCK)
}

/// Network-boots a QEMU machine against `http://10.0.2.2:<port>/boot.ipxe`
/// (10.0.2.2 is QEMU user networking's alias for the host's 127.0.0.1) and
/// captures its serial console. Runs
///
/// ```text
/// qemu-system-x86_64 -nographic -m 512 -no-reboot -boot n -accel kvm|tcg
///   [-drive if=pflash,format=raw,readonly=on,file=OVMF_CODE_4M.fd
///    -drive if=pflash,format=raw,file=<private copy of OVMF_VARS_4M.fd>]
///   -netdev user,id=n0,bootfile=http://10.0.2.2:PORT/boot.ipxe
///   -device virtio-net-pci,netdev=n0,mac=MACS[0]
///   -netdev user,id=n1,... -device virtio-net-pci,netdev=n1,mac=MACS[1] ...
/// ```
///
/// with one user-mode netdev (each with the same bootfile) and one virtio NIC
/// per MAC, in order: the first is the boot NIC. `-accel kvm` is used when
/// [`accel`] says so, else `tcg`. Stops when the marker line appears (then gives
/// QEMU up to 3 s to power off before killing it), when QEMU exits, or at
/// `timeout` (kills QEMU, `timed_out = true`).
///
/// Boots are serialized within the test process (a mutex; the timeout starts
/// once it is held), so parallel tests never run two QEMUs at once.
pub fn qemu_boot(port: u16, macs: &[&str], firmware: Firmware, timeout: Duration) -> BootResult {
    assert!(!macs.is_empty(), "qemu_boot needs at least one MAC");
    let mut nics = Vec::new();
    for (i, mac) in macs.iter().enumerate() {
        nics.push("-netdev".into());
        nics.push(format!(
            "user,id=n{i},bootfile=http://10.0.2.2:{port}/boot.ipxe"
        ));
        nics.push("-device".into());
        nics.push(format!("virtio-net-pci,netdev=n{i},mac={mac}"));
    }
    qemu_run(&[], &nics, firmware, timeout)
}

/// Runs QEMU like [`qemu_boot`], but with the given network arguments
/// (`-netdev …`/`-device …`) and a command prefix (for example
/// `["ip", "netns", "exec", NAME]` to run it inside a network namespace).
pub fn qemu_run(
    prefix: &[&str],
    nics: &[String],
    firmware: Firmware,
    timeout: Duration,
) -> BootResult {
    qemu_run_until(prefix, nics, firmware, timeout, MARKER_PREFIX)
}

/// [`qemu_run`], stopping at a line that starts with `marker_prefix` instead
/// of the initramfs marker (for kernels that are not ours, such as the Debian
/// installer's: `"Kernel command line: "`). `BootResult::marker` is the rest
/// of that line.
pub fn qemu_run_until(
    prefix: &[&str],
    nics: &[String],
    firmware: Firmware,
    timeout: Duration,
    marker_prefix: &str,
) -> BootResult {
    qemu_exec(prefix, nics, firmware, timeout, marker_prefix, true)
}

/// [`qemu_run`] without `-boot n`: the machine boots from a disk or CD that
/// `args` attach with `bootindex=0` (the boot media).
pub fn qemu_run_from_disk(
    prefix: &[&str],
    args: &[String],
    firmware: Firmware,
    timeout: Duration,
) -> BootResult {
    qemu_exec(prefix, args, firmware, timeout, MARKER_PREFIX, false)
}

fn qemu_exec(
    prefix: &[&str],
    nics: &[String],
    firmware: Firmware,
    timeout: Duration,
    marker_prefix: &str,
    netboot: bool,
) -> BootResult {
    let _one_at_a_time = lock_ignoring_poison(&QEMU_LOCK);
    let (binary, mut machine, files) = firmware.qemu();
    if !netboot && let Some(at) = machine.windows(2).position(|w| w == ["-boot", "n"]) {
        machine.drain(at..at + 2);
    }
    let qemu = find_program(binary).unwrap_or_else(|| {
        panic!("{binary} not installed (apt-get install qemu-system-x86 qemu-system-arm)")
    });
    let vars_dir = tempfile::Builder::new()
        .prefix("bootc-qemu-")
        .tempdir()
        .expect("qemu tempdir");

    let mut args: Vec<String> = ["-nographic", "-no-reboot"].map(String::from).to_vec();
    args.extend(machine);
    if let Some((code, vars_template)) = files {
        let vars = vars_dir.path().join("VARS.fd");
        fs::copy(vars_template, &vars)
            .unwrap_or_else(|e| panic!("copy {vars_template}: {e} (apt-get install ovmf)"));
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
    args.extend(nics.iter().cloned());
    let mut argv: Vec<String> = prefix.iter().map(|p| p.to_string()).collect();
    argv.push(qemu.display().to_string());
    argv.extend(args);
    let command = argv.join(" ");

    let start = Instant::now();
    let mut child = Guard(
        Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command}: {e}")),
    );
    let stdout = collect(child.0.stdout.take());
    let stderr = collect(child.0.stderr.take());

    let mut marker = None;
    let mut timed_out = false;
    let mut exit_status = None;
    let mut elapsed = None;
    loop {
        if let Some(status) = child.0.try_wait().expect("wait for qemu") {
            exit_status = Some(status);
            break;
        }
        if marker.is_none() {
            marker = find_marker(&stdout.lock().unwrap(), marker_prefix);
            if marker.is_some() {
                elapsed = Some(start.elapsed());
            }
        }
        if let Some(at) = elapsed {
            if start.elapsed() > at + Duration::from_secs(3) {
                break; // marker seen but no power-off: kill it
            }
        } else if start.elapsed() > timeout {
            timed_out = true;
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    let elapsed = elapsed.unwrap_or_else(|| start.elapsed());
    drop(child); // kills QEMU if still running, which closes the pipes
    // Give the reader threads a moment to drain the pipes.
    thread::sleep(Duration::from_millis(100));
    let raw = stdout.lock().unwrap().clone();
    let marker = marker.or_else(|| find_marker(&raw, marker_prefix));
    let qemu_stderr = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
    BootResult {
        output: clean_console(&raw),
        marker,
        timed_out,
        elapsed,
        qemu_stderr,
        exit_status,
        command,
    }
}

/// The command line from a complete marker line (one ended by `\n`) in raw
/// console output.
fn find_marker(raw: &[u8], prefix: &str) -> Option<String> {
    let prefix = prefix.as_bytes();
    let at = raw.windows(prefix.len()).position(|w| w == prefix)?;
    let rest = &raw[at + prefix.len()..];
    let end = rest.iter().position(|&b| b == b'\n')?;
    Some(String::from_utf8_lossy(&rest[..end]).trim_end().to_string())
}

/// Console bytes as text without ANSI escape sequences and carriage
/// returns: the library's own cleaning, which `bootc test` reads with.
pub use bootc::boottest::qemu::clean_console;
/// QEMU children and their output, as `bootc test` runs them.
pub use bootc::boottest::qemu::{Guard, collect};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_needs_a_complete_line() {
        assert_eq!(
            find_marker(b"x\r\nBOOTC-MARKER cmdline=a b", MARKER_PREFIX),
            None
        );
        assert_eq!(
            find_marker(b"x\r\nBOOTC-MARKER cmdline=a b=1 \r\nmore", MARKER_PREFIX),
            Some("a b=1".into())
        );
    }

    #[test]
    fn console_cleaning() {
        assert_eq!(clean_console(b"\x1b[2J\x1b[01;01Hok\r\n\x1b(Bx"), "ok\nx");
    }

    #[test]
    fn cpio_is_newc_and_aligned() {
        let mut c = Cpio::default();
        c.entry("init", 0o100_755, 0, b"#!/bin/sh\n");
        let out = c.finish();
        assert!(out.starts_with(b"070701"));
        assert_eq!(out.len() % 512, 0);
        let header = std::str::from_utf8(&out[..110]).unwrap();
        assert_eq!(&header[14..22], "000081ed"); // mode
        assert_eq!(&header[54..62], "0000000a"); // filesize
        assert_eq!(&header[94..102], "00000005"); // namesize incl. NUL
        assert_eq!(&out[110..115], b"init\0");
        assert!(out.windows(10).any(|w| w == b"TRAILER!!!"));
    }
}
