//! The JSON Schemas in schema/ (for taplo / Even Better TOML) against the
//! example site and against broken documents.
//!
//! Every TOML file of site.example/ is converted to JSON (toml -> serde_json)
//! and must be valid under the schema of its kind; every broken document
//! below must be rejected, and every valid edge case accepted. The schemas
//! themselves must be valid Draft 2020-12, deny unknown keys and describe
//! every key (taplo shows the descriptions on hover).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Site,
    Machines,
    Role,
    Image,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Site, Kind::Machines, Kind::Role, Kind::Image];

    fn schema_file(self) -> &'static str {
        match self {
            Kind::Site => "bootc.schema.json",
            Kind::Machines => "machines.schema.json",
            Kind::Role => "role.schema.json",
            Kind::Image => "image.schema.json",
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(kind: Kind) -> Value {
    let path = repo().join("schema").join(kind.schema_file());
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn validator(kind: Kind) -> jsonschema::Validator {
    jsonschema::draft202012::new(&schema(kind))
        .unwrap_or_else(|e| panic!("{}: {e}", kind.schema_file()))
}

fn toml_to_json(text: &str, what: &str) -> Value {
    let table: toml::Table =
        toml::from_str(text).unwrap_or_else(|e| panic!("{what} is not TOML: {e}"));
    serde_json::to_value(&table).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Problems of `doc` under the schema of `kind` (empty when valid).
fn problems(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// Which schema a file of a site follows, by its place in the site.
fn kind_of(rel: &Path) -> Option<Kind> {
    let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
    if parts.iter().any(|p| p.starts_with('.')) || rel.extension().is_none_or(|e| e != "toml") {
        return None;
    }
    match parts.as_slice() {
        ["bootc.toml"] => Some(Kind::Site),
        ["machines", .., _] => Some(Kind::Machines),
        ["roles", _] => Some(Kind::Role),
        ["images", _] => Some(Kind::Image),
        _ => None,
    }
}

#[test]
fn schemas_are_valid_draft_2020_12() {
    for kind in Kind::ALL {
        let s = schema(kind);
        assert_eq!(
            s["$schema"],
            "https://json-schema.org/draft/2020-12/schema",
            "{}",
            kind.schema_file()
        );
        if let Err(e) = jsonschema::meta::validate(&s) {
            panic!("{} is not a valid JSON Schema: {e}", kind.schema_file());
        }
        validator(kind);
    }
}

/// Every object with `properties` denies other keys (like the compiler), and
/// every key has a description, directly or through its `$ref`.
#[test]
fn schemas_deny_unknown_keys_and_describe_every_key() {
    fn resolve<'a>(root: &'a Value, s: &'a Value) -> &'a Value {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => root
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {r}")),
            None => s,
        }
    }
    fn walk(root: &Value, s: &Value, at: &str, file: &str, bad: &mut Vec<String>) {
        match s {
            Value::Object(map) => {
                // Declarations of tables. Subschemas without a type (the image
                // forms of oneOf, if/then conditions) only constrain the keys
                // that the enclosing table declares.
                if map.get("type") == Some(&Value::from("object"))
                    && let Some(Value::Object(props)) = map.get("properties")
                {
                    if map.get("additionalProperties") != Some(&Value::Bool(false)) {
                        bad.push(format!(
                            "{file} {at}: properties without additionalProperties: false"
                        ));
                    }
                    for (k, p) in props {
                        if p.is_object() {
                            let described = p
                                .get("description")
                                .or_else(|| resolve(root, p).get("description"));
                            if described.is_none_or(|d| d.as_str().is_none_or(str::is_empty)) {
                                bad.push(format!("{file} {at}/properties/{k}: no description"));
                            }
                        }
                    }
                }
                for (k, v) in map {
                    walk(root, v, &format!("{at}/{k}"), file, bad);
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(root, v, &format!("{at}/{i}"), file, bad);
                }
            }
            _ => {}
        }
    }
    let mut bad = Vec::new();
    for kind in Kind::ALL {
        let s = schema(kind);
        walk(&s, &s, "#", kind.schema_file(), &mut bad);
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn example_site_follows_the_schemas() {
    let site = repo().join("site.example");
    let validators: BTreeMap<Kind, jsonschema::Validator> =
        Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
    let mut seen: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut bad = Vec::new();
    for entry in walkdir::WalkDir::new(&site).sort_by_file_name() {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(&site).unwrap();
        let Some(kind) = kind_of(rel) else { continue };
        *seen.entry(kind).or_default() += 1;
        let text = fs::read_to_string(entry.path()).unwrap();
        let doc = toml_to_json(&text, &rel.display().to_string());
        for p in problems(&validators[&kind], &doc) {
            bad.push(format!("site.example/{} ({:?}): {p}", rel.display(), kind));
        }
    }
    for kind in Kind::ALL {
        assert!(
            seen.get(&kind).copied().unwrap_or(0) > 0,
            "site.example has no file of kind {kind:?}"
        );
    }
    assert!(
        seen[&Kind::Machines] >= 2 && seen[&Kind::Role] >= 3 && seen[&Kind::Image] >= 5,
        "{seen:?}"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Broken documents, each must be rejected: `## KIND: what is wrong` and the
/// TOML text up to the next `##` line (KIND: bootc, machines, role or image).
const BROKEN: &str = r##"
## bootc: no [site]
[ipxe]
binaries = "/usr/lib/ipxe"

## bootc: [site] without name
[site]
fallback = "local"

## bootc: unknown key in [site]
[site]
name = "lab"
base_url = "http://10.77.0.1/"

## bootc: unknown table
[site]
name = "lab"
[dhcpd]
next-server = "10.77.0.1"

## bootc: name with a space
[site]
name = "my lab"

## bootc: base-url not http
[site]
name = "lab"
base-url = "ftp://10.77.0.1/"

## bootc: base-url with a comma (a dnsmasq field separator)
[site]
name = "lab"
base-url = "http://10.77.0.1/a,b/"

## bootc: base-url with a quote
[site]
name = "lab"
base-url = "http://10.77.0.1/\"x/"

## bootc: base-url without a host
[site]
name = "lab"
base-url = "http:///boot/"

## bootc: fallback neither built-in nor role name
[site]
name = "lab"
fallback = "my role"

## bootc: artifact-roots not a list
[site]
name = "lab"
artifact-roots = "artifacts"

## bootc: unknown key in [ipxe]
[site]
name = "lab"
[ipxe]
path = "/usr/lib/ipxe"

## bootc: bad DHCP mode
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
mode = "proxi"

## bootc: [dhcp] without next-server
[site]
name = "lab"
[dhcp]
mode = "proxy"

## bootc: next-server not an IPv4 address
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.256"

## bootc: next-server with a leading zero
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.01"

## bootc: next-server of the wrong type
[site]
name = "lab"
[dhcp]
next-server = 10

## bootc: prefix length 33
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0/33"

## bootc: cidr without a prefix
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0"

## bootc: pool of three addresses
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0/24"
pool = ["10.77.0.100", "10.77.0.150", "10.77.0.200"]

## bootc: dns not a list
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0/24"
dns = "10.77.0.1"

## bootc: domain with a trailing dot
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0/24"
domain = "lab.internal."

## bootc: unknown key in a subnet
[site]
name = "lab"
[dhcp]
next-server = "10.77.0.1"
[[dhcp.subnet]]
cidr = "10.77.0.0/24"
router = "10.77.0.1"

## machines: unknown key in a machine
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
hostname = "n1"

## machines: unknown key in [defaults]
[defaults]
image = "debian"

## machines: unknown top-level key
[[machines]]
name = "n1"
mac = "52:54:00:aa:bb:01"

## machines: MAC of five bytes
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb"

## machines: MAC with a non-hex digit
[[machine]]
name = "n1"
mac = "52:54:00:aa:bg:01"

## machines: multicast MAC
[[machine]]
name = "n1"
mac = "01:00:5e:00:00:01"

## machines: MAC with mixed separators
[[machine]]
name = "n1"
mac = "52:54-00:aa:bb:01"

## machines: bad MAC in macs
[[machine]]
name = "n1"
macs = ["52:54:00:aa:bb:01", "52:54:00:aa:bb"]

## machines: mac and macs
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
macs = ["52:54:00:aa:bb:02"]

## machines: no MAC
[[machine]]
name = "n1"
ip = "10.77.0.11"

## machines: empty macs
[[machine]]
name = "n1"
macs = []

## machines: no name
[[machine]]
mac = "52:54:00:aa:bb:01"

## machines: name with an underscore
[[machine]]
name = "node_01"
mac = "52:54:00:aa:bb:01"

## machines: name ending with a hyphen
[[machine]]
name = "node-"
mac = "52:54:00:aa:bb:01"

## machines: ip of the wrong type
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
ip = 10

## machines: ip not IPv4
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
ip = "10.77.0"

## machines: label value a list
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
labels = { rack = [1] }

## machines: kernel-args not a list
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = "quiet"

## machines: two words in one kernel arg
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = ["quiet splash"]

## machines: kernel arg that is ;
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = [";"]

## machines: kernel arg with ${
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = ["BOOTIF=${mac}"]

## machines: kernel arg that is ||
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = ["||"]

## machines: kernel arg starting with #
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = ["#quiet"]

## machines: role not a string
[defaults]
role = ["worker"]

## role: unknown key
description = "x"
images = "debian"

## role: kernel-args not a list
image = "debian"
kernel-args = "console=ttyS0"

## role: extends not a string
extends = ["base"]

## role: image name with a slash
image = "images/debian"

## role: file name with a slash
[files]
"../user-data" = "cloud-init/user-data.yaml.j2"

## role: file template not a string
[files]
"user-data" = { template = "x.j2" }

## role: absolute script path
script = "/etc/shadow"

## role: script escaping templates/
script = "ipxe/../../secret"

## role: description not a string
description = 1

## role: description with ${
description = "Rescue ${net0/mac}"

## role: description with &&
description = "Rescue && shell"

## role: description with a word starting with #
description = "Rescue #1"

## role: description with a tab
description = "Rescue\tmenu"

## image: no form
description = "nothing"

## image: two forms
kernel = { path = "artifacts/linux" }
iso = { path = "artifacts/x.iso" }

## image: chain and local
chain = { url = "http://boot.example/menu.ipxe" }
local = true

## image: unknown key
local = true
boot = "disk"

## image: unpinned remote kernel
kernel = { url = "http://mirror.lab.internal/linux" }

## image: unpinned remote initrd
kernel = { path = "artifacts/linux" }
initrd = [{ url = "http://mirror.lab.internal/initrd.gz" }]

## image: unpinned remote iso
iso = { url = "http://mirror.lab.internal/x.iso" }

## image: sha256 of 63 digits
iso = { url = "http://mirror.lab.internal/x.iso", sha256 = "d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d" }

## image: sha256 not hex
iso = { url = "http://mirror.lab.internal/x.iso", sha256 = "z3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7" }

## image: sha256 and blake3
iso = { url = "http://mirror.lab.internal/x.iso", sha256 = "d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7", blake3 = "d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7" }

## image: path and url
kernel = { path = "artifacts/linux", url = "http://mirror.lab.internal/linux", sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }

## image: local artifact pinned by hand
kernel = { path = "artifacts/linux", sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }

## image: artifact without source
kernel = { sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }

## image: ftp url
kernel = { url = "ftp://mirror.lab.internal/linux", sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }

## image: url naming no file
iso = { url = "http://mirror.lab.internal/isos/", sha256 = "d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7" }

## image: url with ${
chain = { url = "http://boot.example/${mac}.ipxe" }

## image: url with a space
chain = { url = "http://boot.example/my menu.ipxe" }

## image: initrd not a list
kernel = { path = "artifacts/linux" }
initrd = { path = "artifacts/initrd.gz" }

## image: initrd with an iso
iso = { path = "artifacts/x.iso" }
initrd = [{ path = "artifacts/initrd.gz" }]

## image: kernel-args with a chain
chain = { path = "artifacts/menu.ipxe" }
kernel-args = ["quiet"]

## image: method with a kernel
kernel = { path = "artifacts/linux" }
method = "sanboot"

## image: unknown method
iso = { path = "artifacts/x.iso" }
method = "pxe"

## image: memdisk method without memdisk
iso = { path = "artifacts/x.iso" }
method = "memdisk"

## image: memdisk with sanboot
iso = { path = "artifacts/x.iso" }
memdisk = { path = "artifacts/memdisk" }

## image: local = false
local = false

## image: local of the wrong type
local = "yes"

## image: artifact file name unsafe in a URL
kernel = { path = "artifacts/my linux" }

## image: unknown key in an artifact
kernel = { file = "artifacts/linux" }

## bootc: pad-to that is not a size
[site]
name = "lab"
base-url = "http://10.77.0.1/"
[media]
pad-to = "ten"

## bootc: unknown key in [media]
[site]
name = "lab"
base-url = "http://10.77.0.1/"
[media]
size = "10MiB"

## image: description with the word ;
description = "a ; b"
local = true
"##;

/// Valid edge cases, each must be accepted (same layout as `BROKEN`).
const VALID: &str = r##"
## machines: `;` inside one kernel argument (cloud-init NoCloud)
[[machine]]
name = "n1"
mac = "52:54:00:aa:bb:01"
kernel-args = ["ds=nocloud-net;s=http://10.77.0.1/ci/", "a||b", "x&&y"]

## image: description with ; inside a word
description = "first; then second"
local = true

## bootc: only a name
[site]
name = "lab"

## bootc: boot media, padded
[site]
name = "lab"
base-url = "http://10.77.0.1/"
[media]
pad-to = "10MiB"

## bootc: a role as fallback, proxy DHCP
[site]
name = "lab"
base-url = "https://boot.lab.internal/fleet"
fallback = "rescue"
artifact-roots = ["artifacts", "/srv/boot"]
[ipxe]
binaries = "/usr/share/ipxe"
[dhcp]
next-server = "10.77.0.1"
interface = "eth1"
mode = "proxy"
[[dhcp.subnet]]
cidr = "10.77.0.0/16"

## machines: empty file

## machines: hyphens, upper case, macs, templates
[defaults]
role = "worker"
kernel-args = ["quiet"]
vars = { disk = "/dev/sda", sizes = [1, 2], nested = { a = true } }
[[machine]]
name = "N1"
macs = ["52-54-00-AA-BB-01", "52:54:00:aa:bb:02"]
ip = "10.77.0.12"
kernel-args = ["{% if machine.ip %}ip={{ machine.ip }}{% endif %}", "root={{ vars.disk }}"]
labels = { rack = "r1" }

## role: empty role

## role: everything
description = "Worker"
extends = "base"
image = "debian-12.1_x"
kernel-args = ["console=ttyS0,115200", "bootc.role={{ role.name }}"]
script = "ipxe/custom.ipxe.j2"
[vars]
k8s = "1.31"
[files]
"user-data" = "cloud-init/worker.yaml.j2"
"meta-data" = "cloud-init/meta-data.j2"

## image: local kernel, blake3-pinned initrd
description = "x"
kernel = { path = "artifacts/debian/linux" }
initrd = [{ path = "artifacts/debian/initrd.gz" }, { url = "https://mirror.lab.internal/extra.cpio.gz?v=2", blake3 = "AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262" }]
kernel-args = ["priority=critical"]
vars = { a = 1 }

## image: kernel without initrd
kernel = { url = "http://mirror.lab.internal/vmlinuz", sha256 = "d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d" }

## image: iso, sanboot by default
iso = { path = "artifacts/x.iso" }

## image: iso with empty kernel-args
iso = { path = "artifacts/x.iso" }
method = "sanboot"
kernel-args = []

## image: iso through a local memdisk
iso = { path = "artifacts/x.iso" }
method = "memdisk"
memdisk = { path = "artifacts/memdisk" }

## image: chain to a live service
chain = { url = "http://boot.example/menu.ipxe" }

## image: chain to a pinned script
chain = { url = "https://boot.example/menu.ipxe", sha256 = "d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7" }

## image: local disk
description = "disk"
local = true
"##;

/// The cases of `BROKEN` or `VALID`: (kind, what, TOML text).
fn cases(text: &str) -> Vec<(Kind, &str, String)> {
    let mut out: Vec<(Kind, &str, String)> = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            let (kind, what) = title.split_once(": ").expect("## KIND: what");
            let kind = match kind {
                "bootc" => Kind::Site,
                "machines" => Kind::Machines,
                "role" => Kind::Role,
                "image" => Kind::Image,
                other => panic!("unknown kind {other}"),
            };
            out.push((kind, what, String::new()));
        } else if let Some((_, _, doc)) = out.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    out
}

#[test]
fn broken_documents_are_rejected() {
    let validators: BTreeMap<Kind, jsonschema::Validator> =
        Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
    let broken = cases(BROKEN);
    let accepted: Vec<String> = broken
        .iter()
        .filter(|(kind, what, doc)| validators[kind].is_valid(&toml_to_json(doc, what)))
        .map(|(kind, what, doc)| format!("{kind:?}: {what}:\n{doc}"))
        .collect();
    assert!(
        accepted.is_empty(),
        "the schemas accept these broken documents:\n{}",
        accepted.join("\n")
    );
    for kind in Kind::ALL {
        let n = broken.iter().filter(|(k, ..)| *k == kind).count();
        assert!(n >= 5, "only {n} broken {kind:?} documents");
    }
}

#[test]
fn valid_edge_cases_are_accepted() {
    let validators: BTreeMap<Kind, jsonschema::Validator> =
        Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
    let valid = cases(VALID);
    assert!(valid.len() >= 10);
    let mut bad = Vec::new();
    for (kind, what, doc) in &valid {
        for p in problems(&validators[kind], &toml_to_json(doc, what)) {
            bad.push(format!("{kind:?}: {what}: {p}"));
        }
    }
    assert!(
        bad.is_empty(),
        "the schemas reject valid documents:\n{}",
        bad.join("\n")
    );
}
