//! What the human and markdown writers show of a [`Report`], in the order
//! they show it, every list capped: the structure both share, so each
//! writer is only formatting.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::change::Change;
use super::report::{MachineEntry, Report, SideInfo, common_labels};
use super::text::{Style, delta_text, labels_text, name_list, site_text};
use crate::diag::plural_with;

/// How many groups of machines a section shows.
pub(super) const MAX_GROUPS: usize = 25;
/// How many per-machine detail lines a group shows.
const MAX_DETAILS: usize = 5;
/// How many changes a group shows.
const MAX_CHANGES: usize = 20;
/// How many images and site-wide changes are shown.
const MAX_ITEMS: usize = 25;

/// A group ready to print: one machine, or several with what they share.
pub(super) struct View {
    /// "node01" or "40 machines".
    pub title: String,
    /// Shared labels, formatted; empty when none.
    pub labels: String,
    /// The machines of a group of several, formatted.
    pub names: Option<String>,
    pub lines: Vec<String>,
    /// (machine, what is its own) for groups of several.
    pub details: Vec<(String, String)>,
    pub more_details: usize,
}

fn change_view(r: &Report, members: &[usize], s: Style) -> View {
    let first = &r.machines[members[0]];
    let labels = labels_text(
        &common_labels(members.iter().map(|&i| &r.machines[i].labels)),
        s,
    );
    if members.len() == 1 {
        return View {
            title: first.name.clone(),
            labels,
            names: None,
            lines: first.changes.iter().map(|c| c.full(s)).collect(),
            details: Vec::new(),
            more_details: 0,
        };
    }
    let lines = first
        .changes
        .iter()
        .map(|c| c.shared(&first.own, s))
        .collect();
    let names: Vec<&str> = members
        .iter()
        .map(|&i| r.machines[i].name.as_str())
        .collect();
    let mut details = Vec::new();
    let mut with_details = 0;
    for &i in members {
        let m = &r.machines[i];
        let d: Vec<String> = m.changes.iter().filter_map(|c| c.detail(s)).collect();
        if d.is_empty() {
            continue;
        }
        with_details += 1;
        if details.len() < MAX_DETAILS {
            details.push((m.name.clone(), d.join("; ")));
        }
    }
    View {
        title: plural_with(members.len(), "machine", "machines"),
        labels,
        names: Some(name_list(&names, s)),
        lines,
        details,
        more_details: with_details - with_details.min(MAX_DETAILS),
    }
}

fn entry_text(e: &MachineEntry, s: Style) -> String {
    format!("role {}, image {}", s.v(&e.role), s.v(&e.image))
}

fn entry_detail(e: &MachineEntry, s: Style) -> String {
    let mut parts: Vec<String> = e.macs.iter().map(|m| s.v(m)).collect();
    if let Some(ip) = &e.ip {
        parts.push(s.v(ip));
    }
    parts.join(", ")
}

/// Added or removed machines, grouped by role and image.
fn entry_views(list: &[MachineEntry], s: Style) -> Vec<View> {
    let mut by_key: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, e) in list.iter().enumerate() {
        by_key
            .entry((e.role.as_str(), e.image.as_str()))
            .or_default()
            .push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_key.into_values().collect();
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
    // Small groups: one line per machine, in name order.
    if list.len() <= MAX_GROUPS {
        groups = (0..list.len()).map(|i| vec![i]).collect();
    }
    groups
        .into_iter()
        .map(|members| {
            let first = &list[members[0]];
            let labels = labels_text(&common_labels(members.iter().map(|&i| &list[i].labels)), s);
            if members.len() == 1 {
                let d = entry_detail(first, s);
                View {
                    title: first.name.clone(),
                    labels,
                    names: None,
                    lines: vec![if d.is_empty() {
                        entry_text(first, s)
                    } else {
                        format!("{}; {d}", entry_text(first, s))
                    }],
                    details: Vec::new(),
                    more_details: 0,
                }
            } else {
                let names: Vec<&str> = members.iter().map(|&i| list[i].name.as_str()).collect();
                View {
                    title: plural_with(members.len(), "machine", "machines"),
                    labels,
                    names: Some(name_list(&names, s)),
                    lines: vec![entry_text(first, s)],
                    details: Vec::new(),
                    more_details: 0,
                }
            }
        })
        .collect()
}

