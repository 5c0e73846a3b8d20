//! linux.seccomp in the lifecycle: the profile goes to seccomp-monitor to
//! be compiled at Register; the listener of a profile that uses
//! SCMP_ACT_NOTIFY comes back from `ipc create` (SeccompListener) and goes
//! either to `listenerPath` (runtime.md's ContainerProcessState protocol)
//! or to seccomp-monitor, the default agent, with the container's policy.
//!
//! init keeps a duplicate of every listener it gives seccomp-monitor (the
//! fd store): when seccomp-monitor restarts (a new epoch in its pid file),
//! init hands every live listener back with Watch, and the restarted agent
//! answers what its predecessor left pending.

use protocol::seccomp::NotifyPolicy;
use protocol::Error;
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

/// The annotation that carries the agent's policy.
pub const POLICY_ANNOTATION: &str = "org.asterism.seccomp.policy";

/// The `linux.seccomp` object of a config, as the user wrote it.
pub fn profile_json(config: &Value) -> Option<String> {
    config
        .get("linux")
        .and_then(|l| l.get("seccomp"))
        .filter(|s| !s.is_null())
        .map(|s| s.to_string())
}

/// Where the listener goes, decided from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// linux.seccomp.listenerPath, with listenerMetadata.
    Path { path: String, metadata: String },
    /// seccomp-monitor with this policy.
    Monitor(NotifyPolicy),
}

/// Checks listenerPath and the policy, so that bad input fails Register
/// before anything is made.
pub fn agent(config: &Value) -> Result<Agent, Error> {
    let s = &config["linux"]["seccomp"];
    let metadata = s["listenerMetadata"].as_str().unwrap_or("").to_string();
    if let Some(path) = s["listenerPath"].as_str() {
        check_listener_path(path)?;
        return Ok(Agent::Path {
            path: path.to_string(),
            metadata,
        });
    }
    let annotation = config["annotations"][POLICY_ANNOTATION].as_str();
    let policy = match (metadata.is_empty(), annotation) {
        (false, _) => parse_policy(&metadata)
            .map_err(|e| Error::invalid(format!("linux.seccomp.listenerMetadata: {e}")))?,
        (true, Some(a)) => parse_policy(a)
            .map_err(|e| Error::invalid(format!("annotations[{POLICY_ANNOTATION:?}]: {e}")))?,
        (true, None) => NotifyPolicy::Continue,
    };
    Ok(Agent::Monitor(policy))
}

fn check_listener_path(path: &str) -> Result<(), Error> {
    use std::os::unix::fs::FileTypeExt;
    let at = "linux.seccomp.listenerPath";
    if !Path::new(path).is_absolute() {
        return Err(Error::invalid(format!(
            "{at}: {path:?} must be an absolute path"
        )));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.file_type().is_socket() => Ok(()),
        Ok(_) => Err(Error::invalid(format!("{at}: {path} is not a Unix socket"))),
        Err(e) => Err(Error::invalid(format!("{at}: {path}: {e}"))),
    }
}

/// "continue", "errno:EPERM" (a name or a number), or
/// "allow-args:INDEX:V1,V2,...:ERRNO".
pub fn parse_policy(s: &str) -> Result<NotifyPolicy, String> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    match parts.as_slice() {
        ["continue"] => Ok(NotifyPolicy::Continue),
        ["errno", e] => Ok(NotifyPolicy::Errno(parse_errno(e)?)),
        ["allow-args", index, values, e] => {
            let index: u8 = index
                .parse()
                .ok()
                .filter(|i| *i <= 5)
                .ok_or_else(|| format!("argument index {index:?} is not 0..5"))?;
            let values = values
                .split(',')
                .map(|v| parse_u64(v.trim()).ok_or_else(|| format!("argument value {v:?} is not a number")))
                .collect::<Result<Vec<u64>, String>>()?;
            Ok(NotifyPolicy::AllowArgs {
                index,
                values,
                errno: parse_errno(e)?,
            })
        }
        _ => Err(format!(
            "policy {s:?} is not one of \"continue\", \"errno:ERRNO\", \"allow-args:INDEX:V1,V2:ERRNO\""
        )),
    }
}

fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn parse_errno(e: &str) -> Result<i32, String> {
    const NAMES: &[(&str, i32)] = &[
        ("EPERM", libc::EPERM),
        ("ENOENT", libc::ENOENT),
        ("EINTR", libc::EINTR),
        ("EIO", libc::EIO),
        ("EAGAIN", libc::EAGAIN),
        ("EACCES", libc::EACCES),
        ("EBUSY", libc::EBUSY),
        ("EEXIST", libc::EEXIST),
        ("EINVAL", libc::EINVAL),
        ("ENOSPC", libc::ENOSPC),
        ("EROFS", libc::EROFS),
        ("ENOSYS", libc::ENOSYS),
        ("ENOTSUP", libc::ENOTSUP),
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
    ];
    if let Some((_, n)) = NAMES.iter().find(|(name, _)| *name == e) {
        return Ok(*n);
    }
    e.parse::<i32>()
        .ok()
        .filter(|n| (1..4096).contains(n))
        .ok_or_else(|| {
            format!(
                "errno {e:?} is neither a known name (EPERM, EACCES, ...) nor a number in 1..4095"
            )
        })
}

