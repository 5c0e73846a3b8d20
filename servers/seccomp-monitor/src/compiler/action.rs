//! The OCI actions (libseccomp's SCMP_ACT_* names) and the seccomp return
//! value each one compiles to.

use super::bpf::*;

/// errnoRet's default, as the runtime-spec says.
pub const EPERM: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    KillProcess,
    /// SCMP_ACT_KILL is libseccomp's old name for KILL_THREAD.
    KillThread,
    Trap,
    Errno(u16),
    Trace(u16),
    Allow,
    Log,
    Notify,
}

impl Action {
    /// Parses `name` with its optional errnoRet; `Err` carries the message
    /// (the caller adds the JSON path).
    pub fn parse(name: &str, errno_ret: Option<u16>) -> Result<Action, String> {
        let action = match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno(errno_ret.unwrap_or(EPERM)),
            "SCMP_ACT_TRACE" => Action::Trace(errno_ret.unwrap_or(EPERM)),
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_NOTIFY" => Action::Notify,
            other => return Err(format!("unknown action {other:?}")),
        };
        // The spec: when the action does not take an errno, fail.
        if errno_ret.is_some() && !matches!(action, Action::Errno(_) | Action::Trace(_)) {
            return Err(format!(
                "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}"
            ));
        }
        Ok(action)
    }

    /// The SECCOMP_RET_* value the filter returns.
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
            Action::KillThread => SECCOMP_RET_KILL_THREAD,
            Action::Trap => SECCOMP_RET_TRAP,
            Action::Errno(e) => SECCOMP_RET_ERRNO | u32::from(e),
            Action::Trace(m) => SECCOMP_RET_TRACE | u32::from(m),
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Log => SECCOMP_RET_LOG,
            Action::Notify => SECCOMP_RET_USER_NOTIF,
        }
    }
}