/// A list of site-wide changes or images: each item a line, maybe with
/// lines below it.
pub(super) struct List {
    /// Lower case: `site`, `images`.
    pub title: &'static str,
    pub items: Vec<(String, Vec<String>)>,
    /// How many items are left out.
    pub more: usize,
}

impl List {
    fn new(title: &'static str, all: impl ExactSizeIterator<Item = (String, Vec<String>)>) -> List {
        let more = all.len().saturating_sub(MAX_ITEMS);
        List {
            title,
            items: all.take(MAX_ITEMS).collect(),
            more,
        }
    }

    /// Writes the list with `marks`: nothing when it is empty.
    pub fn write(&self, o: &mut String, marks: &Marks) {
        if self.items.is_empty() {
            return;
        }
        let Marks { heading, item, sub } = marks;
        let _ = writeln!(o, "{heading}");
        for (text, subs) in &self.items {
            let _ = writeln!(o, "{item}{text}");
            for s in subs {
                let _ = writeln!(o, "{sub}{s}");
            }
        }
        if self.more > 0 {
            let _ = writeln!(o, "{item}and {} more", self.more);
        }
    }
}

/// A list of machines: added, removed or changed.
pub(super) struct Section {
    /// Lower case: `added`, `removed`, `changed`.
    pub title: &'static str,
    pub views: Vec<View>,
    /// What is left out, as markdown.
    pub more: Option<String>,
}

/// How a writer marks a list: its heading, an item, the lines below one.
pub(super) struct Marks {
    pub heading: String,
    pub item: &'static str,
    pub sub: &'static str,
}

impl Section {
    /// Writes the section with `marks`, each group's per-machine details
    /// by `details`: nothing when it is empty.
    pub fn write(
        &self,
        o: &mut String,
        s: Style,
        marks: &Marks,
        details: impl Fn(&mut String, &View),
    ) {
        if self.views.is_empty() {
            return;
        }
        let _ = writeln!(o, "{}", marks.heading);
        for v in &self.views {
            let labels = if v.labels.is_empty() {
                String::new()
            } else {
                format!(" ({})", v.labels)
            };
            let item = marks.item;
            match (&v.names, v.lines.len()) {
                (None, 1) => {
                    let _ = writeln!(o, "{item}{}{labels}: {}", s.strong(&v.title), v.lines[0]);
                    continue;
                }
                (None, _) => {
                    let _ = writeln!(o, "{item}{}{labels}", s.strong(&v.title));
                }
                (Some(names), _) => {
                    // The title is a count: nothing to escape.
                    let title = match s {
                        Style::Plain => v.title.clone(),
                        Style::Markdown => format!("**{}**", v.title),
                    };
                    let _ = writeln!(o, "{item}{title}{labels}: {}", s.text(names));
                }
            }
            for l in v.lines.iter().take(MAX_CHANGES) {
                let _ = writeln!(o, "{}{l}", marks.sub);
            }
            if v.lines.len() > MAX_CHANGES {
                let more = v.lines.len() - MAX_CHANGES;
                let _ = writeln!(o, "{}and {more} more changes", marks.sub);
            }
            details(o, v);
        }
        if let Some(m) = &self.more {
            let m = match s {
                Style::Plain => m.replace('`', ""),
                Style::Markdown => m.clone(),
            };
            let _ = writeln!(o, "{}{m}", marks.item);
        }
    }
}

/// A report as the human and markdown writers show it.
pub(super) struct Doc<'a> {
    pub base: &'a SideInfo,
    pub head: &'a SideInfo,
    pub headline: String,
    /// Whether anything differs: nothing follows the headline when not.
    pub changed: bool,
    /// (changed, added, removed)
    pub machines: (usize, usize, usize),
    /// What the changing machines change, counted: `(role, 3)`.
    pub cells: Vec<(&'static str, usize)>,
    /// "3 machines change only labels (not listed)", when some do.
    pub labels_only: Option<String>,
    /// Site-wide changes, then images.
    pub lists: [List; 2],
    pub sections: Vec<Section>,
}

