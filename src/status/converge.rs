//! One-shot reinstall, converged (SPEC section 13): a machine whose log
//! shows `installed=TOKEN` for its `reinstall = "TOKEN"` is done; the edit
//! that removes that key (and so sends it back to its own role) is printed,
//! or applied. Applied, it removes the key's one line and nothing else
//! (comments and layout kept), checked against `toml_edit` removing the
//! key from the parsed document; where the two differ (a key written over
//! several lines), `toml_edit`'s document is written.

use std::path::{Path, PathBuf};

use super::Status;
use crate::Build;

/// One `reinstall` key to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The machines file, relative to the site root.
    pub file: String,
    pub machine: String,
    pub token: String,
    /// 1-based line of the key, and the line as written.
    pub line: usize,
    pub text: String,
}

impl Edit {
    /// The edit as a unified diff hunk of one removed line.
    pub fn diff(&self) -> String {
        format!(
            "--- a/{f}\n+++ b/{f}\n@@ -{l} +{k},0 @@ {m}: installed={t} was reported\n-{text}\n",
            f = self.file,
            l = self.line,
            k = self.line - 1,
            m = self.machine,
            t = self.token,
            text = self.text
        )
    }
}

/// The edits for every machine whose install of its `reinstall` token was
/// reported in `status`.
pub fn edits(b: &Build, status: &Status) -> Vec<Edit> {
    let mut out = Vec::new();
    for st in &status.machines {
        let Some(token) = &st.reinstall else { continue };
        if !st.installed.contains(token) {
            continue;
        }
        let Some(m) = b.site.machines.iter().find(|m| m.name == st.name) else {
            continue;
        };
        let file = m.loc.file;
        let text = b.sources.text(file);
        let (name_line, _) = b.sources.line_col(file, m.loc.span.start);
        // The key is in the machine's table, after its name or before it.
        let lines: Vec<&str> = text.lines().collect();
        let is_key = |l: &&str| {
            let t = l.trim_start();
            t.strip_prefix("reinstall")
                .is_some_and(|r| r.trim_start().starts_with('='))
        };
        let table_start = lines[..name_line.saturating_sub(1)]
            .iter()
            .rposition(|l| l.trim_start().starts_with('['))
            .unwrap_or(0);
        let found = lines
            .iter()
            .enumerate()
            .skip(table_start)
            .take_while(|(i, l)| *i < name_line || !l.trim_start().starts_with('['))
            .find(|(_, l)| is_key(l));
        if let Some((i, l)) = found {
            out.push(Edit {
                file: b.sources.name(file).to_string(),
                machine: m.name.clone(),
                token: token.clone(),
                line: i + 1,
                text: l.to_string(),
            });
        }
    }
    out
}

/// Why an edit could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ConvergeError {
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: not TOML that bootc can edit: {1}")]
    Parse(PathBuf, toml_edit::TomlError),
    #[error("{0}: machine `{1}` is not a [[machine]] table with a `reinstall` key")]
    NotFound(PathBuf, String),
    #[error("{0}")]
    Write(#[from] crate::write::WriteError),
}

/// Applies `edits` to the site at `root`, each file written atomically.
pub fn apply(root: &Path, edits: &[Edit]) -> Result<(), ConvergeError> {
    let mut files: Vec<&str> = edits.iter().map(|e| e.file.as_str()).collect();
    files.sort();
    files.dedup();
    for rel in files {
        let path = root.join(rel);
        let text =
            std::fs::read_to_string(&path).map_err(|e| ConvergeError::Read(path.clone(), e))?;
        let mut doc: toml_edit::DocumentMut = text
            .parse()
            .map_err(|e| ConvergeError::Parse(path.clone(), e))?;
        let mine: Vec<&Edit> = edits.iter().filter(|e| e.file == rel).collect();
        for e in &mine {
            let table = doc
                .get_mut("machine")
                .and_then(|m| m.as_array_of_tables_mut())
                .and_then(|a| {
                    a.iter_mut()
                        .find(|t| t.get("name").and_then(|n| n.as_str()) == Some(&e.machine))
                });
            let removed = table.and_then(|t| t.remove("reinstall"));
            if removed.is_none() {
                return Err(ConvergeError::NotFound(path, e.machine.clone()));
            }
        }
        // The same edit as one removed line per key, when that means the
        // same document.
        let drop: Vec<usize> = mine.iter().map(|e| e.line).collect();
        let by_line: String = text
            .split_inclusive('\n')
            .enumerate()
            .filter(|(i, _)| !drop.contains(&(i + 1)))
            .map(|(_, l)| l)
            .collect();
        let same = |a: &str, b: &str| {
            let parse = |t: &str| t.parse::<toml::Table>().ok();
            parse(a).is_some() && parse(a) == parse(b)
        };
        let edited = doc.to_string();
        let out = if same(&by_line, &edited) {
            by_line
        } else {
            edited
        };
        crate::write::write_one(&path, out.as_bytes())?;
    }
    Ok(())
}
