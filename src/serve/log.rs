//! The request log of `bootc serve`. Each request is printed with the
//! machine behind it when the path tells (`machines/<mac>.ipxe`,
//! `machines/<name>/…`) or the client does (it fetched its script before:
//! the client's address is remembered with the machine), so an operator
//! watching a machine boot sees its whole fetch chain:
//!
//! ```text
//! 12:03:04 node01 (52:54:00:aa:bb:01) GET machines/52-54-00-aa-bb-01.ipxe 200 1.2 KiB
//! ```
//!
//! A client is known by its IP address; on the loopback (QEMU's user
//! networking connects every VM from 127.0.0.1) only by its connection
//! (address and port), as one address is then many machines. The log is not
//! told when a connection closes, and the loopback may give its port to the
//! next connection at once: that one passes for the old client until it
//! asks for a script of its own.
//!
//! A line holds what clients sent: its control characters are escaped (see
//! [`escape`]), so a request cannot forge lines or drive the terminal.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::plan::{Plan, Resolved};
use crate::site::Mac;
use crate::templates::human_size;

/// The machines of one build, for naming requests: their plan entries
/// (shared with the build), indexed on first use (a request is named after
/// it is answered, so a build is served without waiting for the index).
#[derive(Default)]
pub struct Machines {
    of: Vec<Arc<Resolved>>,
    index: OnceLock<Index>,
}

#[derive(Default)]
struct Index {
    by_mac: HashMap<Mac, String>,
    names: HashSet<String>,
}

impl Machines {
    pub fn from_plan(plan: &Plan) -> Machines {
        Machines {
            of: plan.machines.clone(),
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut ix = Index::default();
            for r in &self.of {
                ix.names.insert(r.name.clone());
                for mac in &r.macs {
                    ix.by_mac.insert(*mac, r.name.clone());
                }
            }
            ix
        })
    }

    /// Indexes them now, if no request did yet.
    pub fn warm(&self) {
        self.index();
    }

    /// The machine a tree path belongs to, if the path tells: a per-MAC
    /// script (also of a MAC the site does not know: `name` is None then)
    /// or a per-machine file.
    pub fn named_by(&self, path: &str) -> Option<Who> {
        let rest = path.strip_prefix("machines/")?;
        if let Some(mac) = rest.strip_suffix(".ipxe").and_then(Mac::parse) {
            return Some(Who {
                name: self.index().by_mac.get(&mac).cloned(),
                mac: Some(mac),
            });
        }
        let (name, _) = rest.split_once('/')?;
        self.index().names.contains(name).then(|| Who {
            name: Some(name.to_string()),
            mac: None,
        })
    }
}

/// A machine as far as known: its name (None: a MAC the site does not
/// know) and the MAC it booted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub name: Option<String>,
    pub mac: Option<Mac>,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.name, &self.mac) {
            (Some(n), Some(m)) => write!(f, "{n} ({m})"),
            (Some(n), None) => f.write_str(n),
            (None, Some(m)) => write!(f, "unknown ({m})"),
            (None, None) => f.write_str("unknown"),
        }
    }
}

/// One request, as logged and shown on the overview page.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// Local time, HH:MM:SS.
    pub time: String,
    pub client: String,
    /// The machine, as shown (`node01 (52:54:00:aa:bb:01)`), if known.
    pub machine: Option<String>,
    pub method: String,
    /// The request target as sent (percent-encoded).
    pub raw: String,
    /// The decoded path (no leading '/').
    pub path: String,
    /// The tree file served when it is not `path` (an alias).
    pub served: Option<String>,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// `1.2 KiB`, or `-` without a body, or `3.0 MiB of 7.9 MiB` when the
    /// client went away.
    pub size: String,
    pub ms: u64,
}

impl Entry {
    /// The line printed, its text from clients and the site escaped.
    pub fn line(&self) -> String {
        let who = escape(self.machine.as_deref().unwrap_or(&self.client));
        let served = self
            .served
            .as_ref()
            .map(|s| format!(" -> {}", escape(s)))
            .unwrap_or_default();
        // The query stays (as sent): `bootc status` reads beacons in it.
        let query = self
            .raw
            .split_once('?')
            .map(|(_, q)| format!("?{}", escape(q)))
            .unwrap_or_default();
        format!(
            "{} {who} {} {}{query}{served} {} {}",
            self.time,
            escape(&self.method),
            escape(&self.path),
            self.status,
            self.size
        )
    }
}

