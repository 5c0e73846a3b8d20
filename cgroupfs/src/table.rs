//! What both cgroup controllers journal: their groups, as rows, and the
//! parent directories they made for cgroupsPaths (a few, kept whole).

use libipc::journal::{RowChanges, Rows};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One journal line's change of a controller's table.
#[derive(Serialize, Deserialize)]
pub struct GroupsChange<R> {
    groups: RowChanges<R>,
    made: BTreeSet<PathBuf>,
}

impl<R: Clone> GroupsChange<R> {
    /// The groups changed since the last call, and `made` as it is.
    pub fn take(groups: &mut Rows<R>, made: &BTreeSet<PathBuf>) -> Self {
        GroupsChange {
            groups: groups.take_changes(),
            made: made.clone(),
        }
    }

    /// Replays it onto the table's two parts.
    pub fn apply(self, groups: &mut Rows<R>, made: &mut BTreeSet<PathBuf>) {
        groups.apply(self.groups);
        *made = self.made;
    }
}
