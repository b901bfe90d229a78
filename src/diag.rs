//! Diagnostics: every problem found in a site, with its location, rendered
//! rustc-style (codespan-reporting), as JSON, or as GitHub workflow annotations.

use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

use codespan_reporting::diagnostic::{Diagnostic, Label, LabelStyle, Severity as CsSeverity};
use codespan_reporting::files::{Files, SimpleFiles};
use codespan_reporting::term::{self, Chars, Config};
use serde::{Deserialize, Serialize};

use crate::escape;

mod lint;
mod plain;
pub use lint::Lint;
pub use plain::{color_stderr, error_line, note_line, plain, set_color, warning_line};

/// Index of a source file in [`Sources`].
pub type FileId = usize;

/// All text files read from the site (TOML and templates), kept for
/// diagnostics: their display name is relative to the site root.
#[derive(Default)]
pub struct Sources {
    files: SimpleFiles<String, String>,
    count: usize,
}

impl Sources {
    pub fn add(&mut self, name: String, text: String) -> FileId {
        self.count += 1;
        self.files.add(name, text)
    }

    /// Every file, in the order they were added.
    pub fn ids(&self) -> Range<FileId> {
        0..self.count
    }

    pub fn name(&self, id: FileId) -> &str {
        self.files.get(id).map(|f| f.name().as_str()).unwrap_or("?")
    }

    pub fn text(&self, id: FileId) -> &str {
        self.files
            .get(id)
            .map(|f| f.source().as_str())
            .unwrap_or("")
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        match self.files.location(id, offset) {
            Ok(loc) => (loc.line_number, loc.column_number),
            Err(_) => (1, 1),
        }
    }

    /// `file:line:col` of a place.
    pub fn place(&self, loc: &Loc) -> String {
        let (line, col) = self.line_col(loc.file, loc.span.start);
        format!("{}:{line}:{col}", self.name(loc.file))
    }

    /// Byte range of a 1-based line (without its newline).
    pub fn line_range(&self, id: FileId, line: usize) -> Range<usize> {
        match self.files.line_range(id, line.saturating_sub(1)) {
            Ok(r) => {
                let text = self.text(id);
                let mut end = r.end;
                while end > r.start && matches!(text.as_bytes()[end - 1], b'\n' | b'\r') {
                    end -= 1;
                }
                r.start..end
            }
            Err(_) => 0..0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A place in a source file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: FileId,
    pub span: Range<usize>,
}

impl Loc {
    pub fn new(file: FileId, span: Range<usize>) -> Self {
        Loc { file, span }
    }
}

/// One problem.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Diag {
    pub severity: Severity,
    pub message: String,
    /// Where it is, with a short label under the caret.
    pub primary: Option<(Loc, String)>,
    /// Other places that matter (the first definition of a duplicate, ...).
    pub secondary: Vec<(Loc, String)>,
    /// `help:` lines.
    pub help: Vec<String>,
    /// Where it is when that is no place in a source file (a file of a
    /// built tree, a URL): shown before the message.
    pub path: Option<String>,
    /// `= …` lines shown as they are, before the `help:` lines.
    pub notes: Vec<String>,
    /// A warning's kind (`warning[unused-role]: …`), which `[site] allow`
    /// silences.
    pub lint: Option<Lint>,
}

impl Diag {
    pub fn error(message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Error,
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: Vec::new(),
            path: None,
            notes: Vec::new(),
            lint: None,
        }
    }

    pub fn warning(lint: Lint, message: impl Into<String>) -> Self {
        Diag {
            severity: Severity::Warning,
            lint: Some(lint),
            ..Diag::error(message)
        }
    }

    pub fn at(mut self, loc: Loc, label: impl Into<String>) -> Self {
        self.primary = Some((loc, label.into()));
        self
    }

    pub fn at_opt(self, loc: Option<Loc>, label: impl Into<String>) -> Self {
        match loc {
            Some(loc) => self.at(loc, label),
            None => self,
        }
    }