/// `s` with what could break or restyle a terminal line escaped: control
/// characters (C0, DEL, C1) as `\n`, `\r`, `\t` or `\x1b`, and line
/// separators and bidirectional overrides as `\u{2028}`.
pub fn escape(s: &str) -> Cow<'_, str> {
    let special = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.chars().any(special) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if special(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if special(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The size column: what was sent, of how much.
pub fn size_text(sent: u64, len: u64, body: bool, complete: bool) -> String {
    if !body {
        "-".into()
    } else if complete {
        human_size(sent)
    } else {
        format!(
            "{} of {} (client went away)",
            human_size(sent),
            human_size(len)
        )
    }
}

/// Recent requests of one machine (or one client nobody could name).
#[derive(Clone, Debug, Serialize)]
pub struct Recent {
    pub label: String,
    pub known: bool,
    pub last: String,
    pub requests: Vec<Entry>,
}

const PER_CLIENT: usize = 40;
const CLIENTS: usize = 200;
const ALL: usize = 500;

struct Slot {
    known: bool,
    macs: Vec<Mac>,
    entries: VecDeque<Entry>,
    /// When it was last updated (a counter).
    order: u64,
}

#[derive(Default)]
struct Inner {
    /// Client key -> the machine it was last seen as.
    clients: HashMap<SocketAddr, (Who, Instant)>,
    /// Machine name (or unknown MAC, or client address) -> its requests.
    recent: BTreeMap<String, Slot>,
    all: VecDeque<Entry>,
    order: u64,
}

/// The key a client is remembered by.
fn key(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

impl Inner {
    /// The machine behind a request: the path's, remembered for the client,
    /// else the one the client was seen as before.
    fn who(&mut self, client: Option<SocketAddr>, from_path: Option<Who>) -> Option<Who> {
        let inner = self;
        let Some(client) = client.map(key) else {
            return from_path;
        };
        match from_path {
            Some(mut who) => {
                // A per-machine file names the machine but not the NIC: keep
                // the MAC the client booted from.
                if who.mac.is_none()
                    && let Some((prev, _)) = inner.clients.get(&client)
                    && prev.name == who.name
                {
                    who.mac = prev.mac;
                }
                if inner.clients.len() >= 4 * CLIENTS {
                    // Forget the oldest half.
                    let mut ages: Vec<Instant> = inner.clients.values().map(|(_, t)| *t).collect();
                    ages.sort();
                    let cut = ages[ages.len() / 2];
                    inner.clients.retain(|_, (_, t)| *t > cut);
                }
                inner.clients.insert(client, (who.clone(), Instant::now()));
                Some(who)
            }
            None => inner.clients.get(&client).map(|(w, _)| w.clone()),
        }
    }

    /// Keeps the entry for the overview page (`recent`: also in the
    /// per-machine table, under `who`, else under the client's address).
    fn record(&mut self, entry: Entry, who: Option<&Who>, recent: bool) {
        let inner = self;
        inner.all.push_back(entry.clone());
        if inner.all.len() > ALL {
            inner.all.pop_front();
        }
        if !recent {
            return;
        }
        inner.order += 1;
        let order = inner.order;
        let key = match who {
            Some(Who { name: Some(n), .. }) => n.clone(),
            Some(w) => w.to_string(),
            None => entry
                .client
                .parse::<SocketAddr>()
                .map(|a| a.ip().to_string())
                .unwrap_or_else(|_| entry.client.clone()),
        };
        let slot = inner.recent.entry(key).or_insert_with(|| Slot {
            known: who.is_some_and(|w| w.name.is_some()),
            macs: Vec::new(),
            entries: VecDeque::new(),
            order,
        });
        slot.order = order;
        if let Some(mac) = who.and_then(|w| w.mac)
            && !slot.macs.contains(&mac)
        {
            slot.macs.push(mac);
        }
        slot.entries.push_back(entry);
        if slot.entries.len() > PER_CLIENT {
            slot.entries.pop_front();
        }
        if inner.recent.len() > CLIENTS {
            let oldest = inner
                .recent
                .iter()
                .min_by_key(|(_, s)| s.order)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                inner.recent.remove(&k);
            }
        }
    }

    /// Recent requests by machine, most recently active first; machines
    /// before clients nobody could name.
    fn recent(&self) -> Vec<Recent> {
        let inner = self;
        let mut out: Vec<(&String, &Slot)> = inner.recent.iter().collect();
        out.sort_by_key(|(_, s)| (!s.known, std::cmp::Reverse(s.order)));
        out.into_iter()
            .map(|(key, s)| Recent {
                label: if s.known && !s.macs.is_empty() {
                    let macs: Vec<String> = s.macs.iter().map(Mac::to_string).collect();
                    format!("{key} ({})", macs.join(", "))
                } else {
                    key.clone()
                },
                known: s.known,
                last: s.entries.back().map(|e| e.time.clone()).unwrap_or_default(),
                requests: s.entries.iter().rev().cloned().collect(),
            })
            .collect()
    }
}

/// One request handed to the logger.
pub struct Logged {
    pub entry: Entry,
    pub client: Option<SocketAddr>,
    /// The machine the path names, if it does.
    pub from_path: Option<Who>,
    /// A tree request (goes in the per-machine table).
    pub tree: bool,
}

/// The request log. Workers hand requests to a logger thread, which names
/// the machines, prints the lines and keeps them for the overview page: a
/// slow terminal never holds up a request, and workers never wait for one
/// another to print.
pub struct Log {
    tx: mpsc::Sender<Logged>,
    inner: Arc<Mutex<Inner>>,
    count: Arc<AtomicU64>,
}

impl Log {
    pub fn start() -> Log {
        let (tx, rx) = mpsc::channel::<Logged>();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let count = Arc::new(AtomicU64::new(0));
        let (i, c) = (Arc::clone(&inner), Arc::clone(&count));
        thread::Builder::new()
            .name("bootc-serve-log".into())
            .spawn(move || {
                let mut text = String::new();
                while let Ok(first) = rx.recv() {
                    let batch: Vec<Logged> = std::iter::once(first)
                        .chain(rx.try_iter().take(4096))
                        .collect();
                    let n = batch.iter().filter(|l| l.tree).count() as u64;
                    text.clear();
                    {
                        let mut inner = i.lock().unwrap_or_else(|e| e.into_inner());
                        for mut l in batch {
                            let who = inner.who(l.client, l.from_path);
                            l.entry.machine = who.as_ref().map(Who::to_string);
                            text.push_str(&l.entry.line());
                            text.push('\n');
                            inner.record(l.entry, who.as_ref(), l.tree);
                        }
                    }
                    let mut out = io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                    drop(out);
                    c.fetch_add(n, Ordering::SeqCst);
                }
            })
            .expect("start the logger thread");
        Log { tx, inner, count }
    }

    /// Logs a request (later, on the logger thread).
    pub fn submit(&self, l: Logged) {
        let _ = self.tx.send(l);
    }

    /// Number of tree requests logged (printed) so far: what the overview
    /// page watches to reload (its own requests do not count).
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Recent requests by machine, most recently active first; machines
    /// before clients nobody could name.
    pub fn recent(&self) -> Vec<Recent> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .recent()
    }

    /// The last requests, oldest first.
    pub fn all(&self) -> Vec<Entry> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.all.iter().cloned().collect()
    }
}

