//! What changes about one machine present on both sides.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::Serialize;
use serde_json::Value;

use super::side::{Hashes, Texts};
use crate::plan::Resolved;
use crate::site::{Mac, UefiLoader};

/// One thing that changes about one machine.
#[derive(Serialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Change {
    /// The same NIC under another name.
    Renamed {
        old: String,
        new: String,
    },
    Role {
        old: String,
        new: String,
    },
    Image {
        old: String,
        new: String,
    },
    /// The machine keeps its image, whose artifacts changed.
    ImageContent {
        image: String,
    },
    /// What the machine's UEFI firmware is handed (iPXE, or shim and GRUB),
    /// with its Secure Boot setting and architecture.
    Loader {
        old: String,
        new: String,
    },
    /// Added (no `old`), removed (no `new`), or a new value for the same key.
    KernelArg {
        old: Option<String>,
        new: Option<String>,
    },
    /// The same arguments in another order (the kernel takes the last).
    KernelArgsOrder {
        old: Vec<String>,
        new: Vec<String>,
    },
    File {
        file: String,
        old: Option<String>,
        new: Option<String>,
        /// What changes inside, when both sides' texts are at hand.
        #[serde(skip_serializing_if = "Option::is_none")]
        lines: Option<Lines>,
    },
    Mac {
        old: Option<String>,
        new: Option<String>,
    },
    Ip {
        old: Option<String>,
        new: Option<String>,
    },
    /// Per-MAC scripts that changed while nothing in the plan explains it
    /// (a script template, for example).
    Script {
        macs: Vec<String>,
    },
    Label {
        label: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// A plan.json key this bootc does not know.
    Other {
        field: String,
        old: Value,
        new: Value,
    },
}

/// What the summary counts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Category {
    Renamed,
    Role,
    Image,
    ImageContent,
    Loader,
    KernelArgs,
    Files,
    Addresses,
    Script,
    Labels,
    Other,
}

impl Category {
    pub(super) fn name(self) -> &'static str {
        match self {
            Category::Renamed => "renamed",
            Category::Role => "role",
            Category::Image => "image",
            Category::ImageContent => "image content",
            Category::Loader => "UEFI loader",
            Category::KernelArgs => "kernel args",
            Category::Files => "files",
            Category::Addresses => "addresses",
            Category::Script => "iPXE script",
            Category::Labels => "labels",
            Category::Other => "other",
        }
    }
}

impl Change {
    pub(super) fn category(&self) -> Category {
        match self {
            Change::Renamed { .. } => Category::Renamed,
            Change::Role { .. } => Category::Role,
            Change::Image { .. } => Category::Image,
            Change::ImageContent { .. } => Category::ImageContent,
            Change::Loader { .. } => Category::Loader,
            Change::KernelArg { .. } | Change::KernelArgsOrder { .. } => Category::KernelArgs,
            Change::File { .. } => Category::Files,
            Change::Mac { .. } | Change::Ip { .. } => Category::Addresses,
            Change::Script { .. } => Category::Script,
            Change::Label { .. } => Category::Labels,
            Change::Other { .. } => Category::Other,
        }
    }
}

/// The lines of a file that go and come (as multisets, in file order).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Lines {
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Lines {
    fn new(old: &str, new: &str) -> Lines {
        let o: Vec<String> = old.lines().map(|l| l.trim_end().to_string()).collect();
        let n: Vec<String> = new.lines().map(|l| l.trim_end().to_string()).collect();
        Lines {
            removed: minus(&o, &n),
            added: minus(&n, &o),
        }
    }
}

/// What is a machine's own in a change's text: what placeholders stand for.
#[derive(Clone, Debug, Default)]
pub(super) struct Own {
    pub name: String,
    pub macs: Vec<Mac>,
    pub ip: Option<Ipv4Addr>,
}

impl Own {
    pub fn of(m: &Resolved) -> Own {
        Own {
            name: m.name.clone(),
            macs: m.macs.clone(),
            ip: m.ip,
        }
    }
}

/// Replaces the machine's own name, IP and MACs in `text` by placeholders,
/// where they stand as whole words, so `hostname=node01` and
/// `hostname=node02` read as one change: `hostname={name}`.
pub(super) fn placeholders(text: &str, m: &Own) -> String {
    let mut out = text.to_string();
    let mut subs: Vec<(String, &str)> = Vec::new();
    for mac in &m.macs {
        subs.push((mac.to_string(), "{mac}"));
        subs.push((mac.hexhyp(), "{mac}"));
    }
    if let Some(ip) = &m.ip {
        subs.push((ip.to_string(), "{ip}"));
    }
    if !m.name.is_empty() {
        subs.push((m.name.clone(), "{name}"));
    }
    for (from, to) in subs {
        out = replace_words(&out, &from, to);
    }
    out
}

