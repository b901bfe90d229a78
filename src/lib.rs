//! bootc: a declarative GitOps boot-config compiler, as a library.
//!
//! The pipeline, each stage consuming the previous stage's value and never
//! importing a later stage:
//!
//! ```text
//! load (files, TOML)  ->  validate (a complete Site)  ->  resolve (a Plan)
//!     ->  render (a Tree: every output file in memory)  ->  write (atomic)
//! ```
//!
//! [`compile`] runs the first four; `write::write` puts a tree on disk. The
//! command line (`src/main.rs`, `src/cli.rs`, `src/commands/`) is a thin
//! layer on top that nothing here imports. ARCHITECTURE.md says where
//! things go.

pub mod beneath;
pub mod binaries;
pub mod boottest;
pub mod byname;
pub mod chain;
pub mod context;
pub mod dhcp;
pub mod diag;
pub mod diff;
pub mod escape;
pub mod fetch;
pub mod fleet;
pub mod grub;
pub mod hashcache;
pub mod hosts;
pub mod import;
pub mod ipxe;
pub mod load;
pub mod loader;
pub mod manifest;
pub mod media;
pub mod model;
pub mod net;
pub mod pe;
pub mod plan;
pub mod progress;
pub mod reference;
pub mod render;
pub mod resolve;
pub mod serve;
pub mod sign;
pub mod site;
pub mod sniff;
pub mod status;
pub mod templates;
pub mod tomlde;
pub mod tree;
pub mod url;
pub mod validate;
pub mod verify;
pub mod write;

use std::path::Path;

use diag::{Diags, Sources};
use resolve::{Plan, Resolver};
use site::Site;
use templates::Templates;
use tree::Tree;

/// The outcome of compiling a site in memory: a [`Build`], or what
/// [`stage`] makes of it first, a [`Staged`] build.
pub enum Compiled<T = Build> {
    /// The site has errors: nothing may be written. `diags` holds them (and
    /// any warnings), `sources` the text they point into.
    Invalid { sources: Sources, diags: Diags },
    /// A complete tree, ready to write; `diags` holds only warnings.
    Built(Box<T>),
}

/// A site compiled without errors: every stage's value.
pub struct Build {
    pub sources: Sources,
    pub site: Site,
    pub plan: Plan,
    pub tree: Tree,
    /// The manifest's build-id (empty under [`Options::problems_only`],
    /// which makes no manifest).
    pub build_id: String,
    pub diags: Diags,
    /// The boot image [`Options::image`] asked for.
    pub image: Option<Vec<u8>>,
    /// How many machines were taken from a [`fleet::Reuse`].
    pub reused: usize,
}

/// A site compiled up to its machines, without errors so far ([`stage`]):
/// its tree holds every file but the summaries of the whole fleet (the
/// DHCP configurations, plan.json, the report and its machine index, the
/// manifest), which [`Staged::finish`] renders. `bootc serve` serves a
/// staged build's files while it finishes.
pub struct Staged {
    pub sources: Sources,
    pub site: Site,
    pub plan: Plan,
    /// The machines' boot programs and files, the loaders' other programs,
    /// the artifacts and the boot image.
    pub tree: Tree,
    /// Warnings only.
    pub diags: Diags,
    /// How many machines were taken from a [`fleet::Reuse`].
    pub reused: usize,
    templates: Templates,
    image: Option<Vec<u8>>,
}

/// What [`compile`] makes besides the tree.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Make http/media/boot.iso when the site has `[media]` (build, serve;
    /// not check, diff or explain, which never need the image).
    pub media: bool,
    /// Also make one boot image apart from the tree (`bootc media`).
    pub image: Option<ImageFor>,
    /// Download every remote artifact again (never from the cache) and
    /// check it against its pin (`check --online`).
    pub online: bool,
    /// Web-server logs whose fleet state the report shows (`build
    /// --access-log`, SPEC section 13).
    pub access_logs: Vec<std::path::PathBuf>,
    /// Build as if `[site] base-url` were this URL (a valid http(s) URL),
    /// its host allowed: `bootc serve`, so a preview's absolute URLs point
    /// at the preview.
    pub base_url: Option<String>,
    /// Only what can find a problem (`bootc check`): the tree has no boot
    /// programs, per-machine files, plan.json, machine index or manifest
    /// (rendering them is what can fail, not holding them), so it must not
    /// be written.
    pub problems_only: bool,
}

