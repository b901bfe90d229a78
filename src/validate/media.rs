//! `[media]` (SPEC section 9): the padding, and what the boot media need
//! of the site (an `http://` base-url: they enter the site there, and GRUB,
//! the UEFI side of the media, has no HTTPS).

use super::{Ctx, loc};
use crate::diag::{Diag, FileId};
use crate::model::{MediaSection, S, SiteSection};
use crate::site::Media;

/// Largest `pad-to` bootc writes (an image, not a disk).
const PAD_LIMIT: u64 = 4 << 30;

pub(super) fn section(
    cx: &mut Ctx,
    file: FileId,
    m: Option<&S<MediaSection>>,
    site: &SiteSection,
) -> Option<Media> {
    let m = m?;
    match &site.base_url {
        None => cx.diags.push(
            Diag::error("[media] needs [site] base-url")
                .at(loc(file, m), "the boot media enter the site at base-url")
                .help("set base-url = \"http://HOST/\" in [site]: the URL the tree is served at"),
        ),
        Some(u) if crate::url::problem(u.get_ref()).is_none()
            && crate::url::grub_http(u.get_ref()).is_none() =>
        {
            cx.diags.push(
                Diag::error(format!("boot media cannot enter the site at `{}`", u.get_ref()))
                    .at(loc(file, u), "an http:// URL without user, query or fragment is needed")
                    .help("the UEFI side of the media is GRUB, which has no HTTPS: serve the tree over http:// too"),
            )
        }
        Some(_) => {}
    }
    let pad_to = match &m.get_ref().pad_to {
        None => 0,
        Some(p) => match parse_size(p.get_ref()) {
            Some(n) if n <= PAD_LIMIT => n,
            Some(_) => {
                cx.diags.push(
                    Diag::error(format!("pad-to `{}` is larger than 4 GiB", p.get_ref()))
                        .at(loc(file, p), "too large")
                        .help("pad-to is for platforms that reject small images: 10MiB is plenty"),
                );
                0
            }
            None => {
                cx.diags.push(
                    Diag::error(format!("invalid pad-to `{}`", p.get_ref()))
                        .at(loc(file, p), "not a size")
                        .help("write a number of bytes with an optional unit: 10MiB, 1MB, 1048576"),
                );
                0
            }
        },
    };
    Some(Media { pad_to })
}

/// `10MiB`, `1 MB`, `512KiB`, `1048576`: a size in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let unit: u64 = match text[digits..].trim_start() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "KB" | "kB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10MiB"), Some(10 << 20));
        assert_eq!(parse_size("1 MB"), Some(1_000_000));
        assert_eq!(parse_size("2048"), Some(2048));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("MiB"), None);
        assert_eq!(parse_size("10 parsecs"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }
}
