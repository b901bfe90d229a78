//! `bootc verify` against hostile servers and trees: a server that stalls
//! or sends without end (a tiny HTTP server on 127.0.0.1, in the test), a
//! tree whose files are symbolic or hard links out of it, and a legacy
//! minisign signature.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::boot_support::need;
use crate::harness::{Run, Site, bootc, copy_dir};

fn cmd(dir: &Path) -> Command {
    let mut c = bootc();
    c.current_dir(dir)
        .env_remove("BOOTC_SIGN_KEY")
        .env_remove("BOOTC_SIGN_KEY_PASSWORD")
        .stdin(Stdio::null());
    c
}

/// Runs `c`, killing it after `limit` (then the run fails the test).
fn run_within(c: &mut Command, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bootc");
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "bootc still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    (child.wait_with_output().unwrap().into(), took)
}

/// The basic fixture built into public/, signed with a fresh bootc key.
struct Signed {
    site: Site,
    _keys: tempfile::TempDir,
    public: PathBuf,
}

impl Signed {
    fn new() -> Signed {
        let keys = tempfile::tempdir().unwrap();
        let prefix = keys.path().join("site");
        let r: Run = cmd(keys.path())
            .args(["keygen", "--unencrypted", "-o"])
            .arg(&prefix)
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "{}", r.stderr);
        let site = Site::fixture("basic");
        let r: Run = cmd(site.root())
            .args(["build", ".", "--sign-key"])
            .arg(keys.path().join("site.key"))
            .output()
            .unwrap()
            .into();
        assert_eq!(r.code, 0, "{}", r.stderr);
        Signed {
            site,
            public: keys.path().join("site.pub"),
            _keys: keys,
        }
    }

    fn verify(&self, target: &str, extra: &[&str]) -> (Run, Duration) {
        run_within(
            cmd(self.site.root())
                .args(["verify", target, "--pubkey"])
                .arg(&self.public)
                .args(extra),
            Duration::from_secs(30),
        )
    }

    /// A copy of public/ (as `t/`), changed by `f`, then verified.
    fn tampered(&self, f: impl FnOnce(&Path)) -> Run {
        let t = self.site.path("t");
        let _ = fs::remove_dir_all(&t);
        copy_dir(&self.site.path("public"), &t);
        f(&t);
        self.verify("t", &[]).0
    }
}

// ---------------------------------------------------------------------------
// A hostile HTTP server

/// What the server does with a request for `path` (no leading '/').
type Answer = dyn Fn(&str, &mut TcpStream) + Send + Sync;

/// Serves on 127.0.0.1 until the test process ends; each connection gets
/// its own thread, so a stalled one does not hold up the others.
fn serve(answer: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let answer: std::sync::Arc<Answer> = std::sync::Arc::new(answer);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                loop {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut h = String::new();
                        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                            break;
                        }
                    }
                    let path = line
                        .split(' ')
                        .nth(1)
                        .unwrap_or("/")
                        .trim_start_matches('/');
                    answer(path, &mut conn);
                }
            });
        }
    });
    url
}

fn stall() {
    std::thread::sleep(Duration::from_secs(600));
}

fn send_file(conn: &mut TcpStream, bytes: Option<Vec<u8>>) {
    let _ = match bytes {
        Some(b) => conn
            .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes())
            .and_then(|_| conn.write_all(&b)),
        None => conn.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
}

