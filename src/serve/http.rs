//! HTTP for `bootc serve`, kept free of sockets so it can be tested alone:
//! request paths (percent-decoding, refusals, aliases), conditional
//! requests, single ranges, content types, and writing a response.

use std::io::{self, Read, Write};
use std::time::{Duration, SystemTime};

use crate::site::Mac;

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/`: the overview page (the report with live state).
    Overview,
    /// `/.bootc/status`: the build state and request counter, as JSON.
    Status,
    /// `/.bootc/requests`: the recent requests, as JSON.
    Requests,
    /// A file of the tree: its path under http/ ('/'-separated, decoded).
    File(String),
    /// `/http/<path>` (the report's links): redirect to `/<path>`.
    Redirect(String),
}

/// A decoded request path and what it names. `path` is what the log shows:
/// the decoded path without the leading '/'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub path: String,
    pub target: Target,
}

/// Resolves a request target (origin-form `/a/b?q`, or absolute-form
/// `http://host/a/b`) without touching the file system: the tree is looked
/// up by the returned key, never by a file name built from the request.
///
/// Refused (Err, answered 400): a target that is not a path; bad
/// percent-encoding; a NUL or control character; a segment that is `.` or
/// `..` (also percent-encoded); an encoded `/` or `\` in a segment; an empty
/// segment (`//`, which would make an absolute path); invalid UTF-8.
///
/// `machines/<MAC>.ipxe` with the MAC written any other way (`52:54:…`, as a
/// script using `${net0/mac}` asks, or upper case) is an alias of the
/// per-MAC script `machines/<hexhyp>.ipxe`.
pub fn resolve(raw: &str) -> Result<Resolved, &'static str> {
    let mut target = raw;
    if let Some(i) = target.find(['?', '#']) {
        target = &target[..i];
    }
    for scheme in ["http://", "https://"] {
        if target.len() >= scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            target = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    let Some(path) = target.strip_prefix('/') else {
        return Err("the request target is not a path");
    };
    let mut segments: Vec<String> = Vec::new();
    let raw_segments: Vec<&str> = path.split('/').collect();
    let last = raw_segments.len() - 1;
    for (i, seg) in raw_segments.iter().enumerate() {
        let bytes = decode(seg).ok_or("bad percent-encoding")?;
        let s = String::from_utf8(bytes).map_err(|_| "the path is not UTF-8")?;
        if s.chars().any(char::is_control) {
            return Err("a control character (NUL, ...) in the path");
        }
        if s.contains(['/', '\\']) {
            return Err("an encoded slash or backslash in the path");
        }
        if s == "." || s == ".." {
            return Err("a `.` or `..` segment in the path");
        }
        if s.is_empty() && i != last {
            return Err("an empty segment (`//`) in the path");
        }
        segments.push(s);
    }
    let path = segments.join("/");
    let target = match path.as_str() {
        "" => Target::Overview,
        ".bootc/status" => Target::Status,
        ".bootc/requests" => Target::Requests,
        p => {
            if let Some(rest) = p.strip_prefix("http/") {
                Target::Redirect(format!("/{}", crate::url::encode_path(rest)))
            } else if let Some(mac) = p
                .strip_prefix("machines/")
                .and_then(|f| f.strip_suffix(".ipxe"))
                .and_then(Mac::parse)
            {
                Target::File(format!("machines/{}.ipxe", mac.hexhyp()))
            } else {
                Target::File(p.to_string())
            }
        }
    };
    Ok(Resolved { path, target })
}

/// Strict percent-decoding: every `%` must start two hex digits.
fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The Content-Type of a tree file.
pub fn content_type(path: &str) -> &'static str {
    const TEXT: &str = "text/plain; charset=utf-8";
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    };
    match ext.as_str() {
        "ipxe" | "txt" | "cfg" | "conf" | "sh" | "yaml" | "yml" | "seed" | "preseed" | "ks"
        | "minisig" | "sig" | "pub" | "toml" | "ini" => TEXT,
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "iso" => "application/x-iso9660-image",
        "gz" | "tgz" => "application/gzip",
        "xz" => "application/x-xz",
        "zst" => "application/zstd",
        "bz2" => "application/x-bzip2",
        "tar" => "application/x-tar",
        "cpio" => "application/x-cpio",
        "" if path.starts_with("machines/") => TEXT, // rendered files: user-data, meta-data, …
        _ => "application/octet-stream",
    }
}

/// The Cache-Control of a tree file: content-addressed images never change.
pub fn cache_control(path: &str) -> &'static str {
    if path.starts_with("images/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// The request headers that decide the answer for a file.
#[derive(Debug, Default, Clone)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub range: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    /// The conditions `req` sends.
    pub fn of(req: &'a super::head::Request) -> Self {
        Conditions {
            if_match: req.header("If-Match"),
            if_none_match: req.header("If-None-Match"),
            if_modified_since: req.header("If-Modified-Since"),
            if_unmodified_since: req.header("If-Unmodified-Since"),
            if_range: req.header("If-Range"),
            range: req.header("Range"),
        }
    }
}

/// How to answer a GET or HEAD of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200, the whole file.
    Full,
    /// 206, bytes `start..end` (end exclusive).
    Partial { start: u64, end: u64 },
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 416.
    Unsatisfiable,
}

