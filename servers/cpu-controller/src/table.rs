//! The server's table of groups, as kept in the journal.

use libipc::journal::{self, Rows};
use protocol::cpu::{BlockIo, CpuLimits, DeviceRule};
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub groups: Rows<Record>,
    /// Parent directories (in every hierarchy) that cgroupsPath creates
    /// made, removed at the server's stop once empty.
    #[serde(default)]
    pub made: BTreeSet<PathBuf>,
}

impl journal::Table for Table {
    type Change = cgroupfs::table::GroupsChange<Record>;
    fn take_change(&mut self) -> Self::Change {
        Self::Change::take(&mut self.groups, &self.made)
    }
    fn apply_change(&mut self, c: Self::Change) {
        c.apply(&mut self.groups, &mut self.made)
    }
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
    /// The config's `linux.cgroupsPath`, when the group was made there.
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// The device rules it was made with (put back if its devices
    /// directory is lost while the server is down).
    #[serde(default)]
    pub devices: Vec<DeviceRule>,
    /// Its `linux.resources.blockIO`: it has a group in the blkio
    /// hierarchy only then.
    #[serde(default)]
    pub block_io: Option<BlockIo>,
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

    /// The group's path from the base: "web", or "pod/web" under parent
    /// "pod"; for a group at a cgroupsPath, see [`at_rel`].
    pub fn rel(&self, id: &str) -> Result<PathBuf, Error> {
        let mut chain = vec![id.to_string()];
        let mut cur = self.get(id)?;
        loop {
            if let Some(path) = &cur.cgroups_path {
                let below = chain.iter().rev().skip(1);
                return Ok(below.fold(at_rel(path)?, |r, c| r.join(c)));
            }
            let Some(p) = &cur.parent else { break };
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

/// A cgroupsPath as a path from the base that [`crate::layout::Mount::dir`]
/// resolves in each hierarchy: "/default/c1" from the hierarchy's root, or
/// "../pods/c1" from the base's parent (the cgroup of the process that
/// started the constellation). Checked again here: `..` can only be the
/// first component, the one this function adds.
pub fn at_rel(cgroups_path: &str) -> Result<PathBuf, Error> {
    let parts = protocol::cgroup::cgroups_path_parts(cgroups_path)?;
    let start = match cgroups_path.starts_with('/') {
        true => "/",
        false => "..",
    };
    Ok(parts.iter().fold(PathBuf::from(start), |r, p| r.join(p)))
}

/// How a request changes the table once the kernel has done it.
// One lives for the length of a request: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Change {
    None,
    /// The group, and the cgroupsPath parents its create made.
    Put(String, Record, Vec<PathBuf>),
    Remove(String),
}

impl Change {
    pub fn apply(self, t: &mut Table) {
        match self {
            Change::None => {}
            Change::Put(id, r, made) => {
                t.groups.insert(id, r);
                t.made.extend(made);
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
            cgroups_path: None,
            devices: vec![],
            block_io: None,
        }
    }

    #[test]
    fn nested_paths_and_loops() {
        let mut t = Table::default();
        t.groups.insert("pod".into(), rec(None));
        t.groups.insert("web".into(), rec(Some("pod")));
        assert_eq!(t.rel("web").unwrap(), PathBuf::from("pod/web"));
        assert_eq!(t.children("pod"), vec!["web".to_string()]);
        let at = |p: &str| Record {
            cgroups_path: Some(p.into()),
            ..rec(None)
        };
        t.groups.insert("c1".into(), at("pods//c1"));
        t.groups.insert("c2".into(), at("/default/c2"));
        t.groups.insert("in-c1".into(), rec(Some("c1")));
        assert_eq!(t.rel("c1").unwrap(), PathBuf::from("../pods/c1"));
        assert_eq!(t.rel("c2").unwrap(), PathBuf::from("/default/c2"));
        assert_eq!(t.rel("in-c1").unwrap(), PathBuf::from("../pods/c1/in-c1"));
        assert!(at_rel("a/../b").is_err());
        t.groups.insert("a".into(), rec(Some("b")));
        t.groups.insert("b".into(), rec(Some("a")));
        assert!(t.rel("a").is_err());
        assert_eq!(
            t.get("nope").unwrap_err().kind,
            protocol::ErrorKind::NotFound
        );
    }
}
