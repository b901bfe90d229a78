//! The UEFI boot paths beyond iPXE, for real, in the network namespaces of
//! [`crate::pxe_chain`]: Secure Boot (shim, GRUB, a signed kernel) with
//! dhcpd, arm64 (AAVMF, Debian's arm64 shim and GRUB) with dnsmasq, and UEFI
//! HTTP Boot with Kea. Needs root; under CI they must run.

use std::fs;
use std::time::Duration;

use crate::boot_support::{
    Firmware, debian_kernel, default_boot_timeout, need, need_boot_tools, need_file, need_root,
    need_signed_loaders,
};
use crate::pxe_chain::{CHAIN, MAC, Netns, Server, chain_site, serve_tree};

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
        && need_signed_loaders())
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
    // GRUB's beacon over TFTP, in dnsmasq's log: status knows the boot.
    let arm01 = &crate::status::status(&s, &log)["arm01"];
    assert_eq!(arm01["current"], true, "{arm01}\n{context}");
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
