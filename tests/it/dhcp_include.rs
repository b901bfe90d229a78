//! Existing DHCP servers (SPEC section 11): `[dhcp] mode = "include"`
//! fragments loaded by the operator's own configs (a dhcpd `include`, Kea's
//! `<?include?>`, dnsmasq's `conf-dir`) pass each server's check; lease
//! time and options reach all three whole configs; each rule with its
//! message and place. The boot through an including dhcpd.conf is in
//! pxe_chain.rs.

use std::fs;

use crate::dhcp::{checks_pass, configs_pass};
use crate::harness::Site;

fn include_mode(s: &Site) {
    s.edit("bootc.toml", "[dhcp]\n", "[dhcp]\nmode = \"include\"\n");
}

/// Wrapper configs as an operator writes them around the fragments of
/// `public`; returns their paths (dhcpd, Kea, dnsmasq).
fn wrappers(s: &Site) -> [std::path::PathBuf; 3] {
    let dhcp = s.path("public/dhcp");
    let dir = s.path("wrappers");
    fs::create_dir_all(&dir).unwrap();
    let dhcpd = dir.join("dhcpd.conf");
    fs::write(
        &dhcpd,
        format!(
            "# Our own dhcpd.conf\ndefault-lease-time 600;\noption domain-name \"corp.example\";\n\
             subnet 10.77.0.0 netmask 255.255.255.0 {{\n  range 10.77.0.100 10.77.0.200;\n}}\n\
             include \"{}\";\n",
            dhcp.join("dhcpd-bootc.conf").display()
        ),
    )
    .unwrap();
    let kea = dir.join("kea-dhcp4.json");
    fs::write(
        &kea,
        format!(
            "{{\n  \"Dhcp4\": {{\n    \"interfaces-config\": {{ \"interfaces\": [\"*\"] }},\n    \"valid-lifetime\": 600,\n    \
             \"subnet4\": [ {{ \"id\": 7, \"subnet\": \"10.77.0.0/24\", \"pools\": [ {{ \"pool\": \"10.77.0.100 - 10.77.0.200\" }} ] }} ],\n    \
             <?include \"{}\"?>\n  }}\n}}\n",
            dhcp.join("kea-bootc.json").display()
        ),
    )
    .unwrap();
    let dnsmasq = dir.join("dnsmasq.conf");
    fs::write(
        &dnsmasq,
        format!(
            "port=0\ndhcp-range=10.77.0.100,10.77.0.200,255.255.255.0,12h\nconf-dir={},*.conf\n",
            dhcp.join("dnsmasq.d").display()
        ),
    )
    .unwrap();
    [dhcpd, kea, dnsmasq]
}

/// The fragments are written (and the whole configs are not), hold the
/// host entries and the boot-file logic but none of the operator's parts,
/// and load in the real servers through wrapper configs.
#[test]
fn include_mode_fragments_load_in_the_real_servers() {
    // Secure Boot for the site, off for node03: dhcpd and dnsmasq give
    // node03 its own loader.
    let s = crate::secureboot::secure_site();
    include_mode(&s);
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let files: Vec<String> = crate::harness::tree(&s.path("public/dhcp"))
        .into_keys()
        .collect();
    assert_eq!(
        files,
        ["dhcpd-bootc.conf", "dnsmasq.d/bootc.conf", "kea-bootc.json"]
    );
    let dhcpd = s.out("dhcp/dhcpd-bootc.conf");
    assert!(
        dhcpd.contains(
            "host node01 {\n  hardware ethernet 52:54:00:aa:bb:01;\n  fixed-address 10.77.0.11;"
        ),
        "{dhcpd}"
    );
    for absent in ["subnet ", "authoritative", "lease-time", "range "] {
        assert!(
            !dhcpd.contains(absent),
            "{absent:?} in the dhcpd fragment:\n{dhcpd}"
        );
    }
    let dnsmasq = s.out("dhcp/dnsmasq.d/bootc.conf");
    for absent in ["port=", "dhcp-range", "dhcp-authoritative", "interface="] {
        assert!(
            !dnsmasq.contains(absent),
            "{absent:?} in the dnsmasq fragment:\n{dnsmasq}"
        );
    }
    assert!(
        dnsmasq.contains("dhcp-host=52:54:00:aa:bb:03,10.77.0.13,node03,set:efi64-other"),
        "{dnsmasq}"
    );
    assert!(
        dhcpd.contains("filename \"snponly.efi\";\n  }\n}"),
        "node03's loader:\n{dhcpd}"
    );
    // Kea: reservations never carry a boot file or options, which would
    // override the classes (iPXE, HTTP Boot).
    let kea = s.out("dhcp/kea-bootc.json");
    assert!(kea.contains("\"reservations-global\": true"), "{kea}");
    let reservations = &kea[kea.find("\"reservations\": [").unwrap()..];
    for absent in [
        "boot-file-name",
        "option-data",
        "client-classes",
        "next-server",
    ] {
        assert!(
            !reservations.contains(absent),
            "{absent} in Kea's reservations:\n{reservations}"
        );
    }
    let [dhcpd, kea, dnsmasq] = wrappers(&s);
    configs_pass(&dhcpd, &kea, &dnsmasq);
}

