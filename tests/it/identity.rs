//! Machines beyond one MAC and one role (SPEC sections 2 and 11): a
//! per-machine `image`, `boot = false` reservations, `uuid` and `serial`.
//! Each rule with its message and place; what each writes (scripts, DHCP
//! host entries, plan.json), and what `explain` and `diff` say of them.
//! The boots by UUID and by serial are in boot.rs.

use crate::harness::Site;

invalid!(
    a_uuid_that_is_not_one,
    "invalid UUID `6c2b43a1-58f0`",
    "machines/rack1.toml:9:8",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\nuuid = \"6c2b43a1-58f0\"\n",
        );
    }
);

invalid!(
    a_serial_that_cannot_be_in_a_url,
    "serial number `SN 01/2` cannot be part of a URL",
    "machines/rack1.toml:9:10",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\nserial = \"SN 01/2\"\n",
        );
    }
);

invalid!(
    one_uuid_on_two_machines,
    "UUID `6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2` belongs to two machines",
    "machines/rack1.toml:15:8",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\nuuid = \"6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2\"\n",
        );
        // The same UUID, written without dashes and in capitals.
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.12\"\n",
            "ip = \"10.77.0.12\"\nuuid = \"6C2B43A158F04C1E9D3A0B7E51A4C9D2\"\n",
        );
    }
);

invalid!(
    one_serial_on_two_machines,
    "serial number `SN-1` belongs to two machines",
    "machines/rack1.toml:15:10",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\nserial = \"SN-1\"\n",
        );
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.12\"\n",
            "ip = \"10.77.0.12\"\nserial = \"SN-1\"\n",
        );
    }
);

invalid!(
    a_machine_image_that_does_not_exist,
    "machine `node01` boots image `dsik`, which does not exist",
    "machines/rack1.toml:9:9",
    |s| {
        s.edit(
            "machines/rack1.toml",
            "ip = \"10.77.0.11\"\n",
            "ip = \"10.77.0.11\"\nimage = \"dsik\"\n",
        );
    }
);

invalid!(
    a_reservation_shares_a_machines_mac,
    "MAC address 52:54:00:aa:bb:01 is used twice",
    "machines/bmc.toml:3:7",
    |s| {
        s.write(
            "machines/bmc.toml",
            "[[machine]]\nname = \"bmc01\"\nmac = \"5254.00AA.BB01\"\nboot = false\n",
        );
    }
);

/// `image` on a machine overrides its role's: the machine boots it, plan.json
/// and explain say so, and its role may have no image of its own.
#[test]
fn a_machine_image_overrides_its_roles() {
    let s = Site::fixture("basic");
    s.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.11\"\n",
        "ip = \"10.77.0.11\"\nimage = \"disk\"\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let script = s.out("http/machines/52-54-00-aa-bb-01.ipxe");
    assert!(script.contains("booting from the local disk"), "{script}");
    assert!(
        s.out("http/machines/52-54-00-aa-bb-02.ipxe")
            .contains("kernel ")
    );
    let plan = s.out("plan.json");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["machines"][0]["image"], "disk");
    let e = s.run(&["explain", ".", "node01"]);
    assert!(e.stdout.contains("image      disk (local)"), "{}", e.stdout);
    // A role without an image is fine for machines that name their own.
    s.write("roles/special.toml", "description = \"No image\"\n");
    s.edit(
        "machines/rack1.toml",
        "image = \"disk\"\n",
        "image = \"disk\"\nrole = \"special\"\n",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // ...and an error for one that does not.
    s.edit("machines/rack1.toml", "image = \"disk\"\n", "");
    let r = s.run(&["check", "."]);
    assert!(
        r.errors().contains("error: role `special` boots no image"),
        "{}",
        r.stderr
    );
}

