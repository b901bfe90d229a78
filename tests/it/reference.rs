//! docs/reference.md and what keeps it true: it is exactly what
//! `bootc::reference::markdown()` makes from the schemas and the template
//! contexts (`BOOTC_UPDATE_REFERENCE=1 cargo test --test it reference::`
//! rewrites it), its links land, and the schemas it is made from cover
//! every key the compiler reads (the model's serde fields), agree where
//! they share a definition, and list the values the code accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::PathBuf;

use bootc::context::{self, Describe, MachineContext};
use bootc::diag::Lint;
use bootc::model;
use bootc::reference::{self, KINDS};
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn reference_is_what_the_generator_makes() {
    let want = reference::markdown();
    let path = repo().join(reference::PATH);
    if std::env::var("BOOTC_UPDATE_REFERENCE").as_deref() == Ok("1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &want).unwrap();
        return;
    }
    let have = fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        let (n, (h, w)) = have
            .lines()
            .chain(std::iter::repeat(""))
            .zip(want.lines())
            .enumerate()
            .find(|(_, (h, w))| h != w)
            .unwrap_or((want.lines().count(), ("(more lines)", "")));
        panic!(
            "{} is not what bootc::reference::markdown() makes; run\n  \
             BOOTC_UPDATE_REFERENCE=1 cargo test --test it reference::\nand commit it. \
             First difference, line {}:\n- {h}\n+ {w}",
            reference::PATH,
            n + 1
        );
    }
}

#[test]
fn every_schema_is_in_the_reference_and_every_key_too() {
    let listed: BTreeSet<&str> = KINDS.iter().map(|k| k.schema_file).collect();
    let on_disk: BTreeSet<String> = fs::read_dir(repo().join("schema"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".schema.json"))
        .collect();
    assert_eq!(
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed
    );
    let doc = reference::markdown();
    let mut missing = Vec::new();
    for k in &KINDS {
        let text = fs::read_to_string(repo().join("schema").join(k.schema_file)).unwrap();
        assert_eq!(text, k.json, "{} is embedded as it is", k.schema_file);
        let mut keys = BTreeSet::new();
        property_names(&k.schema(), &mut keys);
        for key in keys {
            if !doc.contains(&format!("| `{key}` |")) && !doc.contains(&format!("[`{key}`](#")) {
                missing.push(format!("{}: {key}", k.schema_file));
            }
        }
    }
    assert!(missing.is_empty(), "keys without a row: {missing:?}");
}

fn property_names(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::Object(p)) = m.get("properties") {
                out.extend(
                    p.iter()
                        .filter(|(_, s)| s.is_object())
                        .map(|(k, _)| k.clone()),
                );
            }
            m.values().for_each(|v| property_names(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| property_names(v, out)),
        _ => {}
    }
}

#[test]
fn links_of_the_reference_land() {
    let doc = reference::markdown();
    let mut ids = BTreeSet::new();
    for part in doc.split("<a id=\"").skip(1) {
        let id = &part[..part.find('"').unwrap()];
        assert!(ids.insert(id.to_string()), "anchor {id} twice");
    }
    let mut dangling = Vec::new();
    for part in doc.split("](#").skip(1) {
        let id = &part[..part.find(')').unwrap()];
        if !ids.contains(id) {
            dangling.push(id.to_string());
        }
    }
    // And the README's links into it.
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    for part in readme.split("](docs/reference.md#").skip(1) {
        let id = &part[..part.find(')').unwrap()];
        if !ids.contains(id) {
            dangling.push(format!("README: {id}"));
        }
    }
    assert!(dangling.is_empty(), "links to no anchor: {dangling:?}");
    // Relative links point at files of the repository.
    for part in doc.split("](../").skip(1) {
        let target = &part[..part.find(')').unwrap()];
        assert!(repo().join(target).exists(), "{target}");
    }
}

/// Reads the field names a serde struct accepts (what `deny_unknown_fields`
/// compares keys with), without data: the derive asks for a struct and
/// names its fields.
struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;
    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("probed"))
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
        identifier ignored_any
    }
}

fn fields<T: de::DeserializeOwned>() -> BTreeSet<&'static str> {
    let mut f = None;
    let _ = T::deserialize(Probe(&mut f));
    f.expect("a struct").iter().copied().collect()
}

/// The keys the schema of `file` declares for the table at `path` (dotted;
/// lists of tables by their name), or, for a union of tables (an
/// artifact), every key of its forms.
fn schema_keys(file: &str, path: &str) -> BTreeSet<String> {
    let kind = KINDS.iter().find(|k| k.schema_file == file).unwrap();
    let root = kind.schema();
    let resolve = |v: &Value| -> Value {
        let mut v = v.clone();
        while let Some(r) = v["$ref"].as_str() {
            v = root.pointer(r.trim_start_matches('#')).unwrap().clone();
        }
        v
    };
    let mut t = root.clone();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        t = resolve(&t["properties"][part]);
        if t["type"] == "array" {
            t = resolve(&t["items"]);
        }
    }
    let mut keys = BTreeSet::new();
    let forms = t["oneOf"].as_array().cloned().unwrap_or_default();
    for table in std::iter::once(t).chain(forms.iter().map(resolve)) {
        if let Some(p) = table["properties"].as_object() {
            keys.extend(
                p.iter()
                    .filter(|(_, s)| s.is_object())
                    .map(|(k, _)| k.clone()),
            );
        }
    }
    keys
}

