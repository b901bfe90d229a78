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
    need_file, need_root, qemu_run,
};
use crate::harness::Site;

const SERVER: &str = "10.77.0.1";
const MAC: &str = "52:54:00:aa:bb:01";

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
    fn new() -> Netns {
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
    Dnsmasq,
    Kea,
}

/// Runs `server` with the tree's generated config, in.tftpd on tftp/ and
/// nginx on http/, in a new network namespace (removed on drop).
pub(crate) fn serve_tree(server: Server, public: &Path, work: &Path) -> (Netns, Nginx, PathBuf) {
    let log = work.join("dhcp.log");

    let mut ns = Netns::new();
    let conf = |f: &str| public.join("dhcp").join(f).display().to_string();
    match server {
        Server::Dhcpd => {
            let leases = work.join("dhcpd.leases");
            fs::write(&leases, "").unwrap();
            let args = [
                "-f",
                "-d",
                "-4",
                "-cf",
                &conf("dhcpd.conf"),
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
            let args = vec![
                "-k".to_string(),
                format!("--conf-file={}", conf("dnsmasq.conf")),
                format!("--pid-file={}", work.join("dnsmasq.pid").display()),
                format!("--dhcp-leasefile={}", work.join("dnsmasq.leases").display()),
                "--user=root".to_string(),
                "--log-facility=-".to_string(),
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
    ns.spawn("in.tftpd", &tftp_args, &work.join("tftpd.log"));
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
            Server::Dhcpd => "dhcpd",
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

#[test]
fn bios_ipxe_chain_with_dhcpd() {
    chain(Server::Dhcpd, Firmware::Bios);
}

/// A boot of `mac` under `firmware` inside the namespace.
fn boot_in(ns: &Netns, mac: &str, firmware: Firmware) -> crate::boot_support::BootResult {
    boot_until(ns, mac, firmware, crate::boot_support::MARKER_PREFIX)
}

/// [`boot_in`], stopping at a console line starting with `until`.
fn boot_until(
    ns: &Netns,
    mac: &str,
    firmware: Firmware,
    until: &str,
) -> crate::boot_support::BootResult {
    boot_with(ns, mac, firmware, until, &[])
}

/// [`boot_until`] with more QEMU arguments.
fn boot_with(
    ns: &Netns,
    mac: &str,
    firmware: Firmware,
    until: &str,
    more: &[&str],
) -> crate::boot_support::BootResult {
    let mut nics: Vec<String> = more.iter().map(|a| a.to_string()).collect();
    nics.extend([
        "-netdev".to_string(),
        "tap,id=n0,ifname=tap0,script=no,downscript=no".to_string(),
        "-device".to_string(),
        format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
    ]);
    crate::boot_support::qemu_run_until(
        &["ip", "netns", "exec", &ns.name],
        &nics,
        firmware,
        default_boot_timeout().max(Duration::from_secs(240)),
        until,
    )
}

/// Secure Boot, for real, with the generated dhcpd config: OVMF with
/// Microsoft's keys -> PXE -> Debian's signed shim -> signed GRUB ->
/// grub.cfg -> the MAC's config -> Debian's signed kernel (over TFTP) and
/// the busybox initramfs. A second NIC of the same machine gets that
/// machine's config, an unknown MAC the fallback; a machine that opts out
/// gets iPXE through its own host entry on plain OVMF; and a kernel whose
/// signature was stripped, put into the tree by hand, is refused by shim.
#[test]
fn uefi_secure_boot_chain_with_dhcpd() {
    if !(need_root()
        && need_boot_tools(Firmware::UefiSecureBoot)
        && need_boot_tools(Firmware::Uefi)
        && need("dhcpd")
        && need("in.tftpd")
        && need("sbattach")
        && need_file("/usr/lib/shim/shimx64.efi.signed", "shim-signed")
        && need_file(
            "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed",
            "grub-efi-amd64-signed",
        ))
    {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());
    let s = chain_site(Some(&kernel));
    s.edit(
        "bootc.toml",
        "fallback = \"local\"",
        "fallback = \"worker\"",
    );
    s.append("bootc.toml", "\n[uefi]\nsecure-boot = true\n");
    // node03 gets the kernel image and opts out of Secure Boot.
    s.edit(
        "machines/sub/rack2.toml",
        "role = \"disk\"",
        "role = \"worker\"\nsecure-boot = false\nkernel-args = [\"opted=out\"]",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = s.path("public");
    let work = tempfile::tempdir().unwrap();
    let (ns, nginx, log) = serve_tree(Server::Dhcpd, &public, work.path());
    let context = |r: &crate::boot_support::BootResult| {
        format!(
            "{}\n--- dhcpd log ---\n{}\n--- nginx ---\n{}",
            r.diagnostics(),
            fs::read_to_string(&log).unwrap_or_default(),
            nginx.access_log()
        )
    };

    // node01 under Secure Boot.
    let r = boot_in(&ns, MAC, Firmware::UefiSecureBoot);
    let cmdline = r
        .marker
        .clone()
        .unwrap_or_else(|| panic!("node01: no marker\n{}", context(&r)));
    assert!(
        r.output.contains("Secure boot enabled"),
        "not under Secure Boot\n{}",
        context(&r)
    );
    assert!(
        cmdline.contains("bootc.role=worker") && cmdline.contains("worker.tier=gold"),
        "{cmdline}\n{}",
        context(&r)
    );
    eprintln!("Secure Boot node01: marker in {:.1?}", r.elapsed);

    // node02's second NIC: node02's own config.
    let r = boot_in(&ns, "52:54:00:aa:bb:12", Firmware::UefiSecureBoot);
    let cmdline = r
        .marker
        .clone()
        .unwrap_or_else(|| panic!("node02: no marker\n{}", context(&r)));
    assert!(
        cmdline.contains("worker.tier=silver") && cmdline.contains("nomodeset"),
        "{cmdline}\n{}",
        context(&r)
    );

    // An unknown MAC: the fallback (role worker), through GRUB too.
    let r = boot_in(&ns, "52:54:00:aa:bb:99", Firmware::UefiSecureBoot);
    let cmdline = r
        .marker
        .clone()
        .unwrap_or_else(|| panic!("unknown: no marker\n{}", context(&r)));
    assert!(
        r.output
            .contains("bootc: unknown machine, booting role worker"),
        "{}",
        context(&r)
    );
    assert!(
        !cmdline.contains("nomodeset") && cmdline.contains("bootc.role=worker"),
        "{cmdline}"
    );

    // node03 opted out: plain OVMF, iPXE from its host entry, its script.
    let r = boot_in(&ns, "52:54:00:aa:bb:03", Firmware::Uefi);
    let cmdline = r
        .marker
        .clone()
        .unwrap_or_else(|| panic!("node03: no marker\n{}", context(&r)));
    assert!(cmdline.contains("opted=out"), "{cmdline}\n{}", context(&r));
    assert!(
        nginx
            .served()
            .iter()
            .any(|u| u == "/machines/52-54-00-aa-bb-03.ipxe"),
        "{}",
        context(&r)
    );

    // A kernel stripped of its signature, forced into the tree: shim refuses it.
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    let hash = plan["images"]["linux"]["artifacts"][0]["blake3"]
        .as_str()
        .unwrap()
        .to_string();
    let in_tree = public.join(format!("tftp/images/{hash}/vmlinuz"));
    let o = std::process::Command::new("sbattach")
        .args(["--remove", &in_tree.display().to_string()])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "sbattach: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = boot_in(&ns, MAC, Firmware::UefiSecureBoot);
    assert!(
        r.marker.is_none(),
        "an unsigned kernel booted\n{}",
        context(&r)
    );
    assert!(r.output.contains("bad shim signature"), "{}", context(&r));
}

/// Debian's arm64 installer files (debian-installer-12-netboot-arm64).
const DI_ARM64: &str = "/usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64";

/// arm64, for real, with the generated dnsmasq config: AAVMF's PXE ->
/// Debian's signed arm64 shim (option 93 = 11, the file field) -> GRUB of
/// the same folder -> its prefix's grub.cfg (bootc's entry) -> the MAC's
/// config -> Debian's arm64 installer kernel, whose "Kernel command line:"
/// shows the machine's args.
#[test]
fn arm64_chain_with_dnsmasq() {
    if !(need_root()
        && need_boot_tools(Firmware::Arm64)
        && need("dnsmasq")
        && need("in.tftpd")
        && need_file(
            &format!("{DI_ARM64}/bootnetaa64.efi"),
            "debian-installer-12-netboot-arm64",
        ))
    {
        return;
    }
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());
    let s = chain_site(None);
    s.edit(
        "bootc.toml",
        "artifact-roots = [\"artifacts\"]",
        "artifact-roots = [\"artifacts\", \"/usr/lib/debian-installer/images/12\"]",
    );
    s.append(
        "bootc.toml",
        &format!(
            "\n[uefi]\narm64-shim = {{ path = \"{DI_ARM64}/bootnetaa64.efi\" }}\narm64-grub = {{ path = \"{DI_ARM64}/grubaa64.efi\" }}\n"
        ),
    );
    s.write(
        "images/arm.toml",
        &format!(
            "arch = \"arm64\"\nkernel = {{ path = \"{DI_ARM64}/linux\" }}\ninitrd = [{{ path = \"{DI_ARM64}/initrd.gz\" }}]\nkernel-args = [\"console=ttyAMA0\"]\n"
        ),
    );
    s.write(
        "roles/arm.toml",
        "image = \"arm\"\nkernel-args = [\"bootc.role={{ role.name }}\"]\n",
    );
    s.append(
        "machines/sub/rack2.toml",
        "\n[[machine]]\nname = \"arm01\"\nmac = \"52:54:00:aa:bb:21\"\nip = \"10.77.0.21\"\nrole = \"arm\"\nkernel-args = [\"ds=nocloud-net;s=http://10.0.2.2/ci/\"]\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = s.path("public");
    let work = tempfile::tempdir().unwrap();
    let (ns, nginx, log) = serve_tree(Server::Dnsmasq, &public, work.path());
    let r = boot_until(
        &ns,
        "52:54:00:aa:bb:21",
        Firmware::Arm64,
        "Kernel command line: ",
    );
    let context = format!(
        "{}\n--- dnsmasq log ---\n{}\n--- nginx ---\n{}",
        r.diagnostics(),
        fs::read_to_string(&log).unwrap_or_default(),
        nginx.access_log()
    );
    let Some(cmdline) = r.marker.clone() else {
        panic!("arm64: no kernel command line\n{context}")
    };
    let args: Vec<&str> = cmdline.split_whitespace().collect();
    for want in [
        "console=ttyAMA0",
        "bootc.role=arm",
        "ds=nocloud-net;s=http://10.0.2.2/ci/",
    ] {
        assert!(args.contains(&want), "{want} not in {cmdline}\n{context}");
    }
    eprintln!("arm64: kernel command line in {:.1?}", r.elapsed);
}

/// UEFI HTTP Boot, for real, with the generated Kea config and a machine
/// that has a reservation (the reservation must not hide the HTTP Boot
/// class): OVMF with PXE switched off asks as HTTPClient, gets the URL of
/// snponly.efi in http/, which runs iPXE, which fetches boot.ipxe and the
/// machine's script, kernel and initrd: the marker shows its args.
#[test]
fn uefi_http_boot_with_kea() {
    if !(need_root() && need_boot_tools(Firmware::Uefi) && need("kea-dhcp4") && need("in.tftpd")) {
        return;
    }
    let Some(kernel) = debian_kernel() else {
        return;
    };
    let _one = CHAIN.lock().unwrap_or_else(|e| e.into_inner());
    let s = chain_site(Some(&kernel));
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let public = s.path("public");
    let work = tempfile::tempdir().unwrap();
    let (ns, nginx, log) = serve_tree(Server::Kea, &public, work.path());
    let no_pxe = [
        "-fw_cfg",
        "name=opt/org.tianocore/IPv4PXESupport,string=n",
        "-fw_cfg",
        "name=opt/org.tianocore/IPv6PXESupport,string=n",
    ];
    let r = boot_with(
        &ns,
        MAC,
        Firmware::Uefi,
        crate::boot_support::MARKER_PREFIX,
        &no_pxe,
    );
    let context = format!(
        "{}\n--- kea log ---\n{}\n--- nginx ---\n{}",
        r.diagnostics(),
        fs::read_to_string(&log).unwrap_or_default(),
        nginx.access_log()
    );
    let Some(cmdline) = r.marker.clone() else {
        panic!("HTTP Boot: no marker\n{context}")
    };
    assert!(cmdline.contains("worker.tier=gold"), "{cmdline}\n{context}");
    let served = nginx.served();
    for uri in [
        "/snponly.efi",
        "/boot.ipxe",
        "/machines/52-54-00-aa-bb-01.ipxe",
    ] {
        assert!(
            served.iter().any(|u| u == uri),
            "{uri} not fetched\n{context}"
        );
    }
    eprintln!("HTTP Boot: marker in {:.1?}", r.elapsed);
}
