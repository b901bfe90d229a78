//! The connections of `bootc serve`: an accept loop that survives transient
//! errors, a cap on open connections, a bounded pool of worker threads (one
//! per connection being served), request heads read under a size cap and a
//! deadline, and timeouts on every accepted socket.
//!
//! One thread per open connection keeps a slow client (one that stops
//! reading a large download, or sends its request a byte at a time) from
//! holding up any other: it holds its own worker until its socket times
//! out. Connections beyond [`MAX_CONNECTIONS`] are answered 503 at once and
//! closed, so the threads are bounded whatever the clients do.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::http;

/// The most connections open at once, and so the most worker threads.
pub const MAX_CONNECTIONS: usize = 512;
/// Workers kept while idle.
const MIN_WORKERS: usize = 4;
/// A worker beyond [`MIN_WORKERS`] idle this long ends.
const WORKER_IDLE: Duration = Duration::from_secs(10);
/// The largest request head (request line and header fields), and the most
/// header fields.
pub const HEAD_MAX: usize = 16 * 1024;
const FIELDS_MAX: usize = 100;
/// A request head must arrive whole this long after its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection without a request (new, or kept alive) closes after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A write (of one chunk of a file, or a whole answer in memory) that does
/// not complete this long fails: a client that stopped reading gives its
/// worker back. See [`Timed`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// A request body up to this size is read and dropped; a larger one (or a
/// chunked one) closes the connection after the answer.
const BODY_MAX: u64 = 64 * 1024;

/// One request head.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The request target as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub peer: SocketAddr,
    /// The connection closes after the answer (the client asked, HTTP/1.0
    /// without keep-alive, or a body that was not read).
    pub close: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What serves the requests.
pub trait Handler: Send + Sync + 'static {
    /// Answers `req` on `w` (one `write_all` per chunk); false closes the
    /// connection.
    fn request(&self, req: &Request, w: &mut dyn Write) -> bool;
    /// A request refused before it was parsed, answered `status`; `line`
    /// is its first line, as far as read (lossy UTF-8).
    fn refused(&self, peer: SocketAddr, status: u16, line: &str);
}

/// Serves `listener` on a thread of its own, for good.
pub fn start(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<()> {
    let pool = Arc::new(Pool {
        max: connection_cap(),
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
        handler,
    });
    thread::Builder::new()
        .name("bootc-serve-accept".into())
        .spawn(move || accept_loop(&listener, &pool))?;
    Ok(())
}

/// Raises the soft limit of open files to the hard one (up to 65536) and
/// returns the connection cap it allows: a connection may hold two files
/// (its socket and the file it downloads), and some are kept for the rest.
fn connection_cap() -> usize {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the `rlimit` we own.
    let soft = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            1024
        } else {
            let want = rl.rlim_max.min(65536);
            if rl.rlim_cur < want {
                let new = libc::rlimit {
                    rlim_cur: want,
                    rlim_max: rl.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &new) == 0 {
                    rl.rlim_cur = want;
                }
            }
            rl.rlim_cur as usize
        }
    };
    (soft.saturating_sub(64) / 2).clamp(8, MAX_CONNECTIONS)
}

fn accept_loop(listener: &TcpListener, pool: &Arc<Pool>) {
    let mut warned: Option<Instant> = None;
    loop {
        match listener.accept() {
            Ok((sock, peer)) => {
                if let Err(sock) = pool.admit(sock, peer) {
                    shed(sock);
                }
            }
            Err(e) => {
                // Out of file descriptors or memory: wait for some to be
                // freed (the connection waits in the backlog). Anything else
                // (ECONNABORTED, EPROTO, EPERM, ...) concerns one connection.
                let (pause, quiet) = match e.raw_os_error() {
                    Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                        (Duration::from_millis(100), false)
                    }
                    Some(libc::ECONNABORTED | libc::EINTR) => (Duration::ZERO, true),
                    _ => (Duration::from_millis(10), false),
                };
                if !quiet && warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    warned = Some(Instant::now());
                    say_err!("warning: accepting a connection: {e} (retrying)\n");
                }
                thread::sleep(pause);
            }
        }
    }
}

/// Answers a connection beyond the cap 503 (if its socket takes it at
/// once) and closes it.
fn shed(sock: TcpStream) {
    const BUSY: &str = "too many connections; try again\n";
    let _ = sock.set_nonblocking(true);
    let mut head = http::Head::new(503)
        .header("Content-Type", "text/plain; charset=utf-8")
        .header("Retry-After", "1")
        .length(BUSY.len() as u64);
    head.close = true;
    let mut buf = Vec::new();
    head.write_to(&mut buf, &http::http_date(SystemTime::now()));
    buf.extend_from_slice(BUSY.as_bytes());
    let _ = (&sock).read(&mut [0; 4096]); // what came already: no reset
    let _ = (&sock).write(&buf);
    let _ = sock.shutdown(Shutdown::Write);
}