impl<'a> Doc<'a> {
    pub fn new(r: &'a Report, s: Style) -> Doc<'a> {
        let sm = &r.summary;
        let images = r.images.iter().map(|i| {
            let status = match i.status {
                "changed" if i.machines.is_empty() => {
                    "changed; no machine boots it now".to_string()
                }
                "changed" => {
                    let names: Vec<&str> = i.machines.iter().map(String::as_str).collect();
                    format!(
                        "changed, for {}: {}",
                        plural_with(names.len(), "machine", "machines"),
                        s.text(&name_list(&names, s))
                    )
                }
                other => other.to_string(),
            };
            (
                format!("{}: {status}", s.strong(&i.name)),
                i.changes.iter().map(|d| delta_text(d, s)).collect(),
            )
        });
        let site = r.site.iter().map(|c| (site_text(c, s), Vec::new()));
        let more_entries =
            |n: usize| (n > MAX_GROUPS).then(|| "`--format json` lists every one".to_string());
        let mut sections = Vec::new();
        for (title, list) in [("added", &r.added), ("removed", &r.removed)] {
            let views = entry_views(list, s);
            let more = more_entries(views.len());
            sections.push(Section {
                title,
                views: views.into_iter().take(MAX_GROUPS).collect(),
                more,
            });
        }
        sections.push(Section {
            title: "changed",
            views: r
                .group_members
                .iter()
                .take(MAX_GROUPS)
                .map(|m| change_view(r, m, s))
                .collect(),
            more: hidden_groups(r),
        });
        Doc {
            base: &r.base,
            head: &r.head,
            headline: headline(r),
            changed: r.changed,
            machines: (sm.changed, sm.added, sm.removed),
            cells: summary_cells(r),
            labels_only: (sm.labels_only > 0).then(|| {
                format!(
                    "{} only labels (not listed)",
                    plural_with(sm.labels_only, "machine changes", "machines change")
                )
            }),
            lists: [List::new("site", site), List::new("images", images)],
            sections,
        }
    }
}

fn summary_cells(r: &Report) -> Vec<(&'static str, usize)> {
    let s = &r.summary;
    let mut cells = vec![
        ("role", s.role),
        ("image", s.image),
        ("kernel args", s.kernel_args),
        ("files", s.files),
        ("addresses", s.addresses),
    ];
    for (what, n) in [
        ("image content", s.image_content),
        ("UEFI loader", s.loader),
        ("iPXE script", s.script),
        ("renamed", s.renamed),
        ("other", s.other),
    ] {
        if n > 0 {
            cells.push((what, n));
        }
    }
    cells
}

fn headline(r: &Report) -> String {
    let s = &r.summary;
    let total = s.changed + s.added + s.removed;
    if total == 0 {
        return if r.changed {
            "no machine boots differently".to_string()
        } else {
            "no change".to_string()
        };
    }
    format!(
        "{} differently: {} changed, {} added, {} removed",
        plural_with(total, "machine boots", "machines boot"),
        s.changed,
        s.added,
        s.removed
    )
}

/// The groups past [`MAX_GROUPS`], summed up.
fn hidden_groups(r: &Report) -> Option<String> {
    let rest = &r.group_members[r.group_members.len().min(MAX_GROUPS)..];
    if rest.is_empty() {
        return None;
    }
    let n: usize = rest.iter().map(Vec::len).sum();
    let mut by: BTreeMap<&'static str, usize> = BTreeMap::new();
    for &i in rest.iter().flatten() {
        let cats: BTreeSet<_> = r.machines[i].changes.iter().map(Change::category).collect();
        for c in cats {
            *by.entry(c.name()).or_default() += 1;
        }
    }
    let by: Vec<String> = by.iter().map(|(w, n)| format!("{w} {n}")).collect();
    Some(format!(
        "and {} in {} smaller groups ({}; `--format json` lists every one)",
        plural_with(n, "more machine", "more machines"),
        rest.len(),
        by.join(", ")
    ))
}
