//! `bootc explain`: how one machine boots, step by step.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use super::print_human;
use bootc::diag::did_you_mean;
use bootc::site::Mac;
use bootc::{Compiled, compile};

pub fn run(site: &Path, what: &str) -> Result<ExitCode> {
    let b = match compile(site)? {
        Compiled::Built(b) => b,
        invalid => {
            print_human(invalid.sources(), invalid.diags());
            return Ok(ExitCode::from(1));
        }
    };
    let (plan, s) = (&b.plan, &b.site);
    // A MAC match wins over a machine whose name merely looks like a MAC.
    let mac = Mac::parse(what).or_else(|| bare_mac(what));
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
    let img = s.images.get(&m.image);
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
    let _ = writeln!(
        o,
        "\nfetch chain (paths relative to the web root{}):",
        s.base_url
            .as_deref()
            .map(|b| format!(" {b}"))
            .unwrap_or_default()
    );
    let mut step = 1;
    if s.dhcp.is_some() {
        let _ = writeln!(
            o,
            "  {step}. DHCP: PXE firmware gets a chainloader from tftp/ (undionly.kpxe on BIOS, snponly.efi on UEFI); iPXE asks again and gets boot.ipxe"
        );
        step += 1;
    }
    let _ = writeln!(o, "  {step}. boot.ipxe");
    step += 1;
    if let Some(mac) = boot_mac {
        let _ = writeln!(
            o,
            "  {step}. machines/{}.ipxe  (${{mac:hexhyp}} of {mac})",
            mac.hexhyp()
        );
        step += 1;
    }
    if let Some(img) = img {
        for a in img.boot.artifacts() {
            let what = match a {
                bootc::site::Artifact::Local { path, size, .. } => {
                    format!(
                        "{}  (local {path}, {})",
                        a.url_from(""),
                        bootc::diag::plural(usize::try_from(*size).unwrap_or(usize::MAX), "byte")
                    )
                }
                bootc::site::Artifact::Remote {
                    url,
                    sha256,
                    blake3,
                    ..
                } => {
                    let pin = sha256
                        .as_ref()
                        .map(|p| format!("sha256 {}", &p[..16]))
                        .or(blake3.as_ref().map(|p| format!("blake3 {}", &p[..16])))
                        .unwrap_or_default();
                    format!("{url}  (remote, {pin}…)")
                }
                bootc::site::Artifact::Live { url } => format!("{url}  (chained iPXE service)"),
            };
            let _ = writeln!(o, "  {step}. {what}");
            step += 1;
        }
        let end = match m.boot.as_str() {
            "kernel" => "boot the kernel",
            "iso" => "boot the ISO",
            "chain" => "run the chained script",
            _ => "exit iPXE: the firmware boots the next device (local disk)",
        };
        let _ = writeln!(o, "  {step}. {end}");
    }
    print!("{}", bootc::escape::text(&o));
    Ok(ExitCode::SUCCESS)
}

/// Twelve hex digits and nothing else (`525400aabb01`), as a MAC.
fn bare_mac(s: &str) -> Option<Mac> {
    if s.len() != 12 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut b = [0u8; 6];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(Mac(b))
}