/// Every key the compiler reads is declared by the schema (so it is in the
/// reference, with a description), and the schema declares no key the
/// compiler would reject as unknown.
#[test]
fn schemas_declare_exactly_the_keys_of_the_model() {
    let tables: Vec<(&str, &str, BTreeSet<&str>)> = vec![
        ("bootc.schema.json", "", fields::<model::SiteFile>()),
        ("bootc.schema.json", "site", fields::<model::SiteSection>()),
        ("bootc.schema.json", "ipxe", fields::<model::IpxeSection>()),
        ("bootc.schema.json", "uefi", fields::<model::UefiSection>()),
        ("bootc.schema.json", "dhcp", fields::<model::DhcpSection>()),
        (
            "bootc.schema.json",
            "dhcp.options",
            fields::<model::DhcpOptions>(),
        ),
        (
            "bootc.schema.json",
            "dhcp.subnet",
            fields::<model::Subnet>(),
        ),
        (
            "bootc.schema.json",
            "media",
            fields::<model::MediaSection>(),
        ),
        ("machines.schema.json", "", fields::<model::MachineFile>()),
        (
            "machines.schema.json",
            "defaults",
            fields::<model::Defaults>(),
        ),
        (
            "machines.schema.json",
            "machine",
            fields::<model::Machine>(),
        ),
        ("role.schema.json", "", fields::<model::RoleFile>()),
        ("image.schema.json", "", fields::<model::ImageFile>()),
        ("image.schema.json", "kernel", fields::<model::Artifact>()),
        ("image.schema.json", "chain", fields::<model::Artifact>()),
    ];
    let mut wrong = Vec::new();
    for (file, path, model) in tables {
        let model: BTreeSet<String> = model.iter().map(|s| s.to_string()).collect();
        let schema = schema_keys(file, path);
        if model != schema {
            wrong.push(format!(
                "{file} [{path}]: only in the model {:?}, only in the schema {:?}",
                model.difference(&schema).collect::<Vec<_>>(),
                schema.difference(&model).collect::<Vec<_>>()
            ));
        }
    }
    // The loaders of [uefi] are artifacts in the model, but validation
    // takes only a local `path` (they are served over TFTP): so does the
    // schema.
    for loader in ["shim", "grub", "arm64-shim", "arm64-grub"] {
        let keys = schema_keys("bootc.schema.json", &format!("uefi.{loader}"));
        assert_eq!(keys, BTreeSet::from(["path".to_string()]), "{loader}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Schemas are self-contained (taplo needs that), so shared definitions
/// are copies: they must stay the same, as the reference lists each once.
#[test]
fn shared_definitions_agree() {
    let mut seen: BTreeMap<String, (&str, Value)> = BTreeMap::new();
    for k in &KINDS {
        let s = k.schema();
        for (name, def) in s["$defs"].as_object().into_iter().flatten() {
            match seen.get(name) {
                Some((first, d)) => assert_eq!(
                    d, def,
                    "$defs/{name} differs between {first} and {}",
                    k.schema_file
                ),
                None => {
                    seen.insert(name.clone(), (k.schema_file, def.clone()));
                }
            }
        }
    }
}

/// The values the schemas list are those the code accepts.
#[test]
fn schema_values_match_the_code() {
    let site = KINDS[0].schema();
    let allow = &site["properties"]["site"]["properties"]["allow"]["items"];
    let names: Vec<&str> = Lint::ALL.iter().map(|l| l.name()).collect();
    let abouts: Vec<&str> = Lint::ALL.iter().map(|l| l.about()).collect();
    assert_eq!(allow["enum"], serde_json::json!(names), "[site] allow");
    assert_eq!(
        allow["x-taplo"]["docs"]["enumValues"],
        serde_json::json!(abouts),
        "[site] allow: each kind's text is Lint::about"
    );
    let features = &site["properties"]["ipxe"]["properties"]["features"]["items"]["enum"];
    assert_eq!(
        *features,
        serde_json::json!(bootc::validate::IPXE_FEATURES),
        "[ipxe] features"
    );
}

/// Every variable a template sees says what it is.
#[test]
fn every_template_variable_is_described() {
    let mut bare = Vec::new();
    let mut check = |what: &str, fields: &[context::Field]| {
        for v in context::paths(fields) {
            if v.doc.is_empty() {
                bare.push(format!("{what}: {}", v.path));
            }
        }
    };
    check("site templates", &MachineContext::shape().fields);
    for (name, _) in bootc::templates::BUILTINS {
        check(name, &context::builtin(name).unwrap().1);
    }
    assert!(bare.is_empty(), "variables without a doc comment: {bare:?}");
}
