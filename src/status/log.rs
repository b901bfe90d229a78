//! Reading web-server logs line by line (SPEC section 13): nginx's and
//! Apache's combined format, `bootc serve`'s own log, and the syslog lines
//! of the TFTP servers GRUB reads from (tftpd-hpa with `-v`, dnsmasq);
//! plain or gzip (`.gz`), streamed, so a log of any size costs one line of
//! memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

/// One request of a log, as far as status needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct Hit {
    /// Seconds since the Unix epoch (UTC); None for a log without dates.
    pub time: Option<i64>,
    /// The client's address.
    pub client: String,
    /// The request target: path and query, as sent.
    pub target: String,
    /// 0 when the line does not say (tftpd-hpa logs the request only).
    pub status: u16,
}

/// Calls `each` with every request of the log at `path` that could be
/// parsed; returns how many lines were read. A `.gz` file is decompressed
/// on the fly.
pub fn read(path: &Path, mut each: impl FnMut(Hit)) -> io::Result<u64> {
    let file = File::open(path)?;
    // Syslog dates have no year: the one in which the log was last written.
    let written = file
        .metadata()?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut lines = 0;
    let mut r = BufReader::with_capacity(1 << 16, reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        lines += 1;
        let line = String::from_utf8_lossy(&buf);
        let hit = combined(&line)
            .or_else(|| serve(&line))
            .or_else(|| tftp(&line, written));
        if let Some(hit) = hit {
            each(hit);
        }
    }
    Ok(lines)
}

/// `10.0.2.15 - - [01/Dec/2026:09:12:03 +0000] "GET /machines/x.ipxe?booting=… HTTP/1.1" 200 12 "-" "iPXE/1.21.1"`
pub fn combined(line: &str) -> Option<Hit> {
    let (client, rest) = line.split_once(' ')?;
    let open = rest.find('[')?;
    let close = open + rest[open..].find(']')?;
    let time = clf_time(&rest[open + 1..close])?;
    let rest = rest[close + 1..].trim_start().strip_prefix('"')?;
    let (request, rest) = rest.split_once('"')?;
    let mut words = request.split(' ');
    let _method = words.next()?;
    let target = words.next()?.to_string();
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(Hit {
        time: Some(time),
        client: client.to_string(),
        target,
        status,
    })
}

/// `bootc serve`'s log: `09:12:03 node01 (52:54:00:aa:bb:01) GET machines/x.ipxe?booting=… 200 12 B`
/// or `09:12:03 127.0.0.1:40112 GET …` (times without a date).
pub fn serve(line: &str) -> Option<Hit> {
    let mut words = line.split_whitespace();
    let time = words.next()?;
    if time.len() != 8 || time.as_bytes()[2] != b':' {
        return None;
    }
    let mut client = words.next()?.to_string();
    let mut next = words.next()?;
    if next.starts_with('(') {
        client = next.trim_matches(|c| c == '(' || c == ')').to_string();
        next = words.next()?;
    }
    if !matches!(next, "GET" | "HEAD") {
        return None;
    }
    let target = words.next()?.to_string();
    let status = words.next()?.parse().ok()?;
    Some(Hit {
        time: None,
        client,
        target,
        status,
    })
}

