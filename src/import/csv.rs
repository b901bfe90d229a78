//! A CSV host list read for `bootc import csv`: a header row, then one host
//! per row. The columns `name`, `mac` (several MACs separated by spaces or
//! `;`), `ip`, `role`, `uuid` and `serial` are matched in any case; every
//! other column becomes a label (its name lowercase, blanks and `_` as
//! `-`). Empty cells are left out; lines starting with `#` are comments.

use std::net::Ipv4Addr;

use super::{Entry, Host, SyntaxError};

/// What a column holds.
#[derive(Clone, Debug, PartialEq)]
enum Column {
    Name,
    Mac,
    Ip,
    Role,
    Uuid,
    Serial,
    Label(String),
}

/// The column a header cell names.
fn column(header: &str) -> Column {
    match header.trim().to_lowercase().as_str() {
        "name" => Column::Name,
        "mac" => Column::Mac,
        "ip" => Column::Ip,
        "role" => Column::Role,
        "uuid" => Column::Uuid,
        "serial" => Column::Serial,
        other => Column::Label(
            other
                .split(|c: char| c.is_whitespace() || c == '_')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("-"),
        ),
    }
}

fn error(e: ::csv::Error) -> SyntaxError {
    SyntaxError {
        line: e.position().map_or(1, |p| p.line() as usize),
        message: e.to_string(),
    }
}

/// Every row of the CSV `text`, in input order.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .comment(Some(b'#'))
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader.headers().map_err(error)?;
    let header_line = headers.position().map_or(1, |p| p.line() as usize);
    let columns: Vec<Column> = headers.iter().map(column).collect();
    for (i, c) in columns.iter().enumerate() {
        let again = columns[..i].contains(c);
        let empty = *c == Column::Label(String::new());
        if again || empty {
            return Err(SyntaxError {
                line: header_line,
                message: format!(
                    "header column {} is {}",
                    i + 1,
                    if empty { "empty" } else { "named twice" }
                ),
            });
        }
    }
    if !columns.contains(&Column::Mac) {
        return Err(SyntaxError {
            line: header_line,
            message: "the header has no `mac` column".into(),
        });
    }
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(error)?;
        let line = record.position().map_or(1, |p| p.line() as usize);
        out.push(row(&columns, &record, line));
    }
    Ok(out)
}

/// One row.
fn row(columns: &[Column], record: &::csv::StringRecord, line: usize) -> Entry {
    let mut h = Host {
        line,
        kind: "row",
        ..Host::default()
    };
    for (c, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        let cell = cell.to_string();
        match c {
            Column::Name => h.name_as_written = Some(cell),
            Column::Mac => h.macs.extend(
                cell.split(|c: char| c.is_whitespace() || c == ';')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string),
            ),
            Column::Ip => match cell.parse::<Ipv4Addr>() {
                Ok(ip) => h.ip = Some(ip),
                Err(_) => {
                    h.note = Some(format!(
                        "ip {cell:?} is not an IPv4 address: imported without ip"
                    ))
                }
            },
            Column::Role => h.role = Some(cell),
            Column::Uuid => h.uuid = Some(cell),
            Column::Serial => h.serial = Some(cell),
            Column::Label(k) => h.labels.push((k.clone(), cell)),
        }
    }
    if h.macs.is_empty() {
        return Entry::Skip(h.skip("no MAC address"));
    }
    Entry::Host(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_in_any_case_and_labels() {
        let e = parse(
            "Name,MAC,Rack,Asset_Tag,IP\nweb01,52-54-00-AA-BB-01;5254.00aa.bb02,r1,,10.0.0.5\n",
        )
        .unwrap();
        let Entry::Host(h) = &e[0] else { panic!() };
        assert_eq!(h.line, 2);
        assert_eq!(h.macs, ["52-54-00-AA-BB-01", "5254.00aa.bb02"]);
        assert_eq!(h.labels, [("rack".to_string(), "r1".to_string())]);
        assert_eq!(h.ip, Some(Ipv4Addr::new(10, 0, 0, 5)));
    }

    #[test]
    fn quoted_cells_hold_commas_and_hashes() {
        let e = parse("# inventory\nname,mac,note\nweb01,52:54:00:aa:bb:01,\"a, # b\"\n").unwrap();
        let Entry::Host(h) = &e[0] else { panic!() };
        assert_eq!(h.line, 3);
        assert_eq!(h.labels, [("note".to_string(), "a, # b".to_string())]);
    }
}
