//! The artifacts of images: local files (found beneath an artifact root,
//! opened once and hashed from that descriptor) and remote or live URLs.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::{Ctx, loc};
use crate::beneath::{OpenError, Opened};
use crate::diag::{Diag, FileId, Loc};
use crate::model::{self, S};
use crate::site::*;

/// An artifact that passed its checks; a local one is opened but not yet
/// hashed. Images hold these until every image is known, then
/// [`hash_images`] makes each a complete [`Artifact`].
pub(super) enum Checked {
    Local {
        source: Arc<Opened>,
        path: String,
        file_name: String,
    },
    /// A remote or live artifact: complete already (a remote one with the
    /// place of its pin, for vendoring).
    Url(Artifact, Option<Loc>),
}

impl Checked {
    pub(super) fn file_name(&self) -> &str {
        match self {
            Checked::Local { file_name, .. } => file_name,
            Checked::Url(a, _) => a.file_name(),
        }
    }
}

/// Hashes the images' local artifacts (in parallel, each file once, from
/// the descriptor opened when it was checked) and completes the images. An
/// I/O error becomes a diagnostic naming the path, and the image whose
/// artifact could not be read is left out.
pub(super) fn hash_images(
    cx: &mut Ctx,
    images: BTreeMap<String, Image<Checked>>,
) -> BTreeMap<String, Image> {
    let mut files: BTreeMap<PathBuf, Arc<Opened>> = BTreeMap::new();
    for img in images.values() {
        for a in img.boot.artifacts() {
            if let Checked::Local { source, .. } = a {
                files.insert(source.path.clone(), source.clone());
            }
        }
    }
    let hashed = hash_files(files);
    let fetched = if cx.vendor || cx.online {
        fetch(cx, &images)
    } else {
        HashMap::new()
    };
    let mut table = HashMap::new();
    for (p, r) in hashed {
        match r {
            Ok(v) => {
                table.insert(p, v);
            }
            Err(e) => cx
                .diags
                .push(Diag::error(format!("cannot read {}: {e}", p.display()))),
        }
    }
    let complete = |a: Checked| match a {
        Checked::Local {
            source,
            path,
            file_name,
        } => {
            let (size, blake3) = table.get(&source.path)?.clone();
            Some(Artifact::Local {
                source,
                path,
                file_name,
                size,
                blake3,
            })
        }
        Checked::Url(a, _) => match fetched.get(a.location()) {
            // Not what its pin says, or not there: the image is left out.
            Some(None) => None,
            Some(Some((fetched, _))) => Some(fetched.clone()),
            None => Some(a),
        },
    };
    let complete: BTreeMap<String, Image> = images
        .into_iter()
        .filter_map(|(name, img)| {
            let boot = img.boot.try_map(&complete)?;
            let image = Image {
                name: img.name,
                description: img.description,
                boot,
                arch: img.arch,
                kernel_args: img.kernel_args,
                vars: img.vars,
                file: img.file,
            };
            Some((name, image))
        })
        .collect();
    // The downloads of artifacts that stay remote (`check --online`).
    let downloads = fetched
        .into_iter()
        .filter_map(|(url, got)| Some((url, got?.1?)))
        .collect();
    super::content::check(cx, &complete, &downloads);
    complete
}

/// Size and BLAKE3 of each file: from the hash cache, else hashed in
/// parallel, with a progress bar on a terminal when that is much.
fn hash_files(files: BTreeMap<PathBuf, Arc<Opened>>) -> Vec<(PathBuf, io::Result<(u64, String)>)> {
    let mut out = Vec::new();
    let mut todo = Vec::new();
    for (p, f) in files {
        match crate::hashcache::lookup(&f) {
            Some(h) => out.push((p, Ok(h))),
            None => todo.push((p, f)),
        }
    }
    let bar = crate::progress::bar(todo.iter().map(|(_, f)| f.size).sum());
    bar.set_message("hashing artifacts");
    out.par_extend(
        todo.into_par_iter()
            .map(|(p, f)| (p, crate::hashcache::hash_and_record(&f, |n| bar.inc(n)))),
    );
    bar.finish_and_clear();
    out
}