/// Decides the answer for a file with `etag` (quoted), `modified` and `size`
/// (RFC 9110 section 13.2.2 order: If-Match, If-Unmodified-Since,
/// If-None-Match, If-Modified-Since, then If-Range and Range). A Range is
/// only honoured on GET; several ranges or a malformed one get the whole file.
pub fn answer(c: &Conditions, get: bool, etag: &str, modified: SystemTime, size: u64) -> Answer {
    if let Some(v) = c.if_match {
        if !etag_matches(v, etag, false) {
            return Answer::PreconditionFailed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_date)
        && secs(modified) > secs(date)
    {
        return Answer::PreconditionFailed;
    }
    if let Some(v) = c.if_none_match {
        if etag_matches(v, etag, true) {
            return Answer::NotModified;
        }
    } else if let Some(date) = c.if_modified_since.and_then(parse_date)
        && secs(modified) <= secs(date)
    {
        return Answer::NotModified;
    }
    let Some(range) = c.range.filter(|_| get) else {
        return Answer::Full;
    };
    if let Some(v) = c.if_range {
        let v = v.trim();
        let fresh = if v.starts_with('"') {
            v == etag // strong comparison
        } else {
            parse_date(v).is_some_and(|d| secs(d) == secs(modified))
        };
        if !fresh {
            return Answer::Full;
        }
    }
    match parse_range(range, size) {
        RangeSpec::Ignore => Answer::Full,
        RangeSpec::Unsatisfiable => Answer::Unsatisfiable,
        RangeSpec::Bytes(start, end) => Answer::Partial { start, end },
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    Ignore,
    Unsatisfiable,
    Bytes(u64, u64),
}

/// One byte range of `bytes=a-b`, `bytes=a-` or `bytes=-n`.
fn parse_range(v: &str, size: u64) -> RangeSpec {
    let v = v.trim();
    let Some((unit, set)) = v.split_once('=') else {
        return RangeSpec::Ignore;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // suffix: the last n bytes
        let Some(n) = num(b) else {
            return RangeSpec::Ignore;
        };
        if n == 0 || size == 0 {
            return RangeSpec::Unsatisfiable;
        }
        return RangeSpec::Bytes(size - n.min(size), size);
    }
    let Some(start) = num(a) else {
        return RangeSpec::Ignore;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match num(b) {
            Some(e) if e >= start => e.saturating_add(1),
            _ => return RangeSpec::Ignore,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Bytes(start, end.min(size))
}

/// Whether an If-Match / If-None-Match list matches `etag`.
fn etag_matches(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|t| {
        if t == "*" {
            return true;
        }
        let (is_weak, t) = match t.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        (weak || !is_weak) && t == etag
    })
}

fn parse_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

/// Whole seconds since the epoch (HTTP dates have no finer resolution).
fn secs(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// A response head.
pub struct Head {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The Content-Length header, when there is one.
    pub length: Option<u64>,
    pub close: bool,
}

impl Head {
    pub fn new(status: u16) -> Head {
        Head {
            status,
            headers: Vec::new(),
            length: None,
            close: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Head {
        self.headers.push((name, value.into()));
        self
    }

    pub fn length(mut self, n: u64) -> Head {
        self.length = Some(n);
        self
    }

    /// The head as bytes, appended to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>, date: &str) {
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\nServer: bootc/{}\r\nDate: {date}\r\n",
            self.status,
            reason(self.status),
            env!("CARGO_PKG_VERSION")
        );
        for (k, v) in &self.headers {
            let _ = write!(out, "{k}: {v}\r\n");
        }
        if let Some(n) = self.length {
            let _ = write!(out, "Content-Length: {n}\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// How much of a file is copied per write.
pub const CHUNK: usize = 64 * 1024;

/// Writes `head` then `body` (bytes already in memory) in one write.
pub fn send_bytes(w: &mut dyn Write, head: &Head, date: &str, body: &[u8]) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(256 + body.len());
    head.write_to(&mut buf, date);
    buf.extend_from_slice(body);
    w.write_all(&buf)?;
    w.flush()?;
    Ok(body.len() as u64)
}

/// Writes `head` then `len` bytes of `file`, in chunks of [`CHUNK`] through
/// one buffer: memory stays constant whatever the file's size. `sent`
/// counts the body bytes written, also when the client goes away (the error).
pub fn send_file(
    w: &mut dyn Write,
    head: &Head,
    date: &str,
    file: &mut dyn Read,
    len: u64,
    sent: &mut u64,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(CHUNK + 512);
    head.write_to(&mut buf, date);
    let mut start = buf.len(); // the head goes out with the first chunk
    buf.resize(start + CHUNK, 0);
    let mut left = len;
    while left > 0 {
        let want = left.min((buf.len() - start) as u64) as usize;
        let n = file.read(&mut buf[start..start + want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than it was",
            ));
        }
        w.write_all(&buf[..start + n])?;
        *sent += n as u64;
        left -= n as u64;
        start = 0;
    }
    if start > 0 {
        w.write_all(&buf[..start])?; // an empty body: the head alone
    }
    w.flush()
}

#[cfg(test)]
mod tests;
