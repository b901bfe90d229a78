//! Every file of a tree gets mode 0644 and every folder 0755, whatever
//! the umask. Where the umask (and any default ACL) leaves those modes as
//! they are, a file or folder is created with its mode and nothing more;
//! elsewhere a chmod follows each. Probed once per staging folder: at a
//! large fleet's 300,000 entries, a chmod each was a third of the
//! syscalls of a write.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{DIR_MODE, FILE_MODE, WriteError, err};

/// How new entries of one staging folder get the tree's modes.
#[derive(Clone, Copy, Debug)]
pub struct Modes {
    /// A chmod after each creation (the umask or an ACL would change the
    /// mode asked for).
    chmod: bool,
}

impl Modes {
    /// Creates a probe folder and file in `staging` (whose own mode is
    /// set already) and sees which modes they got. Any failure: chmod.
    pub fn probe(staging: &Path) -> Modes {
        let dir = staging.join(".bootc-mode-probe");
        let file = staging.join(".bootc-mode-probe-file");
        let kept = fs::create_dir(&dir).is_ok()
            && fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&file)
                .is_ok()
            && mode_of(&dir) == Some(DIR_MODE)
            && mode_of(&file) == Some(FILE_MODE);
        let _ = fs::remove_dir(&dir);
        let _ = fs::remove_file(&file);
        Modes { chmod: !kept }
    }

    /// Gives the file just created at `path` (open as `f`) the tree's
    /// file mode, if it needs it.
    pub fn file(self, f: &fs::File, path: &Path) -> Result<(), WriteError> {
        match self.chmod {
            // On the descriptor: the umask applies to open's mode, not to
            // fchmod.
            true => f
                .set_permissions(fs::Permissions::from_mode(FILE_MODE))
                .map_err(err(path)),
            false => Ok(()),
        }
    }

    /// Creates the folder `full` with the tree's folder mode.
    pub fn folder(self, full: &Path) -> Result<(), WriteError> {
        fs::create_dir(full).map_err(err(full))?;
        match self.chmod {
            true => set_mode(full, DIR_MODE),
            false => Ok(()),
        }
    }

    /// Creates `folders` (relative, parents before children) in
    /// `staging`: one depth at a time, each on all cores.
    pub fn folders(self, staging: &Path, folders: &[PathBuf]) -> Result<(), WriteError> {
        let mut by_depth: BTreeMap<usize, Vec<&PathBuf>> = BTreeMap::new();
        for d in folders {
            by_depth.entry(d.components().count()).or_default().push(d);
        }
        by_depth.values().try_for_each(|level| {
            level
                .par_iter()
                .try_for_each(|d| self.folder(&staging.join(d)))
        })
    }
}

/// `path`'s permission bits (not through a symlink).
fn mode_of(path: &Path) -> Option<u32> {
    fs::symlink_metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

pub fn set_mode(path: &Path, mode: u32) -> Result<(), WriteError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(err(path))
}
