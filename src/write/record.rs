//! The record of the last build into an output folder: a fingerprint of
//! everything the build read, what it reported, and the stamp of every
//! folder and file it left there. A rebuild whose inputs have the same
//! fingerprint, into a folder whose every entry still has its stamp, has
//! nothing to do: it reports the same problems and writes nothing, without
//! resolving or rendering anything (issue 17's no-op rebuild).
//!
//! A stamp is what `lstat` says: device, inode, size, modification and
//! change times to the nanosecond, and the mode. The change time cannot be
//! set back by anyone but the clock's owner, so a file edited in place, a
//! file or folder added, removed or renamed (which moves its folder's
//! times) or an entry replaced by a symlink changes a stamp. The hash cache
//! of local artifacts trusts the same stamp. One race is closed as git
//! closes it: an entry whose change time is not before the moment its
//! stamp was taken might still change within the same clock tick, so a
//! file's bytes are hashed again and a folder's entries listed again. One
//! window is left: the stamps are taken after the tree is written and the
//! old one removed, so a file edited between its write and its stamp
//! (seconds on a large fleet, by someone who may write the output folder)
//! is recorded as it then is.
//!
//! Kept in the cache (`<cache>/builds/<hash of the output folder's real
//! path>`), never in the tree; written atomically. A shortcut, never a
//! source of truth: a record that cannot be read, is corrupt, or disagrees
//! in any way means a full build (which proves the previous tree byte for
//! byte, as before).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::reuse::Proof;
use crate::diag::Diags;
use crate::{Checked, Options};
use entry::{Entry, check, stamp, stamp_at};

mod entry;

const FIRST_LINE: &str = "bootc build record 2";
/// The line before the spare tree's entries.
const SPARE_LINE: &str = "spare";

/// What the build printed about the site, besides its problems.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub site: String,
    pub machines: usize,
    pub scripts: usize,
}

impl Summary {
    pub fn of(plan: &crate::plan::Plan) -> Summary {
        Summary {
            site: plan.site.clone(),
            machines: plan.machines.len(),
            scripts: plan.machines.iter().map(|m| m.macs.len()).sum(),
        }
    }
}

/// See the module's documentation.
pub struct Record {
    pub fingerprint: String,
    pub summary: Summary,
    /// The build's problems (warnings only: a site with errors writes
    /// nothing, so it has no record).
    pub diags: Diags,
    entries: Vec<Entry>,
    /// The spare tree beside the output (`write::spare_path`): the entries
    /// of the tree the build swapped out, as its own record gave them
    /// (their folders untouched since, the root stamped again once moved).
    /// Kept as their lines: read only by a build that stages in the spare.
    spare: String,
}

/// The fingerprint of a checked site's inputs, for a build with `opts`:
/// this binary (its own stamp), the options, every source file (name and
/// text), what loading and validating them reported, every artifact and
/// boot program read from outside the sources
/// (by hash), and `extra` (what the caller adds: the site's folder, the
/// signing key). None
/// when a build of it cannot be skipped: a site with errors, web-server
/// logs (they grow), a boot image (made by outside tools), or anything
/// asked besides the tree.
pub fn fingerprint(checked: &Checked, opts: &Options, extra: &[u8]) -> Option<String> {
    let site = checked.site.as_ref()?;
    if checked.diags.has_errors()
        || !opts.access_logs.is_empty()
        || opts.image.is_some()
        || opts.online
        || (opts.media && site.media.is_some())
    {
        return None;
    }
    let mut h = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(FIRST_LINE.as_bytes());
    let exe = std::env::current_exe().ok()?;
    let exe = rustix::fs::stat(&exe).ok()?;
    field(format!("{:?}", stamp(&exe)).as_bytes());
    field(format!("{opts:?}").as_bytes());
    for id in checked.sources.ids() {
        field(checked.sources.name(id).as_bytes());
        field(checked.sources.text(id).as_bytes());
    }
    // What loading and validation found outside the sources (a dangling
    // link under machines/, a missing artifact root): in the report too.
    let mut found: Vec<String> = checked
        .diags
        .list
        .iter()
        .filter_map(|d| serde_json::to_string(d).ok())
        .collect();
    found.sort();
    for d in &found {
        field(d.as_bytes());
    }
    for image in site.images.values() {
        let plan = crate::plan::ImagePlan::new(image);
        field(&serde_json::to_vec(&plan).ok()?);
    }
    for (name, f) in &site.uefi.loaders {
        field(format!("{name:?} {} {}", f.source.path.display(), f.blake3).as_bytes());
    }
    for (name, f) in &site.ipxe.binaries {
        let (size, blake3) = crate::hashcache::hash(f).ok()?;
        field(format!("{name} {} {size} {blake3}", f.path.display()).as_bytes());
    }
    field(extra);
    Some(h.finalize().to_hex().to_string())
}