/// Which boot image (SPEC section 9).
#[derive(Clone, Debug)]
pub enum ImageFor {
    /// The generic one: DHCP on every card.
    Generic,
    /// This machine's, with its static address.
    Machine(String),
}

/// What stops a compile before it can say whether the site is valid.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error(transparent)]
    Media(#[from] media::MediaError),
    #[error("the site has no machine named `{0}`{1}")]
    NoSuchMachine(String, String),
    #[error("reading the access logs: {0}")]
    AccessLog(std::io::Error),
}

impl Compiled {
    /// The problems found, whichever the outcome.
    pub fn diags(&self) -> &Diags {
        match self {
            Compiled::Invalid { diags, .. } => diags,
            Compiled::Built(b) => &b.diags,
        }
    }

    pub fn sources(&self) -> &Sources {
        match self {
            Compiled::Invalid { sources, .. } => sources,
            Compiled::Built(b) => &b.sources,
        }
    }
}

/// Runs the pipeline up to an in-memory tree: load -> validate -> resolve
/// -> render. Every stage runs as far as the previous one left something
/// usable, so one run reports every problem.
pub fn compile(root: &Path, opts: &Options) -> Result<Compiled, Error> {
    compile_checked(check(root, opts)?, opts)
}

/// A site loaded and validated: the first two stages of [`compile`].
pub struct Checked {
    pub sources: Sources,
    /// None when validation found errors (they are in `diags`).
    pub site: Option<Site>,
    pub diags: Diags,
}

/// Load and validate (rebased when [`Options::base_url`] asks).
pub fn check(root: &Path, opts: &Options) -> Result<Checked, Error> {
    check_reusing(root, opts, None)
}

/// [`check`], taking the machine files `parsed` holds with the same text
/// from it (see [`load::load_reusing`]).
pub fn check_reusing(
    root: &Path,
    opts: &Options,
    parsed: Option<&mut load::Parsed>,
) -> Result<Checked, Error> {
    let (loaded, mut diags) = load::load_reusing(root, parsed)?;
    let (mut site, vdiags) = validate::validate(&loaded, opts.online);
    diags.extend(vdiags);
    if let (Some(site), Some(url)) = (&mut site, &opts.base_url) {
        site.rebase(url);
    }
    Ok(Checked {
        sources: loaded.sources,
        site,
        diags,
    })
}

/// [`compile`] from a [`check`]ed site: resolve and render.
pub fn compile_checked(checked: Checked, opts: &Options) -> Result<Compiled, Error> {
    compile_reusing(checked, opts, None)
}

/// [`compile_checked`], taking the machines `reuse` holds (compiled
/// before from the same inputs) from it instead of compiling them again;
/// `reuse` then holds this compile's machines.
pub fn compile_reusing(
    checked: Checked,
    opts: &Options,
    reuse: Option<&mut fleet::Reuse>,
) -> Result<Compiled, Error> {
    match stage(checked, opts, reuse)? {
        Compiled::Built(staged) => staged.finish(opts),
        Compiled::Invalid { sources, diags } => Ok(Compiled::Invalid { sources, diags }),
    }
}