struct Pool {
    max: usize,
    queue: Mutex<Queue>,
    ready: Condvar,
    handler: Arc<dyn Handler>,
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<(TcpStream, SocketAddr)>,
    /// Connections admitted and not closed yet.
    open: usize,
    workers: usize,
    idle: usize,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a connection for a worker (started if none is free), or hands
    /// it back when [`Pool::max`] are open.
    fn admit(self: &Arc<Self>, sock: TcpStream, peer: SocketAddr) -> Result<(), TcpStream> {
        let mut q = self.lock();
        if q.open >= self.max {
            return Err(sock);
        }
        q.open += 1;
        q.waiting.push_back((sock, peer));
        if q.idle >= q.waiting.len() || q.workers >= self.max {
            self.ready.notify_one();
            return Ok(());
        }
        q.workers += 1;
        drop(q);
        let pool = Arc::clone(self);
        let started = thread::Builder::new()
            .name("bootc-serve".into())
            .spawn(move || pool.work());
        if started.is_err() {
            let mut q = self.lock();
            q.workers -= 1;
            if q.workers == 0 {
                // Nobody to serve it: drop it rather than keep it waiting.
                q.waiting.pop_back();
                q.open -= 1;
            }
        }
        Ok(())
    }

    /// A worker: serves one connection at a time until idle a while.
    fn work(&self) {
        loop {
            let (sock, peer) = {
                let mut q = self.lock();
                loop {
                    if let Some(c) = q.waiting.pop_front() {
                        break c;
                    }
                    q.idle += 1;
                    let (g, wait) = self
                        .ready
                        .wait_timeout(q, WORKER_IDLE)
                        .unwrap_or_else(|e| e.into_inner());
                    q = g;
                    q.idle -= 1;
                    if wait.timed_out() && q.waiting.is_empty() && q.workers > MIN_WORKERS {
                        q.workers -= 1;
                        return;
                    }
                }
            };
            // A panic ends the request, not the worker (or the counts).
            let _ = catch_unwind(AssertUnwindSafe(|| {
                connection(&sock, peer, &*self.handler);
            }));
            drop(sock);
            self.lock().open -= 1;
        }
    }
}

/// Writes to a socket where every `write_all` must complete within
/// [`WRITE_TIMEOUT`]. A timeout per system call is not enough: a client
/// whose receive window stays shut still lets the kernel take a few bytes
/// whenever a call times out, so the calls go on making "progress" for good.
struct Timed<'a>(&'a TcpStream);

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while !buf.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                ));
            }
            self.0.set_write_timeout(Some(left))?;
            match (&*self.0).write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Serves the requests of one connection.
fn connection(sock: &TcpStream, peer: SocketAddr, handler: &dyn Handler) {
    let _ = sock.set_nodelay(true);
    let mut r = BufReader::new(sock);
    loop {
        let head = match read_head(&mut r) {
            Ok(Some(head)) => head,
            Ok(None) | Err(Failed::Closed) => return,
            Err(Failed::TooLarge(partial)) => {
                refuse(
                    sock,
                    peer,
                    handler,
                    431,
                    "the request head is too large",
                    &partial,
                );
                return linger(sock);
            }
        };
        let mut req = match parse(&head, peer) {
            Ok(req) => req,
            Err((status, why)) => {
                refuse(sock, peer, handler, status, why, &head);
                return linger(sock);
            }
        };
        let mut unread = false;
        if req.header("Transfer-Encoding").is_some() {
            req.close = true;
            unread = true;
        } else if let Some(n) = req.header("Content-Length") {
            let Ok(n) = n.parse::<u64>() else {
                refuse(sock, peer, handler, 400, "a bad Content-Length", &head);
                return linger(sock);
            };
            if n > BODY_MAX {
                req.close = true;
                unread = true;
            } else if n > 0 {
                let _ = sock.set_read_timeout(Some(HEAD_TIMEOUT));
                let copied = io::copy(&mut (&mut r).take(n), &mut io::sink());
                if copied.ok() != Some(n) {
                    return;
                }
            }
        }
        if !handler.request(&req, &mut Timed(sock)) || req.close {
            if unread {
                linger(sock);
            }
            return;
        }
    }
}

