//! The iPXE chainloaders for tftp/ (`[ipxe] binaries`): each opened once,
//! beneath its folder, like every other input of a site.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::beneath::{OpenError, Opened, Root};
use crate::diag::{Diag, Diags, FileId, Lint, Loc};
use crate::model::S;
use crate::site::{IPXE_BINARIES, Ipxe};
use crate::validate::IPXE_SEARCH;

/// Where the system's iPXE packages put chainloaders: a binary of an
/// iPXE folder may be a symlink to one of these (Debian links
/// /usr/lib/ipxe/ipxe.efi to /boot/ipxe.efi), and to nothing else outside
/// its folder.
const SYSTEM_BOOT_DIRS: [&str; 3] = ["/boot", "/usr/lib/ipxe", "/usr/share/ipxe"];

/// Opens the iPXE binary `name` beneath `dir`: no symlink out of it, except
/// to a chainloader of the system (see [`SYSTEM_BOOT_DIRS`]).
fn open_binary(dir: &Root, name: &str) -> Result<Opened, OpenError> {
    match dir.open(Path::new(name)) {
        Err(OpenError::Escape(Some(to)))
            if SYSTEM_BOOT_DIRS
                .iter()
                .any(|d| to.parent() == Some(Path::new(d)))
                && to.extension().is_some_and(|e| {
                    ["efi", "kpxe", "kkpxe", "pxe", "lkrn"].contains(&&*e.to_string_lossy())
                }) =>
        {
            let parent = Root::new(to.parent().unwrap_or(Path::new("/"))).map_err(OpenError::Io)?;
            let file = to.file_name().map(Path::new).unwrap_or(Path::new(""));
            parent.open(file).map_err(|e| match e {
                OpenError::Escape(_) => OpenError::Escape(Some(to.clone())),
                e => e,
            })
        }
        r => r,
    }
}

/// The chainloaders of the configured folder, else of the first default
/// place that has any.
pub fn find(
    site_root: &Path,
    file: FileId,
    configured: Option<&S<String>>,
    diags: &mut Diags,
) -> Ipxe {
    // Each binary is opened beneath its folder (the configured one, else
    // the first default place that has any): a symlink may lead to another
    // file of it, or to a chainloader the system installed, nothing else.
    let dirs: Vec<PathBuf> = match configured {
        Some(c) => vec![site_root.join(c.get_ref())],
        None => IPXE_SEARCH.iter().map(PathBuf::from).collect(),
    };
    let errors = diags.list.len();
    for dir in &dirs {
        let Ok(root) = Root::new(dir) else {
            continue;
        };
        let mut binaries = BTreeMap::new();
        for b in IPXE_BINARIES {
            match open_binary(&root, b) {
                Ok(f) => {
                    binaries.insert(b.to_string(), Arc::new(f));
                }
                Err(OpenError::NotFound) => {}
                Err(e) => {
                    let d = match configured {
                        Some(c) => Diag::error(format!(
                            "iPXE binary {}/{b} cannot be used: {e}",
                            c.get_ref()
                        ))
                        .at(
                            Loc::new(file, c.span()),
                            "the iPXE binaries come from this folder",
                        ),
                        None => Diag::warning(
                            Lint::UnusableIpxeBinary,
                            format!("iPXE binary {}/{b} cannot be used: {e}", dir.display()),
                        ),
                    };
                    diags.push(d.help("the binaries must be regular files inside their folder (a symlink may point to another file of it, or to a chainloader of the system in /boot, /usr/lib/ipxe or /usr/share/ipxe; never elsewhere)"));
                }
            }
        }
        // Refused binaries have their errors: no "none found" on top.
        if !binaries.is_empty() || diags.list.len() > errors {
            let lkrn = open_binary(&root, LKRN).ok().map(Arc::new);
            return Ipxe { binaries, lkrn };
        }
    }
    let where_ = match configured {
        Some(p) => p.get_ref().clone(),
        None => IPXE_SEARCH.join(" or "),
    };
    diags.push(
        Diag::warning(Lint::NoIpxeBinaries, format!("no iPXE binaries ({}) in {where_}", IPXE_BINARIES.join(", ")))
            .at_opt(configured.map(|p| Loc::new(file, p.span())), "no chainloaders here")
            .help("install them (`apt install ipxe`) or set [ipxe] binaries = \"/path/to/ipxe\"; without them there is no tftp/ output"),
    );
    Ipxe {
        binaries: BTreeMap::new(),
        lkrn: None,
    }
}

/// iPXE as a Linux kernel: what ISOLINUX starts on the boot media.
const LKRN: &str = "ipxe.lkrn";
