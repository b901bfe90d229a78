//! Compares two sides into the change model, a [`Report`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::change::{Category, Change, Context, Own, extra_changes, machine_changes};
use super::report::*;
use super::side::{Hashes, Side};
use super::text::Style;
use crate::plan::{ImagePlan, Plan};

/// Compares two sides.
pub fn diff(base: &Side, head: &Side) -> Report {
    let (bp, hp) = (&base.plan, &head.plan);
    let files = match (&base.files, &head.files) {
        (Some(b), Some(h)) => Some((b, h)),
        _ => None,
    };
    let site = site_changes(bp, hp, files);
    let mut images = image_changes(bp, hp);
    let image_changed: BTreeSet<String> = images
        .iter()
        .filter(|i| i.status == "changed")
        .map(|i| i.name.clone())
        .collect();
    let Pairs {
        pairs,
        added,
        removed,
    } = pair_machines(bp, hp);

    let cx = Context {
        image_changed: &image_changed,
        files,
        texts: (&base.texts, &head.texts),
        site_renamed: bp.site != hp.site,
    };
    let (machines, labels_only) = changed_machines(bp, hp, &pairs, &cx, &mut images);

    let mut summary = Summary {
        changed: machines.len(),
        added: added.len(),
        removed: removed.len(),
        labels_only: labels_only.len(),
        images: images.len(),
        site: site.len(),
        ..Summary::default()
    };
    count(&mut summary, &machines);
    let (groups, group_members) = groups(&machines);
    let changed = !(site.is_empty()
        && images.is_empty()
        && added.is_empty()
        && removed.is_empty()
        && machines.is_empty()
        && labels_only.is_empty());
    let info = |side: &Side| SideInfo {
        label: side.label.clone(),
        site: side.plan.site.clone(),
        machines: side.plan.machines.len(),
    };
    Report {
        base: info(base),
        head: info(head),
        changed,
        summary,
        site,
        images,
        added: added
            .iter()
            .map(|&i| MachineEntry::new(&hp.machines[i]))
            .collect(),
        removed: removed
            .iter()
            .map(|&i| MachineEntry::new(&bp.machines[i]))
            .collect(),
        machines,
        labels_only,
        groups,
        group_members,
    }
}

/// The paired machines that change: those whose boot changes (each listed
/// with the image whose new content it boots), and those whose labels only.
fn changed_machines(
    bp: &Plan,
    hp: &Plan,
    pairs: &[(usize, usize)],
    cx: &Context,
    images: &mut [ImageChange],
) -> (Vec<MachineChange>, Vec<MachineChange>) {
    let mut machines = Vec::new();
    let mut labels_only = Vec::new();
    for &(bi, hi) in pairs {
        let (b, h) = (&bp.machines[bi], &hp.machines[hi]);
        let changes = machine_changes(b, h, cx);
        if changes.is_empty() {
            continue;
        }
        let mc = MachineChange {
            name: h.name.clone(),
            labels: BTreeMap::clone(&h.labels),
            changes,
            own: Own::of(h),
        };
        if mc.changes.iter().all(|c| c.category() == Category::Labels) {
            labels_only.push(mc);
        } else {
            if let Some(Change::ImageContent { image }) = mc
                .changes
                .iter()
                .find(|c| matches!(c, Change::ImageContent { .. }))
                && let Some(img) = images.iter_mut().find(|i| &i.name == image)
            {
                img.machines.push(h.name.clone());
            }
            machines.push(mc);
        }
    }
    (machines, labels_only)
}

