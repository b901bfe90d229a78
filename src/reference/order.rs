//! The order of the keys of every object of a JSON text, by JSON pointer:
//! serde_json's maps sort their keys, and the reference lists a table's keys
//! in the order its schema gives them (`name` first in `[site]`).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Object keys in document order, by the object's JSON pointer.
pub struct Order(BTreeMap<String, Vec<String>>);

impl Order {
    pub fn of(json: &str) -> Order {
        let mut out = BTreeMap::new();
        let mut de = serde_json::Deserializer::from_str(json);
        Seed {
            at: String::new(),
            out: &mut out,
        }
        .deserialize(&mut de)
        .expect("the embedded schemas are JSON");
        Order(out)
    }

    /// The keys of the object at `pointer`, in document order.
    pub fn keys(&self, pointer: &str) -> Option<&[String]> {
        self.0.get(pointer).map(Vec::as_slice)
    }
}

struct Seed<'a> {
    at: String,
    out: &'a mut BTreeMap<String, Vec<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Seed {
                at: format!("{}/{i}", self.at),
                out: &mut *self.out,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = format!("{}/{}", self.at, key.replace('~', "~0").replace('/', "~1"));
            map.next_value_seed(Seed {
                at,
                out: &mut *self.out,
            })?;
            keys.push(key);
        }
        self.out.insert(self.at, keys);
        Ok(())
    }
}