/// Closes after an answer while the client may still be sending: reading
/// on a little first, so the answer is not lost to a reset.
fn linger(sock: &TcpStream) {
    let _ = sock.shutdown(Shutdown::Write);
    let _ = sock.set_read_timeout(Some(Duration::from_millis(500)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0; 8192];
    let mut left = 1usize << 20;
    while left > 0 && Instant::now() < deadline {
        match (&*sock).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

/// Answers a request refused before it was parsed, and logs it.
fn refuse(
    sock: &TcpStream,
    peer: SocketAddr,
    handler: &dyn Handler,
    status: u16,
    why: &str,
    head: &[u8],
) {
    let text = format!("{}: {why}\n", http::reason(status).to_ascii_lowercase());
    let mut h = http::Head::new(status)
        .header("Content-Type", "text/plain; charset=utf-8")
        .length(text.len() as u64);
    h.close = true;
    let date = http::http_date(SystemTime::now());
    let _ = http::send_bytes(&mut Timed(sock), &h, &date, text.as_bytes());
    let line = head.split(|&b| b == b'\n').next().unwrap_or(b"");
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line = String::from_utf8_lossy(&line[..line.len().min(512)]);
    handler.refused(peer, status, &line);
}

#[derive(Debug)]
enum Failed {
    /// The client closed, went silent or broke off.
    Closed,
    /// Over [`HEAD_MAX`]: what was read.
    TooLarge(Vec<u8>),
}

/// Reads a request head (up to and with its empty line), leaving what
/// follows in `r`. None: the connection closed or stayed idle for
/// [`IDLE_TIMEOUT`] without a request.
fn read_head(r: &mut BufReader<&TcpStream>) -> Result<Option<Vec<u8>>, Failed> {
    let mut head = Vec::new();
    let idle_until = Instant::now() + IDLE_TIMEOUT;
    let mut deadline: Option<Instant> = None;
    loop {
        if r.buffer().is_empty() {
            let until = deadline.unwrap_or(idle_until);
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return match deadline {
                    Some(_) => Err(Failed::Closed),
                    None => Ok(None),
                };
            }
            let _ = r.get_ref().set_read_timeout(Some(left));
        }
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) if deadline.is_none() => return Ok(None),
            Err(_) => return Err(Failed::Closed),
        };
        if buf.is_empty() {
            return match deadline {
                Some(_) => Err(Failed::Closed),
                None => Ok(None),
            };
        }
        deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
        let mut used = 0;
        let mut done = false;
        for &b in buf {
            used += 1;
            if head.is_empty() && (b == b'\r' || b == b'\n') {
                continue; // empty lines before a request are allowed
            }
            head.push(b);
            if head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n") {
                done = true;
                break;
            }
            if head.len() >= HEAD_MAX {
                r.consume(used);
                return Err(Failed::TooLarge(head));
            }
        }
        r.consume(used);
        if done {
            return Ok(Some(head));
        }
    }
}

/// A token character (RFC 9110 section 5.6.2).
fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parses a request head; Err: the status and why.
fn parse(head: &[u8], peer: SocketAddr) -> Result<Request, (u16, &'static str)> {
    let text = std::str::from_utf8(head).map_err(|_| (400, "the request head is not UTF-8"))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or_default();
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err((400, "a malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(tchar) {
        return Err((400, "a malformed method"));
    }
    if target.is_empty() {
        return Err((400, "an empty request target"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err((400, "not HTTP/1.0 or HTTP/1.1")),
    };
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            break;
        }
        if l.starts_with([' ', '\t']) {
            return Err((400, "a folded header line"));
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err((400, "a header line without a colon"));
        };
        if k.is_empty() || !k.bytes().all(tchar) {
            return Err((400, "a malformed header name"));
        }
        if headers.len() == FIELDS_MAX {
            return Err((431, "too many header fields"));
        }
        headers.push((k.to_string(), v.trim_matches([' ', '\t']).to_string()));
    }
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        peer,
        close: false,
    };
    let connection = req.header("Connection").unwrap_or("").to_ascii_lowercase();
    let has = |t: &str| connection.split(',').any(|c| c.trim() == t);
    req.close = has("close") || (http10 && !has("keep-alive"));
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn heads_parse() {
        let r = parse(
            b"GET /boot.ipxe HTTP/1.1\r\nHost: x\r\nRange:  bytes=0-1 \r\n\r\n",
            peer(),
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.target.as_str()),
            ("GET", "/boot.ipxe")
        );
        assert_eq!(r.header("range"), Some("bytes=0-1"));
        assert!(!r.close);
        let r = parse(b"GET / HTTP/1.0\n\n", peer()).unwrap();
        assert!(r.close, "HTTP/1.0 closes by default");
        let r = parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", peer()).unwrap();
        assert!(!r.close);
        let r = parse(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", peer()).unwrap();
        assert!(r.close);
        // raw control characters in the target are the handler's to refuse
        let r = parse(b"GET /a\x1b\rb HTTP/1.1\r\n\r\n", peer()).unwrap();
        assert_eq!(r.target, "/a\x1b\rb");
    }

    #[test]
    fn bad_heads_are_refused() {
        for (head, status) in [
            (&b"GET /a b HTTP/1.1\r\n\r\n"[..], 400),
            (b"GET /\r\n\r\n", 400),
            (b"G(T / HTTP/1.1\r\n\r\n", 400),
            (b"GET / HTTP/2.0\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", 400),
            (b"GET / HTTP/1.1\r\nX Y: 1\r\n\r\n", 400),
            (b"GET /\xff HTTP/1.1\r\n\r\n", 400),
        ] {
            assert_eq!(
                parse(head, peer()).unwrap_err().0,
                status,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=FIELDS_MAX {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many, peer()).unwrap_err().0, 431);
    }
}