fn replace_words(text: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        return text.to_string();
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in text.match_indices(from) {
        let before = text[..i].chars().next_back();
        let after = text[i + from.len()..].chars().next();
        if i >= last && !word(before) && !word(after) {
            out.push_str(&text[last..i]);
            out.push_str(to);
            last = i + from.len();
        }
    }
    out.push_str(&text[last..]);
    out
}

/// What is in `a` and not in `b`, as multisets, in `a`'s order.
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut left: BTreeMap<&str, usize> = BTreeMap::new();
    for x in b {
        *left.entry(x).or_default() += 1;
    }
    a.iter()
        .filter(|x| match left.get_mut(x.as_str()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        })
        .cloned()
        .collect()
}

/// Kernel args: removed and added (as multisets), a removed and an added one
/// with the same `key=` paired as a change; the same args reordered.
fn args_changes(old: &[String], new: &[String]) -> Vec<Change> {
    if old == new {
        return Vec::new();
    }
    let removed = minus(old, new);
    let mut added: Vec<Option<String>> = minus(new, old).into_iter().map(Some).collect();
    if removed.is_empty() && added.is_empty() {
        return vec![Change::KernelArgsOrder {
            old: old.to_vec(),
            new: new.to_vec(),
        }];
    }
    let key = |x: &str| x.split_once('=').map(|(k, _)| k.to_string());
    let mut out = Vec::new();
    for r in removed {
        let pair = key(&r).and_then(|k| {
            added
                .iter_mut()
                .find(|a| a.as_deref().and_then(key).as_deref() == Some(k.as_str()))
                .and_then(Option::take)
        });
        out.push(Change::KernelArg {
            old: Some(r),
            new: pair,
        });
    }
    out.extend(added.into_iter().flatten().map(|a| Change::KernelArg {
        old: None,
        new: Some(a),
    }));
    out
}

fn map_changes<'a, T>(
    old: impl IntoIterator<Item = (&'a String, &'a String)>,
    new: impl IntoIterator<Item = (&'a String, &'a String)>,
    make: impl Fn(String, Option<String>, Option<String>) -> T,
) -> Vec<T> {
    let old: BTreeMap<&String, &String> = old.into_iter().collect();
    let new: BTreeMap<&String, &String> = new.into_iter().collect();
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).copied().collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let v = |m: &BTreeMap<&String, &String>| m.get(k).map(|v| v.to_string());
            make(k.clone(), v(&old), v(&new))
        })
        .collect()
}

/// A plan key this bootc does not know, on either side: what differs.
pub(super) fn extra_changes<T>(
    old: &crate::plan::Extra,
    new: &crate::plan::Extra,
    make: impl Fn(&String, Value, Value) -> T,
) -> Vec<T> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let v = |x: Option<&Value>| x.cloned().unwrap_or(Value::Null);
            make(k, v(old.get(k)), v(new.get(k)))
        })
        .collect()
}

/// The inputs of [`machine_changes`] that are the same for every machine.
pub(super) struct Context<'a> {
    /// Images that keep their name but have new artifacts.
    pub image_changed: &'a BTreeSet<String>,
    /// Both sides' hashes of the tree's files, when both have them.
    pub files: Option<(&'a Hashes, &'a Hashes)>,
    pub texts: (&'a Texts, &'a Texts),
    /// The site's name (in every script) changed.
    pub site_renamed: bool,
}

/// How a machine's UEFI firmware boots, as one phrase: `iPXE`, `shim and
/// GRUB, Secure Boot`, `arm64: shim and GRUB`.
fn uefi_boot(m: &Resolved) -> String {
    let loader = if UefiLoader::from_plan(&m.uefi_loader) == UefiLoader::ShimGrub {
        "shim and GRUB"
    } else {
        "iPXE"
    };
    let arch = if m.arch.is_empty() {
        String::new()
    } else {
        format!("{}: ", m.arch)
    };
    let sb = if m.secure_boot { ", Secure Boot" } else { "" };
    format!("{arch}{loader}{sb}")
}

