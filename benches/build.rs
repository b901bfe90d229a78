//! End-to-end benchmark of the `bootc` binary on generated fleets.
//!
//! For each fleet size (default 1,000, 10,000 and 100,000 machines; override
//! with `BOOTC_BENCH_SIZES=1000,10000`) this generates a realistic site, then
//! runs the release binary as a child process and measures wall time and the
//! child's peak RSS (from `wait4`'s rusage) for:
//!
//! - a full build into an empty output folder,
//! - a no-op rebuild (same site, same output folder),
//! - a rebuild after changing one machine (the second change after the full
//!   build: the first one leaves the spare tree beside the output, which
//!   every later build stages in, so the second is what a build on every
//!   push costs),
//! - `bootc check`,
//! - `cp -r` of the produced tree into a fresh folder (the floor: the same
//!   bytes written by a tool that computes nothing).
//!
//! See bench/README.md for how to run it and read the figures.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod site;
use site::{generate_site, write_changed_rack};

const DEFAULT_SIZES: &[usize] = &[1_000, 10_000, 100_000];

/// The binary under test: the one Cargo built, unless `BOOTC_BENCH_BIN` names
/// another (to compare two versions, or to pin a copy while the tree changes).
fn bootc_bin() -> PathBuf {
    std::env::var_os("BOOTC_BENCH_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bootc")), PathBuf::from)
}

fn main() {
    let mut sizes = match std::env::var("BOOTC_BENCH_SIZES") {
        Ok(s) if !s.trim().is_empty() => parse_sizes(&s),
        _ => DEFAULT_SIZES.to_vec(),
    };
    sizes.sort_unstable();
    sizes.dedup();
    let runs: usize = std::env::var("BOOTC_BENCH_RUNS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    let keep = std::env::var_os("BOOTC_BENCH_KEEP").is_some_and(|v| !v.is_empty());
    let root = std::env::var_os("BOOTC_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("bootc-bench"));

    print_machine(&root, runs);
    let floor = measure(&mut Command::new("true"));
    println!(
        "  peak RSS floor (what `true` shows): {:.1} MiB",
        floor.max_rss_kib as f64 / 1024.0
    );
    println!();

    let mut results = Vec::new();
    for &n in &sizes {
        let dir = root.join(format!("fleet-{n}"));
        if dir.exists() {
            fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        let r = bench_size(n, &dir, runs);
        print_row_progress(&r);
        results.push(r);
        if keep {
            eprintln!("kept {}", dir.display());
        } else {
            let t = Instant::now();
            fs::remove_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            eprintln!("   cleaned up in {:.1} s", t.elapsed().as_secs_f64());
        }
    }
    if !keep {
        let _ = fs::remove_dir(&root);
    }
    println!();
    print!("{}", table(&results, runs));
}

fn parse_sizes(s: &str) -> Vec<usize> {
    s.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            let t = t.replace('_', "");
            let n = match t.strip_suffix(['k', 'K']) {
                Some(k) => k.parse::<usize>().map(|k| k * 1000),
                None => t.parse::<usize>(),
            };
            match n {
                Ok(n) if n > 0 => n,
                _ => panic!("BOOTC_BENCH_SIZES: {t:?} is not a positive number"),
            }
        })
        .collect()
}

fn print_machine(root: &Path, runs: usize) {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0));
    println!("bootc build benchmark");
    println!("  binary:  {}", bootc_bin().display());
    println!("  machine: {cores} cores ({cpu}), {mem_gib:.1} GiB RAM");
    println!("  folder:  {} ({})", root.display(), filesystem(root));
    println!(
        "  runs:    {runs} per measurement{}",
        if runs > 1 { " (median shown)" } else { "" }
    );
    println!();
}

/// The file system holding `dir`, from /proc/mounts: type and options. The
/// figures depend on it (journal, `discard`, tmpfs) as much as on bootc.
fn filesystem(dir: &Path) -> String {
    let _ = fs::create_dir_all(dir);
    let Ok(dir) = dir.canonicalize() else {
        return "unknown file system".into();
    };
    let Ok(mounts) = fs::read_to_string("/proc/mounts") else {
        return "unknown file system".into();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && dir.starts_with(f[1])).then(|| (f[1].len(), f[2], f[3]))
        })
        .max_by_key(|(len, _, _)| *len)
        .map_or_else(
            || "unknown file system".into(),
            |(_, ty, opts)| format!("{ty} {opts}"),
        )
}

// ---------------------------------------------------------------------------
// Measuring

/// One child process: wall time and peak resident set size.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    wall: Duration,
    user: Duration,
    sys: Duration,
    max_rss_kib: u64,
    /// CPU time the rest of the machine used meanwhile (all CPUs busy time
    /// from /proc/stat, minus the child's): noise from other processes.
    others: Duration,
}

/// Busy time of all CPUs so far (user, nice, system, irq, softirq, steal),
/// from /proc/stat.
fn cpu_busy() -> Option<Duration> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| f.get(i))
        .sum::<u64>();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .ok()
        .filter(|&h| h > 0)
        .unwrap_or(100);
    Some(Duration::from_micros(busy * 1_000_000 / hz))
}

