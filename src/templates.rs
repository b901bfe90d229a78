//! The minijinja environment: built-in templates compiled into the binary,
//! overridden by files of the same name under the site's templates/, plus the
//! site's own templates (per-machine files, scripts) and kernel-arg strings.

use std::collections::HashMap;

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use crate::diag::{Diag, Diags, FileId, Loc, Sources};
use crate::site::{Site, Tpl};

/// Built-in templates: (name, source). A site overrides one by placing a
/// file of the same name under templates/.
pub const BUILTINS: &[(&str, &str)] = &[
    ("boot.ipxe.j2", include_str!("templates/boot.ipxe.j2")),
    (
        "fallback.ipxe.j2",
        include_str!("templates/fallback.ipxe.j2"),
    ),
    ("machine.ipxe.j2", include_str!("templates/machine.ipxe.j2")),
    (
        "boot-commands.ipxe.j2",
        include_str!("templates/boot-commands.ipxe.j2"),
    ),
    ("report.html.j2", include_str!("templates/report.html.j2")),
    ("dhcpd.conf.j2", include_str!("templates/dhcpd.conf.j2")),
    (
        "kea-dhcp4.json.j2",
        include_str!("templates/kea-dhcp4.json.j2"),
    ),
    ("dnsmasq.conf.j2", include_str!("templates/dnsmasq.conf.j2")),
    (
        "grub.cfg.grub.j2",
        include_str!("templates/grub.cfg.grub.j2"),
    ),
    ("machine.grub.j2", include_str!("templates/machine.grub.j2")),
    (
        "fallback.grub.j2",
        include_str!("templates/fallback.grub.j2"),
    ),
    (
        "boot-commands.grub.j2",
        include_str!("templates/boot-commands.grub.j2"),
    ),
    ("media.ipxe.j2", include_str!("templates/media.ipxe.j2")),
    ("media.grub.j2", include_str!("templates/media.grub.j2")),
];

pub struct Templates {
    env: Environment<'static>,
    /// Template name -> where its text is (site templates and kernel args).
    origin: HashMap<String, Origin>,
    /// The roles' `script =` templates (iPXE scripts whatever their names).
    scripts: BTreeSet<String>,
}

#[derive(Clone)]
enum Origin {
    /// A whole file under templates/.
    File(FileId),
    /// A string inside a TOML file; the template text starts one byte after
    /// the span's start (after the opening quote).
    Inline(Loc),
}

impl Templates {
    /// Compiles every template; syntax errors become diagnostics.
    pub fn new(site: &Site, sources: &Sources, diags: &mut Diags) -> Templates {
        let mut env = base_env();
        // A role's `script =` is an iPXE script whatever its file is named.
        let scripts: BTreeSet<String> = site
            .roles
            .values()
            .filter_map(|r| r.script.clone())
            .collect();
        let names = scripts.clone();
        env.set_auto_escape_callback(move |name| {
            if names.contains(name) {
                IPXE
            } else {
                escape_for(name)
            }
        });
        let mut t = Templates {
            env,
            origin: HashMap::new(),
            scripts,
        };
        for (name, src) in BUILTINS {
            if !site.templates.contains_key(*name) {
                t.env
                    .add_template(name, src)
                    .expect("built-in templates compile");
            }
        }
        for (name, &id) in &site.templates {
            t.origin.insert(name.clone(), Origin::File(id));
            if let Err(e) = t
                .env
                .add_template_owned(name.clone(), sources.text(id).to_string())
            {
                diags.push(t.diag(&e, sources, None));
            }
        }
        t
    }

    /// Name under which the kernel-arg template `tpl` is compiled, compiling
    /// it on first use. Returns None for plain strings (no template syntax).
    pub fn inline(&mut self, tpl: &Tpl, sources: &Sources, diags: &mut Diags) -> Option<String> {
        if !(tpl.text.contains("{{") || tpl.text.contains("{%") || tpl.text.contains("{#")) {
            return None;
        }
        let name = format!("{}@{}", sources.name(tpl.loc.file), tpl.loc.span.start);
        if !self.origin.contains_key(&name) {
            self.origin
                .insert(name.clone(), Origin::Inline(tpl.loc.clone()));
            if let Err(e) = self.env.add_template_owned(name.clone(), tpl.text.clone()) {
                diags.push(self.diag(&e, sources, None));
            }
        }
        Some(name)
    }

