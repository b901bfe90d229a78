//! `bootc explain`: how machines boot, step by step (text, or JSON: one
//! object per machine with the same facts).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use serde_json::{Value, json};

use super::print_human;
use bootc::diag::did_you_mean;
use bootc::plan::{Plan, Reserved, Resolved};
use bootc::site::{Mac, Site};
use bootc::{Compiled, Options, compile};

/// How `explain` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    Human,
    Json,
}

/// The arguments of `bootc explain`.
#[derive(clap::Args)]
pub struct Args {
    /// Machines, each a MAC address, name, UUID or serial number; the
    /// first may be the site's folder (one holding bootc.toml) [default
    /// site: the nearest from the current folder up]
    #[arg(num_args = 1.., required = true, value_names = ["SITE", "MAC|NAME|UUID|SERIAL"])]
    args: Vec<String>,
    /// human, or json: an array, one object per machine
    #[arg(long, value_enum, default_value = "human")]
    format: ExplainFormat,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let mut what = self.args;
        let site = match what.first() {
            Some(first) if what.len() > 1 && Path::new(first).join("bootc.toml").is_file() => {
                Some(PathBuf::from(what.remove(0)))
            }
            _ => None,
        };
        run(&super::site_or_nearest(site), &what, self.format)
    }
}

/// One machine found by a query.
enum Found<'a> {
    Machine(&'a Resolved, Option<Mac>),
    Reserved(&'a Reserved),
}

pub fn run(site: &Path, queries: &[String], format: ExplainFormat) -> Result<ExitCode> {
    let b = match compile(site, &Options::default())? {
        Compiled::Built(b) => b,
        invalid => {
            print_human(invalid.sources(), invalid.diags());
            return Ok(ExitCode::from(1));
        }
    };
    let (plan, s) = (&b.plan, &b.site);
    let mut missing = false;
    let mut texts = Vec::new();
    let mut objects = Vec::new();
    for what in queries {
        let Some(found) = find(plan, s, what) else {
            missing = true;
            continue;
        };
        match format {
            ExplainFormat::Human => texts.push(match found {
                Found::Machine(m, mac) => human(s, m, mac),
                Found::Reserved(r) => reserved_text(r),
            }),
            ExplainFormat::Json => objects.push(match found {
                Found::Machine(m, mac) => machine_json(s, m, mac, what),
                Found::Reserved(r) => {
                    let mut v = serde_json::to_value(r).expect("a reservation serializes");
                    v["query"] = json!(what);
                    v["boot"] = json!("none");
                    v
                }
            }),
        }
    }
    match format {
        ExplainFormat::Human => print!("{}", bootc::escape::text(&texts.join("\n"))),
        ExplainFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&Value::Array(objects)).expect("JSON serializes")
        ),
    }
    Ok(ExitCode::from(if missing { 1 } else { 0 }))
}

/// The machine (or reservation) a MAC, name, UUID or serial names; says on
/// stderr when there is none.
fn find<'a>(plan: &'a Plan, s: &Site, what: &str) -> Option<Found<'a>> {
    // A MAC match wins over a machine whose name merely looks like a MAC.
    let mac = Mac::parse(what);
    let by_mac = mac.and_then(|x| plan.machines.iter().find(|m| m.macs.contains(&x)));
    let by_name = plan.machines.iter().find(|m| m.name == what).or_else(|| {
        let lower = what.to_ascii_lowercase();
        plan.machines.iter().find(|m| {
            m.uuid.as_deref() == Some(lower.as_str()) || m.serial.as_deref() == Some(what)
        })
    });
    if let (Some(a), Some(b)) = (by_mac, by_name)
        && a.name != b.name
    {
        eprintln!(
            "note: `{what}` is the MAC of machine `{}` and the name of machine `{}`: the MAC match is shown",
            a.name, b.name
        );
    }
    let reserved = plan
        .reservations
        .iter()
        .find(|r| r.name == what || mac.is_some_and(|x| r.macs.contains(&x)));
    if let (None, None, Some(r)) = (by_mac, by_name, reserved) {
        return Some(Found::Reserved(r));
    }
    let Some(m) = by_mac.or(by_name) else {
        let hint = did_you_mean(what, plan.machines.iter().map(|m| m.name.as_str()));
        match mac {
            Some(mac) => eprintln!(
                "error: no machine has MAC {mac}: it would boot the fallback ({})",
                s.fallback
            ),
            None => eprintln!(
                "error: no machine named `{what}`{}",
                hint.map(|h| format!("; {h}")).unwrap_or_default()
            ),
        }
        return None;
    };
    Some(Found::Machine(m, mac))
}