#[test]
fn verify_gives_up_on_a_server_that_stalls() {
    let s = Signed::new();
    let http = s.site.path("public/http");

    // Headers, a few bytes of the manifest, then nothing.
    let url = serve(|_, conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{\"for");
        stall();
    });
    let (r, took) = s.verify(&url, &["--timeout", "2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        r.stderr
            .contains("manifest.json: the server stalled: nothing received for 2 s"),
        "{}",
        r.stderr
    );

    // No response headers at all.
    let url = serve(|_, _| stall());
    let (r, took) = s.verify(&url, &["--timeout", "2"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        r.stderr
            .contains("manifest.json: the server sent no response headers within 2 s"),
        "{}",
        r.stderr
    );

    // The manifest and signature come, one listed file stalls: that file
    // is a problem, the others are checked.
    let root = http.clone();
    let url = serve(move |path, conn| {
        if path == "machines/52-54-00-aa-bb-01.ipxe" {
            let len = fs::metadata(root.join(path)).unwrap().len();
            let _ = conn.write_all(
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n#!ip").as_bytes(),
            );
            stall();
        }
        send_file(conn, fs::read(root.join(path)).ok());
    });
    let (r, took) = s.verify(&url, &["--timeout", "2"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(
        r.stderr.contains(
            "error: http/machines/52-54-00-aa-bb-01.ipxe: download failed after 4 bytes: the server stalled: nothing received for 2 s"
        ) && r.stderr.contains("1 problem;"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_refuses_a_manifest_too_large() {
    let s = Signed::new();
    // Announced: refused without reading it.
    let url = serve(|_, conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n{");
        stall();
    });
    let (r, took) = s.verify(&url, &["--timeout", "5"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        r.stderr.contains(
            "manifest.json: 4294967296 bytes (Content-Length), more than the 32.0 MiB verify reads"
        ),
        "{}",
        r.stderr
    );
    // Not announced (sent until the connection closes): read up to the cap.
    let url = serve(|_, conn| {
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let chunk = vec![b' '; 1 << 16];
        while conn.write_all(&chunk).is_ok() {}
    });
    let (r, _) = s.verify(&url, &["--timeout", "5"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("manifest.json: more bytes, more than the 32.0 MiB verify reads"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_accepts_a_legacy_minisign_signature() {
    if !need("minisign") {
        return;
    }
    let s = Signed::new();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = crate::sign::minisign_keypair(keys.path());
    let m = s.site.path("public/http/manifest.json");
    let out = Command::new("minisign")
        .args(["-S", "-l", "-s"])
        .arg(&key)
        .arg("-m")
        .arg(&m)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sig = fs::read_to_string(s.site.path("public/http/manifest.json.minisig")).unwrap();
    // The legacy algorithm: `Ed`, not the prehashed `ED`.
    let line = sig.lines().nth(1).unwrap();
    assert!(line.starts_with("RW"), "not a legacy signature: {line}");
    let verify = || -> Run {
        cmd(s.site.root())
            .args(["verify", "public", "--pubkey"])
            .arg(&public)
            .output()
            .unwrap()
            .into()
    };
    let r = verify();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("verified public: site fixture"),
        "{}",
        r.stdout
    );

    // Still a signature: a changed manifest fails.
    let text = fs::read_to_string(&m).unwrap();
    fs::write(&m, text.replacen("\"fixture\"", "\"fixturf\"", 1)).unwrap();
    let r = verify();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("the signature does not match"),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------
// Links out of the tree

const SECRET: &str = "root:$6$secret-hash-never-printed:19000:0:99999:7:::\n";

fn secret_file(s: &Signed) -> PathBuf {
    let p = s.site.path("shadow");
    fs::write(&p, SECRET).unwrap();
    p
}

/// Nothing of the secret, not even its hash, is in the output.
fn assert_no_secret(r: &Run) {
    let h = blake3::hash(SECRET.as_bytes()).to_hex().to_string();
    for text in [&r.stdout, &r.stderr] {
        assert!(!text.contains("secret-hash"), "{text}");
        assert!(!text.contains(&h), "the secret's hash was printed: {text}");
    }
}

const SCRIPT: &str = "http/machines/52-54-00-aa-bb-01.ipxe";

#[test]
fn verify_dir_reads_nothing_through_a_symbolic_link() {
    let s = Signed::new();
    let secret = secret_file(&s);

    // A listed file that is a link to a file outside.
    let r = s.tampered(|t| {
        fs::remove_file(t.join(SCRIPT)).unwrap();
        symlink(&secret, t.join(SCRIPT)).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error: {SCRIPT}: is a symbolic link (verify reads no file through a link)"
        )),
        "{}",
        r.stderr
    );
    assert_no_secret(&r);

    // A folder that is a link to a copy outside, where every file matches.
    let outside = s.site.path("outside");
    copy_dir(&s.site.path("public/http/machines/node01"), &outside);
    let r = s.tampered(|t| {
        fs::remove_dir_all(t.join("http/machines/node01")).unwrap();
        symlink(&outside, t.join("http/machines/node01")).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: http/machines/node01/user-data: lies under `http/machines/node01`, a symbolic link"
        ) && r
            .stderr
            .contains("error: http/machines/node01: a symbolic link, not listed in the manifest"),
        "{}",
        r.stderr
    );

    // The manifest and its signature, links to good copies outside.
    let m = s.site.path("m");
    fs::create_dir_all(&m).unwrap();
    for f in ["manifest.json", "manifest.json.minisig"] {
        fs::copy(s.site.path("public/http").join(f), m.join(f)).unwrap();
    }
    let r = s.tampered(|t| {
        fs::remove_file(t.join("http/manifest.json")).unwrap();
        symlink(m.join("manifest.json"), t.join("http/manifest.json")).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: http/manifest.json: is a symbolic link (verify reads no file through a link)"
        ),
        "{}",
        r.stderr
    );
    let r = s.tampered(|t| {
        fs::remove_file(t.join("http/manifest.json.minisig")).unwrap();
        symlink(
            m.join("manifest.json.minisig"),
            t.join("http/manifest.json.minisig"),
        )
        .unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: http/manifest.json.minisig: is a symbolic link (verify reads no file through a link)"
        ),
        "{}",
        r.stderr
    );
    // Also as a deployed web root.
    let web = s.site.path("web");
    copy_dir(&s.site.path("public/http"), &web);
    fs::remove_file(web.join("machines/52-54-00-aa-bb-01.ipxe")).unwrap();
    symlink(&secret, web.join("machines/52-54-00-aa-bb-01.ipxe")).unwrap();
    let (r, _) = s.verify("web", &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("error: {SCRIPT}: is a symbolic link")),
        "{}",
        r.stderr
    );
    assert_no_secret(&r);
}

#[test]
fn verify_dir_refuses_a_hard_link_out_of_the_tree() {
    let s = Signed::new();
    let secret = secret_file(&s);
    let r = s.tampered(|t| {
        fs::remove_file(t.join(SCRIPT)).unwrap();
        fs::hard_link(&secret, t.join(SCRIPT)).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "error: {SCRIPT}: is a hard link to a file with 2 names, 1 of them outside the tree"
        )),
        "{}",
        r.stderr
    );
    assert_no_secret(&r);

    // Two names inside the tree are no escape: the extra one is only unlisted.
    let r = s.tampered(|t| {
        fs::hard_link(t.join(SCRIPT), t.join("http/extra.ipxe")).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error: http/extra.ipxe: not listed in the manifest")
            && r.stderr.contains("1 problem;"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_over_http_reads_only_what_is_needed() {
    // A sanity check of the test server itself against a good tree.
    let s = Signed::new();
    let root = s.site.path("public/http");
    let url = serve(move |path, conn| {
        let mut b = Vec::new();
        let got = fs::File::open(root.join(path)).and_then(|mut f| f.read_to_end(&mut b));
        send_file(conn, got.ok().map(|_| b));
    });
    let (r, _) = s.verify(&url, &["--timeout", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}