/// Local wall-clock time as HH:MM:SS.
pub fn clock(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r only writes the `tm` we own; a zeroed tm is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&secs, &mut tm).is_null() };
    if ok {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let s = secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machines() -> Machines {
        let mut ix = Index::default();
        let mac = Mac::parse("52:54:00:aa:bb:01").unwrap();
        ix.by_mac.insert(mac, "node01".into());
        ix.names.insert("node01".into());
        Machines {
            of: Vec::new(),
            index: ix.into(),
        }
    }

    #[test]
    fn paths_name_machines() {
        let m = machines();
        let who = m.named_by("machines/52-54-00-aa-bb-01.ipxe").unwrap();
        assert_eq!(who.to_string(), "node01 (52:54:00:aa:bb:01)");
        let who = m.named_by("machines/52-54-00-12-34-56.ipxe").unwrap();
        assert_eq!(who.to_string(), "unknown (52:54:00:12:34:56)");
        assert_eq!(
            m.named_by("machines/node01/user-data").unwrap().to_string(),
            "node01"
        );
        assert_eq!(m.named_by("machines/nobody/user-data"), None);
        assert_eq!(m.named_by("boot.ipxe"), None);
    }

    #[test]
    fn clients_are_remembered_by_connection_on_loopback_by_address_elsewhere() {
        let m = machines();
        let mut log = Inner::default();
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        let who = log.who(Some(a), m.named_by("machines/52-54-00-aa-bb-01.ipxe"));
        assert_eq!(who.unwrap().to_string(), "node01 (52:54:00:aa:bb:01)");
        assert_eq!(
            log.who(Some(a), None).unwrap().to_string(),
            "node01 (52:54:00:aa:bb:01)"
        );
        assert_eq!(log.who(Some(b), None), None, "another VM behind 127.0.0.1");
        // a per-machine file keeps the MAC the client booted from
        assert_eq!(
            log.who(Some(a), m.named_by("machines/node01/user-data"))
                .unwrap()
                .to_string(),
            "node01 (52:54:00:aa:bb:01)"
        );
        let lab1: SocketAddr = "10.77.0.11:5000".parse().unwrap();
        let lab2: SocketAddr = "10.77.0.11:5001".parse().unwrap();
        log.who(Some(lab1), m.named_by("machines/52-54-00-aa-bb-01.ipxe"));
        assert_eq!(
            log.who(Some(lab2), None).unwrap().to_string(),
            "node01 (52:54:00:aa:bb:01)"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("boot.ipxe"), "boot.ipxe");
        assert_eq!(
            escape("/a\x1b[2J\rX\nY\tZ\x7f\u{85}\u{2028}\u{202e}é"),
            r"/a\x1b[2J\rX\nY\tZ\x7f\u{85}\u{2028}\u{202e}é"
        );
    }

    #[test]
    fn log_line() {
        let e = Entry {
            time: "12:03:04".into(),
            client: "127.0.0.1:4000".into(),
            machine: Some("node01 (52:54:00:aa:bb:01)".into()),
            method: "GET".into(),
            raw: "/machines/52-54-00-aa-bb-01.ipxe".into(),
            path: "machines/52-54-00-aa-bb-01.ipxe".into(),
            served: None,
            status: 200,
            bytes: 1229,
            size: size_text(1229, 1229, true, true),
            ms: 0,
        };
        assert_eq!(
            e.line(),
            "12:03:04 node01 (52:54:00:aa:bb:01) GET machines/52-54-00-aa-bb-01.ipxe 200 1.2 KiB"
        );
    }
}