/// Whether `path` is this user's own and nobody else may write it (a
/// record decides what a build trusts: one another user could have
/// written is ignored, as is anything but a plain file or folder).
fn private(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path)
        .is_ok_and(|m| (m.is_file() || m.is_dir()) && super::mine(&m) && m.mode() & 0o022 == 0)
}

/// Whether the record at `path` may be read: it and its folder are
/// [`private`].
fn trusted(path: &Path) -> bool {
    private(path) && path.parent().is_some_and(private)
}

/// Where the record of builds into `out` is kept: None when `out` does
/// not exist.
fn place(out: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(out).ok()?;
    let key = blake3::hash(real.as_os_str().as_encoded_bytes()).to_hex();
    Some(crate::fetch::cache_dir().join("builds").join(&key[..32]))
}

impl Record {
    /// The record of a tree just written to `out` as `written` says (in
    /// the folder [`super::Stats::root`]), whose files are `files` (path
    /// and BLAKE3, in the tree's order:
    /// [`crate::tree::Tree::into_hashes`]): every entry stamped (its
    /// folders as the writer listed them, [`super::Stats::folders`]), a
    /// file the writer left untouched by the stamp it was proven by
    /// ([`super::Stats::stamps`]). Refused when `out` is no longer that
    /// folder (another build swapped its own tree in meanwhile).
    pub fn make(
        out: &Path,
        written: &super::Stats,
        files: Vec<(String, String)>,
        fingerprint: String,
        summary: Summary,
        diags: Diags,
    ) -> io::Result<Record> {
        let out = fs::canonicalize(out)?;
        // Every stamp is taken beneath this descriptor: of the tree in
        // `root`, even if `out` is replaced while they are taken.
        let dir = fs::File::open(&out)?;
        let st = rustix::fs::fstat(&dir)?;
        if (st.st_dev, st.st_ino) != written.root {
            return Err(io::Error::other("the output folder was replaced"));
        }
        // What "now" is on that file system, before any stamp is taken.
        let now = {
            let probe = tempfile::Builder::new()
                .prefix(".bootc-clock-")
                .tempfile_in(out.parent().unwrap_or(&out))?;
            let st = rustix::fs::fstat(probe.as_file())?;
            (st.st_ctime, st.st_ctime_nsec as i64)
        };
        // (path, BLAKE3 of a file, its stamp if proven)
        let mut paths: Vec<(String, Option<String>, Option<Proof>)> =
            vec![(String::new(), None, None)];
        paths.extend(
            written
                .folders
                .iter()
                .filter_map(|d| Some((d.to_str()?.to_string(), None, None))),
        );
        let stamps = written
            .stamps
            .iter()
            .copied()
            .chain(std::iter::repeat(None));
        paths.extend(
            files
                .into_iter()
                .zip(stamps)
                .map(|((f, blake3), known)| (f, Some(blake3), known)),
        );
        let entries = paths
            .into_par_iter()
            .map(|(path, blake3, known)| {
                let stamp = match known {
                    // A proven file is a regular one with the tree's mode.
                    Some([dev, ino, size, mtime, mtime_ns, ctime, ctime_ns]) => {
                        let mode = i64::from(libc::S_IFREG | super::FILE_MODE);
                        [dev, ino, size, mtime, mtime_ns, ctime, ctime_ns, mode]
                    }
                    None => stamp_at(&dir, &path)?,
                };
                Ok(Entry {
                    path,
                    stamp,
                    blake3,
                    racy: (stamp[5], stamp[6]) >= now,
                })
            })
            .collect::<io::Result<Vec<Entry>>>()?;
        Ok(Record {
            fingerprint,
            summary,
            diags,
            entries,
            spare: String::new(),
        })
    }

