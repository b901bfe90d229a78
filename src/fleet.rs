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
        .map_init(Fields::default, |f, m| {
            let key = inputs.as_ref().map(|i| i.key(m, f));
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
    let files = outcomes
        .iter()
        .map(|o| o.made.as_ref().map_or(0, |d| d.files.len()))
        .sum();
    let mut fleet = Fleet {
        resolved: Vec::with_capacity(outcomes.len()),
        files: Vec::with_capacity(files),
        reused: 0,
    };
    let mut kept = HashMap::with_capacity(outcomes.len());
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
/// configs go): hashed once.
struct Inputs(blake3::Hash);

impl Inputs {
    fn new(site: &Site, sources: &Sources, boot: &BootPlan) -> Inputs {
        let mut f = Fields::default();
        let machine_files: std::collections::HashSet<_> = site
            .machines
            .iter()
            .map(|m| m.loc.file)
            .chain(site.reservations.iter().map(|r| r.loc.file))
            .collect();
        for id in sources.ids().filter(|id| !machine_files.contains(id)) {
            f.str(sources.name(id));
            f.str(sources.text(id));
        }
        for image in site.images.values() {
            f.bytes(&serde_json::to_vec(&ImagePlan::new(image)).unwrap_or_default());
        }
        for (name, l) in &site.uefi.loaders {
            f.debug(format_args!(
                "{name:?} {} {}",
                l.source.path.display(),
                l.blake3
            ));
        }
        for (name, b) in &site.ipxe.binaries {
            f.debug(format_args!("{name} {}", b.path.display()));
        }
        f.debug(format_args!("{:?} {:?}", site.base_url, site.allowed_hosts));
        f.bytes(&serde_json::to_vec(&boot.site).unwrap_or_default());
        f.debug(format_args!("{:?} {}", boot.grub, boot.arm64_grub));
        Inputs(blake3::hash(&f.0))
    }

    /// The key of machine `m` compiled from these inputs: every field but
    /// where it is written (which only its problems show, and a machine
    /// with a problem is not kept), so an edit of one machine leaves the
    /// keys of the others in its file as they are. `f`: a buffer to
    /// encode it in (one per thread).
    fn key(&self, m: &Machine, f: &mut Fields) -> blake3::Hash {
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
        f.0.clear();
        f.bytes(self.0.as_bytes());
        f.str(name);
        f.count(macs.len());
        for mac in macs {
            f.bytes(&mac.0);
        }
        f.opt(ip.map(|ip| ip.octets()).as_ref().map(|o| &o[..]));
        f.str(role);
        for s in [image, uuid, serial, reinstall] {
            f.opt(s.as_deref().map(str::as_bytes));
        }
        f.opt(secure_boot.map(|b| [u8::from(b)]).as_ref().map(|b| &b[..]));
        f.count(kernel_args.len());
        for arg in kernel_args {
            f.str(&arg.text);
        }
        f.count(labels.len());
        for (k, v) in labels.iter() {
            f.str(k);
            f.str(v);
        }
        // Mostly none; a value's Debug form is complete.
        match vars.is_empty() {
            true => f.count(0),
            false => f.debug(format_args!("{vars:?}")),
        }
        blake3::hash(&f.0)
    }
}

/// Fields encoded one after another, each told apart from the next by its
/// length (or, for a list, its count) written before it.
#[derive(Default)]
struct Fields(Vec<u8>);

impl Fields {
    fn count(&mut self, n: usize) {
        self.0.extend_from_slice(&(n as u64).to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.count(b.len());
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// None, then Some of each value, are told apart.
    fn opt(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.bytes(b);
            }
        }
    }

    /// A value's text form: its length is known once it is written.
    fn debug(&mut self, args: std::fmt::Arguments) {
        let at = self.0.len();
        self.count(0);
        let _ = self.0.write_fmt(args);
        let n = (self.0.len() - at - 8) as u64;
        self.0[at..at + 8].copy_from_slice(&n.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use super::*;
    use crate::diag::Loc;
    use crate::site::{Mac, Tpl};

    fn machine() -> Machine {
        Machine {
            name: "m1".into(),
            macs: vec![Mac([0x52, 0x54, 0, 0, 0, 1])],
            ip: Some([10, 0, 0, 1].into()),
            role: "worker".into(),
            image: None,
            uuid: None,
            serial: Some("s1".into()),
            reinstall: None,
            secure_boot: None,
            kernel_args: vec![Tpl {
                text: "quiet".into(),
                loc: Loc::new(0, 0..5),
            }],
            labels: Arc::new(BTreeMap::from([("rack".into(), "r1".into())])),
            vars: Default::default(),
            loc: Loc::new(0, 0..10),
        }
    }

    #[test]
    fn a_machine_key_changes_with_every_field_and_not_with_its_place() {
        let inputs = Inputs(blake3::hash(b"site"));
        let mut f = Fields::default();
        let key = |m: &Machine, f: &mut Fields| inputs.key(m, f);
        let edits: Vec<fn(&mut Machine)> = vec![
            |m| m.name = "m2".into(),
            |m| m.macs.push(Mac([0x52, 0x54, 0, 0, 0, 2])),
            |m| m.ip = None,
            |m| m.role = "storage".into(),
            |m| m.image = Some("debian".into()),
            |m| m.uuid = Some(String::new()),
            |m| m.serial = None,
            |m| m.reinstall = Some("t1".into()),
            |m| m.secure_boot = Some(false),
            |m| m.kernel_args[0].text = "quiet2".into(),
            |m| m.kernel_args.clear(),
            |m| {
                Arc::make_mut(&mut m.labels).insert("zone".into(), "a".into());
            },
            |m| {
                m.vars.insert("disk".into(), toml::Value::from("sda"));
            },
            // One field's bytes moved into the next one's.
            |m| {
                m.name = "m1w".into();
                m.role = "orker".into();
            },
        ];
        let mut seen = HashSet::from([key(&machine(), &mut f)]);
        for (i, edit) in edits.iter().enumerate() {
            let mut m = machine();
            edit(&mut m);
            assert!(seen.insert(key(&m, &mut f)), "edit {i} kept the key");
        }
        let mut moved = machine();
        moved.loc = Loc::new(3, 40..50);
        moved.kernel_args[0].loc = Loc::new(3, 45..50);
        assert_eq!(key(&moved, &mut f), key(&machine(), &mut f));
        let other = Inputs(blake3::hash(b"site2"));
        assert_ne!(other.key(&machine(), &mut f), key(&machine(), &mut f));
    }
}