/// What [`fetch`] made of one remote artifact: as a local artifact opened
/// from the cache when vendored, else as it was with its download.
type Fetched = (Artifact, Option<Arc<Opened>>);

/// `[site] vendor` and `check --online`: each pinned remote artifact of
/// `images` from the cache (vendor), else (online: always) downloaded in
/// parallel and checked against its pin, by URL. A failed download or a
/// mismatch is an error at the pin, and its URL maps to None.
fn fetch(
    cx: &mut Ctx,
    images: &BTreeMap<String, Image<Checked>>,
) -> HashMap<String, Option<Fetched>> {
    let mut remote: BTreeMap<&str, (&Artifact, &Option<Loc>)> = BTreeMap::new();
    for img in images.values() {
        for a in img.boot.artifacts() {
            if let Checked::Url(r @ Artifact::Remote { url, .. }, at) = a {
                remote.entry(url.as_str()).or_insert((r, at));
            }
        }
    }
    let got: Vec<_> = remote
        .into_par_iter()
        .map(|(url, (a, at))| (url, a, at, fetch_one(a, cx.online, cx.vendor)))
        .collect();
    let mut out = HashMap::new();
    for (url, a, at, r) in got {
        let done = match r {
            Ok(local) => Some(local),
            Err(e) => {
                let what = match &e {
                    crate::fetch::FetchError::Mismatch { .. } => "does not match its pin",
                    _ => "could not be downloaded",
                };
                let d = Diag::error(format!("remote artifact `{url}` {what}"));
                cx.diags.push(
                    d.at_opt(at.clone(), e.to_string())
                        .help("the file at the URL is checked against its pin (`[site] vendor = true`, `check --online`): fix the pin or the mirror (`bootc pin URL` prints the pin of what the URL serves now)"),
                );
                None
            }
        };
        out.insert(a.location().to_string(), done);
    }
    out
}

