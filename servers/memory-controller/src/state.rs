//! The server's table of groups, as kept in the journal, and how a group's
//! host directory is derived from it.
//!
//! Group ids are unique per constellation; a group with a parent lives in
//! its parent's directory, so the host path is `<base>/<ancestors>/<id>`,
//! computed from validated ids only. A container's group made at its
//! config's `linux.cgroupsPath` lives where that path leads instead (see
//! [`cgroupfs::place`]), checked again each time it is resolved.

use cgroupfs::{CgroupDir, Places};
use libipc::journal::{self, Rows};
use protocol::memory::{HugepageLimit, MemoryLimits};
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub groups: Rows<GroupRecord>,
    /// Parent directories that cgroupsPath creates made, removed at the
    /// server's stop once empty.
    #[serde(default)]
    pub made: BTreeSet<PathBuf>,
}

impl journal::Table for Table {
    type Change = cgroupfs::table::GroupsChange<GroupRecord>;
    fn take_change(&mut self) -> Self::Change {
        Self::Change::take(&mut self.groups, &self.made)
    }
    fn apply_change(&mut self, c: Self::Change) {
        c.apply(&mut self.groups, &mut self.made)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub parent: Option<String>,
    /// What was asked for (Create, then every Set merged in); for an adopted
    /// group, the limits read back when it was adopted.
    pub requested: MemoryLimits,
    /// OOM notifications counted by the server (cgroup v1, where the kernel
    /// keeps no such counter).
    pub oom_events: u64,
    /// Found in cgroupfs without a journal entry and taken over.
    pub adopted: bool,
    /// The config's `linux.cgroupsPath`, when the group was made there.
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// Its `hugepageLimits`.
    #[serde(default)]
    pub hugepages: Vec<HugepageLimit>,
}

impl Table {
    /// The group's directory: at its cgroupsPath, or in its parent's
    /// directory (the base for a group without one), named by its id.
    pub fn dir(&self, places: &Places, id: &str) -> Result<CgroupDir, Error> {
        let mut chain = vec![id];
        let mut cur = id;
        loop {
            let rec = self.get(cur)?;
            if let Some(p) = &rec.cgroups_path {
                let top = places.resolve(p)?;
                return Ok(chain.iter().rev().skip(1).fold(top, |d, c| d.child(c)));
            }
            let Some(parent) = rec.parent.as_deref() else {
                return Ok(chain
                    .iter()
                    .rev()
                    .fold(places.base.clone(), |d, c| d.child(c)));
            };
            if chain.len() > self.groups.len() {
                return Err(Error::internal(format!(
                    "the parents of group {id} form a cycle"
                )));
            }
            chain.push(parent);
            cur = parent;
        }
    }

    /// Ids of the groups whose parent is `id`.
    pub fn children_of(&self, id: &str) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, r)| r.parent.as_deref() == Some(id))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn get(&self, id: &str) -> Result<&GroupRecord, Error> {
        self.groups
            .get(id)
            .ok_or_else(|| Error::not_found(format!("memory group {id:?} does not exist")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(parent: Option<&str>) -> GroupRecord {
        GroupRecord {
            parent: parent.map(str::to_string),
            requested: MemoryLimits::default(),
            oom_events: 0,
            adopted: false,
            cgroups_path: None,
            hugepages: vec![],
        }
    }

    #[test]
    fn paths_follow_parents() {
        let mut t = Table::default();
        t.groups.insert("pod".into(), rec(None));
        t.groups.insert("web".into(), rec(Some("pod")));
        t.groups.insert("sidecar".into(), rec(Some("web")));
        t.groups.insert(
            "c1".into(),
            GroupRecord {
                cgroups_path: Some("pods/c1".into()),
                ..rec(None)
            },
        );
        t.groups.insert("in-c1".into(), rec(Some("c1")));
        assert_eq!(t.children_of("pod"), vec!["web".to_string()]);
        let places = Places::new("/r", CgroupDir::new("/r/me/b"));
        let at = |id: &str| t.dir(&places, id).unwrap().path().to_path_buf();
        assert_eq!(at("pod"), PathBuf::from("/r/me/b/pod"));
        assert_eq!(at("sidecar"), PathBuf::from("/r/me/b/pod/web/sidecar"));
        assert_eq!(at("c1"), PathBuf::from("/r/me/pods/c1"));
        assert_eq!(at("in-c1"), PathBuf::from("/r/me/pods/c1/in-c1"));
        assert!(t.get("nope").unwrap_err().message.contains("nope"));
    }
}
