//! A map by name held as one list sorted by name, found by binary search:
//! for maps made once and then read, many of them or large (a machine's
//! file hashes in the plan, a map's B-tree node of over 500 bytes each;
//! what `bootc serve` serves, made in one walk of a sorted tree).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Values by name, sorted by name. Read and written as a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByName<V>(Vec<(String, V)>);

impl<V> Default for ByName<V> {
    fn default() -> Self {
        ByName(Vec::new())
    }
}

impl<V> ByName<V> {
    /// From a list sorted by name, each name once (a tree's files).
    pub fn from_sorted(list: Vec<(String, V)>) -> Self {
        debug_assert!(list.windows(2).all(|w| w[0].0 < w[1].0), "sorted");
        ByName(list)
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        let at = self.find(name).ok()?;
        Some(&self.0[at].1)
    }

    /// Sets the value of `name`.
    pub fn insert(&mut self, name: String, v: V) {
        match self.find(&name) {
            Ok(at) => self.0[at].1 = v,
            Err(at) => self.0.insert(at, (name, v)),
        }
    }

    fn find(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    /// Name and value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(n, v)| (n, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    /// The list itself, sorted by name.
    pub fn as_slice(&self) -> &[(String, V)] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for ByName<V> {
    /// The last value of a name given twice is kept, as a map's insert would.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut list: Vec<(String, V)> = iter.into_iter().collect();
        list.reverse();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list.dedup_by(|a, b| a.0 == b.0);
        list.shrink_to_fit();
        ByName(list)
    }
}

impl<'a, V> IntoIterator for &'a ByName<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n, v))
    }
}

impl<V: Serialize> Serialize for ByName<V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for ByName<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(BTreeMap::<String, V>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::ByName;

    #[test]
    fn a_list_by_name_is_a_map() {
        let pair = |n: &str, h: &str| (n.to_string(), h.to_string());
        let mut files: ByName<String> = [pair("b", "1"), pair("a", "2"), pair("b", "3")]
            .into_iter()
            .collect();
        // The last value of a name given twice, as a map's insert keeps.
        assert_eq!(files.get("b").map(String::as_str), Some("3"));
        files.insert("c".into(), "4".into());
        files.insert("a".into(), "5".into());
        assert_eq!(files.len(), 3);
        let json = serde_json::to_string(&files).unwrap();
        assert_eq!(json, r#"{"a":"5","b":"3","c":"4"}"#);
        let back: ByName<String> = serde_json::from_str(r#"{"c":"4","a":"5","b":"3"}"#).unwrap();
        assert_eq!(back, files);
        assert_eq!(files.get("d"), None);
    }
}
