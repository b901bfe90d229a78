//! `bootc status` output: a table for people, JSON for programs, and
//! Markdown for a pull request or a job summary.

use super::{MachineState, Status};

fn seen(m: &MachineState) -> String {
    match (&m.last_seen, &m.boot_id) {
        (Some(t), _) => t.clone(),
        (None, Some(_)) => "seen (no date in log)".into(),
        (None, None) => "never".into(),
    }
}

fn state(m: &MachineState) -> String {
    let state = m.state().replace('-', " ");
    match &m.plan {
        Some(p) => format!("{state} (booted {p})"),
        None => state,
    }
}

fn installs(m: &MachineState) -> String {
    let mut s = m.installed.join(", ");
    if let Some(t) = &m.reinstall {
        let done = m.installed.contains(t);
        let note = format!("reinstall {t}: {}", if done { "done" } else { "pending" });
        s = if s.is_empty() {
            note
        } else {
            format!("{s}; {note}")
        };
    }
    if s.is_empty() { "-".into() } else { s }
}

pub fn human(s: &Status) -> String {
    let rows: Vec<[String; 6]> = s
        .machines
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                seen(m),
                m.client.clone().unwrap_or_else(|| "-".into()),
                m.boot_id.clone().unwrap_or_else(|| "-".into()),
                state(m),
                installs(m),
            ]
        })
        .collect();
    let head = [
        "machine",
        "last boot",
        "client",
        "boot-id",
        "state",
        "installed",
    ];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut l: String = cells
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}  "))
            .collect();
        l.truncate(l.trim_end().len());
        l + "\n"
    };
    let mut out = line(&head.map(String::from));
    for r in &rows {
        out += &line(r);
    }
    out + &summary(s) + "\n"
}

/// `3 machines: 1 current, 1 outdated, 1 never seen`.
pub fn summary(s: &Status) -> String {
    let count = |f: fn(&MachineState) -> bool| s.machines.iter().filter(|m| f(m)).count();
    format!(
        "{} machines: {} current, {} outdated, {} never seen",
        s.machines.len(),
        count(|m| m.current == Some(true)),
        count(|m| m.current == Some(false)),
        count(|m| m.current.is_none()),
    )
}

pub fn json(s: &Status) -> String {
    serde_json::to_string_pretty(s).expect("plain data") + "\n"
}

pub fn markdown(s: &Status) -> String {
    let esc = |t: &str| t.replace('|', "\\|");
    let mut out = format!(
        "**{}**\n\n| machine | last boot | boot-id | state | installed |\n|---|---|---|---|---|\n",
        summary(s)
    );
    for m in &s.machines {
        out += &format!(
            "| {} | {} | `{}` | {} | {} |\n",
            esc(&m.name),
            esc(&seen(m)),
            esc(m.boot_id.as_deref().unwrap_or("-")),
            esc(&state(m)),
            esc(&installs(m))
        );
    }
    out
}
