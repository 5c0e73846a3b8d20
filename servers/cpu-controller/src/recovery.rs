//! Rebuilding the table at start from the journal and cgroupfs.
//!
//! The kernel is the truth for what exists, the journal for what was asked:
//! - a journaled group whose directories are all gone is dropped (someone
//!   removed it while we were down);
//! - a journaled group missing in some hierarchies gets its directories and
//!   requested limits back there;
//! - a directory under the base that the journal does not know is adopted
//!   with the limits the kernel holds. Nothing is ever deleted here: we never
//!   destroy what we cannot account for.

use crate::group;
use crate::layout::Layout;
use crate::service::CpuJournal;
use crate::table::{Record, MAX_DEPTH};
use cgroupfs::CgroupDir;
use protocol::cpu::CpuLimits;
use protocol::{validate_id, Error};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// `theirs`: the groups memory-controller has, whose v2 directories (under
/// the same base as ours on cgroup v2) are not ours to adopt.
pub fn reconcile(
    layout: &Layout,
    journal: &mut CpuJournal,
    theirs: &BTreeSet<String>,
) -> Result<(), Error> {
    drop_or_repair(layout, journal);
    adopt(layout, journal, theirs);
    journal.save()
}

fn drop_or_repair(layout: &Layout, journal: &mut CpuJournal) {
    let ids: Vec<String> = journal.state().groups.keys().cloned().collect();
    for id in ids {
        let table = journal.state();
        let Ok(rel) = table.rel(&id) else {
            tracing::warn!("dropping cpu group {id:?}: its parent chain is broken in the journal");
            journal.state_mut().groups.remove(&id);
            continue;
        };
        let missing = group::missing(layout, &rel);
        if missing.len() == layout.required() {
            tracing::warn!("dropping cpu group {id:?}: its cgroup directories are gone");
            journal.state_mut().groups.remove(&id);
        } else if !missing.is_empty() {
            let requested = table.groups[&id].requested.clone();
            let devices = table.groups[&id].devices.clone();
            let block_io = table.groups[&id].block_io.clone();
            tracing::warn!(
                "cpu group {id:?} lost its directory in {} hierarchies; recreating",
                missing.len()
            );
            if let Err(e) = group::repair(layout, &rel, &requested, &devices, block_io.as_ref()) {
                tracing::warn!("cannot repair cpu group {id:?}: {e}");
            }
        }
    }
    // A child whose parent was dropped above has lost its directories too
    // (they lived inside the parent's), so the loop dropped it as well.
    journal.state_mut().made.retain(|p| p.is_dir());
}

/// Adopts every directory below the bases that the table does not know,
/// parents before children.
fn adopt(layout: &Layout, journal: &mut CpuJournal, theirs: &BTreeSet<String>) {
    let mut found: Vec<PathBuf> = vec![];
    for m in layout.mounts() {
        walk(&m.base, Path::new(""), &mut found);
    }
    found.sort_by_key(|p| (p.iter().count(), p.clone()));
    found.dedup();
    for rel in found {
        let id = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = rel
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned());
        if journal.state().groups.contains_key(&id) {
            if known_rel(journal, &id).as_ref() != Some(&rel) {
                tracing::warn!(
                    "not adopting {}: group id {id:?} is already used elsewhere",
                    rel.display()
                );
            }
            continue;
        }
        if let Some(p) = &parent {
            if !journal.state().groups.contains_key(p) {
                continue; // its parent was not adoptable either
            }
        }
        if theirs.contains(&id) && in_v2(layout, &rel) {
            tracing::info!(
                "leaving {} to memory-controller, which has group {id:?}",
                rel.display()
            );
            continue;
        }
        match adopt_one(layout, &rel) {
            Ok(requested) => {
                tracing::info!("adopted cpu group {id:?} found at {}", rel.display());
                journal.state_mut().groups.insert(
                    id,
                    Record {
                        parent,
                        requested,
                        adopted: true,
                        cgroups_path: None,
                        devices: vec![],
                        block_io: None,
                    },
                );
            }
            Err(e) => tracing::warn!("not adopting {}: {e}", rel.display()),
        }
    }
}

/// Is the group in the v2 directories memory-controller shares with us?
/// (A hybrid host's cgroup2, where we are members only, is ours alone.)
fn in_v2(layout: &Layout, rel: &Path) -> bool {
    layout.shared_v2()
        && layout
            .mounts()
            .iter()
            .any(|m| m.version == cgroupfs::Version::V2 && m.dir(rel).exists())
}

fn known_rel(journal: &CpuJournal, id: &str) -> Option<PathBuf> {
    journal.state().rel(id).ok()
}

/// Gives the group its directories in every hierarchy and reads its limits.
fn adopt_one(layout: &Layout, rel: &Path) -> Result<CpuLimits, Error> {
    group::repair(layout, rel, &CpuLimits::default(), &[], None)?;
    group::read_limits(layout, rel, &CpuLimits::default())
}

/// Collects the cgroup directories below `dir` whose names are valid ids.
fn walk(dir: &CgroupDir, rel: &Path, out: &mut Vec<PathBuf>) {
    if rel.iter().count() >= MAX_DEPTH {
        return;
    }
    for child in dir.children().unwrap_or_default() {
        let name = child
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Err(e) = validate_id("group id", &name) {
            tracing::warn!("not adopting {}: {e}", child.path().display());
            continue;
        }
        let r = rel.join(&name);
        out.push(r.clone());
        walk(&child, &r, out);
    }
}
