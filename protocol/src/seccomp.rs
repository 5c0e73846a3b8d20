//! seccomp-monitor: OCI seccomp profiles compiled to classic BPF, and the
//! seccomp user-notification agent.

use crate::Protocol;
use serde::{Deserialize, Serialize};

pub struct Seccomp;
impl Protocol for Seccomp {
    const NAME: &'static str = "seccomp-monitor";
    type Request = SeccompRequest;
    type Response = SeccompResponse;
    type Event = SeccompEvent;
}

/// One classic BPF instruction (struct sock_filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// What the agent does with a notified syscall (from listenerMetadata or
/// the `org.asterism.seccomp.policy` annotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyPolicy {
    /// Log it and let the kernel run it (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
    Continue,
    /// Fail it with this errno.
    Errno(i32),
    /// Run it only when argument `index` is one of `values`; otherwise fail
    /// it with `errno`.
    AllowArgs {
        index: u8,
        values: Vec<u64>,
        errno: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompRequest {
    /// Any verb not built yet, by name; answered with `Unsupported`.
    Verb {
        name: String,
        args: Vec<String>,
    },
    /// `profile_json` is the config's `linux.seccomp` object; `arch` a
    /// runtime-spec architecture (SCMP_ARCH_X86_64 ...) or None for native.
    Compile {
        profile_json: String,
        arch: Option<String>,
    },
    /// Become the notify agent of container `id`: one fd rides along, the
    /// seccomp listener. Sent again by init after a restart of this server.
    Watch {
        id: String,
        pid: i32,
        policy: NotifyPolicy,
    },
    /// The container is gone: stop watching it.
    Forget {
        id: String,
    },
    Stats {
        id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Program {
    pub insns: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_* to install it with (NEW_LISTENER included when
    /// a rule uses SCMP_ACT_NOTIFY).
    pub flags: u32,
    pub needs_listener: bool,
    /// Names skipped because this architecture does not know them.
    pub warnings: Vec<String>,
    /// sha256 of the profile and architecture: the cache key.
    pub hash: String,
    pub cached: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyStats {
    pub id: String,
    pub notified: u64,
    pub continued: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompResponse {
    Compiled(Program),
    Watching,
    Forgotten,
    Stats(Vec<NotifyStats>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompEvent {
    Notified {
        id: String,
        pid: u32,
        syscall: String,
        nr: i32,
        args: Vec<u64>,
        /// "continue", "errno N".
        decision: String,
        at_unix_ms: u64,
    },
}