    pub fn also(mut self, loc: Loc, label: impl Into<String>) -> Self {
        self.secondary.push((loc, label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    pub fn help_opt(self, help: Option<String>) -> Self {
        match help {
            Some(h) => self.help(h),
            None => self,
        }
    }

    /// A path-only location (see [`Diag::path`]).
    pub fn on(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The message, after the path when there is one: `http/x: missing`.
    pub fn headline(&self) -> Cow<'_, str> {
        match &self.path {
            Some(p) => Cow::Owned(format!("{p}: {}", self.message)),
            None => Cow::Borrowed(&self.message),
        }
    }

    /// The problem as a page lists it (the report, `bootc serve`'s overview).
    pub fn listed(&self, sources: &Sources) -> Listed {
        Listed {
            severity: self.severity,
            message: self.message.clone(),
            at: match &self.primary {
                Some((l, _)) => Some(sources.place(l)),
                None => self.path.clone(),
            },
            help: self.help.clone(),
        }
    }
}

/// One problem in a page's list: what a template sees.
#[derive(Serialize, Clone, Debug)]
pub struct Listed {
    pub severity: Severity,
    pub message: String,
    /// `file:line:col`, or the path, if the problem has a place.
    pub at: Option<String>,
    pub help: Vec<String>,
}

/// The problems found so far. Compiler stages push into it and go on, so a
/// run reports every problem, not just the first.
#[derive(Default, Serialize, Deserialize)]
pub struct Diags {
    pub list: Vec<Diag>,
}

impl Diags {
    pub fn push(&mut self, d: Diag) {
        self.list.push(d);
    }

    pub fn extend(&mut self, other: Diags) {
        self.list.extend(other.list);
    }

    pub fn errors(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.list
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    pub fn has_errors(&self) -> bool {
        self.errors() > 0
    }

    /// Drops the warnings of the kinds `[site] allow` silences.
    pub fn allow(&mut self, allowed: &std::collections::BTreeSet<Lint>) {
        if !allowed.is_empty() {
            self.list
                .retain(|d| d.lint.is_none_or(|l| !allowed.contains(&l)));
        }
    }

    /// Stable order: errors first, then by file, position and message.
    pub fn sort(&mut self) {
        self.list.sort_by(|a, b| {
            let key = |d: &Diag| {
                (
                    d.severity,
                    d.primary
                        .as_ref()
                        .map(|(l, _)| (l.file, l.span.start, l.span.end)),
                    d.message.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        self.list.dedup_by(|a, b| {
            a.message == b.message
                && a.primary.as_ref().map(|p| &p.0) == b.primary.as_ref().map(|p| &p.0)
        });
    }
}

/// "did you mean" for a misspelt name, when one candidate is close enough.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(name, candidates).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate a misspelt name most likely meant, if one is close enough.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
    Github,
}

/// Renders diagnostics for people, machines or GitHub.
pub struct Reporter<'a> {
    pub sources: &'a Sources,
    /// Prefix that turns a site-relative name into a repository-relative one
    /// (for GitHub annotations).
    pub repo_prefix: PathBuf,
}

impl<'a> Reporter<'a> {
    pub fn new(sources: &'a Sources) -> Self {
        Reporter {
            sources,
            repo_prefix: PathBuf::new(),
        }
    }

    fn to_codespan(&self, d: &Diag) -> Diagnostic<FileId> {
        let severity = match d.severity {
            Severity::Error => CsSeverity::Error,
            Severity::Warning => CsSeverity::Warning,
        };
        let mut labels = Vec::new();
        if let Some((loc, msg)) = &d.primary {
            labels.push(
                Label::new(LabelStyle::Primary, loc.file, loc.span.clone())
                    .with_message(escape::line(msg)),
            );
        }
        for (loc, msg) in &d.secondary {
            labels.push(
                Label::new(LabelStyle::Secondary, loc.file, loc.span.clone())
                    .with_message(escape::line(msg)),
            );
        }
        let mut cs = Diagnostic::new(severity);
        if let Some(l) = d.lint {
            cs = cs.with_code(l.name());
        }
        cs.with_message(escape::line(&d.headline()))
            .with_labels(labels)
            .with_notes(
                d.notes
                    .iter()
                    .map(|n| escape::line(n).into_owned())
                    .chain(d.help.iter().map(|h| format!("help: {}", escape::line(h))))
                    .collect(),
            )
    }

    /// rustc-style text, ending with a summary line.
    pub fn human(&self, diags: &Diags, color: bool) -> String {
        let config = Config {
            chars: Chars::ascii(),
            ..Config::default()
        };
        let mut out: Vec<u8> = Vec::new();
        let shown = Shown::new(self.sources);
        for d in &diags.list {
            let cs = self.to_codespan(d);
            if color {
                let mut buf = term::termcolor::Ansi::new(&mut out);
                let _ = term::emit_to_write_style(&mut buf, &config, &shown, &cs);
            } else {
                let _ = term::emit_to_io_write(&mut out, &config, &shown, &cs);
            }
        }
        let mut text = String::from_utf8_lossy(&out).into_owned();
        let (e, w) = (diags.errors(), diags.warnings());
        if e > 0 {
            text.push_str(&format!(
                "error: the site is invalid: {}{}\n",
                plural(e, "error"),
                if w > 0 {
                    format!(", {}", plural(w, "warning"))
                } else {
                    String::new()
                }
            ));
        } else if w > 0 {
            text.push_str(&format!("warning: {} emitted\n", plural(w, "warning")));
        }
        text
    }

    fn location(&self, loc: &Loc) -> (String, usize, usize) {
        let (line, col) = self.sources.line_col(loc.file, loc.span.start);
        (self.sources.name(loc.file).to_string(), line, col)
    }

    pub fn json(&self, diags: &Diags) -> String {
        #[derive(Serialize)]
        struct J<'b> {
            severity: Severity,
            /// A warning's kind.
            kind: Option<&'static str>,
            message: &'b str,
            file: Option<String>,
            line: Option<usize>,
            column: Option<usize>,
            label: Option<&'b str>,
            help: &'b [String],
        }
        #[derive(Serialize)]
        struct All<'b> {
            errors: usize,
            warnings: usize,
            diagnostics: Vec<J<'b>>,
        }
        let list = diags
            .list
            .iter()
            .map(|d| {
                let loc = d.primary.as_ref().map(|(l, _)| self.location(l));
                J {
                    severity: d.severity,
                    kind: d.lint.map(Lint::name),
                    message: &d.message,
                    file: loc.as_ref().map(|l| l.0.clone()),
                    line: loc.as_ref().map(|l| l.1),
                    column: loc.as_ref().map(|l| l.2),
                    label: d.primary.as_ref().map(|(_, s)| s.as_str()),
                    help: &d.help,
                }
            })
            .collect();
        let all = All {
            errors: diags.errors(),
            warnings: diags.warnings(),
            diagnostics: list,
        };
        serde_json::to_string_pretty(&all).expect("diagnostics serialize") + "\n"
    }

    /// GitHub Actions workflow commands, one line per problem.
    pub fn github(&self, diags: &Diags) -> String {
        let mut out = String::new();
        for d in &diags.list {
            let kind = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let title = match d.lint {
                Some(l) => format!("bootc[{l}]"),
                None => "bootc".to_string(),
            };
            let mut msg = escape::line(&d.message).into_owned();
            if let Some((_, label)) = &d.primary
                && !label.is_empty()
            {
                msg.push_str(": ");
                msg.push_str(&escape::line(label));
            }
            for h in &d.help {
                msg.push_str("\nhelp: ");
                msg.push_str(&escape::line(h));
            }
            match &d.primary {
                Some((loc, _)) => {
                    let (file, line, col) = self.location(loc);
                    let path = self.repo_prefix.join(&file);
                    out.push_str(&format!(
                        "::{kind} file={},line={line},col={col},title={title}::{}\n",
                        gh_property(&path.to_string_lossy()),
                        gh_data(&msg)
                    ));
                }
                None => out.push_str(&format!("::{kind} title={title}::{}\n", gh_data(&msg))),
            }
            // The other places of a problem (the first use of a duplicate
            // MAC, …) as notices, so the pull request shows them on their
            // lines too, without counting the problem twice.
            for (loc, label) in &d.secondary {
                let (file, line, col) = self.location(loc);
                let path = self.repo_prefix.join(&file);
                out.push_str(&format!(
                    "::notice file={},line={line},col={col},title=bootc::{}\n",
                    gh_property(&path.to_string_lossy()),
                    gh_data(&escape::line(&format!("{}: {label}", d.message)))
                ));
            }
        }
        out
    }
}

pub fn plural(n: usize, what: &str) -> String {
    plural_with(n, what, &format!("{what}s"))
}

/// A count and the words that agree with it: `1 machine boots`, `2
/// machines boot`. Every counted noun of bootc's output goes through this
/// (or [`plural`]), never through a bare `"{n} machines"`.
pub fn plural_with(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_property(s: &str) -> String {
    gh_data(&escape::line(s))
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// The site's files as snippets show them: names and text through
/// [`escape`], byte offsets unchanged.
struct Shown<'a> {
    sources: &'a Sources,
    /// Each file as shown, made once: a file with thousands of problems
    /// is escaped once, not once per snippet.
    shown: Vec<std::cell::OnceCell<Cow<'a, str>>>,
}

impl<'a> Shown<'a> {
    fn new(sources: &'a Sources) -> Self {
        Shown {
            sources,
            shown: (0..sources.count).map(|_| Default::default()).collect(),
        }
    }
}

impl<'a> Files<'a> for Shown<'a> {
    type FileId = FileId;
    type Name = Cow<'a, str>;
    type Source = Cow<'a, str>;

    fn name(&'a self, id: FileId) -> Result<Self::Name, codespan_reporting::files::Error> {
        Ok(escape::line(self.sources.name(id)))
    }

    fn source(&'a self, id: FileId) -> Result<Self::Source, codespan_reporting::files::Error> {
        let text = self.sources.files.source(id)?;
        let shown = self
            .shown
            .get(id)
            .ok_or(codespan_reporting::files::Error::FileMissing)?;
        Ok(Cow::Borrowed(shown.get_or_init(|| escape::source(text))))
    }

    fn line_index(
        &'a self,
        id: FileId,
        byte: usize,
    ) -> Result<usize, codespan_reporting::files::Error> {
        self.sources.files.line_index(id, byte)
    }

    fn line_range(
        &'a self,
        id: FileId,
        line: usize,
    ) -> Result<Range<usize>, codespan_reporting::files::Error> {
        self.sources.files.line_range(id, line)
    }
}

/// Path of `site` relative to the root of the git work tree holding it, if any.
pub fn repo_prefix(site: &Path) -> PathBuf {
    let Ok(abs) = site.canonicalize() else {
        return PathBuf::new();
    };
    let mut dir: &Path = &abs;
    loop {
        if dir.join(".git").exists() {
            return abs
                .strip_prefix(dir)
                .map(Path::to_path_buf)
                .unwrap_or_default();
        }
        match dir.parent() {
            Some(p) => dir = p,
            None => return PathBuf::new(),
        }
    }
}
