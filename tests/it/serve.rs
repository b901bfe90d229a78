//! `bootc serve`: the real binary serving fixture sites on 127.0.0.1 (port
//! picked by the kernel), driven by a raw HTTP client (so odd request
//! targets reach the server as written), wrk, headless Chromium and a QEMU
//! iPXE client.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::boot_support::{
    Firmware, busybox_initramfs, debian_kernel, default_boot_timeout, find_program, need,
    need_busybox_static, qemu_boot, unavailable,
};
use crate::harness::{Site, bootc, bzimage};

// ---------------------------------------------------------------------------
// A running `bootc serve`
// ---------------------------------------------------------------------------

pub(crate) struct Serve {
    child: Child,
    port: u16,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn lines(pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&out);
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            o.lock().unwrap().push(line);
        }
    });
    out
}

impl Serve {
    pub(crate) fn start(site: &Site, args: &[&str]) -> Serve {
        Serve::start_on(site, 0, args)
    }

    fn start_on(site: &Site, port: u16, args: &[&str]) -> Serve {
        let mut child = bootc()
            .arg("serve")
            .arg(site.root())
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bootc serve");
        let stdout = lines(child.stdout.take().unwrap());
        let stderr = lines(child.stderr.take().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let port = stdout.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("serving http://127.0.0.1:")?
                    .split('/')
                    .next()?
                    .parse::<u16>()
                    .ok()
            });
            if let Some(port) = port {
                return Serve {
                    child,
                    port,
                    stdout,
                    stderr,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "bootc serve exited ({status}):\n{}\n{}",
                    stdout.lock().unwrap().join("\n"),
                    stderr.lock().unwrap().join("\n")
                );
            }
            assert!(Instant::now() < deadline, "bootc serve did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub(crate) fn get(&self, target: &str) -> Resp {
        self.request("GET", target, &[])
    }

