//! Downloads of remote artifacts (SPEC section 10), kept in a cache by
//! their pin: `$BOOTC_CACHE_DIR`, else `$XDG_CACHE_HOME/bootc`, else
//! `~/.cache/bootc`. A download streams into a temporary file of the cache
//! while both hashes are computed; it is renamed into place only when it
//! matches its pin, so the cache never holds a wrong file and concurrent
//! builds share it safely.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::Digest;

/// How long a download may be silent (connect, headers, each read).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The cache folder.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("BOOTC_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("bootc")))
        .or_else(|| env("HOME").map(|h| h.join(".cache/bootc")))
        .unwrap_or_else(|| std::env::temp_dir().join("bootc-cache"))
}

/// A pin: `sha256` or `blake3`, and the hash in lowercase hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pin {
    pub algorithm: &'static str,
    pub hex: String,
}

/// What a download was.
#[derive(Clone, Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

impl Downloaded {
    fn hash(&self, algorithm: &str) -> &str {
        if algorithm == "sha256" {
            &self.sha256
        } else {
            &self.blake3
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Http(String),
    #[error("the cache {}: {error}", path.display())]
    Cache { path: PathBuf, error: io::Error },
    #[error(
        "the file does not match its pin: {algorithm} {expected} expected, {actual} downloaded"
    )]
    Mismatch {
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
}

fn cache_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |error| FetchError::Cache {
        path: path.to_path_buf(),
        error,
    }
}

/// Where the file pinned by `pin` is kept.
pub fn cached_path(pin: &Pin) -> PathBuf {
    cache_dir().join("downloads").join(format!(
        "{}-{}",
        pin.algorithm,
        pin.hex.to_ascii_lowercase()
    ))
}

/// The file `url` pinned by `pin`: from the cache, else (or, `fresh`,
/// always: `check --online`) downloaded, checked and kept.
pub fn vendored(url: &str, pin: &Pin, fresh: bool) -> Result<PathBuf, FetchError> {
    let dest = cached_path(pin);
    if !fresh && dest.is_file() {
        return Ok(dest);
    }
    let got = download(url)?;
    let actual = got.hash(pin.algorithm);
    if !actual.eq_ignore_ascii_case(&pin.hex) {
        let _ = fs::remove_file(&got.path);
        return Err(FetchError::Mismatch {
            algorithm: pin.algorithm,
            expected: pin.hex.to_ascii_lowercase(),
            actual: actual.to_string(),
        });
    }
    keep(&got, &dest)?;
    Ok(dest)
}

/// Downloads `url` into the cache and keeps it under both its hashes
/// (`bootc pin`): the next vendored build fetches nothing.
pub fn pin(url: &str) -> Result<Downloaded, FetchError> {
    let got = download(url)?;
    for algorithm in ["blake3", "sha256"] {
        let pin = Pin {
            algorithm,
            hex: got.hash(algorithm).to_string(),
        };
        let dest = cached_path(&pin);
        if !dest.is_file() {
            fs::hard_link(&got.path, &dest)
                .or_else(|_| fs::copy(&got.path, &dest).map(|_| ()))
                .map_err(cache_err(&dest))?;
        }
    }
    let _ = fs::remove_file(&got.path);
    Ok(got)
}

/// Renames a checked download into place (another build may have put the
/// same file there meanwhile: either copy is right).
fn keep(got: &Downloaded, dest: &Path) -> Result<(), FetchError> {
    fs::rename(&got.path, dest).map_err(cache_err(dest))
}

/// Streams `url` into a new temporary file of the cache, hashing it.
fn download(url: &str) -> Result<Downloaded, FetchError> {
    let dir = cache_dir().join("downloads");
    fs::create_dir_all(&dir).map_err(cache_err(&dir))?;
    let agent = crate::net::agent(TIMEOUT);
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| FetchError::Http(crate::net::describe(&e, TIMEOUT, TIMEOUT)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FetchError::Http(format!("the server answered {status}")));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(&dir)
        .map_err(cache_err(&dir))?;
    let mut body = resp.into_body();
    // Servers that send no length get no bar.
    let bar = crate::progress::bar(body.content_length().unwrap_or(0));
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    let mut reader = body.as_reader();
    let mut sha = sha2::Sha256::new();
    let mut b3 = blake3::Hasher::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(FetchError::Http(format!("reading the body: {e}"))),
        };
        sha.update(&buf[..n]);
        b3.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(cache_err(tmp.path()))?;
        size += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    tmp.as_file().sync_all().map_err(cache_err(tmp.path()))?;
    let (_, path) = tmp.keep().map_err(|e| FetchError::Cache {
        path: dir.clone(),
        error: e.error,
    })?;
    Ok(Downloaded {
        path,
        size,
        sha256: hex(&sha.finalize()),
        blake3: b3.finalize().to_hex().to_string(),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
