//! Hashes of local artifacts kept across runs (SPEC section 10): an
//! unchanged multi-GB ISO costs a `stat` in build, check and serve, not a
//! read. A record, `<cache>/hashes/<blake3 of the path>`, holds the path,
//! the file's stamp (device, inode, size, modification and change times,
//! see `Opened::stamp`) and its BLAKE3; it is used only when the stamp of
//! the open descriptor is the same, and written atomically (a temporary
//! file renamed), so concurrent builds share it. The cache is a shortcut,
//! never a source of truth: the writer checks every byte it copies against
//! the hash, and a cache that cannot be read or written is ignored.

use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::beneath::Opened;

/// Size and BLAKE3 of `f`, from its record when its stamp is unchanged,
/// else hashed (and recorded).
pub fn hash(f: &Opened) -> io::Result<(u64, String)> {
    match lookup(f) {
        Some(hash) => Ok(hash),
        None => hash_and_record(f, |_| {}),
    }
}

/// Size and BLAKE3 of `f` from its record, when its stamp is unchanged.
pub fn lookup(f: &Opened) -> Option<(u64, String)> {
    let head = record_head(f)?;
    let text = fs::read_to_string(record_path(f)).ok()?;
    let blake3 = text.strip_prefix(&head)?.strip_suffix('\n')?;
    (blake3.len() == 64).then(|| (f.size, blake3.to_string()))
}

/// Hashes `f` (calling `progress` with each chunk's length) and records
/// the hash.
pub fn hash_and_record(f: &Opened, progress: impl FnMut(u64)) -> io::Result<(u64, String)> {
    let (size, blake3) = f.hash_with(progress)?;
    if let Some(head) = record_head(f) {
        let _ = write_record(&record_path(f), &format!("{head}{blake3}\n"));
    }
    Ok((size, blake3))
}

/// The start of `f`'s record: format, path and stamp.
fn record_head(f: &Opened) -> Option<String> {
    let stamp = f.stamp().ok()?;
    Some(format!(
        "bootc hash 1\n{}\n{}\n",
        f.path.display(),
        stamp.map(|n| n.to_string()).join(" ")
    ))
}

fn record_path(f: &Opened) -> PathBuf {
    let key = blake3::hash(f.path.as_os_str().as_encoded_bytes()).to_hex();
    crate::fetch::cache_dir().join("hashes").join(&key[..32])
}

/// Writes a cache record atomically (a temporary file beside it, renamed),
/// creating its folder.
pub(crate) fn write_record(path: &std::path::Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(path);
    fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".record-")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