    fn request(&self, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr(), method, target, headers)
    }

    pub(crate) fn log(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until stderr contains `what`.
    fn wait_stderr(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.stderr().contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?} in:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until a log line contains `what`.
    pub(crate) fn wait_log(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(l) = self
                .stdout
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(what))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {what:?} in:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The build state (`/.bootc/status`).
    fn status(&self) -> serde_json::Value {
        let r = self.get("/.bootc/status");
        assert_eq!(r.status, 200);
        serde_json::from_slice(&r.body).expect("status JSON")
    }

    /// Waits for a build after `generation`; returns how long it took.
    fn wait_build(&self, generation: u64) -> Duration {
        let t0 = Instant::now();
        while self.status()["generation"].as_u64().unwrap() <= generation {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no rebuild; log:\n{}\n{}",
                self.log(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
        t0.elapsed()
    }

    fn generation(&self) -> u64 {
        self.status()["generation"].as_u64().unwrap()
    }

    /// VmRSS of the server in KiB.
    fn rss_kib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with the HTML escapes of the page's text undone.
    fn html_text(&self) -> String {
        self.text()
            .replace("&#x2f;", "/")
            .replace("&quot;", "\"")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn send(s: &mut TcpStream, method: &str, target: &str, headers: &[(&str, &str)], close: bool) {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if close {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
}

/// Reads one response; the body by Content-Length (none for HEAD, 304).
fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).expect("status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').expect("header");
        headers.push((k.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    if head_only || status == 304 {
        return resp;
    }
    match resp.header("Content-Length") {
        Some(n) => {
            let mut body = vec![0; n.parse().unwrap()];
            r.read_exact(&mut body).unwrap();
            resp.body = body;
        }
        None => {
            r.read_to_end(&mut resp.body).unwrap();
        }
    }
    resp
}

fn request(addr: SocketAddr, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = connect(addr);
    send(&mut s, method, target, headers, true);
    let mut r = BufReader::new(s);
    read_response(&mut r, method == "HEAD")
}

/// GETs `targets` one after the other on one keep-alive connection.
fn keep_alive(addr: SocketAddr, targets: &[&str]) -> Vec<Resp> {
    let s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    targets
        .iter()
        .map(|t| {
            send(&mut w, "GET", t, &[], false);
            read_response(&mut r, false)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Sites
// ---------------------------------------------------------------------------

/// The `basic` fixture; its kernel replaced by `kernel_size` bytes of a
/// pattern when given (a large image to stream).
fn site(kernel_size: Option<usize>) -> Site {
    let s = Site::fixture("basic");
    if let Some(n) = kernel_size {
        let data = bzimage(&(0..n).map(|i| (i * 7 + i / 4096) as u8).collect::<Vec<_>>());
        fs::write(s.path("artifacts/vmlinuz"), data).unwrap();
    }
    s
}

/// The manifest's files under http/: path -> (size, blake3).
fn manifest(s: &Serve) -> BTreeMap<String, (u64, String)> {
    let m: serde_json::Value = serde_json::from_slice(&s.get("/manifest.json").body).unwrap();
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let p = f["path"].as_str()?.strip_prefix("http/")?;
            Some((
                p.to_string(),
                (f["size"].as_u64()?, f["blake3"].as_str()?.to_string()),
            ))
        })
        .collect()
}

fn kernel_path(s: &Serve) -> String {
    manifest(s)
        .keys()
        .find(|p| p.ends_with("/vmlinuz"))
        .expect("the kernel in the manifest")
        .clone()
}

fn files(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            files(&e.path(), base, out);
        } else {
            let rel = e
                .path()
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(rel, fs::read(e.path()).unwrap());
        }
    }
}

// ---------------------------------------------------------------------------
// What is served
// ---------------------------------------------------------------------------

#[test]
fn serves_exactly_what_build_writes_and_never_public() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    assert!(
        !s.path("public").exists(),
        "serve must not write SITE/public"
    );
    // serve builds with its own address as base-url (tests/it/preview.rs):
    // the same build as `bootc build` of the site with that base-url.
    let same = site(None);
    same.edit(
        "bootc.toml",
        "http://10.77.0.1:8080/boot/",
        &format!("http://127.0.0.1:{}/", serve.port()),
    );
    let r = same.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut built = BTreeMap::new();
    files(
        &same.path("public/http"),
        &same.path("public/http"),
        &mut built,
    );
    assert!(built.len() > 5, "{:?}", built.keys());
    for (path, bytes) in &built {
        let got = serve.get(&format!("/{path}"));
        assert_eq!(got.status, 200, "/{path}");
        assert_eq!(&got.body, bytes, "/{path} differs from the built tree");
    }
    let man = manifest(&serve);
    assert_eq!(
        man.keys().collect::<Vec<_>>(),
        built
            .keys()
            .filter(|p| *p != "manifest.json")
            .collect::<Vec<_>>()
    );
    // report/, plan.json, tftp/ are not under http/: not served
    for p in ["/plan.json", "/report/index.html", "/http/../plan.json"] {
        assert!(serve.get(p).status >= 400, "{p}");
    }
    assert_eq!(serve.get("/nope.ipxe").status, 404);
}

#[test]
fn get_head_and_other_methods() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let get = serve.get("/boot.ipxe");
    let head = serve.request("HEAD", "/boot.ipxe", &[]);
    assert_eq!((get.status, head.status), (200, 200));
    assert!(get.text().starts_with("#!ipxe"));
    assert_eq!(
        head.header("Content-Length"),
        Some(get.body.len().to_string().as_str())
    );
    for h in ["ETag", "Last-Modified", "Content-Type", "Accept-Ranges"] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    // HEAD sends no body: the next response on the connection parses
    let s2 = connect(serve.addr());
    let mut w = s2.try_clone().unwrap();
    let mut r = BufReader::new(s2);
    send(&mut w, "HEAD", "/boot.ipxe", &[], false);
    assert_eq!(read_response(&mut r, true).status, 200);
    send(&mut w, "GET", "/fallback.ipxe", &[], false);
    let next = read_response(&mut r, false);
    assert_eq!(next.status, 200);
    assert!(next.text().starts_with("#!ipxe"));

    for m in ["POST", "PUT", "DELETE"] {
        let r = serve.request(m, "/boot.ipxe", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn content_types_and_caching() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let kernel = kernel_path(&serve);
    for (path, ty, cache) in [
        ("/boot.ipxe", "text/plain; charset=utf-8", "no-cache"),
        (
            "/machines/52-54-00-aa-bb-01.ipxe",
            "text/plain; charset=utf-8",
            "no-cache",
        ),
        (
            "/machines/node01/user-data",
            "text/plain; charset=utf-8",
            "no-cache",
        ),
        ("/manifest.json", "application/json", "no-cache"),
        (
            &format!("/{kernel}"),
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        ),
    ] {
        let r = serve.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some(ty), "{path}");
        assert_eq!(r.header("Cache-Control"), Some(cache), "{path}");
    }
    let page = serve.get("/");
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    // the report links to ../http/…, which from / is /http/…
    assert!(page.html_text().contains("href=\"../http/machines/"));
    let r = serve.get("/http/machines/node01/user-data");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("Location"), Some("/machines/node01/user-data"));
}

#[test]
fn percent_decoding_and_mac_aliases() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let want = serve.get("/machines/52-54-00-aa-bb-01.ipxe");
    assert_eq!(want.status, 200);
    // what iPXE asks when a script uses ${net0/mac}
    let r = serve.get("/machines/52%3A54%3A00%3Aaa%3Abb%3A01.ipxe");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, want.body);
    assert_eq!(r.header("ETag"), want.header("ETag"));
    let line = serve.wait_log("GET machines/52:54:00:aa:bb:01.ipxe");
    assert!(
        line.ends_with(
            "node01 (52:54:00:aa:bb:01) GET machines/52:54:00:aa:bb:01.ipxe -> machines/52-54-00-aa-bb-01.ipxe 200 617 B"
        ) || line.contains(
            "node01 (52:54:00:aa:bb:01) GET machines/52:54:00:aa:bb:01.ipxe -> machines/52-54-00-aa-bb-01.ipxe 200"
        ),
        "{line}"
    );
    // other encodings of the same name
    for t in [
        "/machines/52%3a54%3a00%3aAA%3aBB%3a01.ipxe",
        "/machines/52-54-00-AA-BB-01.ipxe",
        "/machines/%35%32-54-00-aa-bb-01.ipxe",
        "/%6Dachines/52-54-00-aa-bb-01.ipxe",
    ] {
        assert_eq!(serve.get(t).body, want.body, "{t}");
    }
    // a per-machine file with an encoded space in a query is still the file
    assert_eq!(serve.get("/machines/node01/user-data?x=a%20b").status, 200);
    // an unknown MAC: 404, and the log names it
    assert_eq!(
        serve
            .get("/machines/52%3A54%3A00%3A12%3A34%3A56.ipxe")
            .status,
        404
    );
    serve.wait_log("unknown (52:54:00:12:34:56) GET machines/52:54:00:12:34:56.ipxe");
}

#[test]
fn single_range_requests() {
    let s = site(Some(1 << 20));
    let serve = Serve::start(&s, &[]);
    let kernel = format!("/{}", kernel_path(&serve));
    let full = serve.get(&kernel).body;
    assert_eq!(full.len(), bzimage(&[0; 1 << 20]).len());
    let size = full.len();
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-99", 0, 100),
        ("bytes=1000-", 1000, size),
        ("bytes=-500", size - 500, size),
        ("bytes=1048000-2000000", 1048000, size),
    ];
    for (range, start, end) in cases {
        let r = serve.request("GET", &kernel, &[("Range", range)]);
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes {start}-{}/{size}", end - 1).as_str()),
            "{range}"
        );
        assert_eq!(r.body, &full[start..end], "{range}");
    }
    // the same on a small file kept in memory
    let script = serve.get("/boot.ipxe").body;
    let r = serve.request("GET", "/boot.ipxe", &[("Range", "bytes=2-5")]);
    assert_eq!((r.status, &r.body[..]), (206, &script[2..6]));
    // unsatisfiable
    for range in [format!("bytes={size}-"), "bytes=-0".to_string()] {
        let r = serve.request("GET", &kernel, &[("Range", &range)]);
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes */{size}").as_str())
        );
    }
    // several ranges, or nonsense: the whole file
    for range in ["bytes=0-1,5-6", "bytes=x-y", "lines=1-2"] {
        let r = serve.request("GET", &kernel, &[("Range", range)]);
        assert_eq!((r.status, r.body.len()), (200, size), "{range}");
    }
    // If-Range: a stale validator gets the whole file
    let etag = serve.get("/boot.ipxe").header("ETag").unwrap().to_string();
    let r = serve.request(
        "GET",
        "/boot.ipxe",
        &[("Range", "bytes=0-1"), ("If-Range", &etag)],
    );
    assert_eq!(r.status, 206);
    let r = serve.request(
        "GET",
        "/boot.ipxe",
        &[("Range", "bytes=0-1"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(r.status, 200);
}

#[test]
fn conditional_requests_with_blake3_etags() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let man = manifest(&serve);
    for (path, (size, blake3)) in &man {
        let r = serve.request("HEAD", &format!("/{path}"), &[]);
        assert_eq!(
            r.header("ETag"),
            Some(format!("\"{blake3}\"").as_str()),
            "{path}"
        );
        assert_eq!(r.header("Content-Length"), Some(size.to_string().as_str()));
    }
    let r = serve.get("/boot.ipxe");
    let etag = r.header("ETag").unwrap().to_string();
    let modified = r.header("Last-Modified").unwrap().to_string();
    let cond = |h: &[(&str, &str)]| serve.request("GET", "/boot.ipxe", h);

    let r = cond(&[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert_eq!(
        cond(&[("If-None-Match", &format!("\"x\", {etag}"))]).status,
        304
    );
    assert_eq!(cond(&[("If-None-Match", "*")]).status, 304);
    assert_eq!(cond(&[("If-None-Match", "\"other\"")]).status, 200);
    assert_eq!(cond(&[("If-Modified-Since", &modified)]).status, 304);
    assert_eq!(
        cond(&[("If-Modified-Since", "Thu, 01 Jan 2004 00:00:00 GMT")]).status,
        200
    );
    assert_eq!(
        cond(&[
            ("If-None-Match", "\"other\""),
            ("If-Modified-Since", &modified)
        ])
        .status,
        200,
        "If-None-Match takes precedence"
    );
    assert_eq!(cond(&[("If-Match", "\"other\"")]).status, 412);
    assert_eq!(cond(&[("If-Match", &etag)]).status, 200);
    let r = serve.request("HEAD", "/boot.ipxe", &[("If-None-Match", &etag)]);
    assert_eq!(r.status, 304);
}

#[test]
fn traversal_attempts_are_all_refused() {
    let s = site(None);
    s.write("secret.txt", "SITE-SECRET\n");
    let serve = Serve::start(&s, &[]);
    fs::write(s.path(".bootc-serve/secret.txt"), "WORK-SECRET\n").unwrap();
    // a symlink planted in the served tree, leading out of it
    let kernel = kernel_path(&serve);
    let tree = s.path(".bootc-serve/tree/http");
    let planted = tree.join(&kernel);
    fs::remove_file(&planted).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &planted).unwrap();
    let img_dir = planted.parent().unwrap().to_path_buf();
    let attempts = [
        "/../etc/passwd".to_string(),
        "/../../../../../../etc/passwd".into(),
        "/machines/../../secret.txt".into(),
        "/%2e%2e/secret.txt".into(),
        "/%2E%2E/%2E%2E/etc/passwd".into(),
        "/.%2e/.%2e/etc/passwd".into(),
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd".into(),
        "/..%2F..%2Fsecret.txt".into(),
        "/..%5c..%5csecret.txt".into(),
        "/%252e%252e/secret.txt".into(),
        "/..;/secret.txt".into(),
        "//etc/passwd".into(),
        "/%2Fetc%2Fpasswd".into(),
        "/etc/passwd".into(),
        "/secret.txt".into(),
        "/.bootc-serve/secret.txt".into(),
        "/../.bootc-serve/secret.txt".into(),
        "/../tree/plan.json".into(),
        "/boot.ipxe%00.png".into(),
        "/boot.ipxe%00".into(),
        "/%00/etc/passwd".into(),
        "/./boot.ipxe/../../secret.txt".into(),
        "http://127.0.0.1/../secret.txt".into(),
        "/file:///etc/passwd".into(),
        format!("/{kernel}"),
        format!("/{kernel}/../../../../secret.txt"),
        format!(
            "/{}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
            img_dir.strip_prefix(&tree).unwrap().display()
        ),
    ];
    for a in &attempts {
        let r = serve.get(a);
        let body = r.text();
        assert!(
            r.status == 400 || r.status == 404,
            "{a}: {} {body}",
            r.status
        );
        for leak in ["root:", "SITE-SECRET", "WORK-SECRET", "\"machines\""] {
            assert!(!body.contains(leak), "{a} leaked {leak}: {body}");
        }
    }
    // a raw request line with a NUL and one with spaces
    for raw in [
        "GET /boot.ipxe\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes(),
        b"GET /../../etc/passwd HTTP/1.0\r\n\r\n",
    ] {
        let mut c = connect(serve.addr());
        c.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(!out.contains("root:"), "{out}");
        assert!(!out.starts_with("HTTP/1.1 200"), "{out}");
    }
    // still serving
    assert_eq!(serve.get("/boot.ipxe").status, 200);
}

#[test]
fn only_the_configured_address_is_bound() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    assert_eq!(serve.get("/boot.ipxe").status, 200);
    for other in [
        SocketAddr::from(([127, 0, 0, 2], serve.port)),
        SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], serve.port)),
    ] {
        assert!(
            TcpStream::connect_timeout(&other, Duration::from_secs(2)).is_err(),
            "{other} accepted a connection"
        );
    }
    // the listening sockets of the process: exactly 127.0.0.1:PORT
    let inodes: Vec<String> = fs::read_dir(format!("/proc/{}/fd", serve.child.id()))
        .unwrap()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
        })
        .collect();
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(table)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"0A") && inodes.iter().any(|i| Some(&i.as_str()) == f.get(9)) {
                listening.push(f[1].to_string());
            }
        }
    }
    assert_eq!(
        listening,
        vec![format!("0100007F:{:04X}", serve.port)],
        "listening sockets"
    );
}

