//! One kind of site file, from its JSON Schema: a table of its top-level
//! keys, a section per nested table (`[dhcp.options]`, `[[dhcp.subnet]]`),
//! a section per form of a union type (the artifacts), and the value types
//! the keys name, gathered for the whole page.

use std::collections::BTreeMap;

use serde_json::Value;

use super::order::Order;
use super::{Kind, anchor, cell, heading, inline};

/// The value types: the schemas' `$defs` that are not tables, by name. A
/// name means the same type in every schema (tests/it/reference.rs checks
/// that the schemas that share a definition agree).
#[derive(Default)]
pub struct Types {
    seen: BTreeMap<String, (String, String)>,
}

impl Types {
    pub fn write(&self, out: &mut String) {
        heading(out, 2, "value-types", "Value types");
        out.push_str(
            "The kinds of values the keys above take, by the names their tables link to.\n\n\
             | type | is | description |\n|---|---|---|\n",
        );
        for (name, (is, description)) in &self.seen {
            out.push_str(&format!(
                "| <a id=\"{}\"></a>`{name}` | {is} | {} |\n",
                anchor(&["type", name]),
                cell(description)
            ));
        }
        out.push('\n');
    }
}

/// One kind of site file: its section and its tables' sections.
pub fn file_kind(out: &mut String, kind: &Kind, root: &Value, types: &mut Types) {
    heading(out, 3, kind.id, &format!("`{}`", kind.files));
    if let Some(d) = root["description"].as_str() {
        out.push_str(&inline(d));
        out.push_str("\n\n");
    }
    out.push_str(&format!(
        "Its JSON Schema: [`schema/{0}`](../schema/{0}).\n\n",
        kind.schema_file
    ));
    let mut s = Schema {
        kind,
        root,
        order: Order::of(kind.json),
        types,
        forms: Vec::new(),
    };
    let mut tables = vec![Table {
        id: kind.id.to_string(),
        heading: None,
        schema: root,
        description: None,
    }];
    s.nested(root, "", &mut tables);
    for t in &tables {
        if let Some(h) = &t.heading {
            heading(out, 4, &t.id, &format!("`{h}`"));
            if let Some(d) = t.description {
                out.push_str(&inline(d));
                out.push_str("\n\n");
            }
        }
        s.keys(out, t.schema, &tables);
    }
    // The forms of union types (each artifact form), found while the keys
    // above were written; a form may name more.
    let mut done = 0;
    while done < s.forms.len() {
        let (name, def) = s.forms[done].clone();
        done += 1;
        let shape: Vec<String> = strings(&def["required"])
            .iter()
            .map(|k| format!("{k} = …"))
            .collect();
        let title = def["title"].as_str().unwrap_or(&name);
        heading(
            out,
            4,
            &anchor(&[kind.id, &name]),
            &format!("`{{ {} }}`: {}", shape.join(", "), inline(title)),
        );
        if let Some(d) = def["description"].as_str() {
            out.push_str(&inline(d));
            out.push_str("\n\n");
        }
        s.keys(out, def, &tables);
    }
}

/// A table of the file: where it is (`dhcp.subnet`) and its schema.
struct Table<'a> {
    id: String,
    /// `[dhcp]`, `[[dhcp.subnet]]`; None for the file itself.
    heading: Option<String>,
    schema: &'a Value,
    description: Option<&'a str>,
}

