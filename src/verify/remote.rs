//! `verify` over HTTP: every request is bounded in time (connect, response
//! headers, each read of the body, and the whole body) and the manifest and
//! signature in size, so a server that stalls or sends without end makes
//! verify fail with a message, never hang or fill the memory.

use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::place::Place;
use super::{Problem, bytes, hash_problem, size_problem};
use crate::manifest::ManifestFile;
pub use crate::net::{agent, describe};

/// The most bytes of a manifest verify reads (a fleet of 100 000 files
/// takes about 16 MiB).
pub const MANIFEST_MAX: u64 = 32 << 20;
/// The most bytes of a signature verify reads (minisign's are ~ 300).
pub const SIGNATURE_MAX: u64 = 64 << 10;
/// The slowest a large file may come before verify gives up (on top of the
/// timeout): 64 KiB/s.
const MIN_RATE: u64 = 64 << 10;

/// How long the whole body of `size` bytes may take.
fn body_time(timeout: Duration, size: u64) -> Duration {
    timeout
        .saturating_mul(3)
        .saturating_add(Duration::from_secs(size / MIN_RATE))
}

/// An I/O error of a body reader in words (a ureq error inside, when there
/// is one).
fn describe_io(e: &io::Error, timeout: Duration, body: Duration) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<ureq::Error>()) {
        Some(u) => describe(u, timeout, body),
        None if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
            describe(&ureq::Error::Timeout(ureq::Timeout::PerRead), timeout, body)
        }
        None => e.to_string(),
    }
}

/// A small file at `url` of at most `max` bytes, or `None` when the server
/// says it is not there. The error is the reason, in words.
pub fn read_small(
    agent: &ureq::Agent,
    url: &str,
    max: u64,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, String> {
    let body = body_time(timeout, max);
    let mut resp = agent
        .get(url)
        .config()
        .timeout_recv_body(Some(body))
        .build()
        .call()
        .map_err(|e| describe(&e, timeout, body))?;
    match resp.status().as_u16() {
        200 => {}
        404 | 410 => return Ok(None),
        s => return Err(format!("HTTP {s}")),
    }
    let too_big = |n: String| {
        format!(
            "{n}, more than the {} verify reads",
            crate::templates::human_size(max)
        )
    };
    if let Some(len) = resp.body().content_length()
        && len > max
    {
        return Err(too_big(format!("{} (Content-Length)", bytes(len))));
    }
    match resp.body_mut().with_config().limit(max).read_to_vec() {
        Ok(b) => Ok(Some(b)),
        Err(ureq::Error::BodyExceedsLimit(_)) => Err(too_big("more bytes".into())),
        Err(e) => Err(describe(&e, timeout, body)),
    }
}

const WORKERS: usize = 4;

pub fn check_all(
    agent: &ureq::Agent,
    place: &Place,
    files: &[&ManifestFile],
    timeout: Duration,
) -> Vec<Problem> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    let bar = crate::progress::bar(total);
    let next = AtomicUsize::new(0);
    let problems = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..WORKERS.min(files.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = files.get(i) else { break };
                    let url = place.url(&f.path).expect("http/ paths");
                    if f.size >= crate::progress::MIN_BYTES {
                        bar.set_message(f.path.clone());
                    }
                    if let Some(p) = fetch_and_check(agent, &url, f, &bar, timeout) {
                        problems.lock().expect("no panics while held").push(p);
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    problems.into_inner().expect("no panics while held")
}

/// Downloads one file, hashing it as it comes; stops reading past the
/// expected size.
fn fetch_and_check(
    agent: &ureq::Agent,
    url: &str,
    f: &ManifestFile,
    bar: &indicatif::ProgressBar,
    timeout: Duration,
) -> Option<Problem> {
    let body = body_time(timeout, f.size);
    let mut done = 0u64;
    let result = (|| -> Option<Problem> {
        let mut resp = match agent
            .get(url)
            .config()
            .timeout_recv_body(Some(body))
            .build()
            .call()
        {
            Ok(r) => r,
            Err(e) => {
                return Some(
                    Problem::file(
                        &f.path,
                        format!("could not be fetched: {}", describe(&e, timeout, body)),
                    )
                    .note(url),
                );
            }
        };
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => {
                return Some(
                    Problem::file(
                        &f.path,
                        format!("missing (HTTP {})", resp.status().as_u16()),
                    )
                    .note(url),
                );
            }
            s => return Some(Problem::file(&f.path, format!("HTTP {s}")).note(url)),
        }
        if let Some(len) = resp.body().content_length()
            && len != f.size
        {
            return Some(size_problem(
                &f.path,
                f.size,
                format!("{} (Content-Length)", bytes(len)),
            ));
        }
        let mut reader = resp.body_mut().as_reader();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Some(
                        Problem::file(
                            &f.path,
                            format!(
                                "download failed after {}: {}",
                                bytes(done),
                                describe_io(&e, timeout, body)
                            ),
                        )
                        .note(url),
                    );
                }
            };
            hasher.update(&buf[..n]);
            done += n as u64;
            bar.inc(n as u64);
            if done > f.size {
                return Some(size_problem(
                    &f.path,
                    f.size,
                    "more bytes (stopped reading)".into(),
                ));
            }
        }
        if done != f.size {
            return Some(size_problem(&f.path, f.size, bytes(done)));
        }
        let h = hasher.finalize().to_hex().to_string();
        (h != f.blake3).then(|| hash_problem(&f.path, &f.blake3, &h))
    })();
    // Keep the bar's total right when a download stopped early.
    if done < f.size {
        bar.inc(f.size - done);
    } else if done > f.size {
        bar.dec(done - f.size);
    }
    result
}
