//! Reading web-server logs line by line (SPEC section 13): nginx's and
//! Apache's combined format, and `bootc serve`'s own log; plain or gzip
//! (`.gz`), streamed, so a log of any size costs one line of memory.

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
    pub status: u16,
}

/// Calls `each` with every request of the log at `path` that could be
/// parsed; returns how many lines were read. A `.gz` file is decompressed
/// on the fly.
pub fn read(path: &Path, mut each: impl FnMut(Hit)) -> io::Result<u64> {
    let file = File::open(path)?;
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
        if let Some(hit) = combined(&line).or_else(|| serve(&line)) {
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

/// `01/Dec/2026:09:12:03 +0100` as seconds since the epoch (UTC).
fn clf_time(s: &str) -> Option<i64> {
    let (dt, zone) = s.split_once(' ')?;
    let mut p = dt.splitn(4, [':', '/']);
    let (day, month, year) = (p.next()?, p.next()?, p.next()?);
    let hms: Vec<i64> = p
        .next()?
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| *x == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let [h, min, sec] = hms[..] else { return None };
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let z: i64 = zone.get(1..)?.parse().ok()?;
    let offset = sign * ((z / 100) * 3600 + (z % 100) * 60);
    Some(days_from_civil(year, m, day) * 86400 + h * 3600 + min * 60 + sec - offset)
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

/// RFC 3339 (UTC) of seconds since the epoch.
pub fn rfc3339(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
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
    fn dates_round_trip() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(days_from_civil(2024, 2, 29) * 86400 + 1),
            "2024-02-29T00:00:01Z"
        );
    }
}