struct Schema<'a, 't> {
    kind: &'a Kind,
    root: &'a Value,
    order: Order,
    types: &'t mut Types,
    /// Tables that are forms of a union type: (definition, schema).
    forms: Vec<(String, &'a Value)>,
}

impl<'a> Schema<'a, '_> {
    fn def(&self, name: &str) -> &'a Value {
        let root: &'a Value = self.root;
        &root["$defs"][name]
    }

    /// `v`, its `$ref`s followed.
    fn resolve(&self, mut v: &'a Value) -> &'a Value {
        while let Some(name) = ref_name(v) {
            v = self.def(name);
        }
        v
    }

    /// A table's keys, in the schema's order.
    fn props(&self, t: &'a Value) -> Vec<(&'a str, &'a Value)> {
        let Some(map) = t["properties"].as_object() else {
            return Vec::new();
        };
        let order = pointer_of(self.root, t, String::new())
            .and_then(|at| self.order.keys(&format!("{at}/properties")));
        let mut keys: Vec<(&'a str, &'a Value)> = map
            .iter()
            .filter(|(_, v)| v.is_object())
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        if let Some(order) = order {
            keys.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
        }
        keys
    }

    /// The tables below `t` (at `path`), depth first.
    fn nested(&self, t: &'a Value, path: &str, tables: &mut Vec<Table<'a>>) {
        for (key, p) in self.props(t) {
            let at = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            let r = self.resolve(p);
            let (table, array) = if is_table(r) {
                (r, false)
            } else if r["type"] == "array" && is_table(self.resolve(&r["items"])) {
                (self.resolve(&r["items"]), true)
            } else {
                continue;
            };
            tables.push(Table {
                id: anchor(&[self.kind.id, &at]),
                heading: Some(if array {
                    format!("[[{at}]]")
                } else {
                    format!("[{at}]")
                }),
                schema: table,
                description: table["description"].as_str().or(p["description"].as_str()),
            });
            self.nested(table, &at, tables);
        }
    }

    /// The forms of a table (exactly one of them) and its keys.
    fn keys(&mut self, out: &mut String, t: &'a Value, tables: &[Table<'a>]) {
        if let Some(forms) = t["oneOf"]
            .as_array()
            .filter(|f| f.iter().all(|f| f.get("title").is_some()))
        {
            out.push_str("Exactly one of these forms:\n\n");
            for f in forms {
                out.push_str(&format!(
                    "- **{}**:",
                    inline(f["title"].as_str().unwrap_or(""))
                ));
                if let Some(d) = f["description"].as_str() {
                    out.push_str(&format!(" {}", inline(d)));
                }
                let rules = form_rules(f).join("; ");
                if !rules.is_empty() {
                    out.push_str(&format!(" {}{}.", rules[..1].to_uppercase(), &rules[1..]));
                }
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str("| key | type | required | default | description |\n|---|---|---|---|---|\n");
        for (key, p) in self.props(t) {
            let r = self.resolve(p);
            let nested = tables.iter().find(|x| {
                std::ptr::eq(x.schema, r)
                    || (r["type"] == "array" && std::ptr::eq(x.schema, self.resolve(&r["items"])))
            });
            let (name, mut ty) = match nested {
                Some(x) if x.heading.as_deref().is_some_and(|h| h.starts_with("[[")) => (
                    format!("[`{key}`](#{})", x.id),
                    "list of tables".to_string(),
                ),
                Some(x) => (format!("[`{key}`](#{})", x.id), "table".to_string()),
                None => (format!("`{key}`"), self.ty(p)),
            };
            let default = p
                .get("default")
                .or(r.get("default"))
                .map(|d| format!("`{}`", toml(d)))
                .unwrap_or_default();
            let text = p["description"]
                .as_str()
                .or(r["description"].as_str())
                .unwrap_or("");
            let mut description = cell(text);
            let mut docs = enum_docs(p);
            if !std::ptr::eq(p, r) {
                docs.extend(enum_docs(r));
            }
            // Unless the description already says what each value does.
            if docs.iter().any(|(v, _)| !text.contains(&v.to_string())) {
                for (value, doc) in &docs {
                    description.push_str(&format!("<br>`{}`: {}", toml(value), cell(doc)));
                }
                // The type then names the values once, not twice.
                let values: Vec<&Value> = docs.iter().map(|(v, _)| *v).collect();
                ty = ty.replace(&enum_list(&values), "the values below");
                if ty == "the values below" {
                    ty = "one of the values below".into();
                }
            }
            out.push_str(&format!(
                "| {name} | {ty} | {} | {default} | {description} |\n",
                required(t, key)
            ));
        }
        out.push('\n');
    }

    /// The type of a value, with links to the value types it names.
    fn ty(&mut self, v: &Value) -> String {
        if let Some(name) = ref_name(v) {
            let d = self.def(name);
            if is_table(d) {
                if !self.forms.iter().any(|(n, _)| n == name) {
                    self.forms.push((name.to_string(), d));
                }
                let title = d["title"].as_str().unwrap_or(name);
                return format!("[{}](#{})", inline(title), anchor(&[self.kind.id, name]));
            }
            if !self.types.seen.contains_key(name) {
                // Placeholder first: a type may name itself.
                self.types.seen.insert(name.to_string(), Default::default());
                let is = self.ty(d);
                let description = d["description"].as_str().unwrap_or("").to_string();
                self.types.seen.insert(name.to_string(), (is, description));
            }
            return format!("[{name}](#{})", anchor(&["type", name]));
        }
        for union in ["anyOf", "oneOf"] {
            if let Some(alts) = v[union].as_array() {
                let parts: Vec<String> = alts.iter().map(|a| self.ty(a)).collect();
                return or_list(&parts);
            }
        }
        if let Some(c) = v.get("const") {
            return format!("`{}`", toml(c));
        }
        if let Some(values) = v["enum"].as_array() {
            return enum_list(&values.iter().collect::<Vec<_>>());
        }
        match &v["type"] {
            Value::String(t) if t == "array" => {
                let mut s = format!("list of {}", self.ty(&v["items"]));
                match (v["minItems"].as_u64(), v["maxItems"].as_u64()) {
                    (Some(a), Some(b)) if a == b => s.push_str(&format!(", exactly {a}")),
                    (Some(a), _) if a > 0 => s.push_str(&format!(", at least {a}")),
                    _ => {}
                }
                if v["uniqueItems"] == true {
                    s.push_str(", no repeats");
                }
                s
            }
            Value::String(t) if t == "object" => match &v["additionalProperties"] {
                Value::Bool(true) => "table of any values".into(),
                ap @ Value::Object(_) => format!("table of {}", self.ty(ap)),
                _ => "table".into(),
            },
            Value::String(t) if t == "integer" => {
                match (v["minimum"].as_i64(), v["maximum"].as_i64()) {
                    (Some(a), Some(b)) => format!("integer, {a} to {b}"),
                    (Some(a), None) => format!("integer, at least {a}"),
                    _ => "integer".into(),
                }
            }
            Value::String(t) => t.clone(),
            Value::Array(ts) => {
                let parts: Vec<String> = ts
                    .iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect();
                or_list(&parts)
            }
            _ => "any value".into(),
        }
    }
}

/// A `$defs` name from `{"$ref": "#/$defs/NAME"}`.
fn ref_name(v: &Value) -> Option<&str> {
    v["$ref"].as_str()?.strip_prefix("#/$defs/")
}

fn is_table(v: &Value) -> bool {
    v["type"] == "object" && v["properties"].as_object().is_some_and(|p| !p.is_empty())
}

/// The JSON pointer of `target` (an object inside `v`, which is at `at`).
fn pointer_of(v: &Value, target: &Value, at: String) -> Option<String> {
    if std::ptr::eq(v, target) {
        return Some(at);
    }
    match v {
        Value::Object(m) => m.iter().find_map(|(k, c)| {
            pointer_of(
                c,
                target,
                format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
            )
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, c)| pointer_of(c, target, format!("{at}/{i}"))),
        _ => None,
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// Whether `key` of table `t` must be given.
fn required(t: &Value, key: &str) -> String {
    if strings(&t["required"]).contains(&key) {
        return "yes".into();
    }
    let forms: Vec<&str> = t["oneOf"]
        .as_array()
        .map(|f| f.iter().flat_map(|f| strings(&f["required"])).collect())
        .unwrap_or_default();
    if forms.contains(&key) {
        let keys: Vec<String> = forms.iter().map(|k| format!("`{k}`")).collect();
        return format!("one of {}", or_list(&keys));
    }
    "no".into()
}

/// What a form of a table needs and rules out.
fn form_rules(f: &Value) -> Vec<String> {
    let code = |ks: &[&str]| -> String {
        let ks: Vec<String> = ks.iter().map(|k| format!("`{k}`")).collect();
        or_list(&ks)
    };
    let mut rules = Vec::new();
    let needs = strings(&f["required"]);
    if !needs.is_empty() {
        rules.push(format!("needs {}", code(&needs).replace(" or ", " and ")));
    }
    let (mut never, mut empty) = (Vec::new(), Vec::new());
    for (k, v) in f["properties"].as_object().into_iter().flatten() {
        if *v == false {
            never.push(k.as_str());
        } else if v["maxItems"] == 0 {
            empty.push(k.as_str());
        }
    }
    if !never.is_empty() {
        rules.push(format!("no {}", code(&never)));
    }
    if !empty.is_empty() {
        rules.push(format!("{} empty", code(&empty).replace(" or ", " and ")));
    }
    if let (Some(cond), Some(then)) = (f["if"]["properties"].as_object(), f["then"].as_object()) {
        let cond: Vec<String> = cond
            .iter()
            .filter_map(|(k, v)| v.get("const").map(|c| format!("`{k} = {}`", toml(c))))
            .collect();
        let also = code(&strings(&then["required"]));
        let mut rule = format!("with {}, also {also}", cond.join(" and "));
        let otherwise: Vec<&str> = f["else"]["properties"]
            .as_object()
            .map(|p| {
                p.iter()
                    .filter(|(_, v)| **v == false)
                    .map(|(k, _)| k.as_str())
                    .collect()
            })
            .unwrap_or_default();
        if !otherwise.is_empty() {
            rule.push_str(&format!(", otherwise no {}", code(&otherwise)));
        }
        rules.push(rule);
    }
    rules
}

/// The documented values of an enum (taplo's `x-taplo.docs.enumValues`), in
/// `v`, one of its alternatives or its items.
fn enum_docs(v: &Value) -> Vec<(&Value, &str)> {
    let mut found = Vec::new();
    let alts = v["anyOf"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(v["oneOf"].as_array().into_iter().flatten());
    for s in std::iter::once(v)
        .chain(alts)
        .chain(std::iter::once(&v["items"]))
    {
        if let (Some(values), Some(docs)) = (
            s["enum"].as_array(),
            s["x-taplo"]["docs"]["enumValues"].as_array(),
        ) {
            found.extend(values.iter().zip(docs.iter().filter_map(Value::as_str)));
        }
    }
    found
}

/// `"a"`, `"b"` or `"c"`.
fn enum_list(values: &[&Value]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("`{}`", toml(v))).collect();
    or_list(&parts)
}

/// A JSON value as TOML writes it (the values schemas hold: strings,
/// numbers, booleans, lists of them).
fn toml(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(toml).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn or_list(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}
