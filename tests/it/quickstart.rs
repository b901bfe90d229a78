//! The README's quickstart, run as written: its `sh` blocks are read from
//! README.md (so the README cannot drift from what works) and run by bash,
//! one script, in an empty folder: `bootc init`, the two-line kernel and
//! busybox recipe, the site files, `bootc serve &` and QEMU. The VM must
//! say hello on its serial console, through the preview.
//!
//! What the test changes, and only that: `bootc` is the binary under test
//! (first on PATH); the kernel line copies the cached Debian kernel of
//! [`debian_kernel`] (the same package, fetched once by the same apt
//! clients: tests reach only 127.0.0.0/8); port 8080 becomes a free port
//! (also `bootc serve`'s default, given with `--bind`).
//! QEMU keeps its default accelerator (TCG) and is stopped with the rest of
//! the script once the hello line is seen.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::boot_support::{
    IPXE_VIRTIO_ROM, clean_console, collect, debian_kernel, need, need_busybox_static, qemu_turn,
    unavailable,
};

const README: &str = include_str!("../../README.md");

/// The `sh` blocks of the README's Quickstart section, in order.
fn quickstart_blocks() -> Vec<String> {
    let start = README
        .find("\n## Quickstart\n")
        .expect("README has ## Quickstart");
    let section = &README[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in section.lines() {
        match (&mut block, line) {
            (None, "```sh") => block = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The quickstart as one bash script, with the test's changes (see the
/// module's documentation).
fn script(kernel: &Path, port: u16) -> String {
    let blocks = quickstart_blocks();
    assert!(blocks.len() >= 4, "the quickstart lost blocks: {blocks:?}");
    let text = blocks.concat();
    for needed in [
        "bootc init lab && cd lab",
        "bootc serve --base-url http://10.0.2.2:8080/ &",
        "qemu-system-x86_64 -nographic",
        "mac=52:54:00:aa:bb:03",
    ] {
        assert!(text.contains(needed), "the quickstart lost `{needed}`");
    }
    let kernel_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("apt-get download"))
        .collect();
    assert_eq!(kernel_lines.len(), 1, "one kernel line: {kernel_lines:?}");
    let text = text.replace(
        kernel_lines[0],
        &format!(
            "mkdir -p artifacts && cp '{}' artifacts/vmlinuz",
            kernel.display()
        ),
    );
    // `bootc serve` listens on 127.0.0.1:8080 unless told otherwise.
    text.replace("bootc serve ", "bootc serve --bind 127.0.0.1:8080 ")
        .replace(":8080", &format!(":{port}"))
}

#[test]
fn readme_says_how_to_leave_qemu() {
    let blocks = quickstart_blocks().concat();
    assert!(blocks.contains("-nographic"));
    let start = README.find("\n## Quickstart\n").unwrap();
    let section = &README[start..];
    let section = &section[..section[1..].find("\n## ").unwrap_or(section.len())];
    assert!(section.contains("Ctrl-A"), "{section}");
}

/// Kills a process group on drop (the script, `bootc serve` and QEMU).
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-self.0, libc::SIGTERM);
        }
        thread::sleep(Duration::from_millis(500));
        // SAFETY: as above; the group may be gone already.
        unsafe {
            libc::kill(-self.0, libc::SIGKILL);
        }
    }
}

#[test]
fn readme_quickstart_boots_and_says_hello() {
    if !(need("bash")
        && need("qemu-system-x86_64")
        && (Path::new(IPXE_VIRTIO_ROM).is_file()
            || unavailable(
                &format!("{IPXE_VIRTIO_ROM} not installed"),
                "apt-get install ipxe-qemu",
            ))
        && need_busybox_static()
        && need("gzip"))
    {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = script(&kernel, port);
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_bootc")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());

    let _one_qemu = qemu_turn();
    let mut child = Command::new("bash")
        .args(["-e", "-o", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env(
            "BOOTC_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("bootc-cache"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("run bash");
    let group = Group(child.id() as i32);
    let stdout = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());

    let start = Instant::now();
    let hello = "Hello from bootc: ";
    let (mut seen, mut exited) = (None, None);
    while start.elapsed() < Duration::from_secs(240) {
        let out = clean_console(&stdout.lock().unwrap());
        // Complete lines only: the hello line may be arriving. iPXE's last
        // " ok" can share its line (" oHello…": the console interleaves).
        let done = &out[..out.rfind('\n').unwrap_or(0)];
        if let Some(at) = done.lines().find_map(|l| l.find(hello).map(|i| &l[i..])) {
            seen = Some(at.to_string());
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let took = start.elapsed();
    drop(group);
    let _ = child.wait();
    thread::sleep(Duration::from_millis(100));
    let out = clean_console(&stdout.lock().unwrap());
    let err = String::from_utf8_lossy(&stderr.lock().unwrap()).into_owned();
    let Some(line) = seen else {
        panic!(
            "no `{hello}` line after {took:?} (script exited: {exited:?})\n--- stdout\n{out}\n--- stderr\n{err}\n--- script\n{script}"
        );
    };
    eprintln!("quickstart: hello after {took:?}");
    assert_eq!(
        line.trim_end(),
        "Hello from bootc: initrd=initrd.gz console=ttyS0 quiet bootc.role=hello",
        "{out}"
    );
    // Through the preview, as the machine the quickstart added.
    assert!(
        out.contains("demo (52:54:00:aa:bb:03) GET machines/52-54-00-aa-bb-03.ipxe 200"),
        "{out}"
    );
    // The commands before the boot ran and said what the README says.
    let all = format!("{out}{err}");
    assert!(all.contains("created site lab in lab"), "{all}");
    assert!(all.contains("site lab is valid"), "{all}");
}