/// A TFTP server's syslog line of a request: tftpd-hpa's (`-v`)
/// `RRQ from 10.0.2.15 filename /machines/x.ipxe?booting=…`, dnsmasq's
/// `file /srv/tftp/machines/x.ipxe?booting=… not found for 10.0.2.15` or
/// `sent /srv/tftp/grub/grub.cfg to 10.0.2.15`, after a syslog date
/// (`Dec  1 09:12:03`, read as UTC in the year of `written` or the one
/// before when that would be later than `written`; or RFC 3339, as
/// rsyslog's high-precision format and `journalctl -o short-iso` write it)
/// or no date (dnsmasq on stderr).
pub fn tftp(line: &str, written: i64) -> Option<Hit> {
    let line = line.trim_end();
    let (head, client, target, status) = if let Some(at) = line.find(": RRQ from ") {
        let mut w = line[at + 11..].split(' ');
        let client = w.next()?;
        (w.next()? == "filename").then_some(())?;
        (&line[..at], client, w.next()?, 0)
    } else {
        let at = line.find("dnsmasq-tftp")?;
        let (_, message) = line[at..].split_once(": ")?;
        let (target, client, status) = if let Some(m) = message.strip_prefix("file ") {
            let (target, client) = m.split_once(" not found for ")?;
            (target, client, 404)
        } else {
            let (target, client) = message.strip_prefix("sent ")?.split_once(" to ")?;
            (target, client, 200)
        };
        (&line[..at], client, target, status)
    };
    let client = client.strip_prefix("::ffff:").unwrap_or(client);
    let time = match head.split_whitespace().next() {
        None => None,
        Some(first) if first.as_bytes()[0].is_ascii_digit() => Some(iso_time(first)?),
        Some(_) => Some(syslog_time(head, written)?),
    };
    Some(Hit {
        time,
        client: client.to_string(),
        target: target.to_string(),
        status,
    })
}

/// `2026-12-01T09:12:03.123456+01:00` (or `+0100`, `Z`) as seconds since
/// the epoch (UTC).
fn iso_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let zone_at = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let offset = match zone.as_bytes().first() {
        None | Some(b'Z') => 0,
        Some(sign) => {
            let z: i64 = zone[1..].replace(':', "").parse().ok()?;
            let secs = (z / 100) * 3600 + (z % 100) * 60;
            if *sign == b'-' { -secs } else { secs }
        }
    };
    Some(civil_time(year, month, day, clock)? - offset)
}

/// `Dec  1 09:12:03` (a BSD syslog date) at the start of `head`, as UTC,
/// in the year of `written` unless that is more than a day after it.
fn syslog_time(head: &str, written: i64) -> Option<i64> {
    let mut w = head.split_whitespace();
    let (month, day, clock) = (month(w.next()?)?, w.next()?.parse().ok()?, w.next()?);
    let year = civil(written.div_euclid(86400)).0;
    let t = civil_time(year, month, day, clock)?;
    Some(if t > written + 86400 {
        civil_time(year - 1, month, day, clock)?
    } else {
        t
    })
}

fn month(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    Some(MONTHS.iter().position(|x| *x == name)? as i64 + 1)
}

/// A date and an `hh:mm:ss` clock as seconds since the epoch.
fn civil_time(year: i64, month: i64, day: i64, clock: &str) -> Option<i64> {
    let hms: Vec<i64> = clock
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, min, sec] = hms[..] else { return None };
    Some(days_from_civil(year, month, day) * 86400 + h * 3600 + min * 60 + sec)
}