/// Site-wide: the name, the fallback, unknown plan keys, the tree's files.
fn site_changes(bp: &Plan, hp: &Plan, files: Option<(&Hashes, &Hashes)>) -> Vec<SiteChange> {
    let change = |what: &str, path: Option<String>, old: Value, new: Value| SiteChange {
        what: what.to_string(),
        path,
        old,
        new,
    };
    let mut site = Vec::new();
    if bp.site != hp.site {
        site.push(change(
            "site",
            None,
            bp.site.clone().into(),
            hp.site.clone().into(),
        ));
    }
    if bp.fallback != hp.fallback {
        site.push(change(
            "fallback",
            None,
            bp.fallback.clone().into(),
            hp.fallback.clone().into(),
        ));
    }
    // Reservations (`boot = false`), by name: added, removed or changed.
    let names: BTreeSet<&str> = bp
        .reservations
        .iter()
        .chain(&hp.reservations)
        .map(|r| r.name.as_str())
        .collect();
    for name in names {
        let find = |p: &Plan| {
            p.reservations
                .iter()
                .find(|r| r.name == name)
                .map_or(Value::Null, |r| serde_json::to_value(r).unwrap_or_default())
        };
        let (o, n) = (find(bp), find(hp));
        if o != n {
            site.push(change("reservation", Some(name.to_string()), o, n));
        }
    }
    site.extend(extra_changes(&bp.extra, &hp.extra, |k, old, new| {
        change(k, None, old, new)
    }));
    if let Some((bf, hf)) = files {
        let paths: BTreeSet<&String> = bf
            .keys()
            .chain(hf.keys())
            .filter(|p| !p.starts_with("http/machines/"))
            .collect();
        for p in paths {
            let (o, n) = (bf.get(p), hf.get(p));
            if o != n {
                let v = |x: Option<&String>| x.cloned().map(Value::from).unwrap_or(Value::Null);
                site.push(change("file", Some(p.clone()), v(o), v(n)));
            }
        }
    }
    site
}

fn image_changes(bp: &Plan, hp: &Plan) -> Vec<ImageChange> {
    let mut images = Vec::new();
    let names: BTreeSet<&String> = bp.images.keys().chain(hp.images.keys()).collect();
    for name in names {
        let (status, changes) = match (bp.images.get(name), hp.images.get(name)) {
            (Some(b), Some(h)) if b == h => continue,
            (Some(b), Some(h)) => ("changed", image_deltas(b, h)),
            (None, Some(_)) => ("added", Vec::new()),
            (Some(_), None) => ("removed", Vec::new()),
            (None, None) => continue,
        };
        images.push(ImageChange {
            name: name.clone(),
            status,
            changes,
            machines: Vec::new(),
        });
    }
    images
}

fn artifact_roles(kind: &str, method: Option<&str>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            match (kind, method, i) {
                ("kernel", _, 0) => "kernel",
                ("kernel", _, _) => "initrd",
                ("iso", Some("memdisk"), 0) => "memdisk",
                ("iso", _, _) => "iso",
                ("chain", _, _) => "chain",
                _ => "artifact",
            }
            .to_string()
        })
        .collect()
}

fn image_deltas(b: &ImagePlan, h: &ImagePlan) -> Vec<ImageDelta> {
    let mut out = Vec::new();
    if b.kind != h.kind {
        out.push(ImageDelta::Kind {
            old: b.kind.clone(),
            new: h.kind.clone(),
        });
    }
    if b.method != h.method {
        out.push(ImageDelta::Method {
            old: b.method.clone(),
            new: h.method.clone(),
        });
    }
    let n = b.artifacts.len().max(h.artifacts.len());
    let broles = artifact_roles(&b.kind, b.method.as_deref(), b.artifacts.len());
    let hroles = artifact_roles(&h.kind, h.method.as_deref(), h.artifacts.len());
    for i in 0..n {
        let (o, nw) = (b.artifacts.get(i), h.artifacts.get(i));
        if o != nw {
            out.push(ImageDelta::Artifact {
                role: hroles.get(i).or(broles.get(i)).cloned().unwrap_or_default(),
                old: o.cloned().map(Box::new),
                new: nw.cloned().map(Box::new),
            });
        }
    }
    out.extend(extra_changes(&b.extra, &h.extra, |k, old, new| {
        ImageDelta::Other {
            field: k.clone(),
            old,
            new,
        }
    }));
    out
}

