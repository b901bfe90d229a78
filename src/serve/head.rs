//! Request heads of `bootc serve`: read under a size cap and deadlines,
//! and parsed strictly (a request line, then `name: value` fields).

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The largest request head (request line and header fields), and the most
/// header fields.
const HEAD_MAX: usize = 16 * 1024;
const FIELDS_MAX: usize = 100;
/// A request head must arrive whole this long after its first byte.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection without a request (new, or kept alive) closes after this.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// A request body up to this size is read and dropped; a larger one (or a
/// chunked one) closes the connection after the answer.
pub const BODY_MAX: u64 = 64 * 1024;

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

#[derive(Debug)]
pub enum Failed {
    /// The client closed, went silent or broke off.
    Closed,
    /// Over [`HEAD_MAX`]: what was read.
    TooLarge(Vec<u8>),
}

/// Reads a request head (up to and with its empty line), leaving what
/// follows in `r`. None: the connection closed or stayed idle for
/// [`IDLE_TIMEOUT`] without a request.
pub fn read_head(r: &mut BufReader<&TcpStream>) -> Result<Option<Vec<u8>>, Failed> {
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
pub fn parse(head: &[u8], peer: SocketAddr) -> Result<Request, (u16, &'static str)> {
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

/// Reads and drops a request body of `n` bytes, within [`HEAD_TIMEOUT`].
pub fn discard(r: &mut BufReader<&TcpStream>, mut n: u64) -> bool {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    while n > 0 {
        if r.buffer().is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || r.get_ref().set_read_timeout(Some(left)).is_err() {
                return false;
            }
        }
        match r.fill_buf() {
            Ok([]) => return false,
            Ok(buf) => {
                let k = buf.len().min(n as usize);
                r.consume(k);
                n -= k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
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
