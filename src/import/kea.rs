//! Kea's kea-dhcp4 configuration read for `bootc import kea`: the JSON of
//! `{"Dhcp4": {…}}` with the comments Kea allows (`//`, `#`, `/* */`)
//! blanked out first, strings respected. Reservations are read at the
//! global level, in each `subnet4[]` and in each `shared-networks[]`'s
//! `subnet4[]`; a scan of the same text finds the line where each
//! reservation object starts, by its path in the document.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use serde_json::Value;

use super::{Entry, Host, SyntaxError};

/// One step of a path into a JSON document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Step {
    Key(String),
    Index(usize),
}

/// `text` with every comment replaced by spaces (newlines kept), so that
/// offsets and lines stay those of the file.
fn uncomment(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            // `#` and `//` comments run to the end of the line.
            c if c == b'#' || (c == b'/' && b.get(i + 1) == Some(&b'/')) => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = b[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            _ => i += 1,
        }
    }
    // Only ASCII bytes outside strings were replaced by ASCII spaces.
    String::from_utf8(out).unwrap_or_default()
}

/// The line (from 1) where each object of the (comment-free, valid) JSON
/// `text` starts, by its path.
fn object_lines(text: &str) -> HashMap<Vec<Step>, usize> {
    /// Where the scan is: inside an object (its key, once read) or an
    /// array (the index of the next element).
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let b = text.as_bytes();
    let mut lines = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut line = 1;
    let mut expect_key = false;
    let mut i = 0;
    let path = |stack: &[Frame]| -> Vec<Step> {
        stack
            .iter()
            .filter_map(|f| match f {
                Frame::Object(k) => k.clone().map(Step::Key),
                Frame::Array(n) => Some(Step::Index(*n)),
            })
            .collect()
    };
    while i < b.len() {
        match b[i] {
            b'\n' => line += 1,
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                if expect_key {
                    let raw = &text[start..i.min(b.len())];
                    let key = serde_json::from_str::<String>(&format!("\"{raw}\""))
                        .unwrap_or_else(|_| raw.to_string());
                    if let Some(Frame::Object(k)) = stack.last_mut() {
                        *k = Some(key);
                    }
                    expect_key = false;
                }
            }
            b'{' => {
                lines.insert(path(&stack), line);
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array(n)) => *n += 1,
                Some(Frame::Object(_)) => expect_key = true,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    lines
}

/// Every reservation of kea-dhcp4 configuration `text`, in input order.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let clean = uncomment(text);
    let doc: Value = serde_json::from_str(&clean).map_err(|e| SyntaxError {
        line: e.line(),
        message: format!("not JSON: {e}"),
    })?;
    let Some(dhcp4) = doc.get("Dhcp4") else {
        return Err(SyntaxError {
            line: 1,
            message: "no \"Dhcp4\" object: not a kea-dhcp4 configuration".into(),
        });
    };
    let lines = object_lines(&clean);
    let mut out = Vec::new();
    let mut at = vec![Step::Key("Dhcp4".into())];
    reservations(dhcp4, &mut at, &lines, &mut out);
    if let Some(subnets) = dhcp4.get("subnet4").and_then(Value::as_array) {
        at.push(Step::Key("subnet4".into()));
        each(subnets, &mut at, |s, at| {
            reservations(s, at, &lines, &mut out)
        });
        at.pop();
    }
    if let Some(nets) = dhcp4.get("shared-networks").and_then(Value::as_array) {
        at.push(Step::Key("shared-networks".into()));
        each(nets, &mut at, |net, at| {
            if let Some(subnets) = net.get("subnet4").and_then(Value::as_array) {
                at.push(Step::Key("subnet4".into()));
                each(subnets, at, |s, at| reservations(s, at, &lines, &mut out));
                at.pop();
            }
        });
    }
    Ok(out)
}

/// Calls `f` on each element of `list` with its path.
fn each(list: &[Value], at: &mut Vec<Step>, mut f: impl FnMut(&Value, &mut Vec<Step>)) {
    for (n, v) in list.iter().enumerate() {
        at.push(Step::Index(n));
        f(v, at);
        at.pop();
    }
}

/// The `reservations` of the object `scope` at path `at`.
fn reservations(
    scope: &Value,
    at: &mut Vec<Step>,
    lines: &HashMap<Vec<Step>, usize>,
    out: &mut Vec<Entry>,
) {
    let Some(list) = scope.get("reservations").and_then(Value::as_array) else {
        return;
    };
    at.push(Step::Key("reservations".into()));
    each(list, at, |r, at| {
        let line = lines.get(at.as_slice()).copied().unwrap_or(1);
        out.push(reservation(r, line));
    });
    at.pop();
}

/// One reservation object.
fn reservation(r: &Value, line: usize) -> Entry {
    let s = |k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    let mut h = Host {
        line,
        kind: "reservation",
        name_as_written: s("hostname"),
        macs: s("hw-address").into_iter().collect(),
        ..Host::default()
    };
    if let Some(ip) = s("ip-address") {
        match ip.parse::<Ipv4Addr>() {
            Ok(ip) => h.ip = Some(ip),
            Err(_) => {
                h.note = Some(format!(
                    "ip-address {ip:?} is not an IPv4 address: imported without ip"
                ))
            }
        }
    }
    if h.macs.is_empty() {
        let by: Vec<&str> = ["client-id", "duid", "circuit-id", "flex-id"]
            .into_iter()
            .filter(|k| r.get(*k).is_some())
            .collect();
        let why = if by.is_empty() {
            "no hw-address".to_string()
        } else {
            format!("no hw-address (reserved by {} only)", by.join(", "))
        };
        return Entry::Skip(h.skip(why));
    }
    Entry::Host(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_strings_stay() {
        let text = "{ # a\n \"a\": \"x // y # z /* w */\", // b\n /* c\n d */ \"b\": 1 }";
        let clean = uncomment(text);
        assert_eq!(clean.lines().count(), text.lines().count());
        let v: Value = serde_json::from_str(&clean).unwrap();
        assert_eq!(v["a"], "x // y # z /* w */");
        assert_eq!(v["b"], 1);
    }

    #[test]
    fn reservations_have_their_lines() {
        let text = concat!(
            "{ \"Dhcp4\": {\n",
            "  \"subnet4\": [ { \"id\": 1, \"reservations\": [\n",
            "    { \"hw-address\": \"52:54:00:00:00:02\", \"hostname\": \"b\" } ] } ],\n",
            "  // global ones come last in this file\n",
            "  \"reservations\": [\n",
            "    {\n",
            "      \"hw-address\": \"52:54:00:00:00:01\", \"hostname\": \"a\" },\n",
            "    { \"client-id\": \"01:02\", \"hostname\": \"c\" }\n",
            "  ]\n",
            "} }\n",
        );
        let got: Vec<(usize, String)> = parse(text)
            .unwrap()
            .into_iter()
            .map(|e| match e {
                Entry::Host(h) => (h.line, h.name_as_written.unwrap()),
                Entry::Skip(s) => (s.line, s.reason),
            })
            .collect();
        assert_eq!(
            got,
            [
                (6, "a".to_string()),
                (8, "no hw-address (reserved by client-id only)".to_string()),
                (3, "b".to_string()),
            ]
        );
    }
}
