//! `[dhcp.options]`: options handed to every client by the whole-config
//! DHCP servers (SPEC section 11), each checked for its type.

use super::dhcp::domain;
use super::{Ctx, loc, parse_ip};
use crate::diag::{Diag, FileId};
use crate::model::{self, S};
use crate::site::DhcpOptions;

pub(super) fn options(cx: &mut Ctx, file: FileId, o: &model::DhcpOptions) -> DhcpOptions {
    DhcpOptions {
        ntp_servers: o
            .ntp_servers
            .iter()
            .filter_map(|s| parse_ip(file, s, "NTP server", &mut cx.diags))
            .collect(),
        domain_search: o
            .domain_search
            .iter()
            .filter_map(|d| domain(cx, file, d))
            .collect(),
        mtu: o
            .mtu
            .as_ref()
            .and_then(|m| in_range(cx, file, m, "mtu", 68, 65535, "bytes, from 68 to 65535")),
        time_offset: o.time_offset.as_ref().and_then(|t| {
            in_range(
                cx,
                file,
                t,
                "time-offset",
                -86400,
                86400,
                "seconds east of UTC, from -86400 to 86400",
            )
        }),
    }
}

/// An integer option within `min..=max`, as `T`.
fn in_range<T: TryFrom<i64>>(
    cx: &mut Ctx,
    file: FileId,
    v: &S<i64>,
    name: &str,
    min: i64,
    max: i64,
    what: &str,
) -> Option<T> {
    let n = *v.get_ref();
    if (min..=max).contains(&n) {
        return T::try_from(n).ok();
    }
    cx.diags.push(
        Diag::error(format!("{name} {n} is out of range")).at(loc(file, v), what.to_string()),
    );
    None
}