#[test]
fn a_second_server_on_the_same_site_is_refused() {
    let s = site(None);
    let _serve = Serve::start(&s, &[]);
    let out = bootc()
        .arg("serve")
        .arg(s.root())
        .args(["--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("another `bootc serve`"));
    let out = bootc()
        .args(["serve", "/nonexistent-site"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bootc()
        .arg("serve")
        .arg(s.root())
        .args(["--bind", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------------------
// The log
// ---------------------------------------------------------------------------

#[test]
fn the_log_names_the_machine_behind_each_request() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let kernel = kernel_path(&serve);
    // one client's whole fetch chain on one connection, as iPXE does; the
    // connection stays open (once closed, the loopback may hand its port to
    // the next connection at once, which would then pass for the same client)
    let conn = connect(serve.addr());
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    for t in [
        "/boot.ipxe",
        "/machines/52-54-00-aa-bb-12.ipxe",
        &format!("/{kernel}"),
        "/machines/node02/user-data",
    ] {
        send(&mut w, "GET", t, &[], false);
        assert_eq!(read_response(&mut r, false).status, 200, "{t}");
    }
    serve.wait_log(&format!(
        "node02 (52:54:00:aa:bb:12) GET {kernel} 200 1.0 KiB"
    ));
    serve.wait_log("node02 (52:54:00:aa:bb:12) GET machines/52-54-00-aa-bb-12.ipxe 200 ");
    serve.wait_log("node02 (52:54:00:aa:bb:12) GET machines/node02/user-data 200 ");
    let first = serve.wait_log("GET boot.ipxe 200");
    assert!(
        first.contains("127.0.0.1:"),
        "before its script the client is unknown: {first}"
    );
    // another connection from 127.0.0.1 is another VM: not node02
    let _ = serve.get(&format!("/{kernel}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = serve.log();
        let fetches: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("GET {kernel} ")))
            .collect();
        if fetches.len() == 2 {
            assert!(fetches[0].contains("node02"), "{log}");
            assert!(!fetches[1].contains("node02"), "{log}");
            assert!(fetches[1].contains(" 127.0.0.1:"), "{log}");
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
        thread::sleep(Duration::from_millis(20));
    }
    // a per-machine file names its machine even on a new connection
    let _ = serve.get("/machines/node01/user-data");
    serve.wait_log("node01 GET machines/node01/user-data 200");
    // the overview lists the requests by machine
    let page = serve.get("/").text();
    assert!(page.contains("node02 (52:54:00:aa:bb:12)"), "{page}");
}

// ---------------------------------------------------------------------------
// Rebuilds
// ---------------------------------------------------------------------------

/// The `basic` fixture's first machine's script: its role's tier is gold.
const GOLD_SCRIPT: &str = "/machines/52-54-00-aa-bb-01.ipxe";

/// A server on `s`, the `basic` fixture (`extra`: its switches), and
/// [`GOLD_SCRIPT`] as it first serves it.
fn serving_gold(s: &Site, extra: &[&str]) -> (Serve, String) {
    let serve = Serve::start(s, extra);
    let before = serve.get(GOLD_SCRIPT).text();
    assert!(before.contains("worker.tier=gold"), "{before}");
    (serve, before)
}

/// Edits the gold machines' tier to platinum in a site whose build then
/// fails: the last good [`GOLD_SCRIPT`] (`before`) stays served, and the
/// error shown names `why`.
fn platinum_fails(s: &Site, serve: &Serve, before: &str, why: &str) {
    let g = serve.generation();
    s.edit("roles/base.toml", "tier = \"gold\"", "tier = \"platinum\"");
    serve.wait_build(g);
    assert_eq!(
        serve.get(GOLD_SCRIPT).text(),
        before,
        "the last good build is served"
    );
    let status = serve.status();
    let error = status["error"]["problems"][0]["message"].as_str().unwrap();
    assert!(error.contains(why), "{status:#}");
    serve.wait_log("build failed (1 error): still serving the build of");
}

fn edit_break_fix(extra: &[&str]) {
    let s = site(None);
    let (serve, _) = serving_gold(&s, extra);
    let script = GOLD_SCRIPT;

    // an edit: the new content appears
    let g = serve.generation();
    let t0 = Instant::now();
    s.edit("roles/base.toml", "tier = \"gold\"", "tier = \"platinum\"");
    serve.wait_build(g);
    let after = serve.get(script).text();
    let took = t0.elapsed();
    assert!(after.contains("worker.tier=platinum"), "{after}");
    assert!(took < Duration::from_secs(5), "rebuilt after {took:?}");
    eprintln!("new content served {took:?} after the edit");
    assert!(serve.status()["error"].is_null());

    // a broken site: the last good tree stays, the error shows
    let g = serve.generation();
    s.append(
        "machines/rack1.toml",
        "\n[[machine]]\nname = \"node04\"\nmac = \"52:54:00:aa:bb:01\"\n",
    );
    serve.wait_build(g);
    assert_eq!(
        serve.get(script).text(),
        after,
        "the last good tree is served"
    );
    let status = serve.status();
    let problems = status["error"]["problems"].as_array().unwrap();
    let dup = problems
        .iter()
        .find(|p| p["message"].as_str().unwrap().contains("used twice"))
        .unwrap_or_else(|| panic!("{status:#}"));
    let at = dup["at"].as_str().unwrap();
    assert!(at.starts_with("machines/rack1.toml:"), "{at}");
    let page = serve.get("/").html_text();
    assert!(
        page.contains("id=\"bootc-build-error\""),
        "no error on the page"
    );
    assert!(page.contains(at), "the page lacks {at}");
    assert!(page.contains("is used twice"));
    serve.wait_log("build failed (1 error): still serving the build of");
    serve.wait_stderr("--> machines/rack1.toml:");

    // fixed: the error goes away
    let g = serve.generation();
    s.edit(
        "machines/rack1.toml",
        "name = \"node04\"\nmac = \"52:54:00:aa:bb:01\"",
        "name = \"node04\"\nmac = \"52:54:00:aa:bb:04\"",
    );
    serve.wait_build(g);
    while !serve.status()["error"].is_null() {
        serve.wait_build(serve.generation());
    }
    assert_eq!(serve.get("/machines/52-54-00-aa-bb-04.ipxe").status, 200);
    assert!(!serve.get("/").text().contains("id=\"bootc-build-error\""));
}

#[test]
fn edit_break_and_fix_while_serving() {
    edit_break_fix(&[]);
}

#[test]
fn edit_break_and_fix_while_serving_by_polling() {
    edit_break_fix(&["--poll"]);
}

/// A good build is served as soon as it is compiled, while its tree is
/// written; when the write fails (here: a file that is not bootc's in the
/// served tree), the build served before comes back, with the error.
#[test]
fn a_build_whose_tree_cannot_be_written_is_not_served() {
    let s = site(None);
    let (serve, before) = serving_gold(&s, &[]);
    let script = GOLD_SCRIPT;
    let foreign = s.path(".bootc-serve/tree/notes.txt");
    fs::write(&foreign, "an operator's notes\n").unwrap();

    platinum_fails(&s, &serve, &before, "notes.txt");

    // Once the tree can be written, the edit is served.
    fs::remove_file(&foreign).unwrap();
    let g = serve.generation();
    s.append("machines/rack1.toml", "\n");
    serve.wait_build(g);
    assert!(serve.status()["error"].is_null());
    let after = serve.get(script).text();
    assert!(after.contains("worker.tier=platinum"), "{after}");
}

/// A build's machines are served before its summaries are rendered; when
/// one of those fails (here: the site's report template), the build
/// served before comes back, with the error.
#[test]
fn a_build_whose_summaries_fail_is_not_served() {
    let s = site(None);
    let (serve, before) = serving_gold(&s, &[]);
    let script = GOLD_SCRIPT;
    let manifest = serve.get("/manifest.json").text();

    // The report breaks first (nothing else changed), then a machine's
    // role changes: that build's machines compile, its report does not.
    let g = serve.generation();
    s.write(
        "templates/report.html.j2",
        "<html>{% for x in 5 %}{% endfor %}</html>\n",
    );
    serve.wait_build(g);
    serve.wait_log("build failed (1 error): still serving the build of");
    platinum_fails(&s, &serve, &before, "number is not iterable");
    assert_eq!(serve.get("/manifest.json").text(), manifest);

    // Fixed: the edit is served, with its own manifest.
    let g = serve.generation();
    fs::remove_file(s.path("templates/report.html.j2")).unwrap();
    serve.wait_build(g);
    assert!(serve.status()["error"].is_null());
    let after = serve.get(script).text();
    assert!(after.contains("worker.tier=platinum"), "{after}");
    assert_ne!(serve.get("/manifest.json").text(), manifest);
}

#[test]
fn a_site_broken_at_start_is_served_once_fixed() {
    let s = site(None);
    s.append("roles/worker.toml", "\nkernel-args = [\n");
    let serve = Serve::start(&s, &[]);
    serve.wait_log("nothing to serve until it is fixed");
    let r = serve.get("/boot.ipxe");
    assert_eq!(r.status, 503, "{}", r.text());
    let page = serve.get("/");
    assert_eq!(page.status, 200);
    let page = page.html_text();
    assert!(page.contains("id=\"bootc-build-error\""), "{page}");
    assert!(page.contains("roles/worker.toml:"), "{page}");
    assert!(page.contains("No good build yet"), "{page}");
    let g = serve.generation();
    s.edit("roles/worker.toml", "\nkernel-args = [\n", "\n");
    serve.wait_build(g);
    assert_eq!(serve.get("/boot.ipxe").status, 200);
    assert!(serve.status()["error"].is_null());
    // the warnings of a good build are printed once, not after every save
    serve.wait_stderr("no iPXE binaries");
    let n = serve.stderr().matches("no iPXE binaries").count();
    let g = serve.generation();
    s.append("machines/rack1.toml", "\n");
    serve.wait_build(g);
    thread::sleep(Duration::from_millis(200));
    assert_eq!(
        serve.stderr().matches("no iPXE binaries").count(),
        n,
        "{}",
        serve.stderr()
    );
}

#[test]
fn editor_temp_files_and_the_output_do_not_rebuild() {
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    // settle: a build may follow the start
    thread::sleep(Duration::from_millis(500));
    let g = serve.generation();
    s.write("machines/.rack1.toml.swp", "x");
    s.write("machines/rack1.toml~", "x");
    s.write("machines/4913", "");
    s.write(".git/index", "x");
    s.write("public/http/boot.ipxe", "x");
    let _ = serve.get("/boot.ipxe");
    thread::sleep(Duration::from_millis(1500));
    assert_eq!(serve.generation(), g, "{}", serve.log());
}

#[test]
fn a_download_in_flight_survives_a_rebuild() {
    let s = site(Some(32 << 20));
    let serve = Serve::start(&s, &[]);
    let kernel = kernel_path(&serve);
    let mut c = connect(serve.addr());
    send(&mut c, "GET", &format!("/{kernel}"), &[], true);
    let mut first = vec![0; 64 << 10];
    c.read_exact(&mut first).unwrap();
    // the image changes: a new tree, the old image is removed from disk
    let g = serve.generation();
    let mut data = fs::read(s.path("artifacts/vmlinuz")).unwrap();
    data[0] ^= 1;
    fs::write(s.path("artifacts/vmlinuz"), &data).unwrap();
    // A build that catches the file half-written fails ("the file changed
    // while bootc was reading it") and the next one takes the new image.
    let mut g = g;
    let t0 = Instant::now();
    while kernel_path(&serve) == kernel {
        assert!(t0.elapsed() < Duration::from_secs(20), "no new image");
        serve.wait_build(g);
        g = serve.generation();
    }
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    let body_start = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut body = first[body_start..].to_vec();
    body.extend_from_slice(&rest);
    data[0] ^= 1;
    assert_eq!(body.len(), data.len());
    assert!(body == data, "the old image, complete");
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// wrk for `secs` against `url`: (requests, requests per second); panics on
/// any error or non-2xx answer.
fn wrk(url: &str, conns: u32, secs: u32) -> (u64, f64) {
    let out = Command::new(find_program("wrk").unwrap())
        .args([
            "-t2",
            &format!("-c{conns}"),
            &format!("-d{secs}s"),
            "--timeout",
            "5s",
            url,
        ])
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
    let requests = text
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    (requests, rate)
}

#[test]
fn load_run_without_errors() {
    if !need("wrk") {
        return;
    }
    let s = site(Some(4 << 20));
    let serve = Serve::start(&s, &[]);
    let kernel = kernel_path(&serve);
    let base = format!("http://127.0.0.1:{}", serve.port);
    let (n, rate) = wrk(&format!("{base}/boot.ipxe"), 32, 3);
    eprintln!("boot.ipxe: {n} requests, {rate:.0}/s");
    assert!(n > 1000, "{n} requests");
    let (n, rate) = wrk(&format!("{base}/{kernel}"), 8, 2);
    eprintln!("4 MiB image: {n} requests, {rate:.0}/s");
    assert!(n > 10, "{n} requests");
    assert_eq!(serve.get("/boot.ipxe").status, 200);
}

#[test]
fn slow_clients_do_not_block_the_others_and_memory_stays_flat() {
    let s = site(Some(64 << 20));
    let serve = Serve::start(&s, &[]);
    let kernel = kernel_path(&serve);
    let rss_before = serve.rss_kib();
    // more slow clients than the server keeps workers: each asks for the
    // large image, reads 64 KiB and stops reading
    let mut slow = Vec::new();
    for _ in 0..12 {
        let mut c = connect(serve.addr());
        send(&mut c, "GET", &format!("/{kernel}"), &[], false);
        let mut buf = vec![0; 64 << 10];
        c.read_exact(&mut buf).unwrap();
        slow.push(c);
    }
    // a client that sends half a request line and nothing more
    let mut half = connect(serve.addr());
    half.write_all(b"GET /boot.ip").unwrap();
    thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    for _ in 0..100 {
        let r = serve.get("/boot.ipxe");
        assert_eq!(r.status, 200);
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(10), "100 requests took {took:?}");
    if find_program("wrk").is_some() {
        let (n, _) = wrk(&format!("http://127.0.0.1:{}/boot.ipxe", serve.port), 8, 2);
        assert!(n > 500, "{n}");
    }
    let rss = serve.rss_kib();
    eprintln!("RSS {rss_before} KiB -> {rss} KiB with 12 downloads of 64 MiB in flight");
    assert!(
        rss < rss_before + 48 * 1024,
        "RSS grew from {rss_before} KiB to {rss} KiB: images are not streamed"
    );
    // the slow clients still get the whole image
    let c = slow.pop().unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut body: u64 = 64 << 10; // read already, with the head
    let mut r = BufReader::new(c);
    let mut buf = vec![0; 1 << 20];
    while body < 64 << 20 {
        let n = r.read(&mut buf).unwrap();
        assert!(n > 0, "the download ended early at {body}");
        body += n as u64;
    }
}

// ---------------------------------------------------------------------------
// The overview in a real browser
// ---------------------------------------------------------------------------

pub(crate) fn chromium_dom(url: &str) -> Option<String> {
    let Some(chromium) = find_program("chromium").or_else(|| find_program("chromium-browser"))
    else {
        unavailable("chromium not installed", "apt-get install chromium");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=3000", "--dump-dom", url])
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        dom.contains("</html>"),
        "chromium printed no DOM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(dom)
}

#[test]
fn overview_page_in_a_real_browser() {
    if !need("chromium") {
        return;
    }
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let _ = keep_alive(
        serve.addr(),
        &["/boot.ipxe", "/machines/52-54-00-aa-bb-01.ipxe"],
    );
    serve.wait_log("node01 (52:54:00:aa:bb:01) GET machines/52-54-00-aa-bb-01.ipxe");
    let url = format!("http://127.0.0.1:{}/", serve.port);
    let Some(dom) = chromium_dom(&url) else {
        return;
    };
    for m in ["m-node01", "m-node02", "m-node03"] {
        assert!(dom.contains(&format!("id=\"{m}\"")), "{m} missing:\n{dom}");
    }
    assert!(dom.contains("id=\"bootc-live\""), "{dom}");
    assert!(dom.contains("node01 (52:54:00:aa:bb:01)"), "{dom}");
    assert!(!dom.contains("bootc-build-error"));

    // inject an error: the page shows it with its file:line
    let g = serve.generation();
    s.append("roles/worker.toml", "\nimage = [\n");
    serve.wait_build(g);
    let dom = chromium_dom(&url).unwrap();
    assert!(dom.contains("id=\"bootc-build-error\""), "{dom}");
    let status = serve.status();
    let at = status["error"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["at"].as_str())
        .find(|a| a.starts_with("roles/worker.toml:"))
        .unwrap_or_else(|| panic!("{status:#}"))
        .to_string();
    assert!(at.starts_with("roles/worker.toml:"), "{at}");
    assert!(dom.contains(&at), "{at} not on the page:\n{dom}");
    // the last good build's fleet is still listed
    assert!(dom.contains("id=\"m-node01\""));
}

// ---------------------------------------------------------------------------
// A real iPXE client
// ---------------------------------------------------------------------------

#[test]
fn qemu_ipxe_boots_from_serve_with_encoded_mac_requests() {
    if !(need("qemu-system-x86_64")
        && (Path::new(crate::boot_support::IPXE_VIRTIO_ROM).is_file()
            || unavailable("ipxe-qemu not installed", "apt-get install ipxe-qemu"))
        && need_busybox_static())
    {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let s = Site::fixture("basic");
    fs::copy(&kernel, s.path("artifacts/vmlinuz")).unwrap();
    busybox_initramfs(&s.path("artifacts"));
    // A custom entry script that names the per-MAC script with ${net0/mac}:
    // iPXE then asks for machines/52%3A54%3A….ipxe. The URL is absolute
    // (base-url): in a relative one iPXE would take `machines/52` for a
    // URI scheme.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = s.read("bootc.toml");
    let base = toml
        .lines()
        .find(|l| l.starts_with("base-url"))
        .expect("the fixture sets base-url")
        .to_string();
    s.edit(
        "bootc.toml",
        &base,
        &format!("base-url = \"http://10.0.2.2:{port}/\""),
    );
    s.write(
        "templates/boot.ipxe.j2",
        "#!ipxe\n# {{ site.name }}: per-MAC scripts by ${net0/mac}\nchain --autofree {{ site.base_url }}machines/${net0/mac}.ipxe || exit 1\n",
    );
    let serve = Serve::start_on(&s, port, &[]);
    assert_eq!(serve.port, port);
    assert!(
        serve.log().contains("qemu-system-x86_64"),
        "the start banner shows QEMU's command"
    );
    let result = qemu_boot(
        serve.port,
        &["52:54:00:aa:bb:01"],
        Firmware::Bios,
        default_boot_timeout(),
    );
    let cmdline = result.cmdline().to_string();
    for want in ["console=ttyS0", "bootc.role=worker", "worker.tier=gold"] {
        assert!(
            cmdline.split_whitespace().any(|a| a == want),
            "{want} missing from {cmdline:?}"
        );
    }
    let reqs: serde_json::Value =
        serde_json::from_slice(&serve.get("/.bootc/requests").body).unwrap();
    let reqs = reqs.as_array().unwrap();
    let script = reqs
        .iter()
        .find(|r| r["served"] == "machines/52-54-00-aa-bb-01.ipxe")
        .unwrap_or_else(|| panic!("{reqs:#?}\n{}", serve.log()));
    let raw = script["raw"].as_str().unwrap();
    assert!(
        raw.to_ascii_uppercase()
            .contains("52%3A54%3A00%3AAA%3ABB%3A01"),
        "iPXE asked for {raw}"
    );
    assert_eq!(script["status"], 200);
    // the whole fetch chain, named
    serve.wait_log("node01 (52:54:00:aa:bb:01) GET machines/52:54:00:aa:bb:01.ipxe -> machines/52-54-00-aa-bb-01.ipxe 200");
    let log = serve.log();
    eprintln!("{log}");
    for file in ["/vmlinuz 200", "/initrd.img 200"] {
        assert!(
            log.lines()
                .any(|l| l.contains("node01 (52:54:00:aa:bb:01) GET images/") && l.contains(file)),
            "no named request for {file}:\n{log}"
        );
    }
}

/// A template swapped for a symlink to a secret outside the site while
/// serving: the rebuild fails naming the file, the previous tree is still
/// served, and the secret is in no answer and no log line.
#[test]
fn a_symlink_out_of_the_site_while_serving_publishes_nothing() {
    const MARK: &str = "SERVE-SECRET-31d7";
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, format!("{MARK}\n")).unwrap();
    let s = site(None);
    let serve = Serve::start(&s, &[]);
    let before = serve.get("/machines/node01/user-data");
    assert_eq!(before.status, 200);
    let g = serve.generation();
    let tpl = s.path("templates/cloud-init.yaml.j2");
    fs::remove_file(&tpl).unwrap();
    std::os::unix::fs::symlink(&secret, &tpl).unwrap();
    serve.wait_stderr("templates/cloud-init.yaml.j2 leads out of the site");
    serve.wait_build(g);
    let after = serve.get("/machines/node01/user-data");
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body, "the previous tree is still served");
    let status = serve.request("GET", "/.bootc/status", &[]);
    for text in [
        serve.log(),
        serve.stderr(),
        after.text(),
        status.text(),
        serve.get("/").text(),
    ] {
        assert!(!text.contains(MARK), "the secret leaked: {text}");
    }
}

mod hostile;
mod reuse;
