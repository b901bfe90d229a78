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
pub mod chain;
pub mod context;
pub mod dhcp;
pub mod diag;
pub mod diff;
pub mod escape;
pub mod grub;
pub mod ipxe;
pub mod load;
pub mod loader;
pub mod manifest;
pub mod model;
pub mod pe;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod serve;
pub mod sign;
pub mod site;
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

/// The outcome of compiling a site in memory.
pub enum Compiled {
    /// The site has errors: nothing may be written. `diags` holds them (and
    /// any warnings), `sources` the text they point into.
    Invalid { sources: Sources, diags: Diags },
    /// A complete tree, ready to write; `diags` holds only warnings.
    Built(Box<Build>),
}

/// A site compiled without errors: every stage's value.
pub struct Build {
    pub sources: Sources,
    pub site: Site,
    pub plan: Plan,
    pub tree: Tree,
    pub diags: Diags,
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
pub fn compile(root: &Path) -> Result<Compiled, load::LoadError> {
    let (loaded, mut diags) = load::load(root)?;
    let (site, vdiags) = validate::validate(&loaded);
    diags.extend(vdiags);
    let sources = loaded.sources;
    let Some(site) = site else {
        diags.sort();
        return Ok(Compiled::Invalid { sources, diags });
    };
    let mut templates = Templates::new(&site, &sources, &mut diags);
    let (plan, boot) = Resolver::new(&site, &sources, &mut templates, &mut diags).plan(&mut diags);
    let r = loader::Renderer {
        templates: &templates,
        sources: &sources,
    };
    let programs: loader::Files = loader::for_site(&site, &plan)
        .into_iter()
        .flat_map(|l| l.programs(r, &boot, &mut diags))
        .collect();
    if diags.has_errors() {
        diags.sort();
        return Ok(Compiled::Invalid { sources, diags });
    }
    let tree = render::render(&site, r, &plan, &boot, programs, &mut diags);
    drop(boot);
    diags.sort();
    if diags.has_errors() {
        return Ok(Compiled::Invalid { sources, diags });
    }
    Ok(Compiled::Built(Box::new(Build {
        sources,
        site,
        plan,
        tree,
        diags,
    })))
}
