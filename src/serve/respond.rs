//! Requests: each one answered from the current snapshot's index (files
//! opened beneath the tree, never following a symlink), and logged.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Instant, SystemTime};

use rustix::fs::{Mode, OFlags};

use super::{Body, FileEntry, State, conn, head, http, log};

impl conn::Handler for State {
    fn request(&self, req: &head::Request, w: &mut dyn Write) -> bool {
        handle(self, req, w)
    }

    fn refused(&self, peer: SocketAddr, status: u16, line: &str) {
        // `METHOD TARGET VERSION` as far as it goes
        let (method, rest) = line.split_once(' ').unwrap_or(("-", line));
        let target = rest.rsplit_once(' ').map_or(rest, |(t, _)| t);
        let entry = log::Entry {
            time: log::clock(SystemTime::now()),
            client: peer.to_string(),
            machine: None,
            method: method.to_string(),
            raw: target.to_string(),
            path: target.to_string(),
            served: None,
            status,
            bytes: 0,
            size: "-".into(),
            ms: 0,
        };
        self.log.submit(log::Logged {
            entry,
            client: Some(peer),
            from_path: None,
            tree: false,
        });
    }
}

/// What happened to one request, for the log.
pub(super) struct Outcome {
    pub(super) status: u16,
    path: String,
    served: Option<String>,
    pub(super) sent: u64,
    len: u64,
    body: bool,
    pub(super) complete: bool,
    /// Tree requests go in the per-machine table; the overview's own don't.
    tree: bool,
    /// `/.bootc/*` polls are not logged at all.
    quiet: bool,
}

impl Outcome {
    pub(super) fn new(status: u16, path: String) -> Outcome {
        Outcome {
            status,
            path,
            served: None,
            sent: 0,
            len: 0,
            body: false,
            complete: true,
            tree: false,
            quiet: false,
        }
    }
}

/// Answers one request; false: the connection closes.
fn handle(state: &State, req: &head::Request, w: &mut dyn Write) -> bool {
    let t0 = Instant::now();
    let conds = http::Conditions::of(req);
    let out = respond(state, &req.method, &req.target, &conds, req.close, w);
    let keep = !req.close && out.complete;
    if out.quiet {
        return keep;
    }
    let from_path = if out.tree {
        state.snapshot().and_then(|s| {
            s.machines
                .named_by(out.served.as_deref().unwrap_or(&out.path))
        })
    } else {
        None
    };
    let entry = log::Entry {
        time: log::clock(SystemTime::now()),
        client: req.peer.to_string(),
        machine: None,
        method: req.method.clone(),
        raw: req.target.clone(),
        path: out.path,
        served: out.served,
        status: out.status,
        bytes: out.sent,
        size: log::size_text(out.sent, out.len, out.body, out.complete),
        ms: t0.elapsed().as_millis() as u64,
    };
    state.log.submit(log::Logged {
        entry,
        client: Some(req.peer),
        from_path,
        tree: out.tree,
    });
    keep
}

pub(super) fn text_answer(
    w: &mut dyn Write,
    head: http::Head,
    date: &str,
    text: &str,
    head_only: bool,
    out: &mut Outcome,
) {
    let head = head.header("Content-Type", "text/plain; charset=utf-8");
    page_answer(w, head, date, text, head_only, out);
}

/// A generated page (its Content-Type set in `head`), never cached.
fn page_answer(
    w: &mut dyn Write,
    mut head: http::Head,
    date: &str,
    text: &str,
    head_only: bool,
    out: &mut Outcome,
) {
    head = head
        .header("Cache-Control", "no-store")
        .length(text.len() as u64);
    let body: &[u8] = if head_only { b"" } else { text.as_bytes() };
    out.len = text.len() as u64;
    out.body = !head_only;
    match http::send_bytes(w, &head, date, body) {
        Ok(n) => out.sent = n,
        Err(_) => out.complete = false,
    }
}

fn respond(
    state: &State,
    method: &str,
    raw: &str,
    conds: &http::Conditions,
    close: bool,
    w: &mut dyn Write,
) -> Outcome {
    let date = http::http_date(SystemTime::now());
    let head_only = method == "HEAD";
    let head = |status: u16| {
        let mut h = http::Head::new(status);
        h.close = close;
        h
    };
    let resolved = match http::resolve(raw) {
        Ok(r) => r,
        Err(why) => {
            let mut out = Outcome::new(400, raw.to_string());
            let text = format!("bad request: {why}\n");
            text_answer(w, head(400), &date, &text, head_only, &mut out);
            return out;
        }
    };
    let shown = if resolved.path.is_empty() {
        "/".to_string()
    } else {
        resolved.path.clone()
    };
    let mut out = Outcome::new(200, shown);
    if method != "GET" && !head_only {
        out.status = 405;
        let h = head(405).header("Allow", "GET, HEAD");
        text_answer(
            w,
            h,
            &date,
            "only GET and HEAD are served\n",
            false,
            &mut out,
        );
        return out;
    }
    match resolved.target {
        http::Target::Overview => match state.overview() {
            Ok(page) => {
                let h = head(200).header("Content-Type", "text/html; charset=utf-8");
                page_answer(w, h, &date, &page, head_only, &mut out);
            }
            Err(e) => {
                out.status = 500;
                let text = format!("the overview page failed to render: {e}\n");
                text_answer(w, head(500), &date, &text, head_only, &mut out);
            }
        },
        http::Target::Status | http::Target::Requests => {
            out.quiet = true;
            let body = status_json(state, &resolved.target);
            let h = head(200)
                .header("Content-Type", "application/json")
                .header("Cache-Control", "no-store")
                .length(body.len() as u64);
            let body = if head_only { "" } else { body.as_str() };
            let _ = http::send_bytes(w, &h, &date, body.as_bytes());
        }
        http::Target::Redirect(location) => {
            out.status = 302;
            let h = head(302).header("Location", location.clone());
            let text = format!("see {location}\n");
            text_answer(w, h, &date, &text, head_only, &mut out);
        }
        http::Target::File(key) => {
            out.tree = true;
            if key != resolved.path {
                out.served = Some(key.clone());
            }
            let Some((snap, entry)) = state.find(&key) else {
                out.status = 503;
                let text = format!("no good build yet: the errors are on {}\n", state.url);
                text_answer(w, head(503), &date, &text, head_only, &mut out);
                return out;
            };
            let Some(entry) = entry else {
                // A browser's own request on the overview: not worth a line.
                out.quiet = key == "favicon.ico";
                out.status = 404;
                let text = format!("not found: /{}\n", resolved.path);
                text_answer(w, head(404), &date, &text, head_only, &mut out);
                return out;
            };
            serve_file(
                &snap.http_dir,
                &key,
                &entry,
                conds,
                head_only,
                &date,
                head,
                w,
                &mut out,
            );
        }
    }
    out
}