/// Runs `cmd` to completion and returns its wall time and rusage (its own,
/// through `wait4`, so it is per child and not a maximum over all children).
/// Panics, showing its output, when it fails.
///
/// One caveat on `ru_maxrss`: Linux records, at `execve`, the peak RSS of
/// the address space the child leaves, and std spawns with `posix_spawn`
/// (a vfork that shares this process's memory). So a child's figure is never
/// below this benchmark's own peak RSS; the benchmark keeps that small and
/// prints it (`true`'s figure) as the floor.
fn measure(cmd: &mut Command) -> Sample {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let busy_before = cpu_busy();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    // Drain output in threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("piped");
    let mut err = child.stderr.take().expect("piped");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits");
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        // SAFETY: `pid` is our own, not yet reaped child; `status` and
        // `usage` are valid for writes. `child` is never waited on by std
        // afterwards (dropping a Child does not wait).
        let rc = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    let wall = start.elapsed();
    let busy = cpu_busy()
        .zip(busy_before)
        .map(|(after, before)| after.saturating_sub(before));
    drop(child);
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    assert!(
        rc == pid,
        "wait4 on {cmd:?}: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "{cmd:?} failed (wait status {status:#x})\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&stdout),
        tail(&String::from_utf8_lossy(&stderr), 60),
    );
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let (user, sys) = (tv(usage.ru_utime), tv(usage.ru_stime));
    Sample {
        wall,
        user,
        sys,
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        others: busy.map_or(Duration::ZERO, |b| b.saturating_sub(user + sys)),
    }
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// Runs `f` `runs` times (with `prepare` before each, untimed) and returns
/// the sample with the median wall time.
fn repeat(runs: usize, mut prepare: impl FnMut(usize), mut f: impl FnMut() -> Sample) -> Sample {
    let mut v: Vec<Sample> = (0..runs)
        .map(|i| {
            prepare(i);
            // Flush what earlier steps left dirty, so that its writeback is
            // not billed to this measurement.
            // SAFETY: sync(2) takes no arguments and cannot fail.
            unsafe { libc::sync() };
            f()
        })
        .collect();
    v.sort_by_key(|s| s.wall);
    v[v.len() / 2]
}

fn bootc(args: &[&OsStr]) -> Command {
    let mut c = Command::new(bootc_bin());
    c.args(args).env("NO_COLOR", "1");
    c
}

#[derive(Debug, Clone, Copy, Default)]
struct TreeSize {
    files: u64,
    dirs: u64,
    bytes: u64,
    disk_bytes: u64,
}

fn tree_size(p: &Path) -> TreeSize {
    fn walk(p: &Path, t: &mut TreeSize) {
        for e in fs::read_dir(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())) {
            let e = e.expect("read_dir entry");
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                t.dirs += 1;
                walk(&e.path(), t);
            } else {
                t.files += 1;
                t.bytes += m.len();
                t.disk_bytes += m.blocks() * 512;
            }
        }
    }
    let mut t = TreeSize::default();
    walk(p, &mut t);
    t
}

struct SizeResult {
    machines: usize,
    macs: usize,
    inventory_files: usize,
    site_bytes: u64,
    generate: Duration,
    tree: TreeSize,
    build: Sample,
    noop: Sample,
    change: Sample,
    check: Sample,
    cp: Sample,
}

fn bench_size(n: usize, dir: &Path, runs: usize) -> SizeResult {
    eprintln!("== {n} machines: generating site in {}", dir.display());
    let site = dir.join("site");
    let t = Instant::now();
    let gen_stats = generate_site(&site, n);
    let generate = t.elapsed();
    let site_bytes = tree_size(&site).bytes;
    eprintln!(
        "   {} inventory files, {} MACs, {:.1} MiB of site, generated in {:.2} s",
        gen_stats.inventory_files,
        gen_stats.macs,
        mib(site_bytes),
        generate.as_secs_f64()
    );
    let out = dir.join("out");
    let copy = dir.join("copy");
    let build_cmd = || {
        bootc(&[
            "build".as_ref(),
            site.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ])
    };

    eprintln!("   full build");
    let build = repeat(
        runs,
        |_| {
            for folder in [&out, &bootc::write::spare_path(dir, "out")] {
                if folder.exists() {
                    fs::remove_dir_all(folder).expect("remove out");
                }
            }
        },
        || measure(&mut build_cmd()),
    );
    let tree = tree_size(&out);

    eprintln!("   no-op rebuild");
    let noop = repeat(runs, |_| {}, || measure(&mut build_cmd()));

    eprintln!("   one-machine change rebuild");
    // The first change after the full build, unmeasured: it leaves the spare.
    write_changed_rack(&site, n, true);
    let first = measure(&mut build_cmd());
    eprintln!(
        "     (the first, which leaves the spare: {:.2} s)",
        first.wall.as_secs_f64()
    );
    let change = repeat(
        runs,
        // Alternate the changed machine's kernel args so that every run is a change.
        |i| write_changed_rack(&site, n, i % 2 == 1),
        || measure(&mut build_cmd()),
    );

    eprintln!("   check");
    let check = repeat(
        runs,
        |_| {},
        || measure(&mut bootc(&["check".as_ref(), site.as_os_str()])),
    );

    eprintln!("   cp -r");
    let cp = repeat(
        runs,
        |_| {
            if copy.exists() {
                fs::remove_dir_all(&copy).expect("remove copy");
            }
        },
        || measure(Command::new("cp").arg("-r").arg(&out).arg(&copy)),
    );

    SizeResult {
        machines: n,
        macs: gen_stats.macs,
        inventory_files: gen_stats.inventory_files,
        site_bytes,
        generate,
        tree,
        build,
        noop,
        change,
        check,
        cp,
    }
}

// ---------------------------------------------------------------------------
// Reporting

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn rss(s: &Sample) -> String {
    format!("{:.1}", s.max_rss_kib as f64 / 1024.0)
}

fn cpu(s: &Sample) -> String {
    format!("{:.2}", (s.user + s.sys).as_secs_f64())
}

fn print_row_progress(r: &SizeResult) {
    eprintln!(
        "   done: build {} s, no-op {} s, change {} s, check {} s, cp -r {} s",
        secs(r.build.wall),
        secs(r.noop.wall),
        secs(r.change.wall),
        secs(r.check.wall),
        secs(r.cp.wall)
    );
}

fn table(results: &[SizeResult], runs: usize) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&SizeResult) -> String| {
        rows.push((label.to_string(), results.iter().map(f).collect()));
    };
    row("machines", &|r| r.machines.to_string());
    row("MACs (per-MAC scripts)", &|r| r.macs.to_string());
    row("inventory files", &|r| r.inventory_files.to_string());
    row("site size (MiB)", &|r| format!("{:.1}", mib(r.site_bytes)));
    row("site generation (s)", &|r| secs(r.generate));
    row("output files", &|r| r.tree.files.to_string());
    row("output folders", &|r| r.tree.dirs.to_string());
    row("output size (MiB)", &|r| {
        format!("{:.1}", mib(r.tree.bytes))
    });
    row("output on disk (MiB)", &|r| {
        format!("{:.1}", mib(r.tree.disk_bytes))
    });
    row("full build, wall (s)", &|r| secs(r.build.wall));
    row("full build, CPU user+sys (s)", &|r| cpu(&r.build));
    row("full build, peak RSS (MiB)", &|r| rss(&r.build));
    row("no-op rebuild, wall (s)", &|r| secs(r.noop.wall));
    row("no-op rebuild, peak RSS (MiB)", &|r| rss(&r.noop));
    row("1-machine change, wall (s)", &|r| secs(r.change.wall));
    row("1-machine change, peak RSS (MiB)", &|r| rss(&r.change));
    row("check, wall (s)", &|r| secs(r.check.wall));
    row("check, CPU user+sys (s)", &|r| cpu(&r.check));
    row("check, peak RSS (MiB)", &|r| rss(&r.check));
    row("cp -r of output, wall (s)", &|r| secs(r.cp.wall));
    row("cp -r of output, peak RSS (MiB)", &|r| rss(&r.cp));
    row("ratio full build / cp -r", &|r| {
        ratio(r.build.wall, r.cp.wall)
    });
    row("ratio no-op rebuild / cp -r", &|r| {
        ratio(r.noop.wall, r.cp.wall)
    });
    row("ratio 1-machine change / cp -r", &|r| {
        ratio(r.change.wall, r.cp.wall)
    });
    row("ratio check / cp -r", &|r| ratio(r.check.wall, r.cp.wall));
    row("other processes' load, max (cores)", &|r| {
        let load = [&r.build, &r.noop, &r.change, &r.check, &r.cp]
            .iter()
            .map(|s| s.others.as_secs_f64() / s.wall.as_secs_f64().max(1e-3))
            .fold(0.0, f64::max);
        format!("{load:.2}")
    });
    row("full build, machines per second", &|r| {
        let s = r.build.wall.as_secs_f64();
        if s > 0.0 {
            format!("{:.0}", r.machines as f64 / s)
        } else {
            "-".into()
        }
    });

    let label_w = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let col_w: Vec<usize> = (0..results.len())
        .map(|i| {
            rows.iter()
                .map(|(_, v)| v[i].len())
                .max()
                .unwrap_or(0)
                .max(8)
        })
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "results ({} per measurement, warm page cache)",
        if runs > 1 {
            format!("median of {runs} runs")
        } else {
            "1 run".to_string()
        }
    );
    let line_w = label_w + col_w.iter().map(|w| w + 3).sum::<usize>();
    for (i, (label, vals)) in rows.iter().enumerate() {
        let _ = write!(s, "{label:<label_w$}");
        for (v, w) in vals.iter().zip(&col_w) {
            let _ = write!(s, " | {v:>w$}");
        }
        s.push('\n');
        if i == 0 {
            let _ = writeln!(s, "{}", "-".repeat(line_w));
        }
    }
    s
}

fn ratio(a: Duration, b: Duration) -> String {
    let b = b.as_secs_f64();
    if b > 0.0 {
        format!("{:.2}x", a.as_secs_f64() / b)
    } else {
        "-".into()
    }
}
