//! What the generated DHCP configs answer, asked by a real DHCP client:
//! busybox's udhcpc, in a second network namespace on the server's bridge,
//! sends each kind of boot client (PXE by architecture, iPXE, UEFI HTTP
//! Boot) from a machine that keeps the site's Secure Boot and from one that
//! opts out. Each of dhcpd, Kea and dnsmasq must hand the same files: shim
//! to Secure Boot UEFI, iPXE to the one that opts out, boot.ipxe to iPXE
//! whoever asks, and the HTTP Boot URL with option 60 to HTTP clients.

use std::fs;
use std::process::Command;

use crate::boot_support::{need, need_root};
use crate::harness::pe;
use crate::pxe_chain::{CHAIN, Netns, Server, chain_site, serve_tree};

/// A client namespace on the server's bridge (a veth pair), removed on drop.
struct Client {
    name: String,
}

impl Client {
    fn on(server: &Netns) -> Client {
        let name = format!("{}-cli", server.name);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let run = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        run(&["netns", "add", &name]);
        run(&[
            "-n",
            &server.name,
            "link",
            "add",
            "vs0",
            "type",
            "veth",
            "peer",
            "name",
            "vc0",
            "netns",
            &name,
        ]);
        run(&["-n", &server.name, "link", "set", "vs0", "master", "br0"]);
        run(&["-n", &server.name, "link", "set", "vs0", "up"]);
        run(&["-n", &name, "link", "set", "lo", "up"]);
        Client { name }
    }

    /// One DHCP exchange as `mac`, with udhcpc's extra options `opts`:
    /// the boot file (file field, else option 67) and option 60.
    fn ask(
        &self,
        mac: &str,
        opts: &[&str],
        work: &std::path::Path,
    ) -> Result<(String, String), String> {
        let ipl = |args: &[&str]| {
            Command::new("ip")
                .arg("-n")
                .arg(&self.name)
                .args(args)
                .output()
                .unwrap();
        };
        ipl(&["link", "set", "vc0", "down"]);
        ipl(&["link", "set", "vc0", "address", mac]);
        ipl(&["link", "set", "vc0", "up"]);
        let out = work.join("answer");
        let _ = fs::remove_file(&out);
        let script = work.join("dump.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nprintf '%s\\n%s\\n' \"${{boot_file:-$bootfile}}\" \"$vendor\" > {}\n",
                out.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let o = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "busybox", "udhcpc", "-i", "vc0", "-f", "-q", "-n",
            ])
            .args([
                "-t", "4", "-T", "1", "-A", "1", "-B", "-O", "60", "-O", "66", "-O", "67", "-s",
            ])
            .arg(&script)
            .args(opts)
            .output()
            .unwrap();
        let answer = fs::read_to_string(&out).map_err(|_| {
            format!(
                "{mac} {opts:?}: no lease\n{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })?;
        let mut lines = answer.lines();
        Ok((
            lines.next().unwrap_or("").to_string(),
            lines.next().unwrap_or("").to_string(),
        ))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

const ARCH7: &[&str] = &["-x", "0x5d:0007"];
const ARCH0: &[&str] = &["-x", "0x5d:0000"];
const IPXE: &[&str] = &["-x", "0x5d:0007", "-x", "0x4d:69505845"];
const HTTP: &[&str] = &["-x", "0x5d:0010", "-V", "HTTPClient:Arch:00016:UNDI:003001"];

#[test]
fn each_server_answers_each_client_and_host() {
    if !(need_root()
        && need("ip")
        && need("busybox")
        && need("dhcpd")
        && need("kea-dhcp4")
        && need("dnsmasq")
        && need("in.tftpd")
        && need("nginx"))
    {
        return;
    }
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());
    // Secure Boot site; node03 (10.77.0.13) opts out. Stand-in loaders and
    // kernel: nothing boots here, the answers are what is checked.
    let s = chain_site(None);
    fs::write(s.path("artifacts/vmlinuz"), pe(0x8664, true)).unwrap();
    fs::write(s.path("artifacts/shimx64.efi"), pe(0x8664, true)).unwrap();
    fs::write(s.path("artifacts/grubx64.efi"), pe(0x8664, true)).unwrap();
    s.append(
        "bootc.toml",
        "\n[uefi]\nsecure-boot = true\nshim = { path = \"artifacts/shimx64.efi\" }\ngrub = { path = \"artifacts/grubx64.efi\" }\n",
    );
    s.append("machines/sub/rack2.toml", "secure-boot = false\n");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = s.path("public");
    let boot_ipxe = "http://10.77.0.1:8080/boot.ipxe";
    let http_boot = "http://10.77.0.1:8080/snponly.efi";
    for server in [Server::Dhcpd, Server::Kea, Server::Dnsmasq] {
        let work = tempfile::tempdir().unwrap();
        let (ns, _nginx, log) = serve_tree(server, &public, work.path());
        let client = Client::on(&ns);
        let ask = |mac: &str, opts: &[&str]| client.ask(mac, opts, work.path());
        let context = || fs::read_to_string(&log).unwrap_or_default();
        let keep = "52:54:00:aa:bb:01";
        let out = "52:54:00:aa:bb:03";
        for (mac, opts, file, vendor) in [
            (keep, ARCH7, "shimx64.efi", None),
            (out, ARCH7, "snponly.efi", None),
            (keep, ARCH0, "undionly.kpxe", None),
            (out, ARCH0, "undionly.kpxe", None),
            (keep, IPXE, boot_ipxe, None),
            (out, IPXE, boot_ipxe, None),
            (keep, HTTP, http_boot, Some("HTTPClient")),
            (out, HTTP, http_boot, Some("HTTPClient")),
        ] {
            let (got, got_vendor) =
                ask(mac, opts).unwrap_or_else(|e| panic!("{server:?}: {e}\n{}", context()));
            assert_eq!(got, file, "{server:?}: {mac} {opts:?}\n{}", context());
            if let Some(v) = vendor {
                assert_eq!(
                    got_vendor,
                    v,
                    "{server:?}: {mac} {opts:?}: option 60\n{}",
                    context()
                );
            }
        }
        eprintln!("{server:?}: every answer as expected");
    }
}
