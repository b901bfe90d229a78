//! The fleets the benchmarks build: a realistic generated site of N
//! machines (racks of inventory files, roles, images with a local kernel
//! and initrd, per-machine templates). Shared by benches/build.rs (the
//! binary, end to end) and benches/stages.rs (the library, stage by stage).

#![allow(dead_code)] // each bench uses its part

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Machines per inventory file (one file per rack).
const RACK: usize = 40;
/// Racks per row; each row is one folder and one /16 subnet.
const RACKS_PER_ROW: usize = 20;
/// Rows map to 10.<row>.0.0/16 with row in 1..=250.
const MAX_ROWS: usize = 250;

const KERNEL_SIZE: usize = 8 << 20;
const INITRD_SIZE: usize = 32 << 20;

// ---------------------------------------------------------------------------
// Site generation

pub struct GenStats {
    pub inventory_files: usize,
    pub macs: usize,
}

pub fn write_file(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    fs::write(path, content).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Writes `len` deterministic pseudo-random bytes (splitmix64) to `path`, in
/// chunks: the benchmark process stays small, which matters because a
/// child's `ru_maxrss` starts from what it inherits from this process (see
/// `measure`).
/// Writes `len` bytes to `path`: `header`, then pseudo-random bytes.
fn write_pseudo_random(path: &Path, len: usize, seed: u64, header: &[u8]) {
    if let Some(p) = path.parent() {
        fs::create_dir_all(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    let mut f = std::io::BufWriter::new(
        fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    f.write_all(header)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut state = seed;
    let mut left = len - header.len();
    while left > 0 {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let take = left.min(8);
        f.write_all(&z.to_le_bytes()[..take])
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        left -= take;
    }
    f.flush()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// The first 1024 bytes of an x86 bzImage of `len` bytes: one setup
/// sector, the Linux boot protocol magic, and `syssize` within `len`.
fn bzimage_header(len: usize) -> Vec<u8> {
    let mut b = vec![0u8; 1024];
    b[0x1f1] = 1;
    let paragraphs = u32::try_from((len - 1024) / 16).expect("fits");
    b[0x1f4..0x1f8].copy_from_slice(&paragraphs.to_le_bytes());
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b
}

/// SHA-256 of a file, through coreutils' `sha256sum` (no hashing crate is a
/// dependency of the project).
fn sha256_file(p: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    assert!(out.status.success(), "sha256sum {} failed", p.display());
    let s = String::from_utf8(out.stdout).expect("utf-8");
    let h = s.split_whitespace().next().unwrap_or_default().to_string();
    assert!(
        h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
        "sha256sum gave {h:?}"
    );
    h
}

pub fn rows_for(n: usize) -> usize {
    n.div_ceil(RACK * RACKS_PER_ROW)
}

pub fn generate_site(site: &Path, n: usize) -> GenStats {
    let rows = rows_for(n);
    assert!(
        rows <= MAX_ROWS,
        "at most {} machines: one /16 per row of {} machines, 10.1.0.0/16 to 10.{MAX_ROWS}.0.0/16",
        MAX_ROWS * RACK * RACKS_PER_ROW,
        RACK * RACKS_PER_ROW
    );

    // Artifacts: a kernel and an initrd of pseudo-random bytes behind the
    // headers bootc checks (a bzImage's boot protocol header, gzip's magic).
    let kernel = site.join("artifacts/debian-12/vmlinuz");
    let initrd = site.join("artifacts/debian-12/initrd.img");
    write_pseudo_random(&kernel, KERNEL_SIZE, 1, &bzimage_header(KERNEL_SIZE));
    write_pseudo_random(&initrd, INITRD_SIZE, 2, &[0x1f, 0x8b, 8, 0]);
    // The remote image is pinned to the SHA-256 of real files: these two
    // stand in for what the mirror serves.
    let kernel_sha = sha256_file(&kernel);
    let initrd_sha = sha256_file(&initrd);

    write_file(&site.join("bootc.toml"), bootc_toml(rows));
    write_roles(site);
    write_images(site, &kernel_sha, &initrd_sha);
    write_templates(site);

    let mut inventory_files = 0;
    let mut macs = 0;
    let racks = n.div_ceil(RACK);
    for rack in 0..racks {
        let first = rack * RACK;
        let count = RACK.min(n - first);
        let (text, m) = rack_file(rack, first, count, false);
        write_file(&rack_path(site, rack), text);
        inventory_files += 1;
        macs += m;
    }
    GenStats {
        inventory_files,
        macs,
    }
}

fn bootc_toml(rows: usize) -> String {
    let mut s = String::from(
        r#"# Generated by benches/build.rs
[site]
name = "bench"
base-url = "http://10.0.0.10/boot/"
fallback = "menu"
artifact-roots = ["artifacts"]

[dhcp]
next-server = "10.0.0.10"
mode = "authoritative"
"#,
    );
    for row in 1..=rows {
        let _ = write!(
            s,
            r#"
[[dhcp.subnet]]
cidr = "10.{row}.0.0/16"
pool = ["10.{row}.200.1", "10.{row}.255.254"]
gateway = "10.{row}.0.1"
dns = ["10.0.0.53", "10.0.1.53"]
domain = "row{row:03}.dc1.example.net"
"#
        );
    }
    s
}

fn write_roles(site: &Path) {
    let roles: &[(&str, &str)] = &[
        (
            "base",
            r#"description = "Common settings of every booted OS"
image = "debian-12"
kernel-args = [
  "console=tty0",
  "console=ttyS0,115200n8",
  "bootc.role={{ role.name }}",
]
vars = { disk = "/dev/sda", tier = "standard", ntp = "10.0.0.123" }
"#,
        ),
        (
            "worker",
            r#"description = "Kubernetes worker"
extends = "base"
kernel-args = [
  "hostname={{ machine.name }}",
  "bootc.tier={{ vars.tier }}",
  "ds=nocloud-net",
  "cloud-config-url={{ machine.url }}user-data",
]
vars = { k8s = "1.31" }
[files]
"user-data" = "cloud-init/user-data.yaml.j2"
"#,
        ),
        (
            "storage",
            r#"description = "Ceph storage node"
extends = "worker"
kernel-args = ["iommu=pt", "bootc.disk={{ vars.disk }}"]
vars = { disk = "/dev/nvme0n1", tier = "storage" }
"#,
        ),
        (
            "gpu",
            r#"description = "GPU worker"
extends = "worker"
kernel-args = ["nouveau.modeset=0", "rd.driver.blacklist=nouveau"]
vars = { tier = "gpu" }
"#,
        ),
        (
            "installer",
            r#"description = "Debian installer from the mirror (re-image)"
extends = "base"
image = "debian-installer"
kernel-args = ["auto=true", "priority=critical", "url={{ site.base_url }}preseed/{{ role.name }}.cfg"]
"#,
        ),
        (
            "localdisk",
            r#"description = "Installed: boot from the local disk"
image = "disk"
"#,
        ),
    ];
    for (name, text) in roles {
        write_file(&site.join(format!("roles/{name}.toml")), text);
    }
}

fn write_images(site: &Path, kernel_sha: &str, initrd_sha: &str) {
    write_file(
        &site.join("images/debian-12.toml"),
        r#"description = "Debian 12 live image, built in CI"
kernel = { path = "artifacts/debian-12/vmlinuz" }
initrd = [{ path = "artifacts/debian-12/initrd.img" }]
kernel-args = ["quiet", "ip=dhcp"]
"#,
    );
    write_file(
        &site.join("images/debian-installer.toml"),
        format!(
            r#"description = "Debian 12 netboot installer"
kernel = {{ url = "http://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/linux", sha256 = "{kernel_sha}" }}
initrd = [{{ url = "http://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/debian-installer/amd64/initrd.gz", sha256 = "{initrd_sha}" }}]
kernel-args = ["vga=788"]
"#
        ),
    );
    write_file(&site.join("images/disk.toml"), "local = true\n");
}

fn write_templates(site: &Path) {
    write_file(
        &site.join("templates/cloud-init/user-data.yaml.j2"),
        r#"#cloud-config
# {{ machine.name }}: role {{ role.name }} ({{ role.description }}), site {{ site.name }}
hostname: {{ machine.name }}
fqdn: {{ machine.name }}.{{ machine.labels.row }}.dc1.example.net
manage_etc_hosts: true
timezone: Etc/UTC
ntp:
  servers: [{{ vars.ntp }}]
users:
  - name: ops
    groups: [sudo]
    shell: /bin/bash
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    ssh_authorized_keys:
      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb3nQ3s2o1bench0000000000000000000000000 ops@dc1
disk_setup:
  {{ vars.disk }}:
    table_type: gpt
    layout: true
write_files:
  - path: /etc/bootc/labels.json
    content: |
      {"rack": "{{ machine.labels.rack }}", "row": "{{ machine.labels.row }}", "tier": "{{ vars.tier }}"}
  - path: /etc/kubernetes/version
    content: "{{ vars.k8s }}"
runcmd:
{%- for mac in machine.macs %}
  - [ip, link, set, dev, "nic{{ loop.index0 }}", address, "{{ mac }}"]
{%- endfor %}
  - [systemctl, enable, --now, kubelet]
phone_home:
  url: {{ machine.url }}ready
"#,
    );
}

pub fn rack_path(site: &Path, rack: usize) -> PathBuf {
    let row = rack / RACKS_PER_ROW + 1;
    let r = rack % RACKS_PER_ROW + 1;
    site.join(format!("machines/row{row:03}/rack{r:02}.toml"))
}

/// The inventory of one rack. `changed` flips one machine's kernel args: the
/// one-machine change of the benchmark.
fn rack_file(rack: usize, first: usize, count: usize, changed: bool) -> (String, usize) {
    let row = rack / RACKS_PER_ROW + 1;
    let r = rack % RACKS_PER_ROW + 1;
    let role = match rack % 10 {
        0..=5 => "worker",
        6 | 7 => "storage",
        8 => "gpu",
        _ => "installer",
    };
    let mut s = String::with_capacity(count * 160);
    let _ = write!(
        s,
        r#"# Row {row}, rack {r}
[defaults]
role = "{role}"
labels = {{ dc = "dc1", row = "row{row:03}", rack = "row{row:03}-rack{r:02}" }}
"#
    );
    let mut macs = 0;
    for slot in 0..count {
        let i = first + slot;
        let name = format!("r{row:03}k{r:02}u{:02}", slot + 1);
        let _ = write!(s, "\n[[machine]]\nname = \"{name}\"\n");
        if i % 10 == 3 {
            let _ = writeln!(s, "macs = [\"{}\", \"{}\"]", mac(0, i), mac(1, i));
            macs += 2;
        } else {
            let _ = writeln!(s, "mac = \"{}\"", mac(0, i));
            macs += 1;
        }
        let _ = writeln!(s, "ip = \"10.{row}.{r}.{}\"", 10 + slot);
        // About 1 % of machines are installed and boot from their disk;
        // they take no kernel args.
        let local = i % 97 == 5;
        if local {
            s.push_str("role = \"localdisk\"\n");
        }
        let mut args: Vec<&str> = Vec::new();
        if i % 7 == 2 && !local {
            args.push("nomodeset");
        }
        if i % 13 == 4 && !local {
            args.push("mitigations=off");
        }
        if changed && slot == 0 {
            args.push("bootc.bench=changed");
        }
        if !args.is_empty() {
            let quoted: Vec<String> = args.iter().map(|a| format!("\"{a}\"")).collect();
            let _ = writeln!(s, "kernel-args = [{}]", quoted.join(", "));
        }
        if i % 5 == 1 {
            s.push_str("vars = { disk = \"/dev/nvme1n1\" }\n");
        }
        if i % 11 == 6 {
            s.push_str("labels = { zone = \"b\" }\n");
        }
    }
    (s, macs)
}

/// A unicast, locally administered MAC: 52:54:<nic>:<24-bit index>.
pub fn mac(nic: u8, i: usize) -> String {
    format!(
        "52:54:{nic:02x}:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    )
}

/// Rewrites the first rack's file with (or without) the one-machine change.
pub fn write_changed_rack(site: &Path, n: usize, changed: bool) {
    let (text, _) = rack_file(0, 0, RACK.min(n), changed);
    let path = rack_path(site, 0);
    let mut f = fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(text.as_bytes()).expect("write rack");
}
