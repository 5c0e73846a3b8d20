//! The server's table of prepared rootfs, as kept in the journal, and the
//! host paths derived from a validated container id.

use libipc::journal::{self, RowChanges, Rows};
use protocol::vfs::VfsRootfs;
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub rootfs: Rows<Record>,
}

/// The journal logs the rows changed.
impl journal::Table for Table {
    type Change = RowChanges<Record>;
    fn take_change(&mut self) -> RowChanges<Record> {
        self.rootfs.take_changes()
    }
    fn apply_change(&mut self, c: RowChanges<Record>) {
        self.rootfs.apply(c)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// What Prepare was asked (empty for an adopted mount).
    pub bundle: String,
    pub root_path: String,
    pub readonly: bool,
    /// The bundle rootfs with symlinks resolved (empty for an adopted mount).
    pub source: String,
    /// The answer: the read-only bind, or the source itself.
    pub rootfs: String,
    /// Prepare created `<root>/containers/<id>` (init may have made it first;
    /// then it is init's to remove).
    pub made_parent: bool,
    /// Found in mountinfo without a journal entry and taken over.
    pub adopted: bool,
}

impl Record {
    pub fn same_request(&self, bundle: &str, root_path: &str, readonly: bool) -> bool {
        !self.adopted
            && self.bundle == bundle
            && self.root_path == root_path
            && self.readonly == readonly
    }

    pub fn view(&self, id: &str, mounted: bool) -> VfsRootfs {
        VfsRootfs {
            id: id.to_string(),
            bundle: self.bundle.clone(),
            root_path: self.root_path.clone(),
            readonly: self.readonly,
            source: self.source.clone(),
            rootfs: self.rootfs.clone(),
            mounted,
            adopted: self.adopted,
        }
    }
}

impl Table {
    pub fn get(&self, id: &str) -> Result<&Record, Error> {
        self.rootfs
            .get(id)
            .ok_or_else(|| Error::not_found(format!("no rootfs is prepared for container {id:?}")))
    }
}

/// Where the server's paths live, all derived from the constellation root.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `<root>/containers`, symlinks resolved (mountinfo shows real paths).
    pub containers: PathBuf,
}

impl Paths {
    pub fn new(root: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(root)
            .map_err(|e| Error::io(format!("create {}", root.display()), &e))?;
        let root = std::fs::canonicalize(root)
            .map_err(|e| Error::io(format!("resolve {}", root.display()), &e))?;
        Ok(Paths {
            containers: root.join("containers"),
        })
    }

    /// `<root>/containers/<id>`, shared with init (state.json lives there).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers.join(id)
    }

    /// `<root>/containers/<id>/rootfs`: the read-only bind's mount point.
    pub fn mount_point(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("rootfs")
    }

    /// The container id of a mount point `<containers>/<id>/rootfs`, if it is
    /// one; None for anything else under (or outside) `<containers>`.
    pub fn id_of_mount_point(&self, mount_point: &Path) -> Option<String> {
        let rel = mount_point.strip_prefix(&self.containers).ok()?;
        let parts: Vec<_> = rel.iter().collect();
        match parts.as_slice() {
            [id, leaf] if *leaf == "rootfs" => {
                let id = id.to_str()?;
                protocol::validate_id("container id", id).ok()?;
                Some(id.to_string())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_from_ids_and_back() {
        let t = tempfile::tempdir().unwrap();
        let p = Paths::new(t.path()).unwrap();
        let real = std::fs::canonicalize(t.path()).unwrap();
        assert_eq!(p.mount_point("c1"), real.join("containers/c1/rootfs"));
        assert_eq!(
            p.id_of_mount_point(&real.join("containers/c1/rootfs")),
            Some("c1".into())
        );
        for other in [
            "containers/c1",
            "containers/c1/rootfs/proc",
            "containers/.x/rootfs",
            "elsewhere/c1/rootfs",
        ] {
            assert_eq!(p.id_of_mount_point(&real.join(other)), None, "{other}");
        }
    }

    #[test]
    fn same_request_ignores_adopted_records() {
        let mut r = Record {
            bundle: "/b".into(),
            root_path: "rootfs".into(),
            readonly: true,
            source: "/b/rootfs".into(),
            rootfs: "/r".into(),
            made_parent: true,
            adopted: false,
        };
        assert!(r.same_request("/b", "rootfs", true));
        assert!(!r.same_request("/b", "rootfs", false));
        r.adopted = true;
        assert!(!r.same_request("/b", "rootfs", true));
        let t = Table::default();
        assert!(t.get("x").unwrap_err().message.contains("\"x\""));
    }
}
