//! Signed manifests: keygen, signing at build, verify of a tree, a deployed
//! web root and a URL. Keys are made by each test (bootc keygen, or Debian's
//! minisign), never committed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::boot_support::{Nginx, need};
use crate::harness::{Run, Site, bootc, bzimage, copy_dir, tree};

/// bootc with no signing settings inherited from the environment.
fn cmd(dir: &Path) -> Command {
    let mut c = bootc();
    c.current_dir(dir)
        .env_remove("BOOTC_SIGN_KEY")
        .env_remove("BOOTC_SIGN_KEY_PASSWORD")
        .stdin(Stdio::null());
    c
}

fn run(c: &mut Command) -> Run {
    c.output().expect("run bootc").into()
}

/// A key pair made by `bootc keygen --unencrypted` in `dir`: (PREFIX.key, PREFIX.pub).
pub(crate) fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    let r = run(cmd(dir)
        .args(["keygen", "--unencrypted", "-o"])
        .arg(&prefix));
    assert_eq!(r.code, 0, "{}", r.stderr);
    (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    )
}

/// The base64 line of a key file: what must never leak.
fn secret_line(key: &Path) -> String {
    fs::read_to_string(key)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string()
}

struct Signed {
    site: Site,
    keys: tempfile::TempDir,
    key: PathBuf,
    public: PathBuf,
}

impl Signed {
    /// The basic fixture, built into public/ and signed with a fresh key.
    fn new() -> Signed {
        let keys = tempfile::tempdir().unwrap();
        let (key, public) = keygen(keys.path(), "site");
        let site = Site::fixture("basic");
        let r = run(cmd(site.root())
            .args(["build", ".", "--sign-key"])
            .arg(&key));
        assert_eq!(r.code, 0, "{}", r.stderr);
        Signed {
            site,
            keys,
            key,
            public,
        }
    }

    /// `bootc verify TARGET --pubkey site.pub`, from the site's folder.
    fn verify(&self, target: &str) -> Run {
        run(cmd(self.site.root())
            .args(["verify", target, "--pubkey"])
            .arg(&self.public))
    }

    /// A copy of public/ (as `t/`), changed by `f`, then verified.
    fn tampered(&self, f: impl FnOnce(&Path)) -> Run {
        let t = self.site.path("t");
        let _ = fs::remove_dir_all(&t);
        copy_dir(&self.site.path("public"), &t);
        f(&t);
        self.verify("t")
    }
}

/// Stable text for snapshots: hashes, key ids and build ids replaced.
fn redact(s: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hex = word.chars().all(|c| c.is_ascii_hexdigit());
        // A key id is written as minisign writes it: up to 16 upper-case
        // hex digits, fewer when it starts with zeros; it follows "key ".
        let key_id = hex
            && (1..=16).contains(&word.len())
            && word.chars().all(|c| !c.is_ascii_lowercase())
            && out.ends_with("key ");
        let w = match word.len() {
            64 if hex => "<blake3>",
            32 if hex => "<build-id>",
            _ if key_id => "<key-id>",
            _ => word.as_str(),
        };
        out.push_str(w);
        word.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    // File counts and sizes follow the fixture; the tests check them apart.
    let mut redacted = String::new();
    for line in out.lines() {
        let mut l = line.to_string();
        for (marker, with) in [
            (" files (", "<n> files ("),
            (" files checked", "<n> files checked"),
        ] {
            if let Some(at) = l.find(marker) {
                let start = l[..at].rfind(' ').map_or(0, |i| i + 1);
                let rest = &l[at + marker.len()..];
                let rest = if marker.ends_with('(') {
                    format!("<size>{}", &rest[rest.find(')').unwrap_or(0)..])
                } else {
                    rest.to_string()
                };
                l = format!("{}{with}{rest}", &l[..start]);
            }
        }
        redacted.push_str(&l);
        redacted.push('\n');
    }
    redacted
}

/// How many files the manifest of `root` lists, and how many under http/.
fn listed(root: &Path) -> (usize, usize) {
    let doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(root.join("http/manifest.json")).unwrap())
            .unwrap();
    let files = doc["files"].as_array().unwrap();
    let http = files
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("http/"))
        .count();
    (files.len(), http)
}

fn a_script(root: &Path) -> PathBuf {
    root.join("http/machines/52-54-00-aa-bb-01.ipxe")
}