/// Machines matched across the sides, by index into each plan's machines.
struct Pairs {
    /// (base, head), in HEAD's order.
    pairs: Vec<(usize, usize)>,
    /// In HEAD only.
    added: Vec<usize>,
    /// In BASE only.
    removed: Vec<usize>,
}

/// Machines by name, then a removed and an added one that share a MAC are
/// the same machine renamed.
fn pair_machines(bp: &Plan, hp: &Plan) -> Pairs {
    let bidx: BTreeMap<&str, usize> = bp
        .machines
        .iter()
        .enumerate()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    let hnames: BTreeSet<&str> = hp.machines.iter().map(|m| m.name.as_str()).collect();
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut added: Vec<usize> = Vec::new();
    for (hi, m) in hp.machines.iter().enumerate() {
        match bidx.get(m.name.as_str()) {
            Some(&bi) => pairs.push((bi, hi)),
            None => added.push(hi),
        }
    }
    let mut removed: Vec<usize> = bp
        .machines
        .iter()
        .enumerate()
        .filter(|(_, m)| !hnames.contains(m.name.as_str()))
        .map(|(i, _)| i)
        .collect();
    if !removed.is_empty() && !added.is_empty() {
        let mut by_mac = BTreeMap::new();
        for &bi in &removed {
            for mac in &bp.machines[bi].macs {
                by_mac.entry(mac).or_insert(bi);
            }
        }
        let mut taken: BTreeSet<usize> = BTreeSet::new();
        added.retain(|&hi| {
            let found = hp.machines[hi]
                .macs
                .iter()
                .filter_map(|mac| by_mac.get(mac))
                .find(|bi| !taken.contains(*bi));
            match found {
                Some(&bi) => {
                    taken.insert(bi);
                    pairs.push((bi, hi));
                    false
                }
                None => true,
            }
        });
        removed.retain(|bi| !taken.contains(bi));
        pairs.sort_by_key(|&(_, hi)| hi);
    }
    Pairs {
        pairs,
        added,
        removed,
    }
}

/// Counts each changing machine once per kind of change.
fn count(summary: &mut Summary, machines: &[MachineChange]) {
    for m in machines {
        let cats: BTreeSet<Category> = m.changes.iter().map(Change::category).collect();
        for c in cats {
            match c {
                Category::Renamed => summary.renamed += 1,
                Category::Role => summary.role += 1,
                Category::Image => summary.image += 1,
                Category::ImageContent => summary.image_content += 1,
                Category::Loader => summary.loader += 1,
                Category::KernelArgs => summary.kernel_args += 1,
                Category::Files => summary.files += 1,
                Category::Addresses => summary.addresses += 1,
                Category::Script => summary.script += 1,
                Category::Other => summary.other += 1,
                Category::Labels => {}
            }
        }
    }
}

/// Machines with identical shared texts, largest group first; with each
/// group's members as indices into `machines`.
fn groups(machines: &[MachineChange]) -> (Vec<Group>, Vec<Vec<usize>>) {
    let mut by_key: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, m) in machines.iter().enumerate() {
        let key: Vec<String> = m
            .changes
            .iter()
            .map(|c| c.shared(&m.own, Style::Plain))
            .collect();
        by_key.entry(key).or_default().push(i);
    }
    let mut grouped: Vec<(Vec<String>, Vec<usize>)> = by_key.into_iter().collect();
    grouped.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1[0].cmp(&b.1[0])));
    let groups = grouped
        .iter()
        .map(|(key, members)| Group {
            machines: members.iter().map(|&i| machines[i].name.clone()).collect(),
            labels: common_labels(members.iter().map(|&i| &machines[i].labels)),
            changes: if members.len() == 1 {
                machines[members[0]]
                    .changes
                    .iter()
                    .map(|c| c.full(Style::Plain))
                    .collect()
            } else {
                key.clone()
            },
        })
        .collect();
    (groups, grouped.into_iter().map(|(_, m)| m).collect())
}