fn reserved_text(r: &Reserved) -> String {
    let macs: Vec<String> = r.macs.iter().map(Mac::to_string).collect();
    let ip =
        r.ip.map_or_else(|| "dynamic".to_string(), |i| i.to_string());
    format!(
        "machine    {}\nMACs       {}\nIP         {ip}\nboot       none: boot = false, a DHCP reservation only (no role, no script)\n",
        r.name,
        macs.join(", ")
    )
}

/// The MAC a machine boots by: the one asked about, else its first.
fn boot_mac(m: &Resolved, mac: Option<Mac>) -> Option<Mac> {
    mac.filter(|x| m.macs.contains(x))
        .or(m.macs.first().copied())
}

/// The plan's facts of a machine, the query, and its boot chains.
fn machine_json(s: &Site, m: &Resolved, mac: Option<Mac>, what: &str) -> Value {
    let mut v = serde_json::to_value(m).expect("a machine serializes");
    v["query"] = json!(what);
    v["secure-boot"] = json!(m.secure_boot);
    v["base-url"] = json!(s.base_url);
    let chains: Vec<Value> = boot_mac(m, mac)
        .map(|mac| bootc::chain::chains(s, m, mac))
        .unwrap_or_default()
        .into_iter()
        .map(|c| {
            let steps: Vec<Value> = c
                .steps
                .iter()
                .map(|st| json!({ "protocol": st.protocol, "path": st.path, "note": st.note }))
                .collect();
            json!({ "firmware": c.firmware, "steps": steps, "end": c.end })
        })
        .collect();
    v["boot-chains"] = Value::Array(chains);
    v
}

/// How one machine boots, as text.
fn human(s: &Site, m: &Resolved, mac: Option<Mac>) -> String {
    let boot_mac = boot_mac(m, mac);
    let mut o = String::new();
    let _ = writeln!(o, "machine    {}", m.name);
    let macs: Vec<String> = m.macs.iter().map(Mac::to_string).collect();
    let _ = writeln!(o, "MACs       {}", macs.join(", "));
    let _ = writeln!(
        o,
        "IP         {}",
        m.ip.map(|i| i.to_string())
            .unwrap_or_else(|| "dynamic".into())
    );
    if let Some(u) = &m.uuid {
        let _ = writeln!(o, "UUID       {u}  (boot.ipxe: machines/uuid-{u}.ipxe)");
    }
    if let Some(s) = &m.serial {
        let _ = writeln!(o, "serial     {s}  (boot.ipxe: machines/serial-{s}.ipxe)");
    }
    let _ = writeln!(o, "role       {}", m.role_chain.join(" -> "));
    let _ = writeln!(o, "image      {} ({})", m.image, m.boot);
    if !m.labels.is_empty() {
        let l: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(o, "labels     {}", l.join(" "));
    }
    let _ = writeln!(
        o,
        "kernel     {}",
        if m.kernel_args.is_empty() {
            "(no arguments)".to_string()
        } else {
            m.kernel_args.join(" ")
        }
    );
    for (f, h) in &m.files {
        let _ = writeln!(
            o,
            "file       machines/{}/{f}  (blake3 {})",
            m.name,
            &h[..16]
        );
    }
    if m.secure_boot {
        let _ = writeln!(o, "secure boot on (its UEFI firmware gets shim and GRUB)");
    }
    let _ = writeln!(
        o,
        "\nboot chains (http: paths under the web root{}; tftp: paths in tftp/):",
        s.base_url
            .as_deref()
            .map(|b| format!(" {b}"))
            .unwrap_or_default()
    );
    if let Some(mac) = boot_mac {
        for c in bootc::chain::chains(s, m, mac) {
            let _ = writeln!(o, "  {}", c.firmware);
            let width = c.steps.iter().map(|x| x.path.len()).max().unwrap_or(0);
            for (i, st) in c.steps.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "    {}. {:<4} {:<width$}  ({})",
                    i + 1,
                    st.protocol,
                    st.path,
                    st.note
                );
            }
            let _ = writeln!(o, "    {}. {}", c.steps.len() + 1, c.end);
        }
    }
    o
}
