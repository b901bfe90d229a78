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
    jsonschema::draft202012::new(&schema(kind)).unwrap_or_else(|e| panic!("{}: {e}", kind.schema_file()))
}

fn toml_to_json(text: &str, what: &str) -> Value {
    let table: toml::Table = toml::from_str(text).unwrap_or_else(|e| panic!("{what} is not TOML: {e}"));
    serde_json::to_value(&table).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Problems of `doc` under the schema of `kind` (empty when valid).
fn problems(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc).map(|e| format!("{}: {e}", e.instance_path())).collect()
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
        assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema", "{}", kind.schema_file());
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
            Some(r) => root.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("dangling $ref {r}")),
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
                        bad.push(format!("{file} {at}: properties without additionalProperties: false"));
                    }
                    for (k, p) in props {
                        if p.is_object() {
                            let described = p.get("description").or_else(|| resolve(root, p).get("description"));
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
    let validators: BTreeMap<Kind, jsonschema::Validator> = Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
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
        assert!(seen.get(&kind).copied().unwrap_or(0) > 0, "site.example has no file of kind {kind:?}");
    }
    assert!(seen[&Kind::Machines] >= 2 && seen[&Kind::Role] >= 3 && seen[&Kind::Image] >= 5, "{seen:?}");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// (kind, what is wrong, document): each must be rejected.
const BROKEN: &[(Kind, &str, &str)] = &[
    // bootc.toml
    (Kind::Site, "no [site]", "[ipxe]\nbinaries = \"/usr/lib/ipxe\"\n"),
    (Kind::Site, "[site] without name", "[site]\nfallback = \"local\"\n"),
    (Kind::Site, "unknown key in [site]", "[site]\nname = \"lab\"\nbase_url = \"http://10.77.0.1/\"\n"),
    (Kind::Site, "unknown table", "[site]\nname = \"lab\"\n[dhcpd]\nnext-server = \"10.77.0.1\"\n"),
    (Kind::Site, "name with a space", "[site]\nname = \"my lab\"\n"),
    (Kind::Site, "base-url not http", "[site]\nname = \"lab\"\nbase-url = \"ftp://10.77.0.1/\"\n"),
    (Kind::Site, "fallback neither built-in nor role name", "[site]\nname = \"lab\"\nfallback = \"my role\"\n"),
    (Kind::Site, "artifact-roots not a list", "[site]\nname = \"lab\"\nartifact-roots = \"artifacts\"\n"),
    (Kind::Site, "unknown key in [ipxe]", "[site]\nname = \"lab\"\n[ipxe]\npath = \"/usr/lib/ipxe\"\n"),
    (Kind::Site, "bad DHCP mode", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\nmode = \"proxi\"\n"),
    (Kind::Site, "[dhcp] without next-server", "[site]\nname = \"lab\"\n[dhcp]\nmode = \"proxy\"\n"),
    (Kind::Site, "next-server not an IPv4 address", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.256\"\n"),
    (Kind::Site, "next-server with a leading zero", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.01\"\n"),
    (Kind::Site, "next-server of the wrong type", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = 10\n"),
    (Kind::Site, "prefix length 33", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/33\"\n"),
    (Kind::Site, "cidr without a prefix", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0\"\n"),
    (Kind::Site, "pool of three addresses", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/24\"\npool = [\"10.77.0.100\", \"10.77.0.150\", \"10.77.0.200\"]\n"),
    (Kind::Site, "dns not a list", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/24\"\ndns = \"10.77.0.1\"\n"),
    (Kind::Site, "domain with a trailing dot", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/24\"\ndomain = \"lab.internal.\"\n"),
    (Kind::Site, "unknown key in a subnet", "[site]\nname = \"lab\"\n[dhcp]\nnext-server = \"10.77.0.1\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/24\"\nrouter = \"10.77.0.1\"\n"),
    // machines/*.toml
    (Kind::Machines, "unknown key in a machine", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nhostname = \"n1\"\n"),
    (Kind::Machines, "unknown key in [defaults]", "[defaults]\nimage = \"debian\"\n"),
    (Kind::Machines, "unknown top-level key", "[[machines]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\n"),
    (Kind::Machines, "MAC of five bytes", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb\"\n"),
    (Kind::Machines, "MAC with a non-hex digit", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bg:01\"\n"),
    (Kind::Machines, "multicast MAC", "[[machine]]\nname = \"n1\"\nmac = \"01:00:5e:00:00:01\"\n"),
    (Kind::Machines, "MAC with mixed separators", "[[machine]]\nname = \"n1\"\nmac = \"52:54-00:aa:bb:01\"\n"),
    (Kind::Machines, "bad MAC in macs", "[[machine]]\nname = \"n1\"\nmacs = [\"52:54:00:aa:bb:01\", \"52:54:00:aa:bb\"]\n"),
    (Kind::Machines, "mac and macs", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nmacs = [\"52:54:00:aa:bb:02\"]\n"),
    (Kind::Machines, "no MAC", "[[machine]]\nname = \"n1\"\nip = \"10.77.0.11\"\n"),
    (Kind::Machines, "empty macs", "[[machine]]\nname = \"n1\"\nmacs = []\n"),
    (Kind::Machines, "no name", "[[machine]]\nmac = \"52:54:00:aa:bb:01\"\n"),
    (Kind::Machines, "name with an underscore", "[[machine]]\nname = \"node_01\"\nmac = \"52:54:00:aa:bb:01\"\n"),
    (Kind::Machines, "name ending with a hyphen", "[[machine]]\nname = \"node-\"\nmac = \"52:54:00:aa:bb:01\"\n"),
    (Kind::Machines, "ip of the wrong type", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nip = 10\n"),
    (Kind::Machines, "ip not IPv4", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nip = \"10.77.0\"\n"),
    (Kind::Machines, "label value not a string", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nlabels = { rack = 1 }\n"),
    (Kind::Machines, "kernel-args not a list", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = \"quiet\"\n"),
    (Kind::Machines, "two words in one kernel arg", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = [\"quiet splash\"]\n"),
    (Kind::Machines, "kernel arg with ;", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = [\"ds=nocloud;s=http://10.77.0.1/\"]\n"),
    (Kind::Machines, "kernel arg with ${", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = [\"BOOTIF=${mac}\"]\n"),
    (Kind::Machines, "kernel arg with ||", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = [\"a||b\"]\n"),
    (Kind::Machines, "kernel arg starting with #", "[[machine]]\nname = \"n1\"\nmac = \"52:54:00:aa:bb:01\"\nkernel-args = [\"#quiet\"]\n"),
    (Kind::Machines, "role not a string", "[defaults]\nrole = [\"worker\"]\n"),
    // roles/NAME.toml
    (Kind::Role, "unknown key", "description = \"x\"\nimages = \"debian\"\n"),
    (Kind::Role, "kernel-args not a list", "image = \"debian\"\nkernel-args = \"console=ttyS0\"\n"),
    (Kind::Role, "extends not a string", "extends = [\"base\"]\n"),
    (Kind::Role, "image name with a slash", "image = \"images/debian\"\n"),
    (Kind::Role, "file name with a slash", "[files]\n\"../user-data\" = \"cloud-init/user-data.yaml.j2\"\n"),
    (Kind::Role, "file template not a string", "[files]\n\"user-data\" = { template = \"x.j2\" }\n"),
    (Kind::Role, "absolute script path", "script = \"/etc/shadow\"\n"),
    (Kind::Role, "script escaping templates/", "script = \"ipxe/../../secret\"\n"),
    (Kind::Role, "description not a string", "description = 1\n"),
    // images/NAME.toml
    (Kind::Image, "no form", "description = \"nothing\"\n"),
    (Kind::Image, "two forms", "kernel = { path = \"artifacts/linux\" }\niso = { path = \"artifacts/x.iso\" }\n"),
    (Kind::Image, "chain and local", "chain = { url = \"http://boot.example/menu.ipxe\" }\nlocal = true\n"),
    (Kind::Image, "unknown key", "local = true\nboot = \"disk\"\n"),
    (Kind::Image, "unpinned remote kernel", "kernel = { url = \"http://mirror.lab.internal/linux\" }\n"),
    (Kind::Image, "unpinned remote initrd", "kernel = { path = \"artifacts/linux\" }\ninitrd = [{ url = \"http://mirror.lab.internal/initrd.gz\" }]\n"),
    (Kind::Image, "unpinned remote iso", "iso = { url = \"http://mirror.lab.internal/x.iso\" }\n"),
    (Kind::Image, "sha256 of 63 digits", "iso = { url = \"http://mirror.lab.internal/x.iso\", sha256 = \"d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d\" }\n"),
    (Kind::Image, "sha256 not hex", "iso = { url = \"http://mirror.lab.internal/x.iso\", sha256 = \"z3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7\" }\n"),
    (Kind::Image, "sha256 and blake3", "iso = { url = \"http://mirror.lab.internal/x.iso\", sha256 = \"d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7\", blake3 = \"d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7\" }\n"),
    (Kind::Image, "path and url", "kernel = { path = \"artifacts/linux\", url = \"http://mirror.lab.internal/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n"),
    (Kind::Image, "local artifact pinned by hand", "kernel = { path = \"artifacts/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n"),
    (Kind::Image, "artifact without source", "kernel = { sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n"),
    (Kind::Image, "ftp url", "kernel = { url = \"ftp://mirror.lab.internal/linux\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n"),
    (Kind::Image, "url naming no file", "iso = { url = \"http://mirror.lab.internal/isos/\", sha256 = \"d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7\" }\n"),
    (Kind::Image, "url with ${", "chain = { url = \"http://boot.example/${mac}.ipxe\" }\n"),
    (Kind::Image, "url with a space", "chain = { url = \"http://boot.example/my menu.ipxe\" }\n"),
    (Kind::Image, "initrd not a list", "kernel = { path = \"artifacts/linux\" }\ninitrd = { path = \"artifacts/initrd.gz\" }\n"),
    (Kind::Image, "initrd with an iso", "iso = { path = \"artifacts/x.iso\" }\ninitrd = [{ path = \"artifacts/initrd.gz\" }]\n"),
    (Kind::Image, "kernel-args with a chain", "chain = { path = \"artifacts/menu.ipxe\" }\nkernel-args = [\"quiet\"]\n"),
    (Kind::Image, "method with a kernel", "kernel = { path = \"artifacts/linux\" }\nmethod = \"sanboot\"\n"),
    (Kind::Image, "unknown method", "iso = { path = \"artifacts/x.iso\" }\nmethod = \"pxe\"\n"),
    (Kind::Image, "memdisk method without memdisk", "iso = { path = \"artifacts/x.iso\" }\nmethod = \"memdisk\"\n"),
    (Kind::Image, "memdisk with sanboot", "iso = { path = \"artifacts/x.iso\" }\nmemdisk = { path = \"artifacts/memdisk\" }\n"),
    (Kind::Image, "local = false", "local = false\n"),
    (Kind::Image, "local of the wrong type", "local = \"yes\"\n"),
    (Kind::Image, "artifact file name unsafe in a URL", "kernel = { path = \"artifacts/my linux\" }\n"),
    (Kind::Image, "unknown key in an artifact", "kernel = { file = \"artifacts/linux\" }\n"),
];

/// (kind, what, document): edge cases that must be accepted.
const VALID: &[(Kind, &str, &str)] = &[
    (Kind::Site, "only a name", "[site]\nname = \"lab\"\n"),
    (Kind::Site, "a role as fallback, proxy DHCP", "[site]\nname = \"lab\"\nbase-url = \"https://boot.lab.internal/fleet\"\nfallback = \"rescue\"\nartifact-roots = [\"artifacts\", \"/srv/boot\"]\n[ipxe]\nbinaries = \"/usr/share/ipxe\"\n[dhcp]\nnext-server = \"10.77.0.1\"\ninterface = \"eth1\"\nmode = \"proxy\"\n[[dhcp.subnet]]\ncidr = \"10.77.0.0/16\"\n"),
    (Kind::Machines, "empty file", ""),
    (Kind::Machines, "hyphens, upper case, macs, templates", "[defaults]\nrole = \"worker\"\nkernel-args = [\"quiet\"]\nvars = { disk = \"/dev/sda\", sizes = [1, 2], nested = { a = true } }\n[[machine]]\nname = \"N1\"\nmacs = [\"52-54-00-AA-BB-01\", \"52:54:00:aa:bb:02\"]\nip = \"10.77.0.12\"\nkernel-args = [\"{% if machine.ip %}ip={{ machine.ip }}{% endif %}\", \"root={{ vars.disk }}\"]\nlabels = { rack = \"r1\" }\n"),
    (Kind::Role, "empty role", ""),
    (Kind::Role, "everything", "description = \"Worker\"\nextends = \"base\"\nimage = \"debian-12.1_x\"\nkernel-args = [\"console=ttyS0,115200\", \"bootc.role={{ role.name }}\"]\nscript = \"ipxe/custom.ipxe.j2\"\n[vars]\nk8s = \"1.31\"\n[files]\n\"user-data\" = \"cloud-init/worker.yaml.j2\"\n\"meta-data\" = \"cloud-init/meta-data.j2\"\n"),
    (Kind::Image, "local kernel, blake3-pinned initrd", "description = \"x\"\nkernel = { path = \"artifacts/debian/linux\" }\ninitrd = [{ path = \"artifacts/debian/initrd.gz\" }, { url = \"https://mirror.lab.internal/extra.cpio.gz?v=2\", blake3 = \"AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262\" }]\nkernel-args = [\"priority=critical\"]\nvars = { a = 1 }\n"),
    (Kind::Image, "kernel without initrd", "kernel = { url = \"http://mirror.lab.internal/vmlinuz\", sha256 = \"d8808aa4ca188560da1e6d749dcb930c87a5fd8b11ebff1f3fa6d728af35203d\" }\n"),
    (Kind::Image, "iso, sanboot by default", "iso = { path = \"artifacts/x.iso\" }\n"),
    (Kind::Image, "iso with empty kernel-args", "iso = { path = \"artifacts/x.iso\" }\nmethod = \"sanboot\"\nkernel-args = []\n"),
    (Kind::Image, "iso through a local memdisk", "iso = { path = \"artifacts/x.iso\" }\nmethod = \"memdisk\"\nmemdisk = { path = \"artifacts/memdisk\" }\n"),
    (Kind::Image, "chain to a live service", "chain = { url = \"http://boot.example/menu.ipxe\" }\n"),
    (Kind::Image, "chain to a pinned script", "chain = { url = \"https://boot.example/menu.ipxe\", sha256 = \"d3934ddd42ded2879e41cd9667614ec15294b9a3a3a75cb4a4320a3346b168d7\" }\n"),
    (Kind::Image, "local disk", "description = \"disk\"\nlocal = true\n"),
];

#[test]
fn broken_documents_are_rejected() {
    let validators: BTreeMap<Kind, jsonschema::Validator> = Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
    let accepted: Vec<String> = BROKEN
        .iter()
        .filter(|(kind, what, doc)| validators[kind].is_valid(&toml_to_json(doc, what)))
        .map(|(kind, what, doc)| format!("{kind:?}: {what}:\n{doc}"))
        .collect();
    assert!(accepted.is_empty(), "the schemas accept these broken documents:\n{}", accepted.join("\n"));
    for kind in Kind::ALL {
        assert!(BROKEN.iter().filter(|(k, ..)| *k == kind).count() >= 5, "too few broken {kind:?} documents");
    }
}

#[test]
fn valid_edge_cases_are_accepted() {
    let validators: BTreeMap<Kind, jsonschema::Validator> = Kind::ALL.iter().map(|&k| (k, validator(k))).collect();
    let mut bad = Vec::new();
    for (kind, what, doc) in VALID {
        for p in problems(&validators[kind], &toml_to_json(doc, what)) {
            bad.push(format!("{kind:?}: {what}: {p}"));
        }
    }
    assert!(bad.is_empty(), "the schemas reject valid documents:\n{}", bad.join("\n"));
}
