//! Deserializing one TOML file and reporting every problem in it, not only
//! the first.
//!
//! serde stops at the first unknown key or wrong type. So the document is
//! parsed once into toml's spanned tree, and deserialization is retried:
//! after each error the entry it points at is taken out of the tree and the
//! error kept. An entry of an array of tables (a `[[machine]]`) that had any
//! error is dropped whole once all its errors are known, so a broken machine
//! never reaches validation half-read, while the file's valid machines do.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use crate::diag::{Diag, FileId, Loc, closest};

/// `text` as `T`, and a diagnostic for each problem. `None` only when the
/// document cannot be read at all (a syntax error, or an error at its root).
pub fn from_str_all<T: DeserializeOwned>(id: FileId, text: &str) -> (Option<T>, Vec<Diag>) {
    let mut doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(e) => return (None, vec![toml_diag(id, &e)]),
    };
    let original = doc.clone();
    let mut diags = Vec::new();
    // Spans of array-of-tables entries that had an error: dropped at the end.
    let mut broken: Vec<Range<usize>> = Vec::new();
    // Unknown keys taken out, with the key each resembles: (offset, key).
    let mut misspelt: Vec<(usize, String)> = Vec::new();
    loop {
        match T::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(value) if broken.is_empty() => return (Some(value), diags),
            Ok(_) => {
                drop_entries(doc.get_mut(), &broken);
                broken.clear();
            }
            Err(e) => {
                let (d, problem) = toml_diag_of(id, &e);
                let cascade = match (&problem, e.span()) {
                    // `nme = …` already said "did you mean `name`?": a
                    // missing `name` in the same table is no news.
                    (Problem::Missing(key), Some(at)) => {
                        let table = table_at(original.get_ref(), &at).unwrap_or(at);
                        misspelt.iter().any(|(o, k)| k == key && table.contains(o))
                    }
                    _ => false,
                };
                if let (Problem::Unknown(Some(like)), Some(at)) = (&problem, e.span()) {
                    misspelt.push((at.start, like.clone()));
                }
                if !cascade {
                    diags.push(d);
                }
                let taken = e
                    .span()
                    .is_some_and(|at| take(doc.get_mut(), &at, &mut broken));
                if !taken {
                    return (None, diags);
                }
            }
        }
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Where a value is written, all of it: toml gives a `[table]` or
/// `[[table]]` the span of its header only, so the keys below it are added.
fn extent(value: &Spanned<DeValue<'_>>) -> Range<usize> {
    let mut r = value.span();
    let mut widen = |o: Range<usize>| {
        r.start = r.start.min(o.start);
        r.end = r.end.max(o.end);
    };
    match value.get_ref() {
        DeValue::Table(t) => {
            for (k, v) in t.iter() {
                widen(k.span());
                widen(extent(v));
            }
        }
        DeValue::Array(items) => {
            for i in items.iter() {
                widen(extent(i));
            }
        }
        _ => {}
    }
    r
}

/// Takes the deepest entry of `table` that the error span `at` points into
/// out of it; records the array-of-tables entry it was in. False when
/// nothing could be taken (the error is about `table` itself).
fn take(table: &mut DeTable<'_>, at: &Range<usize>, broken: &mut Vec<Range<usize>>) -> bool {
    let mut hit = None;
    for (key, value) in table.iter_mut() {
        if contains(&key.span(), at) {
            hit = Some(key.get_ref().to_string());
            break;
        }
        if !contains(&extent(value), at) {
            continue;
        }
        let span = value.span();
        let deeper = span != *at
            && match value.get_mut() {
                DeValue::Table(inner) => take(inner, at, broken),
                DeValue::Array(items) => take_in_array(items, at, broken),
                _ => false,
            };
        if deeper {
            return true;
        }
        hit = Some(key.get_ref().to_string());
        break;
    }
    match hit {
        Some(key) => table.remove(key.as_str()).is_some(),
        None => false,
    }
}

/// As [`take`], inside the tables of an array. An error that is about an
/// element as a whole, or about a plain value in the array, is not taken
/// here (the array's key is then taken by the caller).
fn take_in_array(
    items: &mut DeArray<'_>,
    at: &Range<usize>,
    broken: &mut Vec<Range<usize>>,
) -> bool {
    let Some(item) = items.iter_mut().find(|i| contains(&extent(i), at)) else {
        return false;
    };
    let span = item.span();
    let DeValue::Table(inner) = item.get_mut() else {
        return false;
    };
    if !broken.contains(&span) {
        broken.push(span.clone());
    }
    // An error about the entry as a whole (a missing key) leaves nothing
    // inside to take: the entry goes now.
    if span == *at || !take(inner, at, broken) {
        retain(items, |i| i.span() != span);
    }
    true
}

fn retain<'i>(items: &mut DeArray<'i>, keep: impl Fn(&Spanned<DeValue<'i>>) -> bool) {
    let all = std::mem::replace(items, DeArray::new());
    *items = all.into_iter().filter(|i| keep(i)).collect();
}

/// Removes the array entries whose spans are in `spans`, at any depth.
fn drop_entries(table: &mut DeTable<'_>, spans: &[Range<usize>]) {
    for (_, value) in table.iter_mut() {
        drop_in(value, spans);
    }
}

