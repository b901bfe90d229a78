//! A written tree served as `bootc serve` serves it (the same index, the
//! same answers to GET and HEAD, files opened beneath the tree), without
//! the overview, the watcher or the log: each listener records its own
//! requests, with their status and whether every byte of the body was sent.
//! `bootc test` gives every boot a listener of its own, so a request's
//! listener says which boot made it.

use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::index::Index;
use super::respond::{Outcome, serve_file, text_answer};
use super::{conn, head, http};
use crate::tree::Tree;

/// The files of one written tree's `http/`, ready to be served.
#[derive(Clone)]
pub struct Files(Arc<Inner>);

struct Inner {
    files: Index,
    http_dir: PathBuf,
}

/// One request a listener answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The tree path asked for (decoded, no leading '/', with the query as
    /// sent), or the target as
    /// sent when it was refused.
    pub path: String,
    pub status: u16,
    /// Every byte of the answer was sent.
    pub complete: bool,
    /// Body bytes sent.
    pub bytes: u64,
    /// When the answer was done, from the listener's start.
    pub at: Duration,
}

impl Files {
    /// The index of `tree`, which `write::write` wrote to `out`.
    pub fn new(tree: Tree, out: &Path) -> Files {
        let http_dir = out.join("http");
        let files = Index::of(&tree, &[], SystemTime::now(), &Index::default());
        Files(Arc::new(Inner { files, http_dir }))
    }

    /// Serves the files on 127.0.0.1 (a port of the system's choice) until
    /// the listener is dropped.
    pub fn listen(&self) -> io::Result<Listener> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = l.local_addr()?.port();
        let recorder = Arc::new(Recorder {
            files: self.clone(),
            t0: Instant::now(),
            records: Mutex::new(Vec::new()),
        });
        let running = conn::start_stoppable(l, Arc::clone(&recorder) as Arc<dyn conn::Handler>)?;
        Ok(Listener {
            port,
            recorder,
            _running: running,
        })
    }
}

/// A listener of [`Files::listen`]: its port and what it answered.
pub struct Listener {
    port: u16,
    recorder: Arc<Recorder>,
    _running: conn::Running,
}

impl Listener {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The requests answered so far, in the order their answers ended.
    pub fn records(&self) -> Vec<Record> {
        self.recorder
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

struct Recorder {
    files: Files,
    t0: Instant,
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    fn record(&self, path: String, status: u16, complete: bool, bytes: u64) {
        let r = Record {
            path,
            status,
            complete,
            bytes,
            at: self.t0.elapsed(),
        };
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }
}

impl conn::Handler for Recorder {
    fn request(&self, req: &head::Request, w: &mut dyn Write) -> bool {
        let date = http::http_date(SystemTime::now());
        let head_only = req.method == "HEAD";
        let head = |status: u16| {
            let mut h = http::Head::new(status);
            h.close = req.close;
            h
        };
        let (path, mut out) = match http::resolve(&req.target) {
            Err(why) => {
                let mut out = Outcome::new(400, req.target.clone());
                let text = format!("bad request: {why}\n");
                text_answer(w, head(400), &date, &text, head_only, &mut out);
                (req.target.clone(), out)
            }
            Ok(r) => {
                let key = match r.target {
                    http::Target::File(key) => Some(key),
                    _ => None,
                };
                let mut out = Outcome::new(200, r.path.clone());
                match key
                    .as_ref()
                    .and_then(|k| Some((k, self.files.0.files.get(k)?)))
                {
                    _ if req.method != "GET" && !head_only => {
                        out.status = 405;
                        let h = head(405).header("Allow", "GET, HEAD");
                        let text = "only GET and HEAD are served\n";
                        text_answer(w, h, &date, text, false, &mut out);
                    }
                    Some((key, entry)) => {
                        let conds = http::Conditions::of(req);
                        serve_file(
                            &self.files.0.http_dir,
                            key,
                            entry,
                            &conds,
                            head_only,
                            &date,
                            head,
                            w,
                            &mut out,
                        );
                    }
                    None => {
                        out.status = 404;
                        let text = format!("not found: /{}\n", r.path);
                        text_answer(w, head(404), &date, &text, head_only, &mut out);
                    }
                }
                // The query stays: a beacon (`?booting=…`) is told apart
                // from the script it names.
                let query = req
                    .target
                    .split_once('?')
                    .map(|(_, q)| format!("?{q}"))
                    .unwrap_or_default();
                (format!("{}{query}", key.unwrap_or(r.path)), out)
            }
        };
        if out.status == 304 {
            out.complete = true;
        }
        self.record(path, out.status, out.complete, out.sent);
        !req.close && out.complete
    }

    fn refused(&self, _peer: SocketAddr, status: u16, line: &str) {
        self.record(line.to_string(), status, true, 0);
    }
}
