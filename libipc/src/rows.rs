//! A server table's rows by key (a container id), which remember which
//! keys changed since the journal last logged them.
//!
//! The journal logs each change of a table as the rows it touched
//! ([`RowChanges`]) rather than as the whole table: with hundreds of
//! containers the whole table was hundreds of kilobytes of JSON written
//! twice per request, and `ipc run` took twice as long with 300 containers
//! running as with none. Every way to change a row goes through a method
//! here that notes its key, so no change can miss the log.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::collections::{btree_map, BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub struct Rows<V> {
    map: BTreeMap<String, V>,
    /// Keys inserted, changed or removed since [`Rows::take_changes`].
    changed: BTreeSet<String>,
}

/// Rows set to a value (`Some`) or removed (`None`), in key order. Applying
/// it again gives the same rows: each entry says what the row became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowChanges<V>(pub Vec<(String, Option<V>)>);

impl<V> Default for Rows<V> {
    fn default() -> Self {
        Rows {
            map: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }
}

/// Two tables are equal when their rows are; what is still to be logged
/// does not count.
impl<V: PartialEq> PartialEq for Rows<V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<V: Eq> Eq for Rows<V> {}

/// As the map it holds: journals written before rows were tracked read
/// the same.
impl<V: Serialize> Serialize for Rows<V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.map.serialize(s)
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Rows<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Rows {
            map: BTreeMap::deserialize(d)?,
            changed: BTreeSet::new(),
        })
    }
}

impl<V> FromIterator<(String, V)> for Rows<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let map: BTreeMap<String, V> = iter.into_iter().collect();
        Rows {
            changed: map.keys().cloned().collect(),
            map,
        }
    }
}

impl<'a, V> IntoIterator for &'a Rows<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = btree_map::Iter<'a, String, V>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

impl<V> std::ops::Index<&str> for Rows<V> {
    type Output = V;
    /// The row under `key`; panics without one, as a map's index does.
    fn index(&self, key: &str) -> &V {
        &self.map[key]
    }
}

impl<V> Rows<V> {
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.get(key)
    }

    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        String: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(key)
    }

    /// The row to change in place; its key is noted as changed.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let row = self.map.get_mut(key)?;
        self.changed.insert(key.to_string());
        Some(row)
    }

    pub fn insert(&mut self, key: String, row: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, row)
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let row = self.map.remove(key)?;
        self.changed.insert(key.to_string());
        Some(row)
    }

    /// Keeps the rows `keep` says yes to; the others are removed (and noted).
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &V) -> bool) {
        let changed = &mut self.changed;
        self.map.retain(|k, v| {
            let kept = keep(k, v);
            if !kept {
                changed.insert(k.clone());
            }
            kept
        });
    }

    pub fn iter(&self) -> btree_map::Iter<'_, String, V> {
        self.map.iter()
    }

    pub fn keys(&self) -> btree_map::Keys<'_, String, V> {
        self.map.keys()
    }

    pub fn values(&self) -> btree_map::Values<'_, String, V> {
        self.map.values()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// What the changed rows are now, and forgets that they changed.
    pub fn take_changes(&mut self) -> RowChanges<V>
    where
        V: Clone,
    {
        let changed = std::mem::take(&mut self.changed);
        RowChanges(
            changed
                .into_iter()
                .map(|k| {
                    let row = self.map.get(&k).cloned();
                    (k, row)
                })
                .collect(),
        )
    }

    /// Replays logged changes (nothing is noted: they are logged already).
    pub fn apply(&mut self, changes: RowChanges<V>) {
        for (key, row) in changes.0 {
            match row {
                Some(row) => self.map.insert(key, row),
                None => self.map.remove(&key),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_noted_once_with_its_latest_value() {
        let mut rows = Rows::default();
        rows.insert("a".into(), 1);
        rows.insert("b".into(), 2);
        rows.insert("c".into(), 3);
        *rows.get_mut("a").unwrap() = 10;
        assert_eq!(
            rows.take_changes(),
            RowChanges(vec![
                ("a".into(), Some(10)),
                ("b".into(), Some(2)),
                ("c".into(), Some(3))
            ])
        );
        assert_eq!(rows.take_changes(), RowChanges(vec![]), "taken");
        rows.remove("b");
        rows.retain(|k, _| k != "c");
        assert!(rows.get_mut("nope").is_none());
        assert_eq!(rows.remove("nope"), None);
        assert_eq!(
            rows.take_changes(),
            RowChanges(vec![("b".into(), None), ("c".into(), None)])
        );
        assert_eq!(rows.keys().collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn replaying_changes_rebuilds_the_rows_and_is_idempotent() {
        let mut live = Rows::default();
        let mut copy: Rows<u32> = Rows::default();
        let mut log = vec![];
        live.insert("a".into(), 1);
        live.insert("b".into(), 2);
        log.push(live.take_changes());
        live.remove("a");
        *live.get_mut("b").unwrap() = 20;
        live.insert("c".into(), 3);
        log.push(live.take_changes());
        for changes in log.iter().cloned() {
            copy.apply(changes);
        }
        assert_eq!(copy, live);
        // Replayed again over the result (a crash mid-compaction): the same.
        for changes in log {
            copy.apply(changes);
        }
        assert_eq!(copy, live);
        assert!(copy.take_changes().0.is_empty(), "replay notes nothing");
    }

    #[test]
    fn encodes_as_the_plain_map_it_replaces() {
        let mut rows = Rows::default();
        rows.insert("x".to_string(), 5u32);
        let json = serde_json::to_string(&rows).unwrap();
        assert_eq!(json, r#"{"x":5}"#);
        let back: Rows<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rows);
        let changes = serde_json::to_string(&RowChanges(vec![
            ("x".to_string(), Some(5u32)),
            ("y".to_string(), None),
        ]))
        .unwrap();
        assert_eq!(changes, r#"[["x",5],["y",null]]"#);
    }
}
