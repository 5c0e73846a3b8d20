//! The server's table: the containers whose loopback it brought up, in a
//! namespace they brought (`Loopback`) or one netstack handed out (`Claim`).

use libipc::journal::{self, RowChanges, Rows};
use protocol::net::NetLoopback;
use protocol::Error;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub loopbacks: Rows<Record>,
}

/// The journal logs the rows changed.
impl journal::Table for Table {
    type Change = RowChanges<Record>;
    fn take_change(&mut self) -> RowChanges<Record> {
        self.loopbacks.take_changes()
    }
    fn apply_change(&mut self, c: RowChanges<Record>) {
        self.loopbacks.apply(c)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The namespace's inode (nsfs), as in `net:[INODE]`.
    pub netns_ino: u64,
    pub ifindex: u32,
    pub flags: u32,
    pub at_unix_ms: u64,
    /// netstack made this namespace for the container (`Claim`) rather than
    /// being passed the container's own (`Loopback`). A claimed record may be
    /// replaced by a new claim once netstack no longer holds its fd (after a
    /// restart); a loopback record never is.
    #[serde(default)]
    pub claimed: bool,
}

impl Record {
    pub fn view(&self, id: &str) -> NetLoopback {
        NetLoopback {
            id: id.to_string(),
            netns: format!("net:[{}]", self.netns_ino),
            ifindex: self.ifindex,
            flags: self.flags,
            at_unix_ms: self.at_unix_ms,
        }
    }
}

impl Table {
    pub fn get(&self, id: &str) -> Result<&Record, Error> {
        self.loopbacks
            .get(id)
            .ok_or_else(|| Error::not_found(format!("netstack knows no container {id:?}")))
    }
}
