//! What templates see: the variables of the site's own templates and of
//! every built-in template, from [`crate::context`] (the one place that
//! defines them; `bootc templates` prints the same).

use std::collections::BTreeMap;

use crate::context::{self, Describe, Field, MachineContext, Var};
use crate::templates::BUILTINS;

use super::{anchor, cell, heading, inline};

pub fn section(out: &mut String) {
    heading(out, 2, "templates", "Templates");
    out.push_str(
        "Kernel arguments, per-machine files, role scripts and the built-in templates are \
         [minijinja](https://docs.rs/minijinja) templates (Jinja2 syntax), strict: an \
         undefined variable is an error at its line, with the variables that template can \
         use. What a template writes into a boot program is checked: iPXE has no quoting, so \
         a value written into an iPXE script must be words safe there (no `${`, no control \
         characters, no word that is `||`, `&&` or `;` or starts with `#`), and a value \
         written into a GRUB config becomes one single-quoted word; HTML and JSON templates \
         escape values. The variables below are those of `src/context/`, which defines \
         everything a template sees; *may be none* marks a value that is none or absent in \
         some cases (test it: `{% if machine.ip %}`); a variable's fields are listed under \
         it once.\n\n",
    );
    heading(out, 3, "templates-site", "Site templates");
    out.push_str(
        "Kernel arguments (of images, roles, `[defaults]` and machines), per-machine files \
         (a role's `[files]`, served at `http/machines/NAME/FILE`) and a role's `script` see \
         these. `machine` is none when the fallback boots a role (its kernel arguments and \
         files); `boot` is only given to scripts.\n\n",
    );
    // A view (`site`, `machine`…) has its fields listed once: where it first
    // appears; later tables point there.
    let mut listed: BTreeMap<&'static str, String> = BTreeMap::new();
    vars(
        out,
        &described(
            &MachineContext::shape().fields,
            "#templates-site",
            &mut listed,
        ),
    );

    heading(out, 3, "templates-builtin", "Built-in templates");
    out.push_str(
        "Compiled into bootc. A site overrides one with a file of the same name under \
         `templates/` (`templates/machine.ipxe.j2`); `bootc templates show NAME > \
         templates/NAME` starts from its source. An override sees the same variables and is \
         checked like the built-in.\n\n\
         | template | renders |\n|---|---|\n",
    );
    let described: Vec<(&str, &str, Vars)> = BUILTINS
        .iter()
        .map(|(name, _)| {
            let (what, fields) = context::builtin(name).expect("every built-in is described");
            let at = format!("#{}", anchor(&["template", name]));
            (*name, what, described(&fields, &at, &mut listed))
        })
        .collect();
    for (name, what, _) in &described {
        out.push_str(&format!(
            "| [`{name}`](#{}) | {} |\n",
            anchor(&["template", name]),
            cell(what)
        ));
    }
    out.push('\n');
    let mut written: Vec<(&str, String)> = Vec::new();
    for (name, what, paths) in &described {
        heading(out, 4, &anchor(&["template", name]), &format!("`{name}`"));
        out.push_str(&format!("{}.\n\n", inline(what)));
        let mut table = String::new();
        vars(&mut table, paths);
        match written.iter().find(|(_, t)| *t == table) {
            Some((first, _)) => out.push_str(&format!(
                "Its variables are those of [`{first}`](#{}).\n\n",
                anchor(&["template", first])
            )),
            None => {
                out.push_str(&table);
                written.push((name, table));
            }
        }
    }
}

/// Variables, each with where its fields are listed when that is elsewhere.
type Vars = Vec<(Var, Option<String>)>;

/// The variables of `fields`, those of a view listed before (in `listed`,
/// by view type) as one line that links to that list; the views listed here
/// (at anchor `at`) are added to `listed`.
fn described(fields: &[Field], at: &str, listed: &mut BTreeMap<&'static str, String>) -> Vars {
    let mut fields = fields.to_vec();
    let mut seen_before = BTreeMap::new();
    for f in &mut fields {
        if let Some(ty) = f.shape.ty {
            match listed.get(ty) {
                Some(there) => {
                    f.shape.fields.clear();
                    seen_before.insert(f.name, there.clone());
                }
                None => {
                    listed.insert(ty, format!("[`{}`]({at})", f.name));
                }
            }
        }
    }
    context::paths(&fields)
        .into_iter()
        .map(|v| {
            let there = seen_before.get(v.path.as_str()).cloned();
            (v, there)
        })
        .collect()
}

/// The table of a template's variables.
fn vars(out: &mut String, paths: &Vars) {
    out.push_str("| variable | may be none | description |\n|---|---|---|\n");
    for (v, there) in paths {
        let same = match (&v.same_as, there) {
            (Some(p), _) => format!(" (fields as `{p}`)"),
            (None, Some(there)) => format!(" (its fields: see {there})"),
            (None, None) => String::new(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {}{same} |\n",
            v.path,
            if v.optional { "yes" } else { "" },
            cell(v.doc)
        ));
    }
    out.push('\n');
}
