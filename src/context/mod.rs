//! Everything a template sees, in one place. Sites override the built-in
//! templates, so these types are a user-facing contract: each is declared
//! with `view!`, which derives its serialization and, from the same field
//! list and doc comments, the description `bootc templates` prints.

use std::collections::BTreeMap;

/// One variable (or field of one) a template may use.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub doc: &'static str,
    pub shape: Shape,
}

/// What a type looks like to a template.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// May be none or absent (an `Option`).
    pub optional: bool,
    /// A list: `fields` describe each item.
    pub list: bool,
    /// The view type (for structs), to list its fields once.
    pub ty: Option<&'static str>,
    pub fields: Vec<Field>,
}

/// A type's shape as a template sees it.
pub trait Describe {
    fn shape() -> Shape {
        Shape::default()
    }
}

macro_rules! leaf {
    ($($t:ty),*) => { $(impl Describe for $t {})* };
}
leaf!(String, str, bool, u8, u16, u32, i32, u64, usize);
leaf!(serde_json::Map<String, serde_json::Value>);
impl<K, V> Describe for BTreeMap<K, V> {}
impl<A, B> Describe for (A, B) {}
impl<T: Describe + ?Sized> Describe for &T {
    fn shape() -> Shape {
        T::shape()
    }
}
impl<T: Describe> Describe for Option<T> {
    fn shape() -> Shape {
        Shape {
            optional: true,
            ..T::shape()
        }
    }
}
impl<T: Describe> Describe for Vec<T> {
    fn shape() -> Shape {
        <[T]>::shape()
    }
}
impl<T: Describe> Describe for [T] {
    fn shape() -> Shape {
        Shape {
            list: true,
            ..T::shape()
        }
    }
}

/// A view serialized for templates once and shared by every context that
/// shows it (the site, a role, an image, a machine's variables, seen by
/// each of its templates): a context holding it costs a reference, not
/// another serialization. Templates see the view itself, and its
/// description is the view's.
pub struct Shared<T> {
    value: minijinja::Value,
    view: std::marker::PhantomData<fn() -> T>,
}

impl<T: serde::Serialize> Shared<T> {
    pub fn new(view: &T) -> Self {
        Shared {
            value: crate::templates::val(view),
            view: std::marker::PhantomData,
        }
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            value: self.value.clone(),
            view: std::marker::PhantomData,
        }
    }
}

impl<T> serde::Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Into a template value: handed over as it is (minijinja keeps
        // values whole through serde).
        self.value.serialize(s)
    }
}

impl<T: Describe> Describe for Shared<T> {
    fn shape() -> Shape {
        T::shape()
    }
}

/// A long list (a fleet's DHCP hosts) that a template reads item by item:
/// an item is held as its [`Row`] and becomes its view, then a template
/// value, only when it is read; lists holding the same items (a subnet's
/// hosts and the site's) share them ([`Rows::pick`]). Templates see a
/// list of the view; its description is the list's.
pub struct Rows<T> {
    items: std::sync::Arc<Vec<T>>,
    /// Which items, in this order (all when None).
    pick: Option<Vec<u32>>,
}

impl<T> Rows<T> {
    pub fn new(items: Vec<T>) -> Self {
        Rows {
            items: std::sync::Arc::new(items),
            pick: None,
        }
    }

    /// The items `keep` keeps, in their order.
    pub fn pick(&self, keep: impl Fn(&T) -> bool) -> Self {
        let all = (0..self.len()).filter_map(|i| Some((i, self.get(i)?)));
        let which = all.filter(|(_, item)| keep(item)).map(|(i, _)| {
            let i = self.pick.as_ref().map_or(i, |p| p[i] as usize);
            u32::try_from(i).expect("fewer than 2^32 rows")
        });
        Rows {
            items: std::sync::Arc::clone(&self.items),
            pick: Some(which.collect()),
        }
    }