/// Everything that changes about one machine present on both sides, in the
/// order a reader wants them.
pub(super) fn machine_changes(b: &Resolved, h: &Resolved, cx: &Context) -> Vec<Change> {
    let mut out = Vec::new();
    if b.name != h.name {
        out.push(Change::Renamed {
            old: b.name.clone(),
            new: h.name.clone(),
        });
    }
    if b.role != h.role {
        out.push(Change::Role {
            old: b.role.clone(),
            new: h.role.clone(),
        });
    }
    if b.image != h.image {
        out.push(Change::Image {
            old: b.image.clone(),
            new: h.image.clone(),
        });
    } else if cx.image_changed.contains(&h.image) {
        out.push(Change::ImageContent {
            image: h.image.clone(),
        });
    }
    if uefi_boot(b) != uefi_boot(h) {
        out.push(Change::Loader {
            old: uefi_boot(b),
            new: uefi_boot(h),
        });
    }
    out.extend(args_changes(&b.kernel_args, &h.kernel_args));
    out.extend(map_changes(&b.files, &h.files, |file, old, new| {
        let lines = match (&old, &new) {
            (Some(_), Some(_)) => cx
                .texts
                .0
                .get(&format!("http/machines/{}/{file}", b.name))
                .zip(cx.texts.1.get(&format!("http/machines/{}/{file}", h.name)))
                .map(|(o, n)| Lines::new(&o, &n)),
            _ => None,
        };
        Change::File {
            file,
            old,
            new,
            lines,
        }
    }));
    let removed: Vec<&Mac> = b.macs.iter().filter(|m| !h.macs.contains(m)).collect();
    let added: Vec<&Mac> = h.macs.iter().filter(|m| !b.macs.contains(m)).collect();
    for i in 0..removed.len().max(added.len()) {
        out.push(Change::Mac {
            old: removed.get(i).map(|s| s.to_string()),
            new: added.get(i).map(|s| s.to_string()),
        });
    }
    if b.ip != h.ip {
        out.push(Change::Ip {
            old: b.ip.map(|i| i.to_string()),
            new: h.ip.map(|i| i.to_string()),
        });
    }
    for (field, old, new) in [("uuid", &b.uuid, &h.uuid), ("serial", &b.serial, &h.serial)] {
        if old != new {
            let v = |x: &Option<String>| x.clone().map_or(Value::Null, Value::String);
            out.push(Change::Other {
                field: field.to_string(),
                old: v(old),
                new: v(new),
            });
        }
    }
    out.extend(script_change(b, h, cx, &out));
    out.extend(extra_changes(&b.extra, &h.extra, |k, old, new| {
        Change::Other {
            field: k.clone(),
            old,
            new,
        }
    }));
    out.extend(map_changes(
        b.labels.iter(),
        h.labels.iter(),
        |label, old, new| Change::Label { label, old, new },
    ));
    out
}

/// Scripts: only what nothing in `so_far` explains (each of those rewrites
/// the script anyway), and not when the site's name (in every script)
/// changed.
fn script_change(b: &Resolved, h: &Resolved, cx: &Context, so_far: &[Change]) -> Option<Change> {
    let explained = cx.site_renamed
        || so_far.iter().any(|c| {
            matches!(
                c.category(),
                Category::Renamed
                    | Category::Role
                    | Category::Image
                    | Category::ImageContent
                    | Category::KernelArgs
            )
        });
    let (bf, hf) = cx.files.filter(|_| !explained)?;
    let macs: Vec<String> = h
        .macs
        .iter()
        .filter(|m| b.macs.contains(m))
        .filter(|m| {
            let p = format!("http/machines/{}.ipxe", m.hexhyp());
            bf.get(&p) != hf.get(&p)
        })
        .map(Mac::to_string)
        .collect();
    (!macs.is_empty()).then_some(Change::Script { macs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Own {
        Own {
            name: name.into(),
            macs: vec![Mac::parse("52:54:00:aa:bb:01").unwrap()],
            ip: Some("10.0.0.1".parse().unwrap()),
        }
    }

    #[test]
    fn placeholders_replace_whole_words_only() {
        let x = m("node01");
        assert_eq!(placeholders("hostname=node01", &x), "hostname={name}");
        assert_eq!(placeholders("h=node010", &x), "h=node010");
        assert_eq!(
            placeholders("ip=10.0.0.1::10.0.0.254", &x),
            "ip={ip}::10.0.0.254"
        );
        assert_eq!(placeholders("ip=10.0.0.11", &x), "ip=10.0.0.11");
        assert_eq!(
            placeholders("BOOTIF=01-52-54-00-aa-bb-01", &x),
            "BOOTIF=01-{mac}"
        );
    }

    #[test]
    fn kernel_args_pair_by_key() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let c = args_changes(
            &s(&["console=ttyS0", "quiet"]),
            &s(&["console=ttyS1", "debug"]),
        );
        assert_eq!(
            c,
            vec![
                Change::KernelArg {
                    old: Some("console=ttyS0".into()),
                    new: Some("console=ttyS1".into())
                },
                Change::KernelArg {
                    old: Some("quiet".into()),
                    new: None
                },
                Change::KernelArg {
                    old: None,
                    new: Some("debug".into())
                },
            ]
        );
        assert_eq!(
            args_changes(&s(&["a", "b"]), &s(&["b", "a"])),
            vec![Change::KernelArgsOrder {
                old: s(&["a", "b"]),
                new: s(&["b", "a"])
            }]
        );
        // A repeated argument counts.
        assert_eq!(
            args_changes(&s(&["a", "a"]), &s(&["a"])),
            vec![Change::KernelArg {
                old: Some("a".into()),
                new: None
            }]
        );
    }
}
