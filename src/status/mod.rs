//! Fleet state from web-server logs (SPEC section 13), with no daemon:
//! each machine script fetches its beacon, `machines/<mac>.ipxe?booting=
//! <boot-id>`, just before it boots, and an installer fetches the beacon
//! with `&installed=TOKEN` when it is done. [`scan`] reads logs for those
//! requests and says, per machine, when it last booted, whether that was
//! its current boot, which older plan it matched, and which installs
//! finished. [`converge`] turns finished reinstalls into edits of the site.

pub mod converge;
pub mod format;
pub mod log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::plan::Plan;

/// One machine's state.
#[derive(Debug, Default, Serialize, Clone, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub struct MachineState {
    pub name: String,
    /// RFC 3339, or None when never seen (or seen in a log without dates).
    pub last_seen: Option<String>,
    /// The client address of that boot.
    pub client: Option<String>,
    /// The boot-id it last booted.
    pub boot_id: Option<String>,
    /// That boot-id is its current one (None: never seen).
    pub current: Option<bool>,
    /// The plan (given with `--plan`) whose boot of this machine that was,
    /// when not the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Install tokens reported (`installed=TOKEN`).
    pub installed: Vec<String>,
    /// Its `reinstall` token, while it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reinstall: Option<String>,
}

impl MachineState {
    /// `current`, `outdated` or `never-seen`.
    pub fn state(&self) -> &'static str {
        match self.current {
            Some(true) => "current",
            Some(false) => "outdated",
            None => "never-seen",
        }
    }
}

/// The state of every machine of `plan`, from `logs` (nginx/Apache
/// combined or `bootc serve`, plain or .gz, in any order); `history`: older
/// plan.json files, so an outdated boot says which plan it was.
#[derive(Debug, Serialize)]
pub struct Status {
    pub machines: Vec<MachineState>,
    /// Log lines read, in all.
    #[serde(skip)]
    pub lines: u64,
}

/// Where each machine stands, by its row in `plan.machines`.
#[derive(Default)]
struct Seen {
    /// (time, sequence) of the last boot, for "the latest": logs without
    /// dates count by their order.
    at: Option<(i64, u64)>,
    time: Option<i64>,
    client: String,
    boot_id: String,
    installed: BTreeSet<String>,
}

pub fn scan(plan: &Plan, logs: &[PathBuf], history: &[(String, Plan)]) -> io::Result<Status> {
    let by_mac: HashMap<String, usize> = plan
        .machines
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.macs.iter().map(move |mac| (mac.hexhyp(), i)))
        .collect();
    let mut seen: Vec<Seen> = plan.machines.iter().map(|_| Seen::default()).collect();
    let mut lines = 0;
    let mut seq = 0u64;
    for path in logs {
        lines += log::read(path, |hit| {
            seq += 1;
            let Some((mac, query)) = beacon(&hit.target) else {
                return;
            };
            let Some(&i) = by_mac.get(&mac) else {
                return;
            };
            let s = &mut seen[i];
            let param = |key: &str| {
                query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .map(str::to_string)
            };
            // An installer's report (the beacon with `&installed=`) is no boot.
            if let Some(token) = param("installed") {
                s.installed.insert(token);
            } else if let Some(id) = param("booting") {
                let at = (hit.time.unwrap_or(i64::MIN), seq);
                if s.at.is_none_or(|a| at > a) {
                    s.at = Some(at);
                    s.time = hit.time;
                    s.client = hit.client;
                    s.boot_id = id;
                }
            }
        })?;
    }
    // boot-id -> the first older plan (in the order given) that booted it.
    let mut older: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for (name, p) in history {
        for m in &p.machines {
            older.entry((&m.name, &m.boot_id)).or_insert(name);
        }
    }
    let machines = plan
        .machines
        .iter()
        .zip(seen)
        .map(|(m, s)| {
            let booted = s.at.is_some();
            let current = booted.then(|| s.boot_id == m.boot_id);
            MachineState {
                name: m.name.clone(),
                last_seen: s.time.map(log::rfc3339),
                client: booted.then(|| s.client.clone()),
                boot_id: booted.then(|| s.boot_id.clone()),
                current,
                plan: (current == Some(false))
                    .then(|| older.get(&(m.name.as_str(), s.boot_id.as_str())))
                    .flatten()
                    .map(|p| p.to_string()),
                installed: s.installed.into_iter().collect(),
                reinstall: m.reinstall.clone(),
            }
        })
        .collect();
    Ok(Status { machines, lines })
}

/// The MAC (`52-54-00-aa-bb-01`) and query of a beacon request target
/// (`/any/prefix/machines/52-54-00-aa-bb-01.ipxe?booting=…`).
fn beacon(target: &str) -> Option<(String, &str)> {
    let (path, query) = target.split_once('?')?;
    let file = path.rsplit('/').next()?;
    let dir = path.strip_suffix(file)?.trim_end_matches('/');
    if !dir.ends_with("machines") {
        return None;
    }
    let mac = file.strip_suffix(".ipxe")?;
    crate::site::Mac::parse(mac).map(|m| (m.hexhyp(), query))
}

/// The plans of `--plan FILE…`, named by their path.
pub fn read_plans(paths: &[PathBuf]) -> Result<Vec<(String, Plan)>, String> {
    paths
        .iter()
        .map(|p: &PathBuf| {
            let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
            let plan = Plan::from_json(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((display(p), plan))
        })
        .collect()
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beacons_under_any_prefix() {
        assert_eq!(
            beacon("/boot/machines/52-54-00-AA-BB-01.ipxe?booting=abc"),
            Some(("52-54-00-aa-bb-01".to_string(), "booting=abc"))
        );
        assert_eq!(beacon("machines/52-54-00-aa-bb-01.ipxe"), None);
        assert_eq!(beacon("/other/52-54-00-aa-bb-01.ipxe?booting=x"), None);
        assert_eq!(beacon("/machines/node01/user-data?x=1"), None);
    }
}