/// One remote artifact, checked against its pin: the cached file (`fresh`:
/// downloaded again whatever the cache holds), opened. Vendored, it becomes
/// a local artifact hashed from the cache; otherwise (`check --online`
/// only) it stays what it was, and the download is returned beside it for
/// the checks of its bytes.
fn fetch_one(a: &Artifact, fresh: bool, vendor: bool) -> Result<Fetched, crate::fetch::FetchError> {
    let Some((algorithm, hex)) = a.pin() else {
        unreachable!("remote artifacts are pinned")
    };
    let pin = crate::fetch::Pin {
        algorithm,
        hex: hex.to_string(),
    };
    let path = crate::fetch::vendored(a.location(), &pin, fresh)?;
    let cache = |error| crate::fetch::FetchError::Cache {
        path: path.clone(),
        error,
    };
    let source = crate::beneath::open_anywhere(&path).map_err(|e| match e {
        OpenError::Io(e) => cache(e),
        e => cache(io::Error::other(e.to_string())),
    })?;
    let source = Arc::new(source);
    if !vendor {
        return Ok((a.clone(), Some(source)));
    }
    let (size, blake3) = crate::hashcache::hash(&source).map_err(cache)?;
    let local = Artifact::Local {
        source,
        path: a.location().to_string(),
        file_name: a.file_name().to_string(),
        size,
        blake3,
    };
    Ok((local, None))
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks one artifact. `live_ok`: an unpinned URL is allowed (chain targets
/// are boot services, not files).
pub(super) fn artifact(
    cx: &mut Ctx,
    file: FileId,
    a: &S<model::Artifact>,
    live_ok: bool,
) -> Option<Checked> {
    let al = loc(file, a);
    let a = a.get_ref();
    match (&a.path, &a.url) {
        (Some(_), Some(u)) => {
            cx.diags.push(
                Diag::error("an artifact has either `path` or `url`, not both")
                    .at(loc(file, u), "second source")
                    .help(
                        "use path for a local file, url (with sha256 or blake3) for a remote one",
                    ),
            );
            None
        }
        (None, None) => {
            cx.diags.push(
                Diag::error("an artifact needs `path` or `url`")
                    .at(al, "no source")
                    .help("write { path = \"artifacts/…\" } or { url = \"https://…\", sha256 = \"…\" }"),
            );
            None
        }
        (Some(p), None) => {
            for pin in [&a.sha256, &a.blake3].into_iter().flatten() {
                cx.diags.push(
                    Diag::error("local artifacts are not pinned by hand")
                        .at(loc(file, pin), "remove this")
                        .help(
                            "bootc hashes local files itself (BLAKE3) and names them by that hash",
                        ),
                );
            }
            local_artifact(cx, file, p)
        }
        (None, Some(u)) => remote(cx, file, a, u, live_ok).map(|(a, pin)| Checked::Url(a, pin)),
    }
}

/// A remote artifact: an http(s) URL, pinned by one hash unless `live_ok`.
fn remote(
    cx: &mut Ctx,
    file: FileId,
    a: &model::Artifact,
    u: &S<String>,
    live_ok: bool,
) -> Option<(Artifact, Option<Loc>)> {
    let url = u.get_ref();
    let ul = loc(file, u);
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok {
        cx.diags.push(
            Diag::error(format!("artifact URL `{url}` is not http or https"))
                .at(ul.clone(), "unsupported scheme")
                .help("iPXE fetches artifacts over http:// or https://; for a local file use path = \"…\""),
        );
        return None;
    }
    if let Some(why) = crate::url::problem(url) {
        cx.diags.push(
            Diag::error("artifact URL cannot be written into an iPXE script").at(ul.clone(), why),
        );
        return None;
    }
    // A boot reaches the URL, and iPXE fetches it, unless the artifact is
    // vendored (a chain target, a live service, always).
    let vendored = cx.vendor && (a.sha256.is_some() || a.blake3.is_some());
    if let (Some(allowed), Some(host)) = (&cx.allowed, crate::hosts::host_of(url))
        && !allowed.permits(&host)
        && !vendored
    {
        cx.diags.push(
            Diag::error(format!("`{url}` reaches {host}, which is not in allowed-hosts"))
                .at(ul.clone(), "a host outside the site")
                .help("add the host to [site] allowed-hosts, use a mirror that is, or vendor the artifact ([site] vendor = true)"),
        );
        return None;
    }
    if !vendored {
        super::features::check_url(cx, url, ul.clone(), super::features::ARTIFACT_HELP);
    }
    let path_part = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = path_part.split_once("://").map(|x| x.1).unwrap_or("");
    let path_part = if after_scheme.contains('/') {
        path_part
    } else {
        ""
    };
    let file_name = path_part.rsplit('/').next().unwrap_or("").to_string();
    let pins: Vec<&S<String>> = [&a.sha256, &a.blake3].into_iter().flatten().collect();
    if pins.is_empty() {
        if live_ok {
            return Some((Artifact::Live { url: url.clone() }, None));
        }
        cx.diags.push(
            Diag::error(format!("remote artifact `{url}` is not pinned"))
                .at(ul, "no sha256 or blake3")
                .help("add sha256 = \"…\" (or blake3 = \"…\") so a changed file on the mirror cannot change what boots"),
        );
        return None;
    }
    if pins.len() > 1 {
        cx.diags.push(
            Diag::error("give one pin, sha256 or blake3, not both")
                .at(loc(file, pins[1]), "second pin"),
        );
        return None;
    }
    let pin = pins[0];
    if !is_hex64(pin.get_ref()) {
        let kind = if a.sha256.is_some() {
            "sha256"
        } else {
            "blake3"
        };
        cx.diags.push(Diag::error(format!("invalid {kind} pin")).at(
            loc(file, pin),
            format!(
                "{} characters; a {kind} is 64 hex digits",
                pin.get_ref().len()
            ),
        ));
        return None;
    }
    if file_name.is_empty() {
        cx.diags.push(
            Diag::error(format!("artifact URL `{url}` names no file")).at(ul, "ends with '/'"),
        );
        return None;
    }
    if let Some(help) = crate::url::file_name_problem(&file_name) {
        cx.diags.push(
            Diag::error(format!(
                "artifact file name `{file_name}` cannot be used in a URL"
            ))
            .at(ul, "unsafe file name")
            .help(help),
        );
        return None;
    }
    let pin_at = loc(file, pin);
    Some((
        Artifact::Remote {
            url: url.clone(),
            file_name,
            sha256: a.sha256.as_ref().map(|s| s.get_ref().to_ascii_lowercase()),
            blake3: a.blake3.as_ref().map(|s| s.get_ref().to_ascii_lowercase()),
        },
        Some(pin_at),
    ))
}

/// A local artifact: a file beneath an artifact root, opened once, with a
/// file name that can go into a URL.
pub(super) fn local_artifact(cx: &mut Ctx, file: FileId, p: &S<String>) -> Option<Checked> {
    let written = p.get_ref();
    let pl = loc(file, p);
    let path = cx.loaded.root.join(written);
    // Resolved in user space to find its artifact root, then opened once
    // beneath that root: what was checked is what is hashed and copied.
    let canonical = match path.canonicalize() {
        Ok(c) => c,
        Err(_) => {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` does not exist"))
                    .at(pl, "no such file")
                    .help("put the file there (artifacts/ is often kept out of git and filled by a script), or fix the path"),
            );
            return None;
        }
    };
    let source = open_local(cx, written, &pl, &canonical)?;
    let file_name = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name_in_path = Path::new(written)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(file_name);
    if let Some(help) = crate::url::file_name_problem(&name_in_path) {
        cx.diags.push(
            Diag::error(format!(
                "artifact file name `{name_in_path}` cannot be used in a URL"
            ))
            .at(pl, "unsafe file name")
            .help(format!("rename it: {help}")),
        );
        return None;
    }
    Some(Checked::Local {
        source,
        path: written.clone(),
        file_name: name_in_path,
    })
}

/// Opens the local artifact at `canonical` beneath its artifact root (or
/// takes it from those opened already: each file is opened once).
fn open_local(cx: &mut Ctx, written: &str, pl: &Loc, canonical: &Path) -> Option<Arc<Opened>> {
    let Some(root) = cx
        .artifact_roots
        .iter()
        .position(|r| canonical.starts_with(r.path()))
    else {
        if !canonical.is_file() {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` is not a regular file"))
                    .at(pl.clone(), "not a file"),
            );
        } else {
            outside(cx, written, pl, canonical);
        }
        return None;
    };
    if let Some(f) = cx.opened.get(canonical) {
        return Some(f.clone());
    }
    let r = &cx.artifact_roots[root];
    let rel = canonical.strip_prefix(r.path()).unwrap_or(canonical);
    // Hidden files and folders are never artifacts: with the default root
    // (the whole site) `.git/config` holds CI credentials, `.bootc-serve`
    // the preview's tree.
    if let Some(hidden) = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .find(|c| c.starts_with('.'))
    {
        cx.diags.push(
            Diag::error(format!("local artifact `{written}` is inside the hidden `{hidden}`"))
                .at(pl.clone(), "hidden file or folder")
                .help("files and folders whose name starts with '.' (.git, .bootc-serve, …) are never published; move the artifact to artifacts/"),
        );
        return None;
    }
    match r.open(rel) {
        Ok(f) => {
            let f = Arc::new(f);
            cx.opened.insert(canonical.to_path_buf(), f.clone());
            Some(f)
        }
        Err(OpenError::Escape(to)) => {
            outside(cx, written, pl, to.as_deref().unwrap_or(canonical));
            None
        }
        Err(OpenError::NotRegular(what)) => {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` is not a regular file")).at(
                    pl.clone(),
                    if what == "a folder" {
                        "not a file".to_string()
                    } else {
                        format!("{what}, not a file")
                    },
                ),
            );
            None
        }
        Err(e) => {
            cx.diags.push(
                Diag::error(format!("local artifact `{written}` cannot be read: {e}"))
                    .at(pl.clone(), "unreadable"),
            );
            None
        }
    }
}

/// Reports a local artifact that resolves `to` a place outside every
/// artifact root.
fn outside(cx: &mut Ctx, written: &str, pl: &Loc, to: &Path) {
    let roots = cx
        .artifact_roots
        .iter()
        .map(|r| cx.shown(r.path()))
        .collect::<Vec<_>>()
        .join(", ");
    cx.diags.push(
        Diag::error(format!("local artifact `{written}` is outside every artifact root"))
            .at(pl.clone(), format!("resolves to {}", cx.shown(to)))
            .help(format!("artifact roots: {roots}; add a root to [site] artifact-roots if this file is meant to be public")),
    );
}
