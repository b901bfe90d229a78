//! The library, stage by stage, in process: for each fleet size (default
//! 1,000 and 10,000 machines; `BOOTC_BENCH_SIZES=1000,100000` to choose),
//! a generated site (benches/site) goes through load, validate, resolve
//! (with the boot programs), render and write, each timed on its own; the
//! best of `BOOTC_BENCH_RUNS` runs (default 3) is printed per stage. Where
//! the end-to-end figures of benches/build.rs say how long a build takes,
//! these say which stage it is spent in.
//!
//! cargo bench --bench stages

use std::path::Path;
use std::time::{Duration, Instant};

use bootc::loader::{self, Renderer};
use bootc::resolve::Resolver;
use bootc::templates::Templates;

mod site;

/// The allocator of the binary (src/main.rs), so the stages cost what they do there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sizes() -> Vec<usize> {
    std::env::var("BOOTC_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000])
}

fn runs() -> usize {
    std::env::var("BOOTC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1)
}

/// Each stage's time in one run.
#[derive(Clone, Copy, Default)]
struct Times([Duration; 5]);

const STAGES: [&str; 5] = ["load", "validate", "resolve", "render", "write"];

fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let v = f();
    *slot = start.elapsed();
    v
}

/// One run of the pipeline on `root`, writing to `out`.
fn run_once(root: &Path, out: &Path) -> Times {
    let mut t = Times::default();
    let (loaded, mut diags) = timed(&mut t.0[0], || bootc::load::load(root).expect("load"));
    let (site, vdiags) = timed(&mut t.0[1], || bootc::validate::validate(&loaded, false));
    diags.extend(vdiags);
    let site = site.expect("the generated site validates");
    let sources = &loaded.sources;
    // Resolve (timed with the site's templates it compiles into).
    let start = Instant::now();
    let mut templates = Templates::new(&site, sources, &mut diags);
    let (plan, grub_tftp, programs) = {
        let resolver = Resolver::new(&site, sources, &mut templates, &mut diags);
        let boot = resolver.boot_plan(&mut diags);
        let loaders = loader::for_plan(&boot);
        let r = Renderer {
            templates: resolver.templates(),
            sources,
        };
        let machines = bootc::fleet::compile(
            &site, sources, &resolver, &boot, &loaders, r, true, None, &mut diags,
        );
        let mut files = machines.files;
        let common = loader::common(r, &boot, &loaders, &mut diags);
        files.extend(common.into_iter().map(|(p, t)| (p, t.into_bytes().into())));
        (resolver.plan(machines.resolved), boot.grub.tftp, files)
    };
    t.0[2] = start.elapsed();
    let r = Renderer {
        templates: &templates,
        sources,
    };
    let tree = timed(&mut t.0[3], || {
        let mut tree = bootc::render::files(&site, &plan, grub_tftp, programs, &mut diags);
        bootc::render::summaries(&site, r, &plan, Default::default(), &mut tree, &mut diags);
        bootc::render::seal(&site, &mut tree);
        tree
    });
    assert!(!diags.has_errors(), "the generated site builds");
    timed(&mut t.0[4], || {
        bootc::write::write(out, &tree).expect("write")
    });
    t
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken.
    let runs = runs();
    println!("bootc, stage by stage (best of {runs} runs, in process)");
    println!(
        "{:>9}  {}",
        "machines",
        STAGES.map(|s| format!("{s:>10}")).join("")
    );
    for n in sizes() {
        let dir = tempfile::Builder::new()
            .prefix("bootc-stages-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("site");
        site::generate_site(&root, n);
        let mut best = [Duration::MAX; 5];
        for _ in 0..runs {
            let out = dir.path().join("out");
            let _ = std::fs::remove_dir_all(&out);
            let t = run_once(&root, &out);
            for (b, x) in best.iter_mut().zip(t.0) {
                *b = (*b).min(x);
            }
        }
        println!(
            "{n:>9}  {}",
            best.map(|d| format!("{:>9.3}s", d.as_secs_f64())).join("")
        );
    }
}
