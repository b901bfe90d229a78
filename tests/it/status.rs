//! Fleet state from web-server logs (SPEC section 13): machines booted by
//! QEMU through nginx, whose real access log (nginx's `combined` format)
//! `bootc status` reads; an outdated boot after a change; a machine never
//! seen; the one-shot reinstall cycle through `--converge --write`.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::boot_support::{Firmware, Nginx, default_boot_timeout, qemu_boot};
use crate::harness::Site;

/// `bootc status . --access-log LOG --format json`, parsed: name -> row.
pub(crate) fn status(
    s: &Site,
    log: &std::path::Path,
) -> serde_json::Map<String, serde_json::Value> {
    let r = s.run(&[
        "status",
        ".",
        "--access-log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.json()["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_string(), m.clone()))
        .collect()
}

fn get(nginx: &Nginx, path: &str) -> u16 {
    let mut c = TcpStream::connect(("127.0.0.1", nginx.port())).unwrap();
    write!(
        c,
        "GET /{path} HTTP/1.0\r\nHost: x\r\nUser-Agent: test\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}

/// node01 reinstalls (token `disk-swap`): it boots the installer role
/// (its args on the console); node02 boots its own role. Both show as
/// current; after node02's args change it is outdated; node03 was never
/// seen. The installer's report converges: exactly the key's line goes,
/// and node01 boots its own role again.
#[test]
fn status_and_the_reinstall_cycle_from_a_real_nginx_log() {
    let Some(s) = crate::boot::bootable_site(Firmware::Bios, |s| {
        s.write(
            "roles/installer.toml",
            "description = \"Reinstall\"\nimage = \"linux\"\nkernel-args = [\"console=ttyS0\", \"bootc.installer=yes\"]\n",
        );
        s.edit(
            "roles/worker.toml",
            "description = \"Worker\"",
            "description = \"Worker\"\ninstaller = \"installer\"",
        );
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\n# the disk was swapped\nreinstall = \"disk-swap\"  # until it reports\n",
        );
    }) else {
        return;
    };
    let nginx = Nginx::start(&s.path("public/http"));
    let log = nginx.combined_log();
    let node01 = qemu_boot(
        nginx.port(),
        &["52:54:00:aa:bb:01"],
        Firmware::Bios,
        default_boot_timeout(),
    );
    let args = node01.cmdline().to_string();
    assert!(
        args.contains("bootc.installer=yes") && !args.contains("worker.tier"),
        "{args}\n{}",
        node01.diagnostics()
    );
    let node02 = qemu_boot(
        nginx.port(),
        &["52:54:00:aa:bb:02"],
        Firmware::Bios,
        default_boot_timeout(),
    );
    assert!(
        node02.cmdline().contains("worker.tier=silver"),
        "{}",
        node02.diagnostics()
    );

    let st = status(&s, &log);
    for name in ["node01", "node02"] {
        assert_eq!(
            st[name]["current"],
            true,
            "{name}: {:?}\n{}",
            st[name],
            nginx.access_log()
        );
        assert!(
            st[name]["last-seen"].as_str().unwrap().ends_with('Z'),
            "{:?}",
            st[name]
        );
    }
    assert_eq!(st["node03"]["current"], serde_json::Value::Null);
    assert_eq!(st["node03"]["last-seen"], serde_json::Value::Null);

    // node02's boot changes: its last boot is now an older one.
    s.edit(
        "machines/rack1.toml",
        "kernel-args = [\"nomodeset\"]",
        "kernel-args = [\"nomodeset\", \"quiet\"]",
    );
    assert_eq!(s.build().code, 0);
    let st = status(&s, &log);
    assert_eq!(st["node02"]["current"], false, "{:?}", st["node02"]);
    assert_eq!(st["node01"]["current"], true, "{:?}", st["node01"]);

    // The installer reports (what site.example's cloud-init does last).
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    let id = plan["machines"][0]["boot-id"].as_str().unwrap().to_string();
    assert_eq!(
        get(
            &nginx,
            &format!("machines/52-54-00-aa-bb-01.ipxe?booting={id}&installed=disk-swap")
        ),
        200
    );
    let st = status(&s, &log);
    assert_eq!(st["node01"]["installed"], serde_json::json!(["disk-swap"]));

    let before = s.read("machines/rack1.toml");
    let r = s.run(&[
        "status",
        ".",
        "--access-log",
        log.to_str().unwrap(),
        "--converge",
    ]);
    assert!(
        r.stdout
            .contains("-reinstall = \"disk-swap\"  # until it reports\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        s.read("machines/rack1.toml"),
        before,
        "--converge alone writes nothing"
    );
    let r = s.run(&[
        "status",
        ".",
        "--access-log",
        log.to_str().unwrap(),
        "--converge",
        "--write",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let after = s.read("machines/rack1.toml");
    let removed: Vec<&str> = before
        .lines()
        .filter(|l| !after.lines().any(|a| a == *l))
        .collect();
    assert_eq!(removed, ["reinstall = \"disk-swap\"  # until it reports"]);
    assert_eq!(before.lines().count(), after.lines().count() + 1);
    assert!(
        after.contains("# the disk was swapped\n"),
        "comments are kept:\n{after}"
    );
    assert_eq!(s.build().code, 0);
    let script = s.out("http/machines/52-54-00-aa-bb-01.ipxe");
    assert!(
        script.contains("worker.tier=gold") && !script.contains("bootc.installer"),
        "{script}"
    );
}

/// `bootc serve`'s own log is read too: a beacon fetched from the preview
/// (its query kept in the log) makes the machine current.
#[test]
fn status_reads_the_serve_log() {
    let s = Site::fixture("basic");
    // The boot-ids of a build of the same site are the preview's.
    let r = s.run(&["build", ".", "-o", "tree"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&s.read("tree/plan.json")).unwrap();
    let id = plan["machines"][1]["boot-id"].as_str().unwrap().to_string();
    let serve = crate::serve::Serve::start(&s, &[]);
    let target = format!("/machines/52-54-00-aa-bb-12.ipxe?booting={id}");
    assert_eq!(serve.get(&target).status, 200);
    serve.wait_log(&format!(
        "GET machines/52-54-00-aa-bb-12.ipxe?booting={id} 200"
    ));
    let log = s.path("serve.log");
    std::fs::write(&log, serve.log()).unwrap();
    let st = status(&s, &log);
    assert_eq!(
        st["node02"]["current"],
        true,
        "{:?}\n{}",
        st["node02"],
        serve.log()
    );
    assert_eq!(
        st["node02"]["last-seen"],
        serde_json::Value::Null,
        "no date in serve's log"
    );
    assert_eq!(st["node01"]["current"], serde_json::Value::Null);
}

/// `build --access-log`: the report shows each machine's last boot and
/// state (a gzip log here), with a filter for outdated and never-seen ones.
#[test]
fn the_report_shows_last_boots() {
    let s = Site::fixture("basic");
    let r = s.run(&["build", ".", "-o", "first"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plan: serde_json::Value = serde_json::from_str(&s.read("first/plan.json")).unwrap();
    let id = plan["machines"][0]["boot-id"].as_str().unwrap();
    let text = format!(
        "10.0.2.15 - - [01/Dec/2026:09:12:04 +0000] \"GET /boot/machines/52-54-00-aa-bb-01.ipxe?booting={id} HTTP/1.1\" 200 612 \"-\" \"iPXE/1.21.1\"\n\
         10.0.2.16 - - [01/Dec/2026:09:13:04 +0000] \"GET /boot/machines/52-54-00-aa-bb-02.ipxe?booting=0123456789ab HTTP/1.1\" 200 612 \"-\" \"iPXE/1.21.1\"\n"
    );
    let log = s.path("access.log.gz");
    let mut gz = gzip_writer(&log);
    gz.write_all(text.as_bytes()).unwrap();
    drop(gz);
    let r = s.run(&["build", ".", "--access-log", log.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(s.out("report/index.html").contains("<select id=\"state\">"));
    let index = crate::build::report_index(&s);
    let rows: Vec<(String, String, String)> = index["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m[0].as_str().unwrap().into(),
                m[10].as_str().unwrap().into(),
                m[11].as_str().unwrap().into(),
            )
        })
        .collect();
    let row = |n: &str, t: &str, st: &str| (n.to_string(), t.to_string(), st.to_string());
    assert_eq!(
        rows,
        [
            row("node01", "2026-12-01T09:12:04Z", "current"),
            row("node02", "2026-12-01T09:13:04Z", "outdated"),
            row("node03", "never", "never-seen"),
        ]
    );
}

/// A gzip writer over `path`, made with the system's gzip (the tests have
/// no compression crate of their own).
fn gzip_writer(path: &std::path::Path) -> impl Write {
    struct Gz(std::path::PathBuf, Vec<u8>);
    impl Write for Gz {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.1.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Drop for Gz {
        fn drop(&mut self) {
            let mut c = std::process::Command::new("gzip")
                .arg("-c")
                .stdin(std::process::Stdio::piped())
                .stdout(std::fs::File::create(&self.0).unwrap())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(&self.1).unwrap();
            assert!(c.wait().unwrap().success());
        }
    }
    Gz(path.to_path_buf(), Vec::new())
}