/// `boot = false`: no role needed, no script, a host entry with its address
/// and name in all three DHCP formats, in plan.json; explain says what it is.
#[test]
fn a_reservation_gets_an_address_and_no_script() {
    let s = Site::fixture("basic");
    s.write(
        "machines/bmc.toml",
        "[[machine]]\nname = \"bmc01\"\nmac = \"52-54-00-AA-BB-FF\"\nip = \"10.77.0.99\"\nboot = false\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !s.path("public/http/machines/52-54-00-aa-bb-ff.ipxe")
            .exists()
    );
    let dhcpd = s.out("dhcp/dhcpd.conf");
    assert!(
        dhcpd.contains("host bmc01 {\n  hardware ethernet 52:54:00:aa:bb:ff;\n  fixed-address 10.77.0.99;\n  option host-name \"bmc01\";\n}"),
        "{dhcpd}"
    );
    assert!(
        s.out("dhcp/dnsmasq.conf")
            .contains("dhcp-host=52:54:00:aa:bb:ff,10.77.0.99,bmc01")
    );
    assert!(s.out("dhcp/kea-dhcp4.json").contains(
        "{ \"hw-address\": \"52:54:00:aa:bb:ff\", \"ip-address\": \"10.77.0.99\", \"hostname\": \"bmc01\" }"
    ));
    let plan: serde_json::Value = serde_json::from_str(&s.out("plan.json")).unwrap();
    assert_eq!(plan["reservations"][0]["name"], "bmc01");
    assert!(
        plan["machines"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["name"] != "bmc01")
    );
    let e = s.run(&["explain", ".", "52:54:00:aa:bb:ff"]);
    assert_eq!(e.code, 0, "{}", e.stderr);
    assert!(
        e.stdout.contains("boot       none: boot = false"),
        "{}",
        e.stdout
    );
    // A key that says how it boots is not used: a warning at the key.
    s.edit(
        "machines/bmc.toml",
        "boot = false\n",
        "boot = false\nrole = \"worker\"\n",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning[unused-reservation-key]: `role` is not used: machine `bmc01` has boot = false\n  --> machines/bmc.toml:6:8"),
        "{}",
        r.stderr
    );
}

/// A machine's script is served under its UUID and serial too (the first
/// MAC's), and boot.ipxe tries them, in that order, before the fallback.
#[test]
fn uuid_and_serial_scripts() {
    let s = Site::fixture("basic");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let plain = s.out("http/boot.ipxe");
    assert!(!plain.contains("uuid"), "no machine has a UUID: {plain}");
    s.edit("machines/rack1.toml", "ip = \"10.77.0.12\"\n", "ip = \"10.77.0.12\"\nuuid = \"6C2B43A1-58F0-4C1E-9D3A-0B7E51A4C9D2\"\nserial = \"SN-0002\"\n");
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = s.out("http/machines/52-54-00-aa-bb-02.ipxe");
    assert_eq!(
        s.out("http/machines/uuid-6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2.ipxe"),
        first
    );
    assert_eq!(s.out("http/machines/serial-SN-0002.ipxe"), first);
    insta::assert_snapshot!("boot_ipxe_by_identity", s.out("http/boot.ipxe"));
    let e = s.run(&["explain", ".", "6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2"]);
    assert!(e.stdout.starts_with("machine    node02\n"), "{}", e.stdout);
    let e = s.run(&["explain", ".", "SN-0002"]);
    assert!(e.stdout.starts_with("machine    node02\n"), "{}", e.stdout);
}

/// diff shows a changed UUID on a machine and a new reservation.
#[test]
fn diff_shows_identities_and_reservations() {
    let s = Site::fixture("basic");
    let base = s.path("base-tree");
    let r = s.run(&["build", ".", "-o", base.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.edit(
        "machines/rack1.toml",
        "ip = \"10.77.0.12\"\n",
        "ip = \"10.77.0.12\"\nuuid = \"6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2\"\n",
    );
    s.write("machines/bmc.toml", "[[machine]]\nname = \"bmc01\"\nmac = \"52:54:00:aa:bb:ff\"\nip = \"10.77.0.99\"\nboot = false\n");
    let head = s.path("head-tree");
    let r = s.run(&["build", ".", "-o", head.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let d = s.run(&["diff", base.to_str().unwrap(), head.to_str().unwrap()]);
    assert!(d.stdout.contains("uuid"), "{}", d.stdout);
    assert!(
        d.stdout.contains("6c2b43a1-58f0-4c1e-9d3a-0b7e51a4c9d2"),
        "{}",
        d.stdout
    );
    assert!(
        d.stdout.contains("reservation bmc01 (boot = false)"),
        "{}",
        d.stdout
    );
}