    /// Says what the spare beside `out` holds after a build that had
    /// `last` as its record: when the build swapped its tree in
    /// (`swapped`), the tree swapped out (what `last` recorded), its root
    /// stamped again where it now is; else the spare `last` knew of.
    pub fn keep_spare(&mut self, out: &Path, last: Option<Record>, swapped: bool) {
        let Some(last) = last else { return };
        if !swapped {
            self.spare = last.spare;
            return;
        }
        let Some(spare) = fs::canonicalize(out).ok().and_then(|real| {
            let name = real.file_name()?.to_str()?;
            Some(super::spare_path(real.parent()?, name))
        }) else {
            return;
        };
        // Of its files, only the inode is needed (which the folder's
        // stamp vouches for): the rest is left out.
        let mut entries: Vec<Entry> = last
            .entries
            .into_iter()
            .map(|e| match e.folder() {
                true => e,
                false => Entry {
                    stamp: [e.stamp[0], e.stamp[1], 0, 0, 0, 0, 0, e.stamp[7]],
                    blake3: None,
                    racy: false,
                    ..e
                },
            })
            .collect();
        match (rustix::fs::lstat(&spare), entries.first_mut()) {
            (Ok(st), Some(root)) if root.path.is_empty() => {
                root.stamp = stamp(&st);
                // Moved just now: its listing is checked, not its times.
                root.racy = true;
                self.spare = Entry::lines(&entries);
            }
            _ => {}
        }
    }

    /// What the spare folder `spare` holds, when it is the tree this
    /// record says (every folder with its stamp, see [`Record::holds`]):
    /// each entry's path, and a file's inode (None for a folder, whose
    /// mode is the third).
    pub fn spare_listing(&self, spare: &Path) -> Option<super::spare::Listing> {
        let lines: Vec<&str> = self.spare.lines().collect();
        let entries = Entry::parse_tree(&lines)?;
        if !check(&entries, spare, false) {
            return None;
        }
        Some(
            entries
                .into_iter()
                .skip(1)
                .map(|e| {
                    let ino = (!e.folder()).then_some(e.stamp[1] as u64);
                    (e.path, ino, e.stamp[7] as u32)
                })
                .collect(),
        )
    }