/// The first part of [`compile_reusing`]: resolve every machine and render
/// its files, the loaders' other programs and the boot images, and place
/// the artifacts; [`Staged::finish`] does the rest.
pub fn stage(
    checked: Checked,
    opts: &Options,
    reuse: Option<&mut fleet::Reuse>,
) -> Result<Compiled<Staged>, Error> {
    let Checked {
        sources,
        site,
        mut diags,
    } = checked;
    let Some(site) = site else {
        diags.sort();
        return Ok(Compiled::Invalid { sources, diags });
    };
    let mut templates = Templates::new(&site, &sources, &mut diags);
    let resolver = Resolver::new(&site, &sources, &mut templates, &mut diags);
    let boot = resolver.boot_plan(&mut diags);
    let loaders = loader::for_plan(&boot);
    let r = loader::Renderer {
        templates: resolver.templates(),
        sources: &sources,
    };
    let keep = !opts.problems_only;
    // Each machine resolved and its programs rendered at once, its context
    // freed right after (not `keep`: its files are not held either).
    let machines = fleet::compile(
        &site, &sources, &resolver, &boot, &loaders, r, keep, reuse, &mut diags,
    );
    let plan = resolver.plan(machines.resolved);
    let reused = machines.reused;
    let mut files = machines.files;
    let common = loader::common(r, &boot, &loaders, &mut diags);
    if keep {
        files.extend(
            common
                .into_iter()
                .map(|(path, text)| (path, text.into_bytes().into())),
        );
    }
    // The images and the artifacts: only for a site without errors (they
    // take a while).
    let mut images = MediaImages::default();
    if !diags.has_errors() {
        images = media_images(&site, &plan, r, opts, &mut diags)?;
    }
    let tree = (!diags.has_errors())
        .then(|| render::files(&site, &plan, boot.grub.tftp, files, &mut diags));
    diags.allow(&site.allow);
    let Some(mut tree) = tree.filter(|_| !diags.has_errors()) else {
        diags.sort();
        return Ok(Compiled::Invalid { sources, diags });
    };
    if let Some(iso) = images.in_tree {
        tree.add(media::GENERIC_PATH, iso);
    }
    drop(resolver);
    Ok(Compiled::Built(Box::new(Staged {
        sources,
        site,
        plan,
        tree,
        diags,
        reused,
        templates,
        image: images.apart,
    })))
}

impl Staged {
    /// Renders the summaries of the whole fleet into the tree (the DHCP
    /// configurations, plan.json, the report and its machine index) and
    /// seals it with the manifest, the last file of a build.
    pub fn finish(self, opts: &Options) -> Result<Compiled, Error> {
        let Staged {
            sources,
            site,
            plan,
            mut tree,
            mut diags,
            reused,
            templates,
            image,
        } = self;
        let fleet = match opts.access_logs.as_slice() {
            [] => None,
            logs => Some(status::scan(&plan, logs, &[]).map_err(Error::AccessLog)?),
        };
        let r = loader::Renderer {
            templates: &templates,
            sources: &sources,
        };
        let extras = render::Extras {
            fleet: fleet.as_ref(),
            problems_only: opts.problems_only,
        };
        render::summaries(&site, r, &plan, extras, &mut tree, &mut diags);
        let build_id = match opts.problems_only {
            true => String::new(),
            false => render::seal(&site, &mut tree),
        };
        diags.allow(&site.allow);
        diags.sort();
        if diags.has_errors() {
            return Ok(Compiled::Invalid { sources, diags });
        }
        Ok(Compiled::Built(Box::new(Build {
            sources,
            site,
            plan,
            tree,
            build_id,
            diags,
            image,
            reused,
        })))
    }
}

/// The boot images [`Options`] asked for.
#[derive(Default)]
struct MediaImages {
    /// http/media/boot.iso
    in_tree: Option<Vec<u8>>,
    /// [`Build::image`]
    apart: Option<Vec<u8>>,
}

/// The boot images `opts` asks for: the generic one for the tree (when
/// the site has `[media]`), and the one apart from it. A site problem
/// (a machine without a static address, a template) goes to `diags`.
fn media_images(
    site: &Site,
    plan: &Plan,
    r: loader::Renderer,
    opts: &Options,
    diags: &mut Diags,
) -> Result<MediaImages, Error> {
    let in_tree = match &site.media {
        Some(m) if opts.media => media::make(site, plan, r, None, m.pad_to, diags)?,
        // Checked all the same: the embedded programs' templates.
        Some(_) => {
            if let Err(d) = media::prepare(site, plan, r, None) {
                diags.extend(d);
            }
            None
        }
        None => None,
    };
    let pad_to = site.media.as_ref().map_or(0, |m| m.pad_to);
    let apart = match &opts.image {
        None => None,
        Some(ImageFor::Generic) => media::make(site, plan, r, None, pad_to, diags)?,
        Some(ImageFor::Machine(name)) => {
            let Some(m) = site.machines.iter().find(|m| &m.name == name) else {
                let hint = diag::did_you_mean(name, site.machines.iter().map(|m| m.name.as_str()))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                return Err(Error::NoSuchMachine(name.clone(), hint));
            };
            media::make(site, plan, r, Some(m), pad_to, diags)?
        }
    };
    Ok(MediaImages { in_tree, apart })
}
