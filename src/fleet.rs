//! Every machine compiled on its own, on all cores: resolved
//! ([`Resolver::machine`]) and its boot programs rendered by every loader
//! at once ([`loader::machine`]), its context freed right after; or taken
//! from a [`Reuse`] of an earlier compile of the same inputs (`bootc serve`
//! keeps one across rebuilds, so an edit of one machine compiles one).

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use rayon::prelude::*;

use crate::diag::{Diags, Sources};
use crate::loader::{self, Loader, Renderer};
use crate::plan::{ImagePlan, Resolved};
use crate::resolve::{BootPlan, Resolver};
use crate::site::{Machine, Site};
use crate::tree::Bytes;

/// Machines compiled before, by the key of everything they were compiled
/// from (see [`Inputs`]). Only machines compiled without a problem are
/// kept, and only those of the last compile.
#[derive(Default)]
pub struct Reuse {
    machines: HashMap<blake3::Hash, Arc<Done>>,
}

/// One machine compiled: its plan entry and its files (per-machine files
/// and boot programs: path in the tree, bytes).
#[derive(Clone)]
struct Done {
    resolved: Arc<Resolved>,
    files: Vec<(String, Bytes)>,
}

/// What became of one machine.
struct Outcome {
    /// What the fleet takes of it; None when it has no role or image
    /// (reported by validate).
    made: Option<Done>,
    diags: Diags,
    /// It in the [`Reuse`], by its key, if it is kept there.
    kept: Option<(blake3::Hash, Arc<Done>)>,
    /// Whether it was taken from the [`Reuse`].
    reused: bool,
}

/// The fleet compiled.
pub struct Fleet {
    /// The machines' plan entries, in the site's order.
    pub resolved: Vec<Arc<Resolved>>,
    /// Their files (none when not `keep`).
    pub files: Vec<(String, Bytes)>,
    /// How many were taken from the [`Reuse`].
    pub reused: usize,
}

/// Compiles every machine of `site` (`keep`: their files are kept, else
/// rendered for their problems only), taking those `reuse` holds with the
/// same inputs from it; `reuse` then holds this compile's machines.
#[allow(clippy::too_many_arguments)]
pub fn compile(
    site: &Site,
    sources: &Sources,
    resolver: &Resolver,
    boot: &BootPlan,
    loaders: &[&dyn Loader],
    r: Renderer,
    keep: bool,
    reuse: Option<&mut Reuse>,
    diags: &mut Diags,
) -> Fleet {
    let inputs = reuse.as_ref().map(|_| Inputs::new(site, sources, boot));
    let before = reuse.as_deref();
    // What the fleet takes of a machine kept in the reuse is a copy
    // (made here, on all cores).
    let outcomes: Vec<Outcome> = site
        .machines
        .par_iter()
        .map(|m| {
            let key = inputs.as_ref().map(|i| i.key(m));
            if let (Some(k), Some(before)) = (key, before)
                && let Some(done) = before.machines.get(&k)
            {
                return Outcome {
                    made: Some(Done::clone(done)),
                    diags: Diags::default(),
                    kept: Some((k, Arc::clone(done))),
                    reused: true,
                };
            }
            let (resolved, mut diags) = resolver.machine(m);
            let Some((resolved, mb)) = resolved else {
                return Outcome {
                    made: None,
                    diags,
                    kept: None,
                    reused: false,
                };
            };
            let (programs, d) = loader::machine(r, boot, loaders, &mb);
            diags.extend(d);
            let files = match keep {
                true => programs
                    .into_iter()
                    .chain(mb.files)
                    .map(|(path, text)| (path, Bytes::from(text.into_bytes())))
                    .collect(),
                false => Vec::new(),
            };
            let done = Done {
                resolved: Arc::new(resolved),
                files,
            };
            Outcome {
                kept: key
                    .filter(|_| diags.list.is_empty() && keep)
                    .map(|k| (k, Arc::new(done.clone()))),
                made: Some(done),
                diags,
                reused: false,
            }
        })
        .collect();
    let mut fleet = Fleet {
        resolved: Vec::with_capacity(outcomes.len()),
        files: Vec::new(),
        reused: 0,
    };
    let mut kept = HashMap::new();
    for o in outcomes {
        diags.extend(o.diags);
        fleet.reused += usize::from(o.reused);
        kept.extend(o.kept);
        if let Some(Done { resolved, files }) = o.made {
            fleet.resolved.push(resolved);
            fleet.files.extend(files);
        }
    }
    if let Some(reuse) = reuse {
        reuse.machines = kept;
    }
    fleet
}

/// What a machine's plan entry and files are made of besides the machine
/// itself: every source that is not a machines file (the site's settings,
/// roles, images, templates), what validation found outside them (the
/// artifacts' and loaders' hashes, the iPXE binaries present), the
/// site's settings a preview changes (base-url, allowed hosts), and what
/// the loaders derive from every machine (the site's view, where GRUB
/// configs go).
struct Inputs(blake3::Hasher);

impl Inputs {
    fn new(site: &Site, sources: &Sources, boot: &BootPlan) -> Inputs {
        let mut h = blake3::Hasher::new();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        let machine_files: std::collections::HashSet<_> = site
            .machines
            .iter()
            .map(|m| m.loc.file)
            .chain(site.reservations.iter().map(|r| r.loc.file))
            .collect();
        for id in sources.ids().filter(|id| !machine_files.contains(id)) {
            field(sources.name(id).as_bytes());
            field(sources.text(id).as_bytes());
        }
        for image in site.images.values() {
            field(&serde_json::to_vec(&ImagePlan::new(image)).unwrap_or_default());
        }
        for (name, f) in &site.uefi.loaders {
            field(format!("{name:?} {} {}", f.source.path.display(), f.blake3).as_bytes());
        }
        for (name, f) in &site.ipxe.binaries {
            field(format!("{name} {}", f.path.display()).as_bytes());
        }
        field(format!("{:?} {:?}", site.base_url, site.allowed_hosts).as_bytes());
        field(&serde_json::to_vec(&boot.site).unwrap_or_default());
        field(format!("{:?} {}", boot.grub, boot.arm64_grub).as_bytes());
        Inputs(h)
    }

    /// The key of machine `m` compiled from these inputs: every field but
    /// where it is written (which only its problems show, and a machine
    /// with a problem is not kept), so an edit of one machine leaves the
    /// keys of the others in its file as they are.
    fn key(&self, m: &Machine) -> blake3::Hash {
        let Machine {
            name,
            macs,
            ip,
            role,
            image,
            uuid,
            serial,
            reinstall,
            secure_boot,
            kernel_args,
            labels,
            vars,
            loc: _,
        } = m;
        let args: Vec<&str> = kernel_args.iter().map(|t| t.text.as_str()).collect();
        let mut h = self.0.clone();
        // Formatted straight into the hasher (it cannot fail).
        let _ = write!(
            h,
            "{name:?} {macs:?} {ip:?} {role:?} {image:?} {uuid:?} {serial:?} {reinstall:?} \
             {secure_boot:?} {args:?} {labels:?} {vars:?}"
        );
        h.finalize()
    }
}
