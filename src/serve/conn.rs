//! The connections of `bootc serve`: an accept loop that survives transient
//! errors, a cap on open connections, a bounded pool of worker threads (one
//! per connection being served), request heads read under a size cap and a
//! deadline, and timeouts on every accepted socket.
//!
//! One thread per open connection keeps a slow client (one that stops
//! reading a large download, or sends its request a byte at a time) from
//! holding up any other: it holds its own worker until its socket times
//! out. Connections beyond [`MAX_CONNECTIONS`] are answered 503 at once and
//! closed, so the threads are bounded whatever the clients do; and one
//! address holds at most half of them, so one client cannot take them all.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::head::{self, BODY_MAX, Failed, Request};
use super::http;
use crate::diag::warning_line;

/// The most connections open at once, and so the most worker threads.
pub const MAX_CONNECTIONS: usize = 512;
/// Workers kept while idle.
const MIN_WORKERS: usize = 4;
/// A worker beyond [`MIN_WORKERS`] idle this long ends.
const WORKER_IDLE: Duration = Duration::from_secs(10);
/// A write (of one chunk of a file, or a whole answer in memory) that does
/// not complete this long fails: a client that stopped reading gives its
/// worker back. See [`Timed`].
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
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
    std::mem::forget(start_stoppable(listener, handler)?);
    Ok(())
}

/// A server started by [`start_stoppable`]: dropping it stops the accept
/// loop and lets the workers end once their connections are done.
pub struct Running {
    pool: Arc<Pool>,
    addr: SocketAddr,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.pool.lock().stopped = true;
        self.pool.ready.notify_all();
        // Wakes the accept loop, which sees `stopped` and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

/// Serves `listener` on a thread of its own until the [`Running`] returned
/// is dropped.
pub fn start_stoppable(listener: TcpListener, handler: Arc<dyn Handler>) -> io::Result<Running> {
    let addr = listener.local_addr()?;
    let pool = Arc::new(Pool {
        max: connection_cap(),
        queue: Mutex::new(Queue::default()),
        ready: Condvar::new(),
        handler,
    });
    let p = Arc::clone(&pool);
    thread::Builder::new()
        .name("bootc-serve-accept".into())
        .spawn(move || accept_loop(&listener, &p))?;
    Ok(Running { pool, addr })
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
        let accepted = listener.accept();
        if pool.lock().stopped {
            return;
        }
        match accepted {
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
                    say_err!(
                        "{}",
                        warning_line(&format!("accepting a connection: {e} (retrying)"), false)
                    );
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
    /// The same, by client address.
    by_peer: std::collections::HashMap<std::net::IpAddr, usize>,
    workers: usize,
    idle: usize,
    /// The server was stopped: idle workers end.
    stopped: bool,
}

impl Queue {
    /// A connection of `peer` is gone.
    fn close(&mut self, peer: SocketAddr) {
        self.open -= 1;
        if let Some(n) = self.by_peer.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.by_peer.remove(&peer.ip());
            }
        }
    }
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a connection for a worker (started if none is free), or hands
    /// it back when [`Pool::max`] are open.
    fn admit(self: &Arc<Self>, sock: TcpStream, peer: SocketAddr) -> Result<(), TcpStream> {
        let mut q = self.lock();
        let mine = q.by_peer.get(&peer.ip()).copied().unwrap_or(0);
        if q.open >= self.max || mine >= (self.max / 2).max(1) {
            return Err(sock);
        }
        q.open += 1;
        *q.by_peer.entry(peer.ip()).or_default() += 1;
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
                q.close(peer);
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
                    if q.stopped && q.waiting.is_empty() {
                        q.workers -= 1;
                        return;
                    }
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
            self.lock().close(peer);
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

/// The kernel's send buffer of a connection: what a client that stopped
/// reading can hold of the kernel's memory (it grows to 4 MiB by itself).
const SEND_BUFFER: usize = 256 * 1024;

fn set_send_buffer(sock: &TcpStream, size: usize) {
    let size = size as libc::c_int;
    // SAFETY: setsockopt on a socket we hold, with a c_int that lives across
    // the call and its exact size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(sock),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Serves the requests of one connection.
fn connection(sock: &TcpStream, peer: SocketAddr, handler: &dyn Handler) {
    let _ = sock.set_nodelay(true);
    set_send_buffer(sock, SEND_BUFFER);
    let mut r = BufReader::new(sock);
    loop {
        let bytes = match head::read_head(&mut r) {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(Failed::Closed) => return,
            Err(Failed::TooLarge(partial)) => {
                let (status, why) = if partial.contains(&b'\n') {
                    (431, "the request head is too large")
                } else {
                    (414, "the request line is too long")
                };
                refuse(sock, peer, handler, status, why, &partial);
                return linger(sock);
            }
        };
        let mut req = match head::parse(&bytes, peer) {
            Ok(req) => req,
            Err((status, why)) => {
                refuse(sock, peer, handler, status, why, &bytes);
                return linger(sock);
            }
        };
        let mut unread = false;
        if req.header("Transfer-Encoding").is_some() {
            req.close = true;
            unread = true;
        } else if let Some(n) = req.header("Content-Length") {
            let Ok(n) = n.parse::<u64>() else {
                refuse(sock, peer, handler, 400, "a bad Content-Length", &bytes);
                return linger(sock);
            };
            if n > BODY_MAX {
                req.close = true;
                unread = true;
            } else if n > 0 && !head::discard(&mut r, n) {
                return;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request with its target, and counts them.
    struct Echo(Mutex<Vec<String>>);

    impl Handler for Echo {
        fn request(&self, req: &Request, w: &mut dyn Write) -> bool {
            self.0.lock().unwrap().push(req.target.clone());
            let body = format!("{} {}", req.method, req.target);
            let mut h = http::Head::new(200).length(body.len() as u64);
            h.close = req.close;
            http::send_bytes(w, &h, "d", body.as_bytes()).is_ok()
        }

        fn refused(&self, _: SocketAddr, status: u16, line: &str) {
            self.0.lock().unwrap().push(format!("{status} {line}"));
        }
    }

    fn server() -> (SocketAddr, Arc<Echo>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let echo = Arc::new(Echo(Mutex::new(Vec::new())));
        start(l, Arc::clone(&echo) as Arc<dyn Handler>).unwrap();
        (addr, echo)
    }

    fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn pipelined_requests_and_small_bodies_keep_the_connection() {
        let (addr, echo) = server();
        let out = exchange(
            addr,
            b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 3, "{out}");
        assert!(out.ends_with("GET /c"), "{out}");
        assert_eq!(*echo.0.lock().unwrap(), ["/a", "/b", "/c"]);
    }

    #[test]
    fn bad_heads_are_answered_and_reported() {
        let (addr, echo) = server();
        let out = exchange(addr, b"GET /a b HTTP/1.1\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        let out = exchange(addr, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        let mut big = b"GET /big HTTP/1.1\r\n".to_vec();
        big.resize(40 << 10, b'a');
        let out = exchange(addr, &big);
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        let mut long = b"GET /".to_vec();
        long.resize(40 << 10, b'a');
        let out = exchange(addr, &long);
        assert!(out.starts_with("HTTP/1.1 414 "), "{out}");
        let seen = echo.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0], "400 GET /a b HTTP/1.1");
        assert_eq!(seen[2], "431 GET /big HTTP/1.1");
    }
}
