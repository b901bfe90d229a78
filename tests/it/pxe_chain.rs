//! The whole PXE chain, for real, inside a network namespace the test makes
//! and always removes: a bridge with 10.77.0.1/24 and a tap for QEMU; the DHCP
//! server runs bootc's generated config; in.tftpd serves tftp/; nginx serves
//! http/. QEMU under OVMF with the NIC's option ROM disabled (`romfile=`), so
//! the firmware's own PXE client runs: DHCP, TFTP of the EFI chainloader,
//! iPXE, DHCP again (user-class iPXE), HTTP boot.ipxe, per-MAC script, kernel,
//! marker. The same with BIOS and QEMU's iPXE ROM (DHCP straight to HTTP).
//! Needs root; under CI it must run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::boot_support::{
    Firmware, Nginx, busybox_initramfs, debian_kernel, default_boot_timeout, need, need_boot_tools,
    need_root, qemu_run,
};
use crate::harness::Site;

const SERVER: &str = "10.77.0.1";
pub(crate) const MAC: &str = "52:54:00:aa:bb:01";

/// One chain at a time: the namespaces are independent, but the machine has
/// two cores and Kea's lock files are global.
pub(crate) static CHAIN: Mutex<()> = Mutex::new(());

/// A network namespace with a bridge (10.77.0.1/24) and a tap on it.
pub(crate) struct Netns {
    pub(crate) name: String,
    children: Vec<Child>,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Netns {
    pub(crate) fn new() -> Netns {
        let name = format!("bootc-test-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns {
            name,
            children: Vec::new(),
        };
        for cmd in [
            "ip link set lo up",
            "ip link add br0 type bridge",
            "ip addr add 10.77.0.1/24 dev br0",
            "ip link set br0 up",
            "ip tuntap add tap0 mode tap",
            "ip link set tap0 master br0",
            "ip link set tap0 up",
            // A port with a carrier from the start: a bridge whose only port
            // is a tap nobody holds yet is "not running", and Kea gives up
            // on it for good ("failed to open socket").
            "ip link add bk0 type veth peer name bk1",
            "ip link set bk0 master br0",
            "ip link set bk0 up",
            "ip link set bk1 up",
        ] {
            let mut argv = vec!["netns", "exec", &ns.name];
            argv.extend(cmd.split(' '));
            ip(&argv);
        }
        ns
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Starts a long-running program in the namespace, its output to `log`.
    fn spawn(&mut self, program: &str, args: &[String], log: &std::path::Path) {
        let out = fs::File::create(log).unwrap();
        let child = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
        self.children.push(child);
        std::thread::sleep(Duration::from_millis(500));
        if let Ok(Some(status)) = self.children.last_mut().unwrap().try_wait() {
            panic!(
                "{program} exited at once ({status}):\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Server {
    Dhcpd,
    /// dhcpd with the operator's own dhcpd.conf (subnet, pool, options),
    /// which includes bootc's fragment (`[dhcp] mode = "include"`).
    DhcpdInclude,
    Dnsmasq,
    Kea,
}

/// The operator's own dhcpd.conf of the include-mode chain: its subnet,
/// pool and options, and the one line that includes bootc's fragment.
fn wrapper_dhcpd_conf(public: &Path) -> String {
    format!(
        "# The operator's dhcpd.conf\n\
         authoritative;\n\
         default-lease-time 600;\n\
         option domain-name \"corp.example\";\n\
         subnet 10.77.0.0 netmask 255.255.255.0 {{\n  range 10.77.0.100 10.77.0.200;\n  option routers 10.77.0.1;\n}}\n\
         include \"{}\";\n",
        public.join("dhcp/dhcpd-bootc.conf").display()
    )
}

/// Runs `server` with the tree's generated config, in.tftpd on tftp/ and
/// nginx on http/, in a new network namespace (removed on drop).
pub(crate) fn serve_tree(server: Server, public: &Path, work: &Path) -> (Netns, Nginx, PathBuf) {
    let log = work.join("dhcp.log");

    let mut ns = Netns::new();
    let conf = |f: &str| public.join("dhcp").join(f).display().to_string();
    match server {
        Server::Dhcpd | Server::DhcpdInclude => {
            let conf = match server {
                Server::Dhcpd => conf("dhcpd.conf"),
                _ => {
                    let wrapper = work.join("dhcpd.conf");
                    fs::write(&wrapper, wrapper_dhcpd_conf(public)).unwrap();
                    wrapper.display().to_string()
                }
            };
            let leases = work.join("dhcpd.leases");
            fs::write(&leases, "").unwrap();
            let args = [
                "-f",
                "-d",
                "-4",
                "-cf",
                &conf,
                "-lf",
                &leases.display().to_string(),
            ];
            let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            args.extend([
                "-pf".into(),
                work.join("dhcpd.pid").display().to_string(),
                "br0".into(),
            ]);
            ns.spawn("dhcpd", &args, &log);
        }
        Server::Dnsmasq => {
            // dnsmasq is also the TFTP server, as on many networks: its log
            // shows what GRUB fetched over TFTP (beacons included).
            let args = vec![
                "-k".to_string(),
                format!("--conf-file={}", conf("dnsmasq.conf")),
                format!("--pid-file={}", work.join("dnsmasq.pid").display()),
                format!("--dhcp-leasefile={}", work.join("dnsmasq.leases").display()),
                "--user=root".to_string(),
                "--log-facility=-".to_string(),
                "--enable-tftp".to_string(),
                format!("--tftp-root={}", public.join("tftp").display()),
            ];
            ns.spawn("dnsmasq", &args, &log);
        }
        Server::Kea => {
            // The generated config, with only the lease file moved from
            // /var/lib/kea (made by the Kea service on a real server) to here.
            let mut kea: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(conf("kea-dhcp4.json")).unwrap()).unwrap();
            kea["Dhcp4"]["lease-database"]["name"] =
                work.join("kea-leases4.csv").display().to_string().into();
            let kea_conf = work.join("kea-dhcp4.json");
            fs::write(&kea_conf, serde_json::to_string_pretty(&kea).unwrap()).unwrap();
            // Kea keeps its lock and pid files in global folders: point them here.
            let args = ["-c".to_string(), kea_conf.display().to_string()];
            let out = fs::File::create(&log).unwrap();
            let child = ns
                .command("kea-dhcp4")
                .args(&args)
                .env("KEA_LOCKFILE_DIR", work)
                .env("KEA_PIDFILE_DIR", work)
                .stdin(Stdio::null())
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .expect("spawn kea-dhcp4");
            ns.children.push(child);
            std::thread::sleep(Duration::from_millis(1000));
            if let Ok(Some(status)) = ns.children.last_mut().unwrap().try_wait() {
                panic!(
                    "kea-dhcp4 exited at once ({status}):\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        }
    }
    let tftp_args = vec![
        "-L".to_string(),
        "-a".into(),
        format!("{SERVER}:69"),
        "-u".into(),
        "root".into(),
        "-s".into(),
        public.join("tftp").display().to_string(),
    ];
    if !matches!(server, Server::Dnsmasq) {
        ns.spawn("in.tftpd", &tftp_args, &work.join("tftpd.log"));
    }
    let nginx = Nginx::start_in_netns(&public.join("http"), &ns.name, &format!("{SERVER}:8080"));
    (ns, nginx, log)
}

/// The basic fixture made to boot in the namespace: served at
/// http://10.77.0.1:8080/, DHCP on br0, this machine's iPXE; with `kernel`,
/// that kernel and the busybox initramfs as its image.
pub(crate) fn chain_site(kernel: Option<&Path>) -> Site {
    let s = Site::fixture("basic");
    if let Some(kernel) = kernel {
        fs::copy(kernel, s.path("artifacts/vmlinuz")).unwrap();
        busybox_initramfs(&s.path("artifacts"));
    }
    s.edit(
        "bootc.toml",
        "base-url = \"http://10.77.0.1:8080/boot/\"",
        "base-url = \"http://10.77.0.1:8080/\"",
    );
    s.edit(
        "bootc.toml",
        "next-server = \"10.77.0.1\"",
        "next-server = \"10.77.0.1\"\ninterface = \"br0\"",
    );
    s.edit(
        "bootc.toml",
        "binaries = \"ipxe\"",
        "binaries = \"/usr/lib/ipxe\"",
    );
    s
}

impl Server {
    fn program(self) -> &'static str {
        match self {
            Server::Dhcpd | Server::DhcpdInclude => "dhcpd",
            Server::Dnsmasq => "dnsmasq",
            Server::Kea => "kea-dhcp4",
        }
    }
}

fn chain(server: Server, firmware: Firmware) {
    let program = server.program();
    if !(need_root()
        && need_boot_tools(firmware)
        && need(program)
        && need("in.tftpd")
        && need("ip"))
    {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());

    let s = chain_site(Some(&kernel));
    if let Server::DhcpdInclude = server {
        s.edit("bootc.toml", "[dhcp]\n", "[dhcp]\nmode = \"include\"\n");
    }
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = s.path("public");
    let work = tempfile::tempdir().unwrap();
    let (ns, nginx, log) = serve_tree(server, &public, work.path());

    // UEFI: no option ROM, so OVMF's own PXE client starts the chain.
    let device = match firmware {
        Firmware::Bios => format!("virtio-net-pci,netdev=n0,mac={MAC}"),
        _ => format!("virtio-net-pci,netdev=n0,mac={MAC},romfile="),
    };
    let nics = vec![
        "-netdev".to_string(),
        "tap,id=n0,ifname=tap0,script=no,downscript=no".to_string(),
        "-device".to_string(),
        device,
    ];
    let result = qemu_run(
        &["ip", "netns", "exec", &ns.name],
        &nics,
        firmware,
        default_boot_timeout().max(Duration::from_secs(180)),
    );
    let dhcp_log = fs::read_to_string(&log).unwrap_or_default();
    let context = format!(
        "{}\n--- {program} log ---\n{dhcp_log}\n--- nginx ---\n{}",
        result.diagnostics(),
        nginx.access_log()
    );
    let Some(cmdline) = result.marker.clone() else {
        panic!("{server:?}/{firmware:?}: no marker\n{context}")
    };
    let args: Vec<&str> = cmdline.split_whitespace().collect();
    assert!(
        args.contains(&"bootc.role=worker") && args.contains(&"worker.tier=gold"),
        "{cmdline}\n{context}"
    );
    let served: Vec<String> = nginx.served();
    for uri in ["/boot.ipxe", "/machines/52-54-00-aa-bb-01.ipxe"] {
        assert!(
            served.iter().any(|u| u == uri),
            "{uri} not fetched\n{context}"
        );
    }
    // The machine got its fixed address, from the server and as iPXE saw it.
    assert!(
        dhcp_log.contains("10.77.0.11"),
        "{program} never handed out 10.77.0.11\n{context}"
    );
    assert!(
        result.output.contains("10.77.0.11"),
        "iPXE did not configure 10.77.0.11\n{context}"
    );
    eprintln!("{server:?} {firmware:?}: booted in {:.1?}", result.elapsed);
}

#[test]
fn uefi_pxe_chain_with_dhcpd() {
    chain(Server::Dhcpd, Firmware::Uefi);
}

#[test]
fn uefi_pxe_chain_with_dnsmasq() {
    chain(Server::Dnsmasq, Firmware::Uefi);
}

#[test]
fn uefi_pxe_chain_with_kea() {
    chain(Server::Kea, Firmware::Uefi);
}

/// BIOS through the operator's own dhcpd.conf, which includes bootc's
/// fragment (the whole-config dhcpd chain is booted under UEFI above).
#[test]
fn bios_ipxe_chain_with_an_including_dhcpd_conf() {
    chain(Server::DhcpdInclude, Firmware::Bios);
}
