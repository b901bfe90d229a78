//! `bootc explain`: how one machine boots, step by step.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::print_human;
use bootc::diag::did_you_mean;
use bootc::site::Mac;
use bootc::{Compiled, Options, compile};

/// The arguments of `bootc explain`.
#[derive(clap::Args)]
pub struct Args {
    /// MAC address or machine name (with SITE first when given)
    #[arg(num_args = 1..=2, required = true, value_names = ["SITE", "MAC|NAME"])]
    args: Vec<String>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let (site, what) = match self.args.as_slice() {
            [what] => (std::path::PathBuf::from("."), what.clone()),
            [site, what] => (std::path::PathBuf::from(site), what.clone()),
            _ => unreachable!("clap enforces 1 or 2 arguments"),
        };
        run(&site, &what)
    }
}

pub fn run(site: &Path, what: &str) -> Result<ExitCode> {
    let b = match compile(site, &Options::default())? {
        Compiled::Built(b) => b,
        invalid => {
            print_human(invalid.sources(), invalid.diags());
            return Ok(ExitCode::from(1));
        }
    };
    let (plan, s) = (&b.plan, &b.site);
    // A MAC match wins over a machine whose name merely looks like a MAC.
    let mac = Mac::parse(what);
    let by_mac = mac.and_then(|x| plan.machines.iter().find(|m| m.macs.contains(&x)));
    let by_name = plan.machines.iter().find(|m| m.name == what);
    if let (Some(a), Some(b)) = (by_mac, by_name)
        && a.name != b.name
    {
        eprintln!(
            "note: `{what}` is the MAC of machine `{}` and the name of machine `{}`: the MAC match is shown",
            a.name, b.name
        );
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
        return Ok(ExitCode::from(1));
    };
    let boot_mac = mac
        .filter(|x| m.macs.contains(x))
        .or(m.macs.first().copied());
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
    print!("{}", bootc::escape::text(&o));
    Ok(ExitCode::SUCCESS)
}