/// The local artifact the fixture's linux image copies (its kernel).
fn an_image(root: &Path) -> PathBuf {
    let mut images: Vec<PathBuf> = tree(&root.join("http/images"))
        .into_keys()
        .filter(|p| p.ends_with("vmlinuz"))
        .map(|p| root.join("http/images").join(p))
        .collect();
    assert_eq!(images.len(), 1, "{images:?}");
    images.pop().unwrap()
}

#[test]
fn keygen_writes_a_minisign_pair_and_keeps_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("ci/boot");
    let r = run(cmd(dir.path())
        .args(["keygen", "--unencrypted", "-o"])
        .arg(&prefix));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key = dir.path().join("ci/boot.key");
    let public = dir.path().join("ci/boot.pub");
    let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the secret key is for its owner only");
    let pub_text = fs::read_to_string(&public).unwrap();
    let lines: Vec<&str> = pub_text.lines().collect();
    assert_eq!(lines.len(), 2, "{pub_text}");
    assert!(lines[0].starts_with("untrusted comment: minisign public key "));
    assert_eq!(lines[1].len(), 56, "Ed + key id + key, base64");
    assert!(lines[1].starts_with("RW"), "base64 of \"Ed\": {}", lines[1]);
    let key_id = lines[0].rsplit(' ').next().unwrap();
    assert!(r.stdout.contains(key_id), "{}", r.stdout);
    let secret = secret_line(&key);
    assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret));

    // Never replaced by accident.
    let again = run(cmd(dir.path())
        .args(["keygen", "--unencrypted", "-o"])
        .arg(&prefix));
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    assert_eq!(secret_line(&key), secret);
    let forced = run(cmd(dir.path())
        .args(["keygen", "--unencrypted", "--force", "-o"])
        .arg(&prefix));
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_ne!(secret_line(&key), secret);

    // A password is needed unless --unencrypted; with no terminal it must come
    // from the environment.
    let no_pw = run(cmd(dir.path())
        .args(["keygen", "-o"])
        .arg(dir.path().join("p")));
    assert_eq!(no_pw.code, 2);
    assert!(
        no_pw.stderr.contains("BOOTC_SIGN_KEY_PASSWORD"),
        "{}",
        no_pw.stderr
    );
    assert!(!dir.path().join("p.key").exists());
}

#[test]
fn signed_build_is_deterministic_and_never_holds_the_key() {
    let s = Signed::new();
    let sig = s.site.out("http/manifest.json.minisig");
    let manifest: serde_json::Value =
        serde_json::from_str(&s.site.out("http/manifest.json")).unwrap();
    let lines: Vec<&str> = sig.lines().collect();
    assert_eq!(lines.len(), 4, "{sig}");
    assert!(lines[0].starts_with("untrusted comment: "));
    assert!(
        lines[1].starts_with("RU"),
        "base64 of a prehashed (ED) signature: {}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        format!(
            "trusted comment: site:fixture build:{}",
            manifest["build-id"].as_str().unwrap()
        )
    );
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(!listed.contains(&"http/manifest.json.minisig"));
    assert!(!listed.contains(&"http/manifest.json"));

    // The same site and key, built elsewhere: byte for byte the same tree,
    // signature included (no timestamp, no random noise).
    let again = run(cmd(s.site.root())
        .args(["build", ".", "-o", "again", "--sign-key"])
        .arg(&s.key));
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(tree(&s.site.path("public")), tree(&s.site.path("again")));

    // A rebuild leaves the signature alone (rsync sends nothing).
    let rebuild = run(cmd(s.site.root())
        .args(["build", ".", "--sign-key"])
        .arg(&s.key));
    assert_eq!(rebuild.code, 0, "{}", rebuild.stderr);
    let files = tree(&s.site.path("public")).len();
    assert!(
        rebuild
            .stdout
            .contains(&format!("{files} files in ./public ({files} unchanged)")),
        "{}",
        rebuild.stdout
    );

    // The secret is nowhere in the output, nor printed.
    let secret = secret_line(&s.key);
    for (path, bytes) in tree(&s.site.path("public")) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret),
            "{path} holds the secret key"
        );
    }
    for r in [&again, &rebuild] {
        assert!(!r.stdout.contains(&secret) && !r.stderr.contains(&secret));
    }
    assert!(
        rebuild
            .stdout
            .contains("signed http/manifest.json with key")
    );

    // Without a key the next build has no signature (a stale one would lie).
    let unsigned = run(cmd(s.site.root()).args(["build", "."]));
    assert_eq!(unsigned.code, 0, "{}", unsigned.stderr);
    assert!(!s.site.path("public/http/manifest.json.minisig").exists());
    let r = s.verify("public");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("http/manifest.json.minisig: missing: the manifest is not signed"),
        "{}",
        r.stderr
    );
}