    /// What the previous tree holds for the writer to reuse without
    /// reading it: each file's stamp and BLAKE3 (not the racy ones'). The
    /// writer reuses a file only while its stamp is this one.
    pub fn known(&self) -> super::Known<'_> {
        self.entries
            .iter()
            .filter(|e| !e.racy)
            .filter_map(|e| {
                let [stamp @ .., _mode] = e.stamp;
                Some((e.path.as_str(), (stamp, e.blake3.as_deref()?)))
            })
            .collect()
    }

    /// The number of files recorded.
    pub fn files(&self) -> usize {
        self.entries.iter().filter(|e| e.blake3.is_some()).count()
    }

    /// The number of folders recorded, the tree's own included, that have
    /// the tree's folder mode (a folder with another is not counted).
    pub fn folders(&self) -> usize {
        let mode = libc::S_IFDIR | super::DIR_MODE;
        self.entries
            .iter()
            .filter(|e| e.stamp[7] as u32 == mode)
            .count()
    }

    /// Whether the folder `out` holds no names but those this record
    /// lists: every folder (the tree's own too) still has its stamp (a
    /// racy one its entries). Says nothing of the files' bytes.
    pub fn listing_holds(&self, out: &Path) -> bool {
        check(&self.entries, out, false)
    }

    /// Whether `out` holds exactly what this record says was written
    /// there: every entry with its stamp (racy files with their bytes),
    /// and nothing else (no folder's times moved).
    pub fn holds(&self, out: &Path) -> bool {
        check(&self.entries, out, true)
    }

    /// The fingerprint the record of the last build into `out` gives,
    /// from its first lines alone: a hint, not checked (see
    /// [`Record::load`]).
    pub fn fingerprint_in(out: &Path) -> Option<String> {
        use std::io::BufRead;
        let path = place(out).filter(|p| trusted(p))?;
        let mut lines = io::BufReader::new(fs::File::open(path).ok()?).lines();
        (lines.next()?.ok()? == FIRST_LINE).then_some(())?;
        Some(
            lines
                .next()?
                .ok()?
                .strip_prefix("fingerprint ")?
                .to_string(),
        )
    }

    /// The record of the last build into `out`, if it can be read whole.
    pub fn load(out: &Path) -> Option<Record> {
        Self::load_at(&place(out)?, true)
    }

    /// [`Record::load`] without what it says of the spare (tens of MB at
    /// 100,000 machines): enough to tell whether the tree is as the last
    /// build left it ([`Record::holds`]), not to stage a build in the
    /// spare or to record one.
    pub fn load_tree(out: &Path) -> Option<Record> {
        Self::load_at(&place(out)?, false)
    }

    fn load_at(path: &Path, with_spare: bool) -> Option<Record> {
        if !trusted(path) {
            return None;
        }
        let text = fs::read_to_string(path).ok()?;
        let (body, sum) = text.rsplit_once("end ")?;
        if checksum(body) != sum.trim_end() {
            return None;
        }
        let mut head = body.splitn(5, '\n');
        (head.next()? == FIRST_LINE).then_some(())?;
        let fingerprint = head.next()?.strip_prefix("fingerprint ")?.to_string();
        let summary = serde_json::from_str(head.next()?.strip_prefix("summary ")?).ok()?;
        let diags = serde_json::from_str(head.next()?.strip_prefix("diags ")?).ok()?;
        // A line of its own (a path may end in the same word).
        let (tree, spare) = head.next()?.split_once(&format!("\n{SPARE_LINE}\n"))?;
        let lines: Vec<&str> = tree.lines().collect();
        let entries = Entry::parse_tree(&lines)?;
        let spare = match with_spare {
            true => spare.to_string(),
            false => String::new(),
        };
        Some(Record {
            fingerprint,
            summary,
            diags,
            entries,
            spare,
        })
    }

    /// Keeps the record for the next build into `out` (errors ignored: the
    /// next build is then a full one).
    pub fn save(&self, out: &Path) {
        let Some(path) = place(out) else { return };
        let _ = self.save_at(&path);
    }

    fn save_at(&self, path: &Path) -> io::Result<()> {
        let mut body = format!(
            "{FIRST_LINE}\nfingerprint {}\nsummary {}\ndiags {}\n",
            self.fingerprint,
            serde_json::to_string(&self.summary)?,
            serde_json::to_string(&self.diags)?,
        );
        body.push_str(&Entry::lines(&self.entries));
        body.push_str(SPARE_LINE);
        body.push('\n');
        body.push_str(&self.spare);
        let sum = checksum(&body);
        body.push_str(&format!("end {sum}\n"));
        // Only this user may write where records are kept (see `private`),
        // whatever the umask.
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::PermissionsExt;
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        crate::hashcache::write_record(path, &body)
    }
}

/// The BLAKE3 of a record's text (tens of MB for a large fleet: on all
/// cores).
fn checksum(body: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update_rayon(body.as_bytes());
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests;
