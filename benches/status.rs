//! `bootc status` on a large access log: throughput and peak memory.
//!
//! Generates a site of 10,000 machines (the build benchmark's generator),
//! compiles it, writes a synthetic nginx `combined` log of about
//! `BOOTC_BENCH_LOG_MB` MB (default 1024) in which every line is a beacon
//! of a machine of the site (its current boot-id, an old one, or an install
//! report), then scans it with the library's `status::scan` and prints the
//! time, the lines per second and this process's peak RSS (`VmHWM`): the
//! log is streamed, so memory stays at the plan's size whatever the log's.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

mod site;

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let mb: u64 = std::env::var("BOOTC_BENCH_LOG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("site");
    site::generate_site(&root, 10_000);
    let b = match bootc::compile(&root, &bootc::Options::default()).expect("compile") {
        bootc::Compiled::Built(b) => b,
        invalid => panic!(
            "the generated site is invalid:\n{}",
            bootc::diag::Reporter::new(invalid.sources()).human(invalid.diags(), false)
        ),
    };
    let before_log = vm_hwm_kib();
    let log = dir.path().join("access.log");
    let mut w = BufWriter::new(File::create(&log).expect("log"));
    let (mut written, mut n) = (0u64, 0usize);
    let ms = &b.plan.machines;
    while written < mb << 20 {
        let m = &ms[n * 7919 % ms.len()];
        let mac = m.macs[0].hexhyp();
        let query = match n % 10 {
            0 => "booting=000000000000".to_string(),
            1 => format!("booting={}&installed=t1", m.boot_id),
            _ => format!("booting={}", m.boot_id),
        };
        let line = format!(
            "10.1.{}.{} - - [01/Dec/2026:{:02}:{:02}:{:02} +0000] \"GET /boot/machines/{mac}.ipxe?{query} HTTP/1.1\" 200 612 \"-\" \"iPXE/1.21.1\"\n",
            n / 250 % 250,
            n % 250,
            n / 3600 % 24,
            n / 60 % 60,
            n % 60
        );
        w.write_all(line.as_bytes()).expect("write");
        written += line.len() as u64;
        n += 1;
    }
    w.flush().expect("flush");
    drop(w);
    let t = Instant::now();
    let st = bootc::status::scan(&b.plan, &[log], &[]).expect("scan");
    let secs = t.elapsed().as_secs_f64();
    let seen = st.machines.iter().filter(|m| m.current.is_some()).count();
    println!(
        "status: {} MiB, {} lines in {:.2} s ({:.0} MiB/s, {:.2} M lines/s); {} of {} machines seen",
        written >> 20,
        st.lines,
        secs,
        (written >> 20) as f64 / secs,
        st.lines as f64 / secs / 1e6,
        seen,
        ms.len()
    );
    println!(
        "peak RSS: {} MiB before the log was written, {} MiB after the scan",
        before_log / 1024,
        vm_hwm_kib() / 1024
    );
}
