//! ISC dhcpd's `dhcpd.conf` read for `bootc import dhcpd`: a tokenizer
//! (comments, quoted strings, braces, semicolons, each token with its line)
//! and a recursive reader of statements and blocks that finds every
//! `host NAME { … }` at any depth (inside `group`, `subnet`,
//! `shared-network`, `pool`, …) and reads its `hardware ethernet`,
//! `fixed-address` and `option host-name`.

use std::net::Ipv4Addr;

use super::{Entry, Host, SyntaxError};

/// One token of dhcpd.conf.
#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// A run of characters other than blanks, `{};,"` and `#`.
    Word(String),
    /// A double-quoted string, escapes undone.
    Str(String),
    Open,
    Close,
    Semi,
    Comma,
}

/// The tokens of `text`, each with its line (from 1).
fn tokens(text: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '{' => out.push((Tok::Open, line)),
            '}' => out.push((Tok::Close, line)),
            ';' => out.push((Tok::Semi, line)),
            ',' => out.push((Tok::Comma, line)),
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(SyntaxError {
                                line: start,
                                message: "string not closed".into(),
                            });
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => s.push('\n'),
                            Some('t') => s.push('\t'),
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                s.push(c)
                            }
                            None => {}
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            s.push(c);
                        }
                    }
                }
                out.push((Tok::Str(s), start));
            }
            c => {
                let mut w = String::from(c);
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "{};,\"#".contains(c) {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push((Tok::Word(w), line));
            }
        }
    }
    Ok(out)
}

/// A statement: the tokens before its `;`, or a block's head and body.
#[derive(Debug)]
enum Stmt {
    Simple(Vec<Tok>),
    Block {
        head: Vec<Tok>,
        line: usize,
        body: Vec<Stmt>,
    },
}

/// Reads statements until a `}` (when `nested`) or the end.
fn statements(
    toks: &[(Tok, usize)],
    pos: &mut usize,
    nested: Option<usize>,
) -> Result<Vec<Stmt>, SyntaxError> {
    let mut out = Vec::new();
    let mut cur: Vec<Tok> = Vec::new();
    let mut cur_line = 0;
    while let Some((t, line)) = toks.get(*pos) {
        *pos += 1;
        match t {
            Tok::Semi => {
                if !cur.is_empty() {
                    out.push(Stmt::Simple(std::mem::take(&mut cur)));
                }
            }
            Tok::Open => {
                let head = std::mem::take(&mut cur);
                let start = if head.is_empty() { *line } else { cur_line };
                let body = statements(toks, pos, Some(*line))?;
                out.push(Stmt::Block {
                    head,
                    line: start,
                    body,
                });
            }
            Tok::Close => {
                if nested.is_none() {
                    return Err(SyntaxError {
                        line: *line,
                        message: "`}` without its `{`".into(),
                    });
                }
                if !cur.is_empty() {
                    return Err(SyntaxError {
                        line: *line,
                        message: "expected `;` before `}`".into(),
                    });
                }
                return Ok(out);
            }
            t => {
                if cur.is_empty() {
                    cur_line = *line;
                }
                cur.push(t.clone());
            }
        }
    }
    if let Some(open) = nested {
        return Err(SyntaxError {
            line: open,
            message: "`{` never closed".into(),
        });
    }
    if !cur.is_empty() {
        return Err(SyntaxError {
            line: cur_line,
            message: "expected `;` at the end of the file".into(),
        });
    }
    Ok(out)
}

/// The text of a word or a string.
fn text(t: &Tok) -> Option<&str> {
    match t {
        Tok::Word(s) | Tok::Str(s) => Some(s),
        _ => None,
    }
}

/// Every `host` of dhcpd.conf `text`, in input order.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let toks = tokens(text)?;
    let mut pos = 0;
    let stmts = statements(&toks, &mut pos, None)?;
    let mut out = Vec::new();
    walk(&stmts, &mut out);
    Ok(out)
}

