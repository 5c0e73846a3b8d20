//! Rebuilding the table on start from the journal plus cgroupfs.
//!
//! The kernel is the truth for what exists: a journaled group whose
//! directory is gone is dropped; a directory under the base that the
//! journal does not know is adopted with its limits read back. Nothing is
//! ever deleted here: "never destroy what you cannot account for".

use crate::state::{GroupRecord, Table};
use cgroupfs::{CgroupDir, Places};
use protocol::memory::MemoryLimits;
use protocol::Error;
use std::collections::BTreeSet;

/// Drops the groups whose directory no longer exists (and the made
/// parents that are gone); returns the groups' ids.
pub fn drop_missing(table: &mut Table, places: &Places) -> Vec<String> {
    let gone: Vec<String> = table
        .groups
        .keys()
        .filter(|id| !table.dir(places, id).map(|d| d.exists()).unwrap_or(false))
        .cloned()
        .collect();
    for id in &gone {
        table.groups.remove(id);
    }
    table.made.retain(|p| p.is_dir());
    gone
}

/// Adopts every directory under `base` that the table does not know,
/// reading its limits with `read`; returns the adopted ids. Directories
/// whose name is not a valid id, or whose id is already used elsewhere, are
/// left alone (with a warning) together with everything below them.
pub fn adopt_unknown(
    table: &mut Table,
    places: &Places,
    read: &dyn Fn(&CgroupDir) -> Result<MemoryLimits, Error>,
) -> Result<Vec<String>, Error> {
    adopt_unknown_except(table, places, read, &BTreeSet::new())
}

/// [`adopt_unknown`], leaving alone (with everything below them) the
/// directories of the groups in `theirs`: on cgroup v2 cpu-controller's
/// groups live under the same base, and are not ours to adopt.
pub fn adopt_unknown_except(
    table: &mut Table,
    places: &Places,
    read: &dyn Fn(&CgroupDir) -> Result<MemoryLimits, Error>,
    theirs: &BTreeSet<String>,
) -> Result<Vec<String>, Error> {
    let mut adopted = vec![];
    let ctx = Walk {
        places,
        read,
        theirs,
    };
    walk(table, &ctx, &places.base, None, &mut adopted)?;
    Ok(adopted)
}

/// What stays the same all the way down the walk.
struct Walk<'a> {
    places: &'a Places,
    read: &'a dyn Fn(&CgroupDir) -> Result<MemoryLimits, Error>,
    theirs: &'a BTreeSet<String>,
}

fn walk(
    table: &mut Table,
    w: &Walk,
    dir: &CgroupDir,
    parent: Option<&str>,
    adopted: &mut Vec<String>,
) -> Result<(), Error> {
    let (places, read) = (w.places, w.read);
    for child in dir.children()? {
        let name = child
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = protocol::validate_id("group id", &name) {
            tracing::warn!("leaving {} alone: {}", child.path().display(), e.message);
            continue;
        }
        if !table.groups.contains_key(&name) && w.theirs.contains(&name) {
            tracing::info!(
                "leaving {} to cpu-controller, which has group {name}",
                child.path().display()
            );
            continue;
        }
        if table.groups.contains_key(&name) {
            if table.dir(places, &name)? != child {
                tracing::warn!(
                    "leaving {} alone: group {name} already lives at {}",
                    child.path().display(),
                    table.dir(places, &name)?.path().display()
                );
                continue;
            }
        } else {
            let limits = match read(&child) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(
                        "leaving {} alone: cannot read its limits: {e}",
                        child.path().display()
                    );
                    continue;
                }
            };
            let rec = GroupRecord {
                parent: parent.map(str::to_string),
                requested: limits,
                oom_events: 0,
                adopted: true,
                cgroups_path: None,
                hugepages: vec![],
            };
            table.groups.insert(name.clone(), rec);
            tracing::info!(
                "adopted memory group {name} found at {}",
                child.path().display()
            );
            adopted.push(name.clone());
        }
        walk(table, w, &child, Some(&name), adopted)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::memory::Limit;

    fn rec(parent: Option<&str>, limit: u64) -> GroupRecord {
        GroupRecord {
            parent: parent.map(str::to_string),
            requested: MemoryLimits {
                limit: Some(Limit::Value(limit)),
                ..Default::default()
            },
            oom_events: 3,
            adopted: false,
            cgroups_path: None,
            hugepages: vec![],
        }
    }

    fn read_limit_file(d: &CgroupDir) -> Result<MemoryLimits, Error> {
        Ok(MemoryLimits {
            limit: Some(Limit::Value(d.read_u64("limit")?)),
            ..Default::default()
        })
    }

    #[test]
    fn journal_and_cgroupfs_are_reconciled() {
        let t = tempfile::tempdir().unwrap();
        let base = Places::new(t.path(), CgroupDir::new(t.path()));
        let mk = |rel: &str, limit: u64| {
            std::fs::create_dir_all(t.path().join(rel)).unwrap();
            std::fs::write(t.path().join(rel).join("limit"), limit.to_string()).unwrap();
        };
        mk("kept", 1);
        mk("kept/child", 2);
        mk("stray", 5);
        mk("stray/nested", 6);
        mk(".hidden", 7);
        mk("kept/dup", 8); // id "dup" is journaled at the top level
        mk("dup", 9);
        let mut table = Table::default();
        table.groups.insert("kept".into(), rec(None, 1));
        table.groups.insert("child".into(), rec(Some("kept"), 2));
        table.groups.insert("dup".into(), rec(None, 9));
        table.groups.insert("gone".into(), rec(None, 3));
        table
            .groups
            .insert("gonechild".into(), rec(Some("gone"), 4));

        let dropped = drop_missing(&mut table, &base);
        assert_eq!(dropped, vec!["gone".to_string(), "gonechild".to_string()]);

        let adopted = adopt_unknown(&mut table, &base, &read_limit_file).unwrap();
        assert_eq!(adopted, vec!["stray".to_string(), "nested".to_string()]);
        let nested = &table.groups["nested"];
        assert_eq!(nested.parent.as_deref(), Some("stray"));
        assert!(nested.adopted);
        assert_eq!(nested.requested.limit, Some(Limit::Value(6)));
        // journaled groups keep what was asked and their OOM count
        assert_eq!(table.groups["kept"].oom_events, 3);
        assert!(!table.groups.contains_key(".hidden"));
        // nothing was deleted
        for rel in ["kept/child", "stray/nested", ".hidden", "kept/dup", "dup"] {
            assert!(t.path().join(rel).is_dir(), "{rel} was removed");
        }
    }

    #[test]
    fn unreadable_dirs_are_left_alone() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("nolimit")).unwrap();
        let mut table = Table::default();
        let adopted = adopt_unknown(
            &mut table,
            &Places::new(t.path(), CgroupDir::new(t.path())),
            &read_limit_file,
        )
        .unwrap();
        assert!(adopted.is_empty());
        assert!(t.path().join("nolimit").is_dir());
    }
}