/// runtime.md "Container process state": sent with the listener (fds
/// named "seccompFd") to listenerPath over SOCK_STREAM.
pub fn send_to_listener_path(
    path: &str,
    metadata: &str,
    pid: i32,
    state: Value,
    fd: &OwnedFd,
) -> Result<(), Error> {
    use nix::sys::socket::{
        connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
        UnixAddr,
    };
    use std::os::fd::AsRawFd;
    let at = "linux.seccomp.listenerPath";
    let msg = serde_json::json!({
        "ociVersion": crate::lifecycle::record::oci_version(),
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    })
    .to_string();
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| Error::kernel(e as i32, format!("{at}: socket: {e}")))?;
    let addr = UnixAddr::new(path).map_err(|e| Error::invalid(format!("{at}: {path}: {e}")))?;
    connect(sock.as_raw_fd(), &addr)
        .map_err(|e| Error::kernel(e as i32, format!("{at}: connect to {path}: {e}")))?;
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(msg.as_bytes())];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| {
        Error::kernel(
            e as i32,
            format!("{at}: send the seccomp listener to {path}: {e}"),
        )
    })?;
    if sent < msg.len() {
        // The fd went with the first bytes; send the rest plainly.
        nix::unistd::write(sock.as_fd(), &msg.as_bytes()[sent..])
            .map_err(|e| Error::kernel(e as i32, format!("{at}: write to {path}: {e}")))?;
    }
    Ok(())
}

/// A listener seccomp-monitor watches, kept for its restarts.
pub struct Stored {
    pub fd: OwnedFd,
    pub pid: i32,
    pub policy: NotifyPolicy,
}

#[derive(Default)]
pub struct FdStore {
    pub entries: Mutex<BTreeMap<String, Stored>>,
}

impl FdStore {
    pub fn put(&self, id: &str, s: Stored) {
        self.entries.lock().unwrap().insert(id.to_string(), s);
    }

    pub fn take(&self, id: &str) -> Option<Stored> {
        self.entries.lock().unwrap().remove(id)
    }

    /// Duplicates of every stored listener, for a re-Watch.
    pub fn duplicates(&self) -> Vec<(String, i32, NotifyPolicy, OwnedFd)> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(id, s)| {
                let fd = s.fd.try_clone().ok()?;
                Some((id.clone(), s.pid, s.policy.clone(), fd))
            })
            .collect()
    }
}

/// What seccomp-monitor publishes about a listener it holds
/// (`<root>/servers/seccomp-monitor/listeners/<id>.json`).
#[derive(serde::Deserialize)]
struct Published {
    fd: i32,
    pid: i32,
    policy: NotifyPolicy,
}

/// After a restart of init: the fd store died with the old init, so take
/// duplicates of the listeners seccomp-monitor holds for container `id`
/// (pidfd_getfd), to hand them back if seccomp-monitor restarts later.
pub fn recover(root: &Path, id: &str, container_pid: i32) -> Option<Stored> {
    use rustix::process::{pidfd_getfd, pidfd_open, Pid, PidfdFlags, PidfdGetfdFlags};
    let dir = root.join("servers/seccomp-monitor");
    let p: Published = serde_json::from_slice(
        &std::fs::read(dir.join("listeners").join(format!("{id}.json"))).ok()?,
    )
    .ok()?;
    if p.pid != container_pid {
        return None; // about an older container of the same id
    }
    let text = std::fs::read_to_string(dir.join("pid")).ok()?;
    let monitor: i32 = text.split_whitespace().next()?.parse().ok()?;
    let pidfd = pidfd_open(Pid::from_raw(monitor)?, PidfdFlags::empty()).ok()?;
    let fd = pidfd_getfd(&pidfd, p.fd, PidfdGetfdFlags::empty())
        .inspect_err(|e| tracing::warn!("{id}: pidfd_getfd of seccomp-monitor's listener: {e}"))
        .ok()?;
    let link = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .ok()?;
    if link.to_string_lossy() != "anon_inode:seccomp notify" {
        tracing::warn!(
            "{id}: seccomp-monitor's fd {} is {}, not a listener",
            p.fd,
            link.display()
        );
        return None;
    }
    Some(Stored {
        fd,
        pid: p.pid,
        policy: p.policy,
    })
}

/// seccomp-monitor's epoch, from the pid file init's supervisor writes
/// ("PID EPOCH RESTARTS").
pub fn monitor_epoch(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("servers/seccomp-monitor/pid")).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse() {
        assert_eq!(parse_policy("continue"), Ok(NotifyPolicy::Continue));
        assert_eq!(parse_policy("errno:EPERM"), Ok(NotifyPolicy::Errno(1)));
        assert_eq!(parse_policy("errno:13"), Ok(NotifyPolicy::Errno(13)));
        assert_eq!(
            parse_policy("allow-args:0:1,0x10:EACCES"),
            Ok(NotifyPolicy::AllowArgs {
                index: 0,
                values: vec![1, 16],
                errno: 13
            })
        );
        assert!(parse_policy("allow-args:6:1:EPERM")
            .unwrap_err()
            .contains("index"));
        assert!(parse_policy("errno:EWHAT").unwrap_err().contains("EWHAT"));
        assert!(parse_policy("maybe").is_err());
    }

    #[test]
    fn listener_path_must_be_a_socket() {
        let c = serde_json::json!({"linux": {"seccomp": {"listenerPath": "/nonexistent/x.sock"}}});
        let e = agent(&c).unwrap_err();
        assert!(e.message.contains("linux.seccomp.listenerPath"), "{e}");
        let c = serde_json::json!({"linux": {"seccomp": {"listenerPath": "rel.sock"}}});
        assert!(agent(&c).unwrap_err().message.contains("absolute"));
    }
}