    pub fn has(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    pub fn render(&self, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        self.rendering(name, |t| t.render(ctx))
    }

    /// [`Templates::render`] for its problems only: the text goes nowhere
    /// (`bootc check`), so a fleet-sized output is never held.
    pub fn try_render(&self, name: &str, ctx: &Value) -> Result<(), minijinja::Error> {
        self.rendering(name, |t| {
            t.render_captured_to(ctx, std::io::sink()).map(drop)
        })
    }

    /// `render` of template `name`, as a boot program when it is one.
    fn rendering<T>(
        &self,
        name: &str,
        render: impl FnOnce(&minijinja::Template) -> Result<T, minijinja::Error>,
    ) -> Result<T, minijinja::Error> {
        let template = self.env.get_template(name)?;
        let lang = if self.scripts.contains(name) {
            IPXE
        } else {
            escape_for(name)
        };
        if lang != IPXE && lang != GRUB {
            return render(&template);
        }
        // A boot program: every value it writes is checked (iPXE) or quoted
        // (GRUB), whatever the template does with escaping (`{% autoescape
        // false %}`) or whatever it includes. The flag is this thread's:
        // renders run in parallel.
        IN_SCRIPT.set(Some(lang == GRUB));
        let out = render(&template);
        IN_SCRIPT.set(None);
        out
    }

    /// A diagnostic for a template error, pointing into the template's file
    /// (or the TOML string it came from) at the failing expression.
    pub fn diag(&self, e: &minijinja::Error, sources: &Sources, while_: Option<&str>) -> Diag {
        // An error inside an included template comes wrapped ("could not
        // render include"): the place to show is where it happened.
        let mut e = e;
        while let Some(inner) = std::error::Error::source(e).and_then(|s| s.downcast_ref()) {
            e = inner;
        }
        let name = e.name().unwrap_or("?");
        let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
        let kind = e.kind().to_string();
        let mut d = match self.origin.get(name) {
            Some(Origin::File(id)) => {
                let span = match (e.range(), e.line()) {
                    (Some(r), _) => r,
                    (None, Some(line)) => sources.line_range(*id, line),
                    (None, None) => 0..0,
                };
                let d = Diag::error(format!(
                    "template error in templates/{name}: {kind}{detail}"
                ));
                // The parser notices an unclosed `{{` where the next thing
                // fails to parse; the author needs the line that opened it.
                let unclosed = (e.kind() == minijinja::ErrorKind::SyntaxError)
                    .then(|| unclosed_tag(sources.text(*id), span.start))
                    .flatten();
                match unclosed {
                    Some(open) => {
                        let tag = sources.text(*id)[open.clone()].to_string();
                        Diag::error(format!(
                            "template error in templates/{name}: `{tag}` is never closed"
                        ))
                        .at(Loc::new(*id, open), format!("`{tag}` opened here"))
                        .also(Loc::new(*id, span), format!("{kind}{detail}"))
                    }
                    None => d.at(Loc::new(*id, span), kind.clone()),
                }
            }
            Some(Origin::Inline(loc)) => {
                let span = match e.range() {
                    Some(r) => {
                        (loc.span.start + 1 + r.start).min(loc.span.end)
                            ..(loc.span.start + 1 + r.end).min(loc.span.end)
                    }
                    None => loc.span.clone(),
                };
                Diag::error(format!("template error: {kind}{detail}"))
                    .at(Loc::new(loc.file, span), kind.clone())
            }
            None => Diag::error(format!(
                "template error in built-in template {name}: {kind}{detail}"
            )),
        };
        if let Some(UnsafeValue(value, rule)) =
            std::error::Error::source(e).and_then(|s| s.downcast_ref())
        {
            // Where the value is written, when a site file holds it as is.
            let from = sources
                .ids()
                .filter(|&id| sources.name(id).ends_with(".toml"))
                .find_map(|id| {
                    crate::tomlde::find_string(sources.text(id), value)
                        .map(|span| Loc::new(id, span))
                });
            d = match from {
                Some(loc) => d.also(loc, "the value comes from here"),
                None => d,
            }
            .help(*rule);
        }
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            d = d.help(crate::context::undefined_help(name));
        }
        if let Some(w) = while_ {
            d = d.help(format!("while rendering {w}"));
        }
        d
    }
}

