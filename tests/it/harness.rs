//! A small builder harness: copy a fixture site into a temporary folder,
//! edit it, run the real `bootc` binary on it, look at what it wrote.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn bootc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bootc"));
    c.env("NO_COLOR", "1");
    // The tests' own cache (downloads, hashes), never the user's; a test
    // that needs a fresh one sets its own.
    c.env(
        "BOOTC_CACHE_DIR",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("bootc-cache"),
    );
    c
}

/// The result of one run of bootc.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// The diagnostics of one severity, each a block starting "error:" or
    /// "warning:" (the closing summary line excluded).
    pub fn blocks(&self, severity: &str) -> Vec<String> {
        let mut blocks: Vec<String> = Vec::new();
        for line in self.stderr.lines() {
            if line.starts_with("error:")
                || line.starts_with("warning:")
                || line.starts_with("warning[")
                || line.starts_with("nothing was written")
            {
                blocks.push(String::new());
            }
            if let Some(b) = blocks.last_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        // `warning[unused-role]: …` is a warning too.
        let (prefix, named) = (format!("{severity}:"), format!("{severity}["));
        blocks
            .into_iter()
            .filter(|b| {
                (b.starts_with(&prefix) || b.starts_with(&named))
                    && !b.starts_with("error: the site is invalid")
            })
            .map(|b| b.trim_end().to_string() + "\n")
            .collect()
    }

    pub fn errors(&self) -> String {
        self.blocks("error").concat()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// A site in a temporary folder.
pub struct Site {
    pub dir: tempfile::TempDir,
}

impl Site {
    pub fn fixture(name: &str) -> Site {
        let dir = tempfile::Builder::new()
            .prefix("bootc-site-")
            .tempdir()
            .expect("tempdir");
        copy_dir(&fixtures().join(name), dir.path());
        Site { dir }
    }

    /// A copy of site.example whose Debian package files (the signed
    /// installer kernels, shim and GRUB) are stand-ins inside the copy, so
    /// it builds, and builds the same bytes, on any machine.
    pub fn example() -> Site {
        let s = Site::fixture("../../site.example");
        let _ = fs::remove_dir_all(s.path("public"));
        const DI: &str = "/usr/lib/debian-installer/images/12";
        for f in [
            "bootc.toml",
            "images/debian-12-installer-signed.toml",
            "images/debian-12-installer-arm64.toml",
        ] {
            s.write(f, &s.read(f).replace(DI, "stand-ins"));
        }
        s.edit(
            "bootc.toml",
            "[uefi]\n",
            "[uefi]\nshim = { path = \"stand-ins/shimx64.efi\" }\ngrub = { path = \"stand-ins/grubx64.efi\" }\n",
        );
        let x64 = pe(0x8664, true);
        let arm64 = pe(0xaa64, true);
        for (f, bytes) in [
            ("shimx64.efi", &x64),
            ("grubx64.efi", &x64),
            ("amd64/text/debian-installer/amd64/linux", &x64),
            ("arm64/text/debian-installer/arm64/linux", &arm64),
            ("arm64/text/debian-installer/arm64/bootnetaa64.efi", &arm64),
            ("arm64/text/debian-installer/arm64/grubaa64.efi", &arm64),
        ] {
            let p = s.path(&format!("stand-ins/{f}"));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
        for arch in ["amd64", "arm64"] {
            let p = s.path(&format!(
                "stand-ins/{arch}/text/debian-installer/{arch}/initrd.gz"
            ));
            fs::write(p, cpio(&format!("stand-in {arch} initrd\n"))).unwrap();
        }
        s
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Replaces the one occurrence of `from` in `rel` by `to`.
    pub fn edit(&self, rel: &str, from: &str, to: &str) -> &Self {
        let text = self.read(rel);
        assert_eq!(
            text.matches(from).count(),
            1,
            "{rel} should contain {from:?} exactly once"
        );
        self.write(rel, &text.replacen(from, to, 1))
    }

    pub fn append(&self, rel: &str, more: &str) -> &Self {
        let text = fs::read_to_string(self.path(rel)).unwrap_or_default();
        self.write(rel, &(text + more))
    }

    pub fn run(&self, args: &[&str]) -> Run {
        bootc()
            .args(args)
            .current_dir(self.root())
            .output()
            .expect("run bootc")
            .into()
    }

    pub fn build(&self) -> Run {
        self.run(&["build", "."])
    }

    pub fn out(&self, rel: &str) -> String {
        self.read(&format!("public/{rel}"))
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// Every file under `dir`, relative path -> bytes.
pub fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for e in walkdir(dir) {
        let rel = e.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
        out.insert(rel, fs::read(&e).unwrap());
    }
    out
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// A minimal PE32+ file of `machine` (0x8664 x86-64, 0xaa64 arm64), with an
/// Authenticode table (its security directory) when `signed`: what bootc
/// reads of loaders and kernels.
pub fn pe(machine: u16, signed: bool) -> Vec<u8> {
    let mut b = vec![0u8; 0x400];
    b[0..2].copy_from_slice(b"MZ");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x44..0x46].copy_from_slice(&machine.to_le_bytes());
    b[0x54..0x56].copy_from_slice(&240u16.to_le_bytes());
    b[0x56..0x58].copy_from_slice(&0x22u16.to_le_bytes());
    let opt = 0x58;
    b[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
    b[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes());
    b[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes());
    b[opt + 56..opt + 60].copy_from_slice(&0x1000u32.to_le_bytes());
    b[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes());
    b[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
    if signed {
        let d = opt + 112 + 8 * 4; // IMAGE_DIRECTORY_ENTRY_SECURITY
        b[d..d + 4].copy_from_slice(&0x200u32.to_le_bytes());
        b[d + 4..d + 8].copy_from_slice(&0x100u32.to_le_bytes());
    }
    b
}

/// An x86 bzImage stand-in: the Linux boot protocol header (one setup
/// sector, `syssize` covering `body`) followed by `body`. bootc checks a
/// kernel's format and length from these headers.
pub fn bzimage(body: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1;
    let paragraphs = body.len().div_ceil(16) as u32;
    b[0x1f4..0x1f8].copy_from_slice(&paragraphs.to_le_bytes());
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b.extend_from_slice(body);
    b.resize(1024 + 16 * paragraphs as usize, 0);
    b
}

/// A sparse disk image of `size` bytes at `path` whose only content is an
/// MBR boot signature (what bootc checks of a disk image): no disk space.
pub fn sparse_disk(path: &Path, size: u64) {
    use std::os::unix::fs::FileExt;
    let f = fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    f.write_all_at(&[0x55, 0xaa], 510).unwrap();
}

/// An initrd stand-in: a newc cpio archive holding one file, `text`.
pub fn cpio(text: &str) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
        let fields = [
            0,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let mut out = Vec::new();
    entry(&mut out, "stand-in", 0o100644, text.as_bytes());
    entry(&mut out, "TRAILER!!!", 0, b"");
    out
}

/// One test per validation rule (used by validation.rs and others): a
/// broken copy of the `basic` fixture must fail with the exact message at
/// the exact file:line:col, exit 1, and leave nothing written; `check`
/// reports the same; the full diagnostic text is an insta snapshot.
/// `invalid!(test_name, "message", "file:line:col", |site| { edits })`
macro_rules! invalid {
    ($name:ident, $message:expr, $at:expr, |$s:ident| $edit:block) => {
        #[test]
        fn $name() {
            let $s = Site::fixture("basic");
            $edit
            let r = $s.build();
            assert_eq!(r.code, 1, "exit code; stderr:\n{}", r.stderr);
            assert!(!$s.path("public").exists(), "a failed build must write nothing");
            let errors = r.errors();
            assert!(errors.contains(&format!("error: {}", $message)), "message {:?} not in:\n{}", $message, r.stderr);
            if !$at.is_empty() {
                assert!(errors.contains(&format!("--> {}", $at)), "location {} not in:\n{}", $at, r.stderr);
            }
            // check reports the same, and writes nothing either
            let c = $s.run(&["check", "."]);
            assert_eq!(c.code, 1);
            assert_eq!(c.errors(), errors);
            insta::assert_snapshot!(errors);
        }
    };
}