    pub fn len(&self) -> usize {
        self.pick.as_ref().map_or(self.items.len(), Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<&T> {
        match &self.pick {
            None => self.items.get(i),
            Some(pick) => self.items.get(*pick.get(i)? as usize),
        }
    }
}

impl<T> Clone for Rows<T> {
    fn clone(&self) -> Self {
        Rows {
            items: std::sync::Arc::clone(&self.items),
            pick: self.pick.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Rows<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rows({})", self.len())
    }
}

/// An item of [`Rows`]: what it holds, made into what a template sees.
pub trait Row: Send + Sync + 'static {
    type View: serde::Serialize + Describe;
    fn view(&self) -> Self::View;
}

impl<T: Row> minijinja::value::Object for Rows<T> {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Seq
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        Some(crate::templates::val(self.get(key.as_usize()?)?.view()))
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.len())
    }
}

impl<T: Row> serde::Serialize for Rows<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Into a template value: the list itself, read as it is iterated.
        minijinja::Value::from_object(self.clone()).serialize(s)
    }
}

impl<T: Row> Describe for Rows<T> {
    fn shape() -> Shape {
        <[T::View]>::shape()
    }
}

/// A struct a template sees: serialized as is, described from the same
/// field list (doc comments become the descriptions).
macro_rules! view {
    ($(#[$m:meta])* pub struct $name:ident $(<$lt:lifetime>)? {
        $( $(#[doc = $doc:literal])* $(#[serde($($s:tt)*)])* pub $f:ident : $t:ty ),* $(,)?
    }) => {
        $(#[$m])*
        #[derive(Serialize)]
        pub struct $name $(<$lt>)? { $( $(#[doc = $doc])* $(#[serde($($s)*)])* pub $f: $t ),* }
        impl $(<$lt>)? Describe for $name $(<$lt>)? {
            fn shape() -> Shape {
                Shape {
                    ty: Some(stringify!($name)),
                    fields: vec![$(Field {
                        name: stringify!($f),
                        doc: concat!($($doc),*),
                        shape: <$t as Describe>::shape(),
                    }),*],
                    ..Shape::default()
                }
            }
        }
    };
}

mod dhcp;
mod machine;
mod media;
mod report;

pub use dhcp::*;
pub use machine::*;
pub use media::*;
pub use report::*;

/// The help of an undefined-value error in template `name`: the variables
/// it sees (a built-in with its own context), else those of kernel args,
/// per-machine files and scripts.
pub fn undefined_help(name: &str) -> String {
    let machine: Vec<&str> = MachineContext::shape()
        .fields
        .iter()
        .map(|f| f.name)
        .collect();
    match builtin(name) {
        Some((_, fields)) if fields.iter().map(|f| f.name).ne(machine.iter().copied()) => {
            let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
            format!("available: {}", names.join(", "))
        }
        _ => MachineContext::help(),
    }
}

/// What a built-in template is for and the variables it sees, by name.
pub fn builtin(name: &str) -> Option<(&'static str, Vec<Field>)> {
    // A machine's script always has a machine and a boot; the fallback,
    // which includes boot-commands.ipxe.j2 too, has no machine.
    let script = |always: &[&str]| {
        let mut fields = MachineContext::shape().fields;
        for f in &mut fields {
            f.shape.optional &= !always.contains(&f.name);
        }
        fields
    };
    Some(match name {
        "boot.ipxe.j2" => (
            "http/boot.ipxe: the entry script every iPXE fetches first",
            BootContext::shape().fields,
        ),
        "fallback.ipxe.j2" => (
            "http/fallback.ipxe: what machines the site does not know boot",
            FallbackContext::shape().fields,
        ),
        "machine.ipxe.j2" => (
            "http/machines/MAC.ipxe: a machine's boot script, one per MAC (unless its role sets script =)",
            script(&["machine", "boot"]),
        ),
        "boot-commands.ipxe.j2" => (
            "included by machine.ipxe.j2 and fallback.ipxe.j2: the commands that boot `boot` (in the fallback: its role, image and boot, no machine)",
            script(&["boot"]),
        ),
        "grub.cfg.grub.j2" => (
            "tftp/grub/grub.cfg: what Debian's signed GRUB reads first (shim -> GRUB), and with [media] http/grub/grub.cfg, what the media's GRUB reads; it runs the config of the machine's MAC ($bootc_mac, else $net_default_mac), else the fallback",
            GrubEntryContext::shape().fields,
        ),
        "machine.grub.j2" => (
            "tftp/grub/grub.cfg-01-MAC: a machine's GRUB config, one per MAC (machines booting through shim and GRUB; with [media] every machine also under http/grub/); boot URLs are paths on the TFTP or HTTP server",
            script(&["machine", "boot"]),
        ),
        "fallback.grub.j2" => (
            "tftp/grub/fallback.cfg (and with [media] http/grub/fallback.cfg): what unknown machines boot through GRUB",
            FallbackContext::shape().fields,
        ),
        "boot-commands.grub.j2" => (
            "included by machine.grub.j2 and fallback.grub.j2: the GRUB commands that boot `boot`",
            script(&["boot"]),
        ),
        "media.ipxe.j2" => (
            "the BIOS side of the boot media (http/media/boot.iso, bootc media): the iPXE script embedded in the image; it brings up the network (DHCP, or the machine's static address) and enters the site",
            MediaContext::shape().fields,
        ),
        "media.grub.j2" => (
            "the UEFI side of the boot media: the GRUB config embedded in the image; it brings up the network, sets bootc_mac and reads the site's GRUB configs over HTTP",
            MediaContext::shape().fields,
        ),
        "report.html.j2" => (
            "report/index.html: the build report",
            ReportContext::shape().fields,
        ),
        "dhcpd.conf.j2" | "kea-dhcp4.json.j2" | "dnsmasq.conf.j2" => (
            "dhcp/: a DHCP server configuration (with [dhcp])",
            DhcpContext::shape().fields,
        ),
        _ => return None,
    })
}

/// One variable path a template may use (`site.name`, `roles[].name`).
#[derive(Debug, Clone)]
pub struct Var {
    pub path: String,
    pub doc: &'static str,
    /// The value itself may be none or absent.
    pub optional: bool,
    /// It, or a parent, may be none or absent.
    pub maybe_absent: bool,
    /// Its fields are those listed under this earlier path.
    pub same_as: Option<String>,
}

/// Every variable path below `fields`; a view type's fields are listed
/// under its first path only.
pub fn paths(fields: &[Field]) -> Vec<Var> {
    fn walk(
        fs: &[Field],
        prefix: &str,
        absent: bool,
        seen: &mut BTreeMap<&'static str, String>,
        out: &mut Vec<Var>,
    ) {
        for f in fs {
            let path = format!("{prefix}{}", f.name);
            let maybe_absent = absent || f.shape.optional;
            let same_as = f.shape.ty.and_then(|t| seen.get(t).cloned());
            if let (Some(t), None) = (f.shape.ty, &same_as) {
                seen.insert(t, path.clone());
            }
            out.push(Var {
                path: path.clone(),
                doc: f.doc.trim(),
                optional: f.shape.optional,
                maybe_absent,
                same_as: same_as.clone(),
            });
            if same_as.is_none() {
                let inner = if f.shape.list {
                    format!("{path}[].")
                } else {
                    format!("{path}.")
                };
                walk(&f.shape.fields, &inner, maybe_absent, seen, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(fields, "", false, &mut BTreeMap::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Row for char {
        type View = String;
        fn view(&self) -> String {
            self.to_string()
        }
    }

    #[test]
    fn rows_picked_from_a_list_are_read_in_their_order() {
        let all = Rows::new(vec!['a', 'b', 'c', 'd']);
        let some = all.pick(|c| *c != 'a' && *c != 'c');
        let fewer = some.pick(|c| *c == 'd');
        let mut env = minijinja::Environment::new();
        env.add_template(
            "t",
            "{% for x in rows %}{{ x }}{% endfor %} {{ rows|length }} {{ rows[1] }}",
        )
        .unwrap();
        let render = |rows: &Rows<char>| {
            let ctx = crate::templates::val(BTreeMap::from([("rows", rows)]));
            env.get_template("t").unwrap().render(ctx).unwrap()
        };
        assert_eq!(render(&all), "abcd 4 b");
        assert_eq!(render(&some), "bd 2 d");
        assert_eq!(render(&fewer), "d 1 ");
        assert_eq!(serde_json::to_string(&some).unwrap(), r#"["b","d"]"#);
    }
}