/// The first `{{`, `{%` or `{#` before `before` that has no closing
/// delimiter ahead of the next opening one (or of the end).
fn unclosed_tag(src: &str, before: usize) -> Option<std::ops::Range<usize>> {
    let opener = |from: usize| {
        ["{{", "{%", "{#"]
            .iter()
            .filter_map(|o| src[from..].find(o).map(|i| from + i))
            .min()
    };
    let mut at = 0;
    while let Some(open) = opener(at).filter(|&o| o < before) {
        let close = match &src[open..open + 2] {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        let closed = src[open + 2..].find(close).map(|i| open + 2 + i);
        match closed {
            Some(c) if opener(open + 2).is_none_or(|next| c < next) => at = c + 2,
            _ => return Some(open..open + 2),
        }
    }
    None
}

/// The "escaping" of iPXE scripts: iPXE has no quoting, so every value a
/// script template writes is checked as kernel arguments are, and one that
/// could change the script's meaning fails the render.
const IPXE: AutoEscape = AutoEscape::Custom(std::borrow::Cow::Borrowed("ipxe"));

const IPXE_RULE: &str = "iPXE has no quoting: a value written into a script must be words separated by spaces, without control characters, `${`, a word that is `||`, `&&` or `;`, or a word starting with `#`";
const GRUB_RULE: &str = "bootc writes each value into a GRUB config as one single-quoted word: it may not hold a single quote or a control character";

/// The escaping of GRUB configs: every value a GRUB template writes becomes
/// one single-quoted GRUB word (nothing is special inside single quotes:
/// no `$` expansion, no `;`), and a value that cannot be quoted so (a
/// single quote, a control character) fails the render.
const GRUB: AutoEscape = AutoEscape::Custom(std::borrow::Cow::Borrowed("grub"));

thread_local! {
    /// Set while this thread renders a boot program (see
    /// `Templates::render`): Some(false) an iPXE script, Some(true) a GRUB
    /// config.
    static IN_SCRIPT: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// A value a script template may not write (the error's source).
#[derive(Debug, thiserror::Error)]
#[error("unsafe value in a boot program")]
struct UnsafeValue(String, &'static str);

fn escape_for(name: &str) -> AutoEscape {
    if name.ends_with(".html.j2") || name.ends_with(".html") {
        AutoEscape::Html
    } else if name.ends_with(".json.j2") || name.ends_with(".json") {
        AutoEscape::Json
    } else if name.ends_with(".ipxe.j2") || name.ends_with(".ipxe") {
        IPXE
    } else if name.ends_with(".grub.j2") {
        GRUB
    } else {
        AutoEscape::None
    }
}

/// Writes `{{ value }}` into an iPXE script, or refuses to.
fn ipxe_formatter(
    out: &mut minijinja::Output<'_>,
    state: &mut minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    let grub = match IN_SCRIPT.get() {
        Some(grub) => grub,
        None if *state.auto_escape() == IPXE => false,
        None if *state.auto_escape() == GRUB => true,
        None => return minijinja::escape_formatter(out, state, value),
    };
    // A string as it is; anything else as it prints.
    let printed;
    let text = match value.as_str() {
        Some(s) => s,
        None => {
            printed = value.to_string();
            &printed
        }
    };
    if grub {
        return match crate::grub::unsafe_reason(text) {
            Some(why) => Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "`{}` cannot be written into a GRUB config: {why}",
                    text.escape_debug()
                ),
            )
            .with_source(UnsafeValue(text.to_string(), GRUB_RULE))),
            None => write!(out, "'{text}'").map_err(minijinja::Error::from),
        };
    }
    if let Some(why) = crate::ipxe::text_unsafe_reason(text) {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{}` cannot be written into an iPXE script: {why}",
                text.escape_debug()
            ),
        )
        .with_source(UnsafeValue(text.to_string(), IPXE_RULE)));
    }
    out.write_str(text).map_err(minijinja::Error::from)
}

/// Instructions one render may run (see [`base_env`]).
pub const FUEL: u64 = 20_000_000;

/// An environment set up as every bootc template expects: strict undefined,
/// HTML and JSON auto-escaping by file name, values checked in iPXE scripts,
/// trailing newlines kept, the `filesizeformat` filter. No templates yet.
pub fn base_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // A template from a pull request must not stall CI: each render may
    // run this many instructions (the report of 100,000 machines needs
    // a few million), then it fails with its place.
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(escape_for);
    env.set_formatter(ipxe_formatter);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .expect("default syntax with trailing newlines"),
    );
    env.add_filter("filesizeformat", |n: u64| human_size(n));
    env
}

/// A template value from anything serde can serialize.
pub fn val<T: serde::Serialize>(t: T) -> Value {
    Value::from(minijinja::value::Serde(t))
}

/// 1536 -> "1.5 KiB".
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The source of the built-in template `name`.
pub fn builtin(name: &str) -> Option<&'static str> {
    BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, src)| *src)
}

/// What `bootc templates` prints: each built-in template, what it renders
/// and the variables it sees (from [`crate::context`], where they are
/// defined).
pub fn listing() -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (name, _) in BUILTINS {
        let (what, fields) = crate::context::builtin(name).expect("every built-in is described");
        let paths = crate::context::paths(&fields);
        let width = paths.iter().map(|v| v.path.len()).max().unwrap_or(0);
        let _ = writeln!(out, "{name}\n  {what}");
        for v in paths {
            let opt = if v.optional { " (may be none)" } else { "" };
            let same = v
                .same_as
                .map(|p| format!("; fields as {p}"))
                .unwrap_or_default();
            let _ = writeln!(out, "    {:<width$}  {}{opt}{same}", v.path, v.doc);
        }
        out.push('\n');
    }
    out.push_str(
        "A site overrides a built-in template with a file of the same name under templates/:\n  bootc templates show NAME > templates/NAME\n",
    );
    out
}