/// Finds the hosts in `stmts` and every block within.
fn walk(stmts: &[Stmt], out: &mut Vec<Entry>) {
    for s in stmts {
        if let Stmt::Block { head, line, body } = s {
            match head.as_slice() {
                [Tok::Word(kw), name] if kw.eq_ignore_ascii_case("host") => {
                    let h = host(text(name), *line, body);
                    out.push(if h.macs.is_empty() {
                        Entry::Skip(h.skip("no hardware ethernet"))
                    } else {
                        Entry::Host(h)
                    });
                }
                _ => walk(body, out),
            }
        }
    }
}

/// One `host NAME { … }`.
fn host(decl: Option<&str>, line: usize, body: &[Stmt]) -> Host {
    let mut h = Host {
        line,
        kind: "host",
        name_as_written: decl.map(str::to_string),
        ..Host::default()
    };
    let mut host_name = None;
    for s in body {
        let Stmt::Simple(toks) = s else { continue };
        let words: Vec<&str> = toks.iter().filter_map(text).collect();
        match words.as_slice() {
            ["hardware", "ethernet", mac] => h.macs.push(mac.to_string()),
            ["fixed-address", ..] => fixed_address(&mut h, &words[1..]),
            ["option", "host-name", name] => host_name = Some(name.to_string()),
            _ => {}
        }
    }
    if host_name.is_some() && host_name != h.name_as_written {
        h.declared = std::mem::replace(&mut h.name_as_written, host_name);
    }
    h
}

/// `fixed-address a, b, …`: the first IPv4 address; names (which dhcpd
/// looks up in the DNS) become a note.
fn fixed_address(h: &mut Host, addrs: &[&str]) {
    if let Some(ip) = addrs.iter().find_map(|a| a.parse::<Ipv4Addr>().ok()) {
        h.ip = Some(ip);
    } else if !addrs.is_empty() {
        h.note = Some(format!(
            "fixed-address {} is a DNS name, not an address: imported without ip",
            addrs.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hosts read; skips (hosts without a MAC) left out.
    fn hosts(text: &str) -> Vec<Host> {
        parse(text)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e {
                Entry::Host(h) => Some(h),
                Entry::Skip(_) => None,
            })
            .collect()
    }

    #[test]
    fn strings_hold_hashes_and_semicolons() {
        let h = hosts(concat!(
            "option domain-name \"a;b # c\"; # a comment { with a brace\n",
            "group {\n",
            "  host web { # the web server; really\n",
            "    option host-name \"Web;#1\";\n",
            "    hardware ethernet 52:54:0:AA:BB:1; fixed-address 10.0.0.1, 10.0.0.2;\n",
            "  }\n",
            "}\n",
        ));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].line, 3);
        assert_eq!(h[0].name_as_written.as_deref(), Some("Web;#1"));
        assert_eq!(h[0].macs, ["52:54:0:AA:BB:1"]);
        assert_eq!(h[0].ip, Some(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn nested_blocks_and_names() {
        let h = hosts(concat!(
            "shared-network lab {\n",
            "  subnet 10.0.0.0 netmask 255.255.255.0 {\n",
            "    pool { range 10.0.0.100 10.0.0.200; }\n",
            "    host \"db\" { hardware ethernet 52:54:00:00:00:01; fixed-address db.example.com; }\n",
            "  }\n",
            "}\n",
            "host nomac { fixed-address 10.0.0.9; }\n",
        ));
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].line, 4);
        assert_eq!(h[0].ip, None);
        assert!(h[0].note.as_deref().unwrap().contains("db.example.com"));
    }

    #[test]
    fn unbalanced_braces_are_errors() {
        assert_eq!(parse("group {\n host a {\n}\n").unwrap_err().line, 1);
        assert_eq!(parse("}\n").unwrap_err().line, 1);
        assert_eq!(parse("x \"open\n\n").unwrap_err().line, 1);
    }
}