fn drop_in(value: &mut Spanned<DeValue<'_>>, spans: &[Range<usize>]) {
    match value.get_mut() {
        DeValue::Table(t) => drop_entries(t, spans),
        DeValue::Array(items) => {
            retain(items, |i| !spans.contains(&i.span()));
            for item in items.iter_mut() {
                drop_in(item, spans);
            }
        }
        _ => {}
    }
}

/// Where the string `value` is written in the TOML file `text`, if it is.
pub fn find_string(text: &str, value: &str) -> Option<Range<usize>> {
    fn walk(v: &Spanned<DeValue<'_>>, want: &str) -> Option<Range<usize>> {
        match v.get_ref() {
            DeValue::String(s) if s.as_ref() == want => Some(v.span()),
            DeValue::Table(t) => t.iter().find_map(|(_, v)| walk(v, want)),
            DeValue::Array(items) => items.iter().find_map(|i| walk(i, want)),
            _ => None,
        }
    }
    let doc = DeTable::parse(text).ok()?;
    doc.get_ref().iter().find_map(|(_, v)| walk(v, value))
}

/// The extent of the table whose own span is `at` (a `[[machine]]` header).
fn table_at(table: &DeTable<'_>, at: &Range<usize>) -> Option<Range<usize>> {
    table.iter().find_map(|(_, v)| {
        if v.span() == *at {
            return Some(extent(v));
        }
        match v.get_ref() {
            DeValue::Table(t) => table_at(t, at),
            DeValue::Array(items) => items.iter().find_map(|i| {
                if i.span() == *at {
                    Some(extent(i))
                } else if let DeValue::Table(t) = i.get_ref() {
                    table_at(t, at)
                } else {
                    None
                }
            }),
            _ => None,
        }
    })
}

/// What a TOML/serde error is about.
enum Problem {
    /// An unknown key, and the allowed key it resembles.
    Unknown(Option<String>),
    Missing(String),
    Other,
}

/// Turns a TOML/serde error into a diagnostic with the wording of this tool:
/// "key" rather than "field", and a "did you mean" for unknown keys.
pub fn toml_diag(id: FileId, e: &toml::de::Error) -> Diag {
    toml_diag_of(id, e).0
}

fn toml_diag_of(id: FileId, e: &toml::de::Error) -> (Diag, Problem) {
    let msg = e.message().trim();
    let loc = e.span().map(|s| Loc::new(id, s));
    let first_line = msg.lines().next().unwrap_or(msg);
    if let Some(rest) = first_line.strip_prefix("unknown field ") {
        let quoted: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let key = quoted.first().copied().unwrap_or("?");
        let expected = &quoted[1.min(quoted.len())..];
        let like = closest(key, expected.iter().copied()).map(str::to_string);
        let mut d = Diag::error(format!("unknown key `{key}`")).at_opt(loc, "not a key here");
        d = d.help_opt(like.as_ref().map(|c| format!("did you mean `{c}`?")));
        if !expected.is_empty() {
            d = d.help(format!("keys allowed here: {}", expected.join(", ")));
        }
        return (d, Problem::Unknown(like));
    }
    if let Some(rest) = first_line.strip_prefix("missing field ") {
        let key = rest.trim_matches('`');
        let d = Diag::error(format!("missing key `{key}`"))
            .at_opt(loc, format!("this table needs `{key}`"));
        return (d, Problem::Missing(key.to_string()));
    }
    if first_line.starts_with("invalid type") || first_line.starts_with("invalid value") {
        let text = first_line.replace("invalid type: ", "");
        let d = Diag::error(format!("wrong type: {text}")).at_opt(loc, "wrong type");
        return (d, Problem::Other);
    }
    // A value the model refused on its own terms (see model::Label).
    if first_line.starts_with("invalid label") {
        let d = Diag::error(first_line).at_opt(loc, "not a valid label");
        return (d, Problem::Other);
    }
    let d = Diag::error(format!("TOML syntax error: {first_line}")).at_opt(loc, "here");
    (d, Problem::Other)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MachineFile;

    fn problems(text: &str) -> (usize, Vec<String>) {
        let (file, diags) = from_str_all::<MachineFile>(0, text);
        let kept = file.map_or(0, |f| f.machine.len());
        (kept, diags.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn every_problem_and_the_valid_machines() {
        let (kept, msgs) = problems(
            "[[machine]]\nname = \"a\"\nmac = \"52:54:00:00:00:01\"\n\
             [[machine]]\nname = \"b\"\nmacs = [1]\nvars = { x = 1 }\nlabels = { y = {} }\nx = 1\n\
             [[machine]]\nname = \"c\"\nmac = \"52:54:00:00:00:03\"\n",
        );
        assert_eq!(kept, 2, "{msgs:?}");
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs.iter().any(|m| m == "unknown key `x`"), "{msgs:?}");
    }

    #[test]
    fn a_misspelt_key_is_not_also_missing() {
        let (kept, msgs) = problems("[[machine]]\nnme = \"a\"\nmac = \"52:54:00:00:00:01\"\n");
        assert_eq!((kept, msgs), (0, vec!["unknown key `nme`".to_string()]));
    }

    #[test]
    fn a_syntax_error_stops_the_file() {
        let (file, diags) = from_str_all::<MachineFile>(0, "[[machine]\n");
        assert!(file.is_none());
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.starts_with("TOML syntax error"));
    }
}