/// `01/Dec/2026:09:12:03 +0100` as seconds since the epoch (UTC).
fn clf_time(s: &str) -> Option<i64> {
    let (dt, zone) = s.split_once(' ')?;
    let mut p = dt.splitn(4, [':', '/']);
    let (day, m, year) = (p.next()?.parse().ok()?, month(p.next()?)?, p.next()?);
    let t = civil_time(year.parse().ok()?, m, day, p.next()?)?;
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let z: i64 = zone.get(1..)?.parse().ok()?;
    Some(t - sign * ((z / 100) * 3600 + (z % 100) * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The (year, month, day) of days since 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// RFC 3339 (UTC) of seconds since the epoch.
pub fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_lines() {
        let h = combined(r#"10.0.2.15 - - [01/Dec/2026:09:12:03 +0100] "GET /boot/machines/52-54-00-aa-bb-01.ipxe?booting=0123456789ab HTTP/1.1" 200 612 "-" "iPXE/1.21.1""#).unwrap();
        assert_eq!(h.client, "10.0.2.15");
        assert_eq!(
            h.target,
            "/boot/machines/52-54-00-aa-bb-01.ipxe?booting=0123456789ab"
        );
        assert_eq!(h.status, 200);
        assert_eq!(rfc3339(h.time.unwrap()), "2026-12-01T08:12:03Z");
        assert!(combined("garbage").is_none());
        assert!(
            combined(r#"1.2.3.4 - - [99/Foo/2026:09:12:03 +0000] "GET / HTTP/1.1" 200 1"#)
                .is_none()
        );
    }

    #[test]
    fn serve_lines() {
        let h = serve("09:12:03 node01 (52:54:00:aa:bb:01) GET machines/52-54-00-aa-bb-01.ipxe?booting=x 200 612 B").unwrap();
        assert_eq!(
            (h.client.as_str(), h.status, h.time),
            ("52:54:00:aa:bb:01", 200, None)
        );
        let h = serve("09:12:03 127.0.0.1:4000 GET boot.ipxe 200 612 B").unwrap();
        assert_eq!(h.target, "boot.ipxe");
        assert!(serve("serving http://127.0.0.1:8080/").is_none());
    }

    #[test]
    fn tftp_lines() {
        // 2026-12-01T12:00:00Z: when the log was last written.
        let written = days_from_civil(2026, 12, 1) * 86400 + 12 * 3600;
        let beacon = "/machines/52-54-00-aa-bb-01.ipxe?booting=0123456789ab";
        let hpa = format!(
            "Dec  1 09:12:03 boot in.tftpd[812]: RRQ from ::ffff:10.0.2.15 filename {beacon}"
        );
        let h = tftp(&hpa, written).unwrap();
        assert_eq!(
            (h.client.as_str(), h.target.as_str()),
            ("10.0.2.15", beacon)
        );
        assert_eq!(rfc3339(h.time.unwrap()), "2026-12-01T09:12:03Z");
        // dnsmasq to a file (its own date, no host), and on stderr (none).
        let dq = format!(
            "Nov 30 23:59:59 dnsmasq-tftp[640]: file /srv/tftp{beacon} not found for 10.0.2.16"
        );
        let h = tftp(&dq, written).unwrap();
        assert_eq!(h.target, format!("/srv/tftp{beacon}"));
        assert_eq!((h.client.as_str(), h.status), ("10.0.2.16", 404));
        assert_eq!(rfc3339(h.time.unwrap()), "2026-11-30T23:59:59Z");
        let h = tftp(
            "dnsmasq-tftp: sent /srv/tftp/grub/grub.cfg to 10.0.2.16",
            written,
        )
        .unwrap();
        assert_eq!(
            (h.target.as_str(), h.status, h.time),
            ("/srv/tftp/grub/grub.cfg", 200, None)
        );
        // A December date in a log written in January is last year's.
        let january = days_from_civil(2027, 1, 2) * 86400;
        let h = tftp(&hpa, january).unwrap();
        assert_eq!(rfc3339(h.time.unwrap()), "2026-12-01T09:12:03Z");
        // rsyslog's high-precision dates and journalctl's short-iso.
        for date in [
            "2026-12-01T10:12:03.123456+01:00",
            "2026-12-01T10:12:03+0100",
        ] {
            let line = format!("{date} boot in.tftpd[812]: RRQ from 10.0.2.15 filename {beacon}");
            let h = tftp(&line, written).unwrap();
            assert_eq!(rfc3339(h.time.unwrap()), "2026-12-01T09:12:03Z", "{date}");
        }
        assert!(
            tftp(
                "Dec  1 09:12:03 boot in.tftpd[812]: sending NAK (1, File not found)",
                written
            )
            .is_none()
        );
        assert!(tftp("Dec  1 09:12:03 boot kernel: RRQ from x", written).is_none());
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(days_from_civil(2024, 2, 29) * 86400 + 1),
            "2024-02-29T00:00:01Z"
        );
    }
}
