//! Rebuilding the table on start from the journal plus the kernel's mount
//! table.
//!
//! - A journaled read-only rootfs whose bind is gone is **re-made** when its
//!   source is still a directory: the record is a promise to init that the
//!   path holds the container's read-only rootfs, and a container not yet
//!   launched would otherwise get an empty directory as its root. (A running
//!   container is not affected either way: its mount namespace holds its own
//!   copy of the bind.) When the source is gone too there is nothing to
//!   re-make: the record is **dropped** and its empty mount point removed.
//! - A mount at `<root>/containers/<id>/rootfs` that the journal does not know
//!   is **adopted**, never unmounted: "never destroy what you cannot account
//!   for". `release` then removes it like any other.
//! - Any other mount under `<root>/containers` is left alone with a warning.

use crate::mountinfo::MountEntry;
use crate::state::{Paths, Record, Table};
use std::collections::BTreeSet;

/// Ids of read-only records whose bind is not in `mounts`.
pub fn missing_binds(table: &Table, paths: &Paths, mounts: &[MountEntry]) -> Vec<String> {
    table
        .rootfs
        .iter()
        .filter(|(_, r)| r.readonly || r.adopted)
        .filter(|(id, _)| crate::mountinfo::at(mounts, &paths.mount_point(id)).is_none())
        .map(|(id, _)| id.clone())
        .collect()
}

/// What to do with a record whose bind is gone.
#[derive(Debug, PartialEq, Eq)]
pub enum Missing {
    Remake,
    Drop,
}

pub fn decide(rec: &Record) -> Missing {
    if !rec.adopted && !rec.source.is_empty() && std::path::Path::new(&rec.source).is_dir() {
        Missing::Remake
    } else {
        Missing::Drop
    }
}

/// Adopts every `<containers>/<id>/rootfs` mount the table does not know;
/// returns the adopted ids. Mounts inside a known rootfs (brought along by
/// the recursive bind) are expected and skipped silently.
pub fn adopt_unknown(table: &mut Table, paths: &Paths, mounts: &[MountEntry]) -> Vec<String> {
    let mut adopted = vec![];
    let mut warned = BTreeSet::new();
    for m in mounts {
        let Ok(rel) = m.mount_point.strip_prefix(&paths.containers) else {
            continue;
        };
        let Some(id) = paths.id_of_mount_point(&m.mount_point) else {
            if !inside_a_rootfs(paths, &m.mount_point) && warned.insert(m.mount_point.clone()) {
                tracing::warn!(
                    "leaving {} alone: a mount under {} that is not a container rootfs",
                    m.mount_point.display(),
                    paths.containers.display()
                );
            }
            continue;
        };
        match table.rootfs.get(&id) {
            Some(r) if r.readonly || r.adopted => {}
            Some(_) => {
                if warned.insert(m.mount_point.clone()) {
                    tracing::warn!(
                        "leaving {} alone: container {id} was prepared writable, without a mount",
                        rel.display()
                    );
                }
            }
            None => {
                table.rootfs.insert(
                    id.clone(),
                    Record {
                        bundle: String::new(),
                        root_path: String::new(),
                        readonly: m.readonly(),
                        source: String::new(),
                        rootfs: m.mount_point.display().to_string(),
                        made_parent: false,
                        adopted: true,
                    },
                );
                tracing::info!(
                    "adopted the rootfs mount {} (root {} on {}) found without a journal entry",
                    m.mount_point.display(),
                    m.root,
                    m.source
                );
                adopted.push(id);
            }
        }
    }
    adopted
}

/// `<containers>/<id>/rootfs/...`: inside a rootfs.
fn inside_a_rootfs(paths: &Paths, p: &std::path::Path) -> bool {
    let Ok(rel) = p.strip_prefix(&paths.containers) else {
        return false;
    };
    let parts: Vec<_> = rel.iter().collect();
    parts.len() > 2 && parts[1] == "rootfs"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse;

    fn rec(readonly: bool, source: &str) -> Record {
        Record {
            bundle: "/b".into(),
            root_path: "rootfs".into(),
            readonly,
            source: source.into(),
            rootfs: "/r".into(),
            made_parent: true,
            adopted: false,
        }
    }

    fn line(id: u32, mp: &str, opts: &str) -> String {
        format!("{id} 27 254:0 /b/rootfs {mp} {opts} - ext4 /dev/vda rw\n")
    }

    #[test]
    fn journal_and_mountinfo_are_reconciled() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::new(t.path()).unwrap();
        let c = paths.containers.display().to_string();
        let src = tempfile::tempdir().unwrap();
        let src = src.path().to_str().unwrap();
        let mut table = Table::default();
        table.rootfs.insert("kept".into(), rec(true, src));
        table.rootfs.insert("gone".into(), rec(true, src));
        table
            .rootfs
            .insert("gone-src".into(), rec(true, "/nonexistent-src"));
        table.rootfs.insert("writable".into(), rec(false, src));
        let text = [
            line(1, &format!("{c}/kept/rootfs"), "ro"),
            line(2, &format!("{c}/kept/rootfs/proc"), "rw"),
            line(3, &format!("{c}/stray/rootfs"), "ro"),
            line(4, &format!("{c}/stray/rootfs"), "ro"), // stacked: adopted once
            line(5, &format!("{c}/writable/rootfs"), "ro"),
            line(6, &format!("{c}/odd"), "rw"),
            line(7, &format!("{c}/.bad/rootfs"), "rw"),
            line(8, "/elsewhere/x/rootfs", "ro"),
        ]
        .concat();
        let mounts = parse(&text);

        let missing = missing_binds(&table, &paths, &mounts);
        assert_eq!(missing, vec!["gone".to_string(), "gone-src".to_string()]);
        assert_eq!(decide(&table.rootfs["gone"]), Missing::Remake);
        assert_eq!(decide(&table.rootfs["gone-src"]), Missing::Drop);

        let adopted = adopt_unknown(&mut table, &paths, &mounts);
        assert_eq!(adopted, vec!["stray".to_string()]);
        let s = &table.rootfs["stray"];
        assert!(s.adopted && s.readonly && !s.made_parent);
        assert_eq!(s.rootfs, format!("{c}/stray/rootfs"));
        assert_eq!(decide(s), Missing::Drop, "an adopted bind is never re-made");
        // the writable record is untouched, the odd mounts are not adopted
        assert!(!table.rootfs["writable"].adopted);
        assert_eq!(table.rootfs.len(), 5);
    }
}