/// `/.bootc/status` (the live state) or `/.bootc/requests` (the log).
fn status_json(state: &State, target: &http::Target) -> String {
    let json = if *target == http::Target::Status {
        let mut v = state.live();
        if let Some(o) = v.as_object_mut() {
            o.remove("clients");
        }
        v
    } else {
        serde_json::to_value(state.log.all()).unwrap_or_default()
    };
    serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
}

/// Answers a request for the tree file `key` (its `entry` of the index),
/// whose bytes not kept in memory are read beneath `http_dir`.
#[allow(clippy::too_many_arguments)]
pub(super) fn serve_file(
    http_dir: &Path,
    key: &str,
    entry: &FileEntry,
    conds: &http::Conditions,
    head_only: bool,
    date: &str,
    mut head: impl FnMut(u16) -> http::Head,
    w: &mut dyn Write,
    out: &mut Outcome,
) {
    let etag = entry.etag();
    let answer = http::answer(conds, !head_only, &etag, entry.modified, entry.size);
    let validators = |h: http::Head| {
        h.header("ETag", etag.clone())
            .header("Last-Modified", http::http_date(entry.modified))
            .header("Cache-Control", http::cache_control(key))
    };
    let (status, start, end) = match answer {
        http::Answer::NotModified => {
            out.status = 304;
            let h = validators(head(304));
            let _ = http::send_bytes(w, &h, date, b"");
            return;
        }
        http::Answer::PreconditionFailed => {
            out.status = 412;
            text_answer(w, head(412), date, "precondition failed\n", head_only, out);
            return;
        }
        http::Answer::Unsatisfiable => {
            out.status = 416;
            let h = head(416).header("Content-Range", format!("bytes */{}", entry.size));
            text_answer(w, h, date, "range not satisfiable\n", head_only, out);
            return;
        }
        http::Answer::Full => (200, 0, entry.size),
        http::Answer::Partial { start, end } => (206, start, end),
    };
    out.status = status;
    let len = end - start;
    let mut h = validators(head(status))
        .header("Content-Type", http::content_type(key))
        .header("Accept-Ranges", "bytes")
        .length(len);
    if status == 206 {
        h = h.header(
            "Content-Range",
            format!("bytes {start}-{}/{}", end - 1, entry.size),
        );
    }
    out.len = len;
    out.body = !head_only;
    if head_only {
        let _ = http::send_bytes(w, &h, date, b"");
        return;
    }
    match &entry.body {
        Body::Memory(b) => match http::send_bytes(w, &h, date, &b[start as usize..end as usize]) {
            Ok(n) => out.sent = n,
            Err(_) => out.complete = false,
        },
        Body::Disk { .. } => {
            let mut file = match open_beneath(http_dir, key) {
                Ok(f)
                    if f.metadata()
                        .is_ok_and(|m| m.is_file() && m.len() == entry.size) =>
                {
                    f
                }
                Ok(_) | Err(_) => {
                    // Gone (a newer build removed it) or not a plain file of
                    // the tree (a symlink put there is never followed).
                    out.status = 404;
                    out.body = !head_only;
                    let text = format!("not found: /{key}\n");
                    text_answer(w, head(404), date, &text, head_only, out);
                    return;
                }
            };
            if start > 0 && file.seek(SeekFrom::Start(start)).is_err() {
                out.status = 500;
                text_answer(w, head(500), date, "cannot read the file\n", head_only, out);
                return;
            }
            let mut sent = 0;
            let r = http::send_file(w, &h, date, &mut file, len, &mut sent);
            out.sent = sent;
            out.complete = r.is_ok();
        }
    }
}

/// Opens `rel` ('/'-separated, from the tree's index) beneath `dir`, one
/// component at a time, never following a symlink: nothing outside the
/// tree can be reached, whatever was put into it.
fn open_beneath(dir: &Path, rel: &str) -> io::Result<File> {
    let mut fd: OwnedFd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() || *part == "." || *part == ".." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad path"));
        }
        let flags = if i + 1 < parts.len() {
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC
        };
        fd = rustix::fs::openat(&fd, *part, flags, Mode::empty())?;
    }
    Ok(File::from(fd))
}
