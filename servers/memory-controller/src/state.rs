//! The server's table of groups, as kept in the journal, and how a group's
//! host directory is derived from it.
//!
//! Group ids are unique per constellation; a group with a parent lives in
//! its parent's directory, so the host path is `<base>/<ancestors>/<id>`,
//! computed from validated ids only.

use cgroupfs::CgroupDir;
use protocol::memory::MemoryLimits;
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub groups: BTreeMap<String, GroupRecord>,
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
}

impl Table {
    /// The group's path relative to the base: its ancestors' ids, then its own.
    pub fn rel_path(&self, id: &str) -> Result<PathBuf, Error> {
        let mut parts = vec![id.to_string()];
        let mut cur = id;
        while let Some(p) = self.groups.get(cur).and_then(|r| r.parent.as_deref()) {
            if parts.len() > self.groups.len() {
                return Err(Error::internal(format!(
                    "the parents of group {id} form a cycle"
                )));
            }
            parts.push(p.to_string());
            cur = p;
        }
        parts.reverse();
        Ok(parts.iter().collect())
    }

    pub fn dir(&self, base: &CgroupDir, id: &str) -> Result<CgroupDir, Error> {
        Ok(CgroupDir::new(base.path().join(self.rel_path(id)?)))
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
        }
    }

    #[test]
    fn paths_follow_parents() {
        let mut t = Table::default();
        t.groups.insert("pod".into(), rec(None));
        t.groups.insert("web".into(), rec(Some("pod")));
        t.groups.insert("sidecar".into(), rec(Some("web")));
        assert_eq!(t.rel_path("pod").unwrap(), PathBuf::from("pod"));
        assert_eq!(
            t.rel_path("sidecar").unwrap(),
            PathBuf::from("pod/web/sidecar")
        );
        assert_eq!(t.children_of("pod"), vec!["web".to_string()]);
        let base = CgroupDir::new("/b");
        assert_eq!(
            t.dir(&base, "web").unwrap().path(),
            std::path::Path::new("/b/pod/web")
        );
        assert!(t.get("nope").unwrap_err().message.contains("nope"));
    }
}
