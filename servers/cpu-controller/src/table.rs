//! The server's table of groups, as kept in the journal.

use protocol::cpu::CpuLimits;
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub groups: BTreeMap<String, Record>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub parent: Option<String>,
    /// What was asked for: the Create's limits with every Set laid over them.
    /// For an adopted group, what the kernel held when it was found.
    pub requested: CpuLimits,
    /// Found on cgroupfs at start rather than created through a request.
    #[serde(default)]
    pub adopted: bool,
}

/// Deepest nesting accepted; also stops a loop in a hand-edited journal.
pub const MAX_DEPTH: usize = 16;

impl Table {
    pub fn get(&self, id: &str) -> Result<&Record, Error> {
        self.groups.get(id).ok_or_else(|| {
            Error::not_found(format!(
                "no cpu group {id:?}; `ipc cpu-controller list` shows the groups"
            ))
        })
    }

    /// The group's path below the base: "web", or "pod/web" under parent "pod".
    pub fn rel(&self, id: &str) -> Result<PathBuf, Error> {
        let mut chain = vec![id.to_string()];
        let mut cur = self.get(id)?;
        while let Some(p) = &cur.parent {
            if chain.len() >= MAX_DEPTH {
                return Err(Error::internal(format!(
                    "cpu group {id:?} is nested more than {MAX_DEPTH} deep (or its parents form a loop)"
                )));
            }
            chain.push(p.clone());
            cur = self.get(p)?;
        }
        Ok(chain.iter().rev().collect())
    }

    /// The groups whose parent is `id`.
    pub fn children(&self, id: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, r)| r.parent.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// How a request changes the table once the kernel has done it.
#[derive(Debug)]
pub enum Change {
    None,
    Put(String, Record),
    Remove(String),
}

impl Change {
    pub fn apply(self, t: &mut Table) {
        match self {
            Change::None => {}
            Change::Put(id, r) => {
                t.groups.insert(id, r);
            }
            Change::Remove(id) => {
                t.groups.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(parent: Option<&str>) -> Record {
        Record {
            parent: parent.map(Into::into),
            requested: CpuLimits::default(),
            adopted: false,
        }
    }

    #[test]
    fn nested_paths_and_loops() {
        let mut t = Table::default();
        t.groups.insert("pod".into(), rec(None));
        t.groups.insert("web".into(), rec(Some("pod")));
        assert_eq!(t.rel("web").unwrap(), PathBuf::from("pod/web"));
        assert_eq!(t.children("pod"), vec!["web".to_string()]);
        t.groups.insert("a".into(), rec(Some("b")));
        t.groups.insert("b".into(), rec(Some("a")));
        assert!(t.rel("a").is_err());
        assert_eq!(
            t.get("nope").unwrap_err().kind,
            protocol::ErrorKind::NotFound
        );
    }
}
