//! `bootc build`: validate, then write the tree.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::{compile, print_human};
use crate::write;

pub fn run(site: &Path, out: Option<&Path>) -> Result<ExitCode> {
    let c = compile(site)?;
    print_human(&c.sources, &c.diags);
    let Some(tree) = c.tree.filter(|_| !c.diags.has_errors()) else {
        eprintln!("nothing was written");
        return Ok(ExitCode::from(1));
    };
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| site.join("public"));
    let stats = write::write(&out, &tree).context("writing the output tree")?;
    let plan = c.plan.as_ref().expect("a tree comes with a plan");
    let scripts: usize = plan.machines.iter().map(|m| m.macs.len()).sum();
    println!(
        "built site {}: {} machines, {} per-MAC scripts, {} files in {} ({} unchanged)",
        plan.site,
        plan.machines.len(),
        scripts,
        stats.files,
        out.display(),
        stats.unchanged
    );
    Ok(ExitCode::SUCCESS)
}
