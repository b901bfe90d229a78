//! `bootc serve`: build the site, serve its http/ tree, rebuild on change.
//! The server itself is in `bootc::serve`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

use bootc::serve;

/// The arguments of `bootc serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The site's root (holds bootc.toml) [default: the nearest from the current folder up]
    site: Option<PathBuf>,
    /// Address to listen on: IP:PORT, or a port on 127.0.0.1
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    bind: String,
    /// Watch the site by polling (for file systems without change events)
    #[arg(long)]
    poll: bool,
    /// The base-url to build with [default: this server's address,
    /// http://ADDR/]: every absolute URL of scripts and per-machine files
    /// points at the preview (VMs under QEMU user networking: http://10.0.2.2:PORT/)
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
}

impl Args {
    pub fn run(self) -> Result<ExitCode> {
        let site = super::site_or_nearest(self.site);
        run(&site, &self.bind, self.poll, self.base_url)
    }
}

pub fn run(site: &Path, bind: &str, poll: bool, base_url: Option<String>) -> Result<ExitCode> {
    if let Some(u) = &base_url
        && let Some(why) = bootc::url::problem(u)
    {
        eprintln!("error: --base-url {u:?}: {why}");
        return Ok(ExitCode::from(2));
    }
    let Some(bind) = parse_bind(bind) else {
        eprintln!(
            "error: --bind {bind:?}: expected IP:PORT (127.0.0.1:8080, [::1]:8080), HOST:PORT or a port"
        );
        return Ok(ExitCode::from(2));
    };
    serve::run(serve::Options {
        site: site.to_path_buf(),
        bind,
        poll,
        base_url,
    })
}

/// `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT` (its first address) or `PORT` (on
/// 127.0.0.1).
fn parse_bind(s: &str) -> Option<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses() {
        assert_eq!(parse_bind("8081"), Some("127.0.0.1:8081".parse().unwrap()));
        assert_eq!(
            parse_bind("0.0.0.0:80"),
            Some("0.0.0.0:80".parse().unwrap())
        );
        assert_eq!(
            parse_bind("[::1]:8080"),
            Some("[::1]:8080".parse().unwrap())
        );
        assert_eq!(parse_bind("localhost:8080").map(|a| a.port()), Some(8080));
        assert_eq!(parse_bind("nonsense"), None);
        assert_eq!(parse_bind("127.0.0.1:99999"), None);
    }
}
