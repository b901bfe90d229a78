//! `[site] allowed-hosts`: every URL a boot could reach on another host is
//! an error at its place: an artifact URL, a chain target, a URL inside a
//! kernel argument, a URL in a rendered per-machine file. base-url's host
//! is always allowed; a vendored artifact is not reached by any boot.

use crate::harness::Site;

/// The basic fixture, allowing one mirror.
fn allow(s: &Site) {
    s.edit(
        "bootc.toml",
        "name = \"fixture\"",
        "name = \"fixture\"\nallowed-hosts = [\"mirror.lab.internal\"]",
    );
}

invalid!(
    allowed_hosts_kernel_arg,
    "kernel argument reaches ks.example.com, which is not in allowed-hosts",
    "roles/worker.toml:3:",
    |s| {
        allow(&s);
        s.edit(
            "roles/worker.toml",
            "\"worker.tier={{ vars.tier }}\"",
            "\"worker.tier={{ vars.tier }}\", \"inst.ks=http://ks.example.com/{{ machine.name }}.cfg\"",
        );
    }
);

invalid!(
    allowed_hosts_per_machine_file,
    "per-machine file `user-data` reaches pkgs.example.org, which is not in allowed-hosts",
    "templates/cloud-init.yaml.j2:6:28",
    |s| {
        allow(&s);
        s.append(
            "templates/cloud-init.yaml.j2",
            "apt:\n  primary: [{ uri: \"http://pkgs.example.org/debian\" }]\n",
        );
    }
);

invalid!(
    allowed_hosts_chain_target,
    "`http://netboot.example.net/menu.ipxe` reaches netboot.example.net, which is not in allowed-hosts",
    "images/disk.toml:1:",
    |s| {
        allow(&s);
        s.write(
            "images/disk.toml",
            "chain = { url = \"http://netboot.example.net/menu.ipxe\" }\n",
        );
    }
);

invalid!(
    allowed_hosts_artifact_url,
    "`http://cdn.example.com/linux` reaches cdn.example.com, which is not in allowed-hosts",
    "images/linux.toml:2:",
    |s| {
        allow(&s);
        s.edit(
            "images/linux.toml",
            "kernel = { path = \"artifacts/vmlinuz\" }",
            "kernel = { url = \"http://cdn.example.com/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }",
        );
    }
);

invalid!(
    allowed_hosts_entries_are_hosts,
    "invalid allowed host `https://mirror/`",
    "bootc.toml:3:18",
    |s| {
        s.edit(
            "bootc.toml",
            "name = \"fixture\"",
            "name = \"fixture\"\nallowed-hosts = [\"https://mirror/\"]",
        );
    }
);

/// base-url's host and the listed ones pass.
#[test]
fn allowed_hosts_and_base_url_pass() {
    let s = Site::fixture("basic");
    allow(&s);
    s.edit(
        "roles/worker.toml",
        "\"worker.tier={{ vars.tier }}\"",
        "\"worker.tier={{ vars.tier }}\", \"url=http://10.77.0.1:8080/boot/preseed.cfg\", \"ds=nocloud-net;s=http://mirror.lab.internal/ci/\"",
    );
    let r = s.run(&["check", "."]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// The report lists, per machine, the hosts other than base-url's its boot
/// reaches (kernel arguments, per-machine files, artifact URLs), with or
/// without allowed-hosts; a machine that reaches none says so.
#[test]
fn the_report_lists_each_machines_outside_hosts() {
    let s = Site::fixture("basic");
    s.edit(
        "roles/worker.toml",
        "\"worker.tier={{ vars.tier }}\"",
        "\"worker.tier={{ vars.tier }}\", \"url=http://10.77.0.1:8080/boot/preseed.cfg\", \"inst.ks=http://ks.example.com/{{ machine.name }}.cfg\"",
    );
    s.append(
        "templates/cloud-init.yaml.j2",
        "apt:\n  primary: [{ uri: \"http://pkgs.example.org/debian\" }]\n",
    );
    let r = s.build();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let index = crate::build::report_index(&s);
    let hosts = |name: &str| {
        let m = index["machines"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m[0] == name)
            .unwrap_or_else(|| panic!("no {name}"));
        m[9].as_str().unwrap().to_string()
    };
    assert_eq!(hosts("node01"), "ks.example.com pkgs.example.org");
    assert_eq!(hosts("node03"), "");
}