#[test]
fn sign_key_from_the_environment_and_a_loose_key_file_warns() {
    let s = Signed::new();
    fs::set_permissions(&s.key, fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(cmd(s.site.root())
        .args(["build", ".", "-o", "env"])
        .env("BOOTC_SIGN_KEY", &s.key));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("the secret key is readable by other users (mode 644)"),
        "{}",
        r.stderr
    );
    assert_eq!(
        s.site.out("http/manifest.json.minisig"),
        s.site.read("env/http/manifest.json.minisig")
    );
    assert_eq!(s.verify("env").code, 0);

    // The public key is not a signing key.
    let r = run(cmd(s.site.root())
        .args(["build", ".", "-o", "x", "--sign-key"])
        .arg(&s.public));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a minisign secret key"),
        "{}",
        r.stderr
    );
    assert!(!s.site.path("x").exists());
}

#[test]
fn password_protected_keys() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(cmd(dir.path())
        .args(["keygen", "-o", "prot"])
        .env("BOOTC_SIGN_KEY_PASSWORD", "correct horse"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("password-protected"), "{}", r.stdout);
    let key = dir.path().join("prot.key");
    let public = dir.path().join("prot.pub");
    let site = Site::fixture("basic");
    let build = |password: Option<&str>| {
        let mut c = cmd(site.root());
        c.args(["build", ".", "--sign-key"]).arg(&key);
        if let Some(p) = password {
            c.env("BOOTC_SIGN_KEY_PASSWORD", p);
        }
        run(&mut c)
    };

    let r = build(None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("password-protected: set BOOTC_SIGN_KEY_PASSWORD"),
        "{}",
        r.stderr
    );
    let r = build(Some("battery staple"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("wrong password"), "{}", r.stderr);
    assert!(
        !site.path("public").exists(),
        "nothing is built with a bad key"
    );

    let r = build(Some("correct horse"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("correct horse") && !r.stderr.contains("correct horse"));
    let v = run(cmd(site.root())
        .args(["verify", "public", "--pubkey"])
        .arg(&public));
    assert_eq!(v.code, 0, "{}", v.stderr);

    // Debian's minisign opens the same encrypted key (password on stdin).
    if !need("minisign") {
        return;
    }
    let data = dir.path().join("data");
    fs::write(&data, "hello\n").unwrap();
    let mut child = Command::new("minisign")
        .args(["-S", "-s"])
        .arg(&key)
        .arg("-m")
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "minisign -S with a bootc key: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = Command::new("minisign")
        .args(["-V", "-p"])
        .arg(&public)
        .arg("-m")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[test]
fn password_asked_on_a_terminal() {
    // `script` gives bootc a pseudo-terminal; the password is typed on it.
    if !need("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let r = run(cmd(dir.path())
        .args(["keygen", "-o", "k"])
        .env("BOOTC_SIGN_KEY_PASSWORD", "typed on a tty"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let site = Site::fixture("basic");
    let line = format!(
        "{} build . --sign-key {}",
        env!("CARGO_BIN_EXE_bootc"),
        dir.path().join("k.key").display()
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .current_dir(site.root())
        .env("NO_COLOR", "1")
        .env_remove("BOOTC_SIGN_KEY")
        .env_remove("BOOTC_SIGN_KEY_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("script: {e}"));
    // Type the password once the prompt is there (echo is off by then).
    let mut stdout = child.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let seen = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen.lock().unwrap()).contains("password for ") {
        assert!(std::time::Instant::now() < deadline, "no password prompt");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin.write_all(b"typed on a tty\n").unwrap();
    let status = child.wait().unwrap();
    drop(stdin);
    reader.join().unwrap();
    let console = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    assert!(status.success(), "{console}");
    assert!(console.contains("password for "), "{console}");
    assert!(console.contains("signed http/manifest.json"), "{console}");
    assert!(
        !console.contains("typed on a tty"),
        "the password is not echoed: {console}"
    );
    assert!(site.path("public/http/manifest.json.minisig").is_file());
}

#[test]
fn debian_minisign_accepts_the_signature() {
    if !need("minisign") {
        return;
    }
    let s = Signed::new();
    let out = minisign_verify(&s.site.path("public/http"), &s.public);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Trusted comment: site:fixture build:"),
        "{stdout}"
    );

    // minisign also signs with the key bootc made (unencrypted, as for CI).
    let data = s.keys.path().join("data");
    fs::write(&data, "hello\n").unwrap();
    for args in [&["-S", "-s"][..], &["-V", "-p"][..]] {
        let key = if args[0] == "-S" { &s.key } else { &s.public };
        let out = Command::new("minisign")
            .args(args)
            .arg(key)
            .arg("-m")
            .arg(&data)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "minisign {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // And it refuses a changed manifest, so the test above can fail.
    let m = s.site.path("public/http/manifest.json");
    let text = fs::read_to_string(&m).unwrap();
    fs::write(&m, text.replacen("fixture", "fixturf", 1)).unwrap();
    let bad = minisign_verify(&s.site.path("public/http"), &s.public);
    assert!(!bad.status.success());
}

/// The key id on the first line of a .pub file, as its writer put it.
fn pub_key_id(public: &Path) -> String {
    let text = fs::read_to_string(public).unwrap();
    let first = text.lines().next().unwrap();
    first
        .strip_prefix("untrusted comment: minisign public key ")
        .unwrap_or_else(|| panic!("not minisign's first line: {first:?}"))
        .to_string()
}

/// Makes key pairs with `make` until `want` holds for the key id of the .pub
/// (a leading zero nibble comes once in 16 keys: 400 tries miss it with a
/// probability of about 1e-11).
fn key_where(
    dir: &Path,
    want: impl Fn(&str) -> bool,
    make: impl Fn(&Path) -> (PathBuf, PathBuf),
) -> (PathBuf, PathBuf) {
    for _ in 0..400 {
        let sub = tempfile::tempdir_in(dir).unwrap().keep();
        let (key, public) = make(&sub);
        if want(&pub_key_id(&public)) {
            return (key, public);
        }
    }
    panic!("no key with the wanted id in 400 tries");
}

/// `minisign -Vm manifest.json -p PUBLIC`, run in `http` (a tree's web root).
pub(crate) fn minisign_verify(http: &Path, public: &Path) -> std::process::Output {
    Command::new("minisign")
        .current_dir(http)
        .args(["-Vm", "manifest.json", "-p"])
        .arg(public)
        .output()
        .unwrap()
}

/// An unencrypted key pair made by minisign itself: (secret, public).
pub(crate) fn minisign_keypair(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, public) = (dir.join("mk.key"), dir.join("mk.pub"));
    let out = Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(&public)
        .arg("-s")
        .arg(&key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, public)
}

/// A key id that minisign writes with fewer than 16 digits (its top nibble
/// is zero), and one with all 16.
fn short_id(id: &str) -> bool {
    id.len() < 16
}
fn full_id(id: &str) -> bool {
    id.len() == 16
}

/// Signs the basic fixture with `key` and checks it with `minisign -V` and
/// `bootc verify`; the key id bootc prints must be the .pub file's.
fn signs_and_verifies_with_the_pub_files_key_id(key: &Path, public: &Path) {
    let site = Site::fixture("basic");
    let r = run(cmd(site.root())
        .args(["build", "."])
        .env("BOOTC_SIGN_KEY", key));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let key_id = pub_key_id(public);
    assert!(
        names_key(&r.stdout, &key_id),
        "build must print the key id {key_id}: {}",
        r.stdout
    );
    if need("minisign") {
        let ok = minisign_verify(&site.path("public/http"), public);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
    }
    let v = run(cmd(site.root())
        .args(["verify", "public", "--pubkey"])
        .arg(public));
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(
        names_key(&v.stdout, &key_id),
        "verify must print the key id {key_id}: {}",
        v.stdout
    );
}

/// `text` says "key ID" with exactly this id (no padding, nothing after).
fn names_key(text: &str, id: &str) -> bool {
    text.match_indices(&format!("key {id}"))
        .any(|(at, m)| !text[at + m.len()..].starts_with(|c: char| c.is_ascii_hexdigit()))
}

#[test]
fn a_key_made_by_minisign_signs_through_bootc() {
    if !need("minisign") {
        return;
    }
    let keys = tempfile::tempdir().unwrap();
    for want in [short_id, full_id] {
        let (key, public) = key_where(keys.path(), want, minisign_keypair);
        signs_and_verifies_with_the_pub_files_key_id(&key, &public);
    }
}

#[test]
fn keygen_writes_key_ids_as_minisign_does() {
    let keys = tempfile::tempdir().unwrap();
    for want in [short_id, full_id] {
        let (key, public) = key_where(keys.path(), want, |dir| {
            let prefix = dir.join("k");
            let r = run(cmd(dir)
                .args(["keygen", "--unencrypted", "-o"])
                .arg(&prefix));
            assert_eq!(r.code, 0, "{}", r.stderr);
            let id = r
                .stdout
                .split("key id ")
                .nth(1)
                .unwrap()
                .lines()
                .next()
                .unwrap();
            let (key, public) = (dir.join("k.key"), dir.join("k.pub"));
            assert_eq!(id, pub_key_id(&public), "keygen's line and its .pub differ");
            (key, public)
        });
        let secret_comment = fs::read_to_string(&key).unwrap();
        let id = pub_key_id(&public);
        assert_eq!(
            secret_comment.lines().next().unwrap(),
            format!("untrusted comment: bootc secret key {id}")
        );
        signs_and_verifies_with_the_pub_files_key_id(&key, &public);
    }
}

#[test]
fn verify_accepts_the_tree_and_the_deployed_web_root() {
    let s = Signed::new();
    let r = s.verify("public");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stderr, "");
    let (all, http) = listed(&s.site.path("public"));
    assert!(
        r.stdout.contains(&format!(" {all} files (")),
        "{}",
        r.stdout
    );
    insta::assert_snapshot!("verify_ok", redact(&r.stdout));

    // As after `rsync -a --delete public/http/ server:/var/www/boot/`.
    let www = s.site.path("www");
    copy_dir(&s.site.path("public/http"), &www);
    let r = s.verify("www");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!(" {http} files (")),
        "{}",
        r.stdout
    );
    let skipped = all - http;
    assert!(
        r.stderr.starts_with(&format!(
            "note: skipped {skipped} listed files outside http/ (this is a web root: only http/ is deployed here): "
        )) && r.stderr.contains("plan.json")
            && r.stderr.contains("report/ (2 files)"),
        "{}",
        r.stderr
    );
    insta::assert_snapshot!("verify_web_root", redact(&r.stdout));

    // Bad arguments are usage/I/O errors.
    assert_eq!(s.verify("nowhere").code, 2);
    assert_eq!(s.verify(".").code, 2, "a site is not a tree");
    let r = run(cmd(s.site.root())
        .args(["verify", "public", "--pubkey"])
        .arg(&s.key));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("this is a secret key"), "{}", r.stderr);
    assert!(!r.stderr.contains(&secret_line(&s.key)));
}

#[test]
fn verify_catches_a_changed_byte_in_a_script() {
    let s = Signed::new();
    let r = s.tampered(|t| {
        let p = a_script(t);
        let mut b = fs::read(&p).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x01;
        fs::write(&p, b).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: http/machines/52-54-00-aa-bb-01.ipxe: content differs from the manifest"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("1 problem;"), "{}", r.stderr);
}

#[test]
fn verify_catches_a_byte_appended_to_an_image() {
    let s = Signed::new();
    let mut name = String::new();
    let r = s.tampered(|t| {
        let p = an_image(t);
        name = p.strip_prefix(t).unwrap().to_string_lossy().into_owned();
        let mut b = fs::read(&p).unwrap();
        b.push(0);
        fs::write(&p, b).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("error: {name}: size differs from the manifest")),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_catches_a_missing_file() {
    let s = Signed::new();
    let r = s.tampered(|t| fs::remove_file(t.join("http/machines/node01/user-data")).unwrap());
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error: http/machines/node01/user-data: missing"),
        "{}",
        r.stderr
    );
}

#[test]
fn verify_catches_two_files_swapped() {
    let s = Signed::new();
    let a = "http/machines/52-54-00-aa-bb-01.ipxe";
    let b = "http/machines/52-54-00-aa-bb-02.ipxe";
    let r = s.tampered(|t| {
        let tmp = t.join("swap");
        fs::rename(t.join(a), &tmp).unwrap();
        fs::rename(t.join(b), t.join(a)).unwrap();
        fs::rename(&tmp, t.join(b)).unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    for p in [a, b] {
        assert!(
            r.stderr.contains(&format!("error: {p}: content differs"))
                || r.stderr.contains(&format!("error: {p}: size differs")),
            "{p}: {}",
            r.stderr
        );
    }
}

#[test]
fn verify_catches_an_edited_manifest() {
    let s = Signed::new();
    // Make the manifest agree with a changed script: only the signature can tell.
    let r = s.tampered(|t| {
        let script = a_script(t);
        let old = blake3::hash(&fs::read(&script).unwrap())
            .to_hex()
            .to_string();
        let mut text = fs::read_to_string(&script).unwrap();
        text = text.replacen("#!ipxe", "#!ipxe\nshell", 1);
        fs::write(&script, &text).unwrap();
        let new = blake3::hash(text.as_bytes()).to_hex().to_string();
        let m = t.join("http/manifest.json");
        let mut doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
        for f in doc["files"].as_array_mut().unwrap() {
            if f["blake3"] == old.as_str() {
                f["blake3"] = new.clone().into();
                f["size"] = text.len().into();
            }
        }
        fs::write(&m, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "error: http/manifest.json.minisig: the signature does not match http/manifest.json"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("signature NOT verified"), "{}", r.stderr);
}

#[test]
fn verify_catches_an_edited_dhcp_config() {
    let s = Signed::new();
    let dhcp: Vec<String> = tree(&s.site.path("public"))
        .into_keys()
        .filter(|p| p.starts_with("dhcp/"))
        .collect();
    assert!(
        !dhcp.is_empty(),
        "the fixture has [dhcp]: the build writes dhcp/"
    );
    for file in &dhcp {
        let r = s.tampered(|t| {
            let p = t.join(file);
            let text = fs::read_to_string(&p).unwrap();
            // Same size: only the hash can tell.
            let edited = text.replacen("10.77.0.1", "10.66.0.1", 1);
            assert_ne!(edited, text, "{file} names the next-server");
            fs::write(&p, edited).unwrap();
        });
        assert_eq!(r.code, 1, "{file}: {}", r.stderr);
        assert!(
            r.stderr
                .contains(&format!("error: {file}: content differs from the manifest")),
            "{file}: {}",
            r.stderr
        );
    }
}

#[test]
fn verify_catches_a_signature_by_another_key() {
    let s = Signed::new();
    let (other_key, _) = keygen(s.keys.path(), "other");
    let r = run(cmd(s.site.root())
        .args(["build", ".", "-o", "other", "--sign-key"])
        .arg(&other_key));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = s.verify("other");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error: http/manifest.json.minisig: signed by another key: "),
        "{}",
        r.stderr
    );
    // The other key's signature over our own manifest: same answer.
    let r = s.tampered(|t| {
        fs::copy(
            s.site.path("other/http/manifest.json.minisig"),
            t.join("http/manifest.json.minisig"),
        )
        .unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("signed by another key"), "{}", r.stderr);
}

#[test]
fn verify_reports_every_problem_in_one_run() {
    let s = Signed::new();
    let r = s.tampered(|t| {
        let p = a_script(t);
        let text = fs::read_to_string(&p).unwrap();
        fs::write(&p, text.replacen("#!ipxe", "#!ipxf", 1)).unwrap();
        let img = an_image(t);
        let mut b = fs::read(&img).unwrap();
        b.push(b'\n');
        fs::write(&img, b).unwrap();
        fs::remove_file(t.join("report/index.html")).unwrap();
        fs::write(t.join("http/machines/stray.ipxe"), "#!ipxe\nshell\n").unwrap();
    });
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stdout, "");
    let (all, _) = listed(&s.site.path("public"));
    assert!(
        r.stderr.contains(&format!("{all} files checked")),
        "{}",
        r.stderr
    );
    insta::assert_snapshot!("verify_every_problem", redact(&r.stderr));
}

#[test]
fn verify_refuses_unsafe_manifest_paths() {
    if !need("minisign") {
        return;
    }
    // A manifest that lists /etc/passwd and ../outside, correctly signed by
    // a key the verifier trusts: the paths are still refused, never opened.
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = minisign_keypair(keys.path());
    let site = Site::fixture("basic");
    assert_eq!(run(cmd(site.root()).args(["build", "."])).code, 0);
    let m = site.path("public/http/manifest.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&m).unwrap()).unwrap();
    let files = doc["files"].as_array_mut().unwrap();
    for bad in ["/etc/passwd", "http/../../outside", "http/./x"] {
        files.push(serde_json::json!({"path": bad, "size": 1, "blake3": "00"}));
    }
    fs::write(&m, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = Command::new("minisign")
        .args(["-S", "-s"])
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
    let r = run(cmd(site.root())
        .args(["verify", "public", "--pubkey"])
        .arg(&public));
    assert_eq!(r.code, 1, "{}", r.stderr);
    for (bad, why) in [
        ("/etc/passwd", "it is absolute"),
        ("http/../../outside", "it contains `..`"),
        ("http/./x", "it has an empty or `.` component"),
    ] {
        assert!(
            r.stderr.contains(&format!(
                "error: http/manifest.json: lists the path `{bad}`, which is refused: {why}"
            )),
            "{bad}: {}",
            r.stderr
        );
    }
    assert!(r.stderr.contains("3 problems;"), "{}", r.stderr);
}

#[test]
fn verify_over_http_against_nginx() {
    if !need("nginx") {
        return;
    }
    // A kernel big enough to take many reads (streamed, hashed as it comes).
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "site");
    let site = Site::fixture("basic");
    let big = bzimage(
        &(0..(24u32 << 20))
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    );
    fs::write(site.path("artifacts/vmlinuz"), &big).unwrap();
    let r = run(cmd(site.root())
        .args(["build", ".", "--sign-key"])
        .arg(&key));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nginx = Nginx::start(&site.path("public/http"));
    let verify = || {
        run(cmd(site.root())
            .args(["verify", &nginx.url(), "--pubkey"])
            .arg(&public))
    };

    let r = verify();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let listed = serde_json::from_str::<serde_json::Value>(&site.out("http/manifest.json"))
        .unwrap()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let served: Vec<&String> = listed.iter().filter(|p| p.starts_with("http/")).collect();
    assert!(
        r.stdout
            .contains(&format!("verified {}: site fixture, build ", nginx.url()))
            && r.stdout.contains(&format!("{} files", served.len())),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("note: skipped")
            && r.stderr.contains("only http/ is served over HTTP")
            && r.stderr.contains("plan.json")
            && r.stderr.contains("report/ (2 files)"),
        "{}",
        r.stderr
    );
    // Every served file was fetched once, and nothing outside http/.
    let got: Vec<String> = nginx
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.status == 200)
        .map(|q| q.uri)
        .collect();
    for p in &served {
        let uri = format!("/{}", p.strip_prefix("http/").unwrap());
        assert_eq!(
            got.iter().filter(|g| **g == uri).count(),
            1,
            "{uri} in {got:?}"
        );
    }
    assert!(got.contains(&"/manifest.json.minisig".to_string()));

    // Tamper with what nginx serves.
    let root = site.path("public");
    let script = a_script(&root);
    let text = fs::read_to_string(&script).unwrap();
    fs::write(&script, text.replacen("#!ipxe", "#!ipxf", 1)).unwrap();
    let img = an_image(&root);
    let mut b = fs::read(&img).unwrap();
    b.push(0);
    fs::write(&img, b).unwrap();
    fs::remove_file(root.join("http/machines/node01/user-data")).unwrap();
    let r = verify();
    assert_eq!(r.code, 1, "{}", r.stderr);
    for want in [
        "error: http/machines/52-54-00-aa-bb-01.ipxe: content differs from the manifest",
        "size differs from the manifest",
        "error: http/machines/node01/user-data: missing (HTTP 404)",
        "3 problems;",
    ] {
        assert!(r.stderr.contains(want), "{want}: {}", r.stderr);
    }

    // No manifest at the URL: nothing to verify, a usage error.
    let r = run(cmd(site.root())
        .args(["verify", &format!("{}nothing/", nginx.url()), "--pubkey"])
        .arg(&public));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("manifest.json: not found"),
        "{}",
        r.stderr
    );
    drop(keys);
}

#[test]
fn verify_needs_a_pubkey() {
    let s = Site::fixture("basic");
    let r = run(cmd(s.root()).args(["verify", "public"]));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--pubkey"), "{}", r.stderr);
}
