//! `bootc build`: validate, then write the tree (signing its manifest when a
//! key is given).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::print_human;
use bootc::diag::plural;
use bootc::manifest::{MANIFEST, SIGNATURE};
use bootc::sign::{self, Password, SecretKey};
use bootc::tree::{Content, Tree};
use bootc::write::{
    self,
    record::{self, Record, Summary},
};
use bootc::{Compiled, Options, compile_checked};
use rayon::prelude::*;

/// The arguments of `bootc build`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml) [default: the nearest from the current folder up]
    site: Option<PathBuf>,
    /// Output folder [default: SITE/public]
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Sign http/manifest.json with this minisign secret key (a protected
    /// key's password: BOOTC_SIGN_KEY_PASSWORD, else asked on a terminal)
    #[arg(long, env = "BOOTC_SIGN_KEY", value_name = "FILE")]
    sign_key: Option<PathBuf>,
    /// Web-server access logs (nginx/Apache combined or `bootc serve`'s,
    /// plain or .gz): the report shows each machine's last boot
    #[arg(long = "access-log", value_name = "FILE", num_args = 1..)]
    access_logs: Vec<PathBuf>,
    /// Fail (exit 1, nothing written) when any warning is left after `[site] allow`
    #[arg(long)]
    deny_warnings: bool,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let site = super::site_or_nearest(self.site);
        run(
            &site,
            self.out.as_deref(),
            self.sign_key.as_deref(),
            self.access_logs,
            self.deny_warnings,
        )
    }
}

pub fn run(
    site: &Path,
    out: Option<&Path>,
    sign_key: Option<&Path>,
    access_logs: Vec<PathBuf>,
    deny_warnings: bool,
) -> Result<ExitCode> {
    // The key first: a wrong password or path fails before any work, and the
    // prompt (if any) comes before the compiler's output.
    let key = match sign_key {
        Some(path) => {
            if let Some(w) = sign::permission_warning(path) {
                eprintln!("warning: {w}");
            }
            Some(sign::load_secret_key(path, Password::Ask).context("loading the signing key")?)
        }
        None => None,
    };
    let opts = Options {
        media: true,
        access_logs,
        ..Options::default()
    };
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| site.join("public"));
    let mut checked = bootc::check(site, &opts)?;
    // Besides what the site reads: where it is (its problems name its
    // files) and the signing key.
    let extra = format!(
        "{}\n{:?}",
        std::fs::canonicalize(site).unwrap_or_default().display(),
        key.as_ref().map(|k| (k.id(), k.public_bytes()))
    );
    let mut fingerprint = record::fingerprint(&checked, &opts, extra.as_bytes());
    // The last build read the same: most likely nothing is to be done,
    // which needs only the sources (to show the problems again). The site
    // is freed before the record is read (at 100,000 machines each takes
    // hundreds of MB), and read again if the tree turns out changed.
    let freed = fingerprint.is_some() && fingerprint == Record::fingerprint_in(&out);
    if let Some(mut s) = checked.site.take_if(|_| freed) {
        std::mem::take(&mut s.machines)
            .into_par_iter()
            .for_each(drop);
    }
    // Nothing read has changed and the tree is as the last build left it.
    let same = freed.then(|| Record::load_tree(&out)).flatten();
    if let (Some(fp), Some(last)) = (&fingerprint, &same)
        && last.fingerprint == *fp
        && last.holds(&out)
    {
        write::remove_leftovers(&out);
        print_human(&checked.sources, &last.diags);
        if deny_warnings && super::denied(&last.diags) {
            eprintln!("nothing was written");
            return Ok(ExitCode::from(1));
        }
        let files = last.files();
        report(&last.summary, files, files, &out, key.as_ref());
        if !super::quiet() {
            println!(
                "nothing it reads has changed since the last build, which left the tree as it is"
            );
        }
        // Never freed, as below.
        std::mem::forget((checked, same));
        return Ok(ExitCode::SUCCESS);
    }
    drop(same);
    if freed {
        checked = bootc::check(site, &opts)?;
        fingerprint = record::fingerprint(&checked, &opts, extra.as_bytes());
    }
    let c = compile_checked(checked, &opts)?;
    print_human(c.sources(), c.diags());
    let Compiled::Built(mut b) = c else {
        eprintln!("nothing was written");
        return Ok(ExitCode::from(1));
    };
    if deny_warnings && super::denied(&b.diags) {
        eprintln!("nothing was written");
        return Ok(ExitCode::from(1));
    }
    let summary = Summary::of(&b.plan);
    // Neither the writer nor the record needs the plan: freed (on all
    // cores), so that they reuse its memory.
    std::mem::take(&mut b.plan.machines)
        .into_par_iter()
        .for_each(drop);
    // The last build's record, read only now, for the writer: not held
    // while the fleet is compiled (it lists every file: tens of MB at
    // 100,000 machines).
    let last = Record::load(&out);
    let tree = &mut b.tree;
    if let (Some(key), Some(path)) = (&key, sign_key) {
        refuse_copying_key(tree, path)?;
        sign_tree(tree, key, &summary.site, &b.build_id)?;
    }
    let stats = write::write_with(&out, tree, last.as_ref()).context("writing the output tree")?;
    // The process ends here: freeing a large fleet's values would take
    // longer than anything left to do.
    let b = Box::leak(b);
    report(&summary, stats.files, stats.unchanged, &out, key.as_ref());
    if let Some(fp) = fingerprint {
        let diags = std::mem::take(&mut b.diags);
        // Only the files' hashes are recorded: their bytes are freed first,
        // for the record to reuse.
        let files = std::mem::take(&mut b.tree).into_hashes();
        if let Ok(mut r) = Record::make(&out, &stats, files, fp, summary, diags) {
            r.keep_spare(&out, last, stats.swapped);
            r.save(&out);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a build says when it is done.
fn report(s: &Summary, files: usize, unchanged: usize, out: &Path, key: Option<&SecretKey>) {
    if super::quiet() {
        return;
    }
    println!(
        "built site {}: {}, {}, {} in {} ({unchanged} unchanged)",
        s.site,
        plural(s.machines, "machine"),
        plural(s.scripts, "per-MAC script"),
        plural(files, "file"),
        out.display(),
    );
    if let Some(key) = key {
        println!("signed {MANIFEST} with key {}", key.id());
    }
}

/// Adds `http/manifest.json.minisig` to the tree, so the one writer puts it
/// in place together with everything else; its trusted comment names the
/// site and the manifest's build-id.
fn sign_tree(tree: &mut Tree, key: &SecretKey, site: &str, build_id: &str) -> Result<()> {
    let Some(Content::Bytes(manifest)) = tree.files.get(MANIFEST) else {
        anyhow::bail!("the tree has no {MANIFEST} to sign");
    };
    let comment = sign::trusted_comment(site, build_id);
    let sig = key.sign(manifest, &comment)?;
    tree.add(SIGNATURE, sig);
    Ok(())
}

/// The secret key must never end up in the output: refuse a tree that would
/// copy the key file (an artifact pointing at it).
fn refuse_copying_key(tree: &Tree, key_path: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(key) = std::fs::metadata(key_path) else {
        return Ok(());
    };
    for (rel, content) in &tree.files {
        // The file that would be copied (its descriptor), not a name.
        if let Content::Copy { source, .. } = content
            && (source.dev, source.ino) == (key.dev(), key.ino())
        {
            anyhow::bail!(
                "{rel} would be a copy of the signing key {}: refusing to publish a secret key",
                key_path.display()
            );
        }
    }
    Ok(())
}