/// lease-time and every [dhcp.options] key reach the three formats, which
/// pass their servers' checks.
#[test]
fn lease_time_and_options_in_all_three_formats() {
    let s = Site::fixture("basic");
    s.edit("bootc.toml", "[dhcp]\n", "[dhcp]\nlease-time = 7200\n");
    s.append(
        "bootc.toml",
        "\n[dhcp.options]\nntp-servers = [\"10.77.0.1\", \"10.77.0.2\"]\ndomain-search = [\"lab.internal\", \"example.org\"]\nmtu = 9000\ntime-offset = -3600\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let dhcpd = s.out("dhcp/dhcpd.conf");
    for want in [
        "default-lease-time 7200;",
        "max-lease-time 7200;",
        "option ntp-servers 10.77.0.1, 10.77.0.2;",
        "option domain-search \"lab.internal\", \"example.org\";",
        "option interface-mtu 9000;",
        "option time-offset -3600;",
    ] {
        assert!(dhcpd.contains(want), "{want} not in dhcpd.conf:\n{dhcpd}");
    }
    let kea: serde_json::Value = serde_json::from_str(&s.out("dhcp/kea-dhcp4.json")).unwrap();
    assert_eq!(kea["Dhcp4"]["valid-lifetime"], 7200);
    let opts = kea["Dhcp4"]["option-data"].to_string();
    for want in [
        r#"{"data":"10.77.0.1, 10.77.0.2","name":"ntp-servers"}"#,
        r#"{"data":"lab.internal, example.org","name":"domain-search"}"#,
        r#"{"data":"9000","name":"interface-mtu"}"#,
        r#"{"data":"-3600","name":"time-offset"}"#,
    ] {
        assert!(opts.contains(want), "{want} not in {opts}");
    }
    let dnsmasq = s.out("dhcp/dnsmasq.conf");
    for want in [
        ",255.255.255.0,7200\n",
        "dhcp-option=option:ntp-server,10.77.0.1,10.77.0.2\n",
        "dhcp-option=option:domain-search,lab.internal,example.org\n",
        "dhcp-option=option:mtu,9000\n",
        "dhcp-option=2,-3600\n",
    ] {
        assert!(
            dnsmasq.contains(want),
            "{want:?} not in dnsmasq.conf:\n{dnsmasq}"
        );
    }
    checks_pass(&s.path("public"));
}

invalid!(
    include_mode_takes_no_options,
    "[dhcp.options] is not used with mode = \"include\"",
    "bootc.toml:",
    |s| {
        include_mode(&s);
        s.append("bootc.toml", "\n[dhcp.options]\nmtu = 1500\n");
    }
);

invalid!(
    a_lease_time_too_short,
    "lease-time 30 is out of range",
    "bootc.toml:8:14",
    |s| {
        s.edit("bootc.toml", "[dhcp]\n", "[dhcp]\nlease-time = 30\n");
    }
);

invalid!(
    an_mtu_out_of_range,
    "mtu 20 is out of range",
    "bootc.toml:",
    |s| {
        s.append("bootc.toml", "\n[dhcp.options]\nmtu = 20\n");
    }
);

invalid!(
    an_ntp_server_that_is_no_address,
    "invalid NTP server",
    "bootc.toml:",
    |s| {
        s.append(
            "bootc.toml",
            "\n[dhcp.options]\nntp-servers = [\"ntp.example\"]\n",
        );
    }
);

invalid!(
    an_unknown_dhcp_option,
    "unknown key `routers`",
    "bootc.toml:",
    |s| {
        s.append(
            "bootc.toml",
            "\n[dhcp.options]\nrouters = [\"10.77.0.1\"]\n",
        );
    }
);
