//! The container's process: rlimits, oom_score_adj, session keyring,
//! capabilities, user and groups, no_new_privs, umask, environment, cwd and
//! the executable looked up in the container's PATH (config.md "Process").

use anyhow::{bail, Context, Result};
use caps::{CapSet, CapsHashSet};
use oci_spec::runtime::{PosixRlimitType, Process};
use rustix::process::{Resource, Rlimit};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn resource(t: PosixRlimitType) -> Result<Resource> {
    use PosixRlimitType as T;
    Ok(match t {
        T::RlimitCpu => Resource::Cpu,
        T::RlimitFsize => Resource::Fsize,
        T::RlimitData => Resource::Data,
        T::RlimitStack => Resource::Stack,
        T::RlimitCore => Resource::Core,
        T::RlimitRss => Resource::Rss,
        T::RlimitNproc => Resource::Nproc,
        T::RlimitNofile => Resource::Nofile,
        T::RlimitMemlock => Resource::Memlock,
        T::RlimitAs => Resource::As,
        T::RlimitLocks => Resource::Locks,
        T::RlimitSigpending => Resource::Sigpending,
        T::RlimitMsgqueue => Resource::Msgqueue,
        T::RlimitNice => Resource::Nice,
        T::RlimitRtprio => Resource::Rtprio,
        T::RlimitRttime => Resource::Rttime,
    })
}

/// process.rlimits (u64::MAX is RLIM_INFINITY).
pub fn rlimits(p: &Process) -> Result<()> {
    let inf = |v: u64| (v != u64::MAX).then_some(v);
    for r in p.rlimits().iter().flatten() {
        let limit = Rlimit {
            current: inf(r.soft()),
            maximum: inf(r.hard()),
        };
        rustix::process::setrlimit(resource(r.typ())?, limit).with_context(|| {
            format!(
                "process.rlimits: set {} to soft {} hard {}",
                r.typ(),
                r.soft(),
                r.hard()
            )
        })?;
    }
    Ok(())
}

/// process.oomScoreAdj (left alone when unset, as the spec says).
pub fn oom_score_adj(p: &Process) -> Result<()> {
    if let Some(v) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", v.to_string())
            .with_context(|| format!("process.oomScoreAdj: set it to {v}"))?;
    }
    Ok(())
}

/// A session keyring of the container's own, named like runc's.
pub fn new_session_keyring(id: &str) -> Result<()> {
    let name = CString::new(format!("_ses.{id}")).context("container id")?;
    match super::sys::join_session_keyring(&name) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(()),
        Err(e) => Err(e).context("join a new session keyring (--no-new-keyring skips it)"),
    }
}

/// The capability sets of process.capabilities, each limited to what this
/// kernel knows and what we hold (the spec: capabilities that cannot be
/// granted must not fail the container).
pub struct Caps {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

impl Caps {
    /// None when process.capabilities is absent: then, as runc, the
    /// capabilities are left as they are.
    pub fn from_process(p: &Process) -> Result<Option<Caps>> {
        let Some(c) = p.capabilities().clone() else {
            return Ok(None);
        };
        let held = caps::read(None, CapSet::Permitted).context("read our capabilities")?;
        let set =
            |list: &Option<oci_spec::runtime::Capabilities>, what: &str| -> Result<CapsHashSet> {
                let mut out = CapsHashSet::new();
                for cap in list.iter().flatten() {
                    let parsed = cap_of(cap).ok_or_else(|| {
                        anyhow::anyhow!("process.capabilities.{what}: unknown capability CAP_{cap}")
                    })?;
                    if held.contains(&parsed) {
                        out.insert(parsed);
                    }
                }
                Ok(out)
            };
        Ok(Some(Caps {
            bounding: set(c.bounding(), "bounding")?,
            effective: set(c.effective(), "effective")?,
            permitted: set(c.permitted(), "permitted")?,
            inheritable: set(c.inheritable(), "inheritable")?,
            ambient: set(c.ambient(), "ambient")?,
        }))
    }

    /// Drops what is not in the bounding set (before the user changes).
    pub fn apply_bounding(&self) -> Result<()> {
        for cap in supported() {
            if !self.bounding.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("process.capabilities.bounding: drop {cap}"))?;
            }
        }
        Ok(())
    }
}

/// The kernel's capability an OCI name stands for (None: this build of
/// the caps crate knows no such capability).
fn cap_of(cap: &oci_spec::runtime::Capability) -> Option<caps::Capability> {
    format!("CAP_{cap}").parse().ok()
}

/// runtime-spec config.md: a capability that cannot be granted must not
/// fail the container, and "MUST be logged as a warning". Without a user
/// namespace, what this runtime does not hold cannot be granted (runc 1.1
/// fails the container instead: "unable to apply caps"); with one, the
/// container holds every capability inside it. Called in the parent, so
/// the warning goes to ipc's log, not the container's stderr.
pub fn warn_ungranted(p: &Process) {
    let Some(c) = p.capabilities() else {
        return;
    };
    let Ok(held) = caps::read(None, CapSet::Permitted) else {
        return;
    };
    let lists = [
        c.bounding(),
        c.effective(),
        c.permitted(),
        c.inheritable(),
        c.ambient(),
    ];
    let missing: std::collections::BTreeSet<String> = lists
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(cap_of)
        .filter(|cap| !held.contains(cap))
        .map(|cap| cap.to_string())
        .collect();
    if !missing.is_empty() {
        let names = missing.into_iter().collect::<Vec<_>>().join(", ");
        tracing::warn!(
            "process.capabilities: {names} cannot be granted (this runtime does not hold them); the container gets the others"
        );
    }
}

/// The capabilities this kernel knows: up to /proc/sys/kernel/cap_last_cap
/// (one read, where probing each with PR_CAPBSET_READ is ~40 syscalls).
fn supported() -> CapsHashSet {
    match crate::config::caps::kernel_last_cap() {
        Some(last) => caps::all()
            .into_iter()
            .filter(|c| c.index() <= last)
            .collect(),
        None => caps::runtime::thread_all_supported(),
    }
}

impl Caps {
    /// Sets inheritable, effective and permitted (in the order capset
    /// accepts while we still hold everything), then raises ambient.
    pub fn apply(&self) -> Result<()> {
        let inheritable: CapsHashSet = self
            .inheritable
            .intersection(&self.bounding)
            .copied()
            .collect();
        caps::set(None, CapSet::Inheritable, &inheritable)
            .context("process.capabilities.inheritable")?;
        caps::set(None, CapSet::Effective, &self.effective)
            .context("process.capabilities.effective")?;
        caps::set(None, CapSet::Permitted, &self.permitted)
            .context("process.capabilities.permitted (it must contain effective)")?;
        for cap in &self.ambient {
            // As runc: an ambient capability also needs to be permitted and
            // inheritable; one that is not is left out, not an error.
            let _ = caps::raise(None, CapSet::Ambient, *cap);
        }
        Ok(())
    }
}

/// process.user: additional groups, gid, uid.
pub fn switch_user(p: &Process) -> Result<()> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let u = p.user();
    let groups: Vec<Gid> = u
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups(2) fails with EPERM where a user namespace's setgroups
    // file says "deny": only then is the file read (outside a user
    // namespace it always says "allow", and reading it would cost the
    // child a lookup in its fresh /proc).
    if let Err(e) = setgroups(&groups) {
        let denied = e == nix::errno::Errno::EPERM
            && std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
        match denied {
            true if groups.is_empty() => {}
            true => {
                bail!("process.user.additionalGids: setgroups is denied in this user namespace")
            }
            false => return Err(e).context("process.user.additionalGids: setgroups"),
        }
    }
    let gid = Gid::from_raw(u.gid());
    setresgid(gid, gid, gid)
        .with_context(|| format!("process.user.gid: setresgid({})", u.gid()))?;
    let uid = Uid::from_raw(u.uid());
    setresuid(uid, uid, uid)
        .with_context(|| format!("process.user.uid: setresuid({})", u.uid()))?;
    Ok(())
}

/// process.user.umask, or 0022 as runc.
pub fn set_umask(p: &Process) {
    let mask = p.user().umask().unwrap_or(0o022);
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask & 0o777));
}

/// The container's environment as runc makes it: process.env with each
/// name once (a later entry's value in the first one's place: runc sets
/// them one by one with Go's os.Setenv into a cleared environment), HOME
/// from the container's /etc/passwd when unset or empty, and
/// LISTEN_FDS/LISTEN_PID for preserved fds.
pub fn environment(p: &Process, preserve_fds: u32) -> Vec<String> {
    let mut env = Vec::new();
    for kv in p.env().as_deref().unwrap_or_default() {
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        set_env(&mut env, key, value);
    }
    if env_value(&env, "HOME").is_none_or(str::is_empty) {
        set_env(&mut env, "HOME", &home_of(p.user().uid()));
    }
    if preserve_fds > 0 && env_value(&env, "LISTEN_FDS").is_none() {
        set_env(&mut env, "LISTEN_FDS", &preserve_fds.to_string());
        set_env(&mut env, "LISTEN_PID", &std::process::id().to_string());
    }
    env
}

/// `key=value` in the place of `key`'s entry, or at the end.
fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|kv| kv.split('=').next() == Some(key)) {
        Some(kv) => *kv = entry,
        None => env.push(entry),
    }
}

/// The home directory of `uid` in /etc/passwd, "/" if none.
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[5].to_string())
        })
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_string())
}

/// The value of `key` in an environment list.
pub fn env_value<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// args[0] as execvp would find it, with the container's PATH, and runc's
/// (Go's exec.LookPath) error text.
pub fn lookup(arg0: &str, env: &[String]) -> Result<PathBuf, LookupError> {
    if arg0.contains('/') {
        return match executable(Path::new(arg0)) {
            Ok(()) => Ok(PathBuf::from(arg0)),
            // Go's findExecutable: a directory, or no x bit, is
            // fs.ErrPermission, with no "stat" in front (podman reads
            // "permission denied" as its 126).
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => Err(LookupError {
                errno: libc::EACCES,
                message: format!("exec: {arg0:?}: permission denied"),
            }),
            Err(e) => Err(LookupError {
                errno: e.raw_os_error().unwrap_or(libc::ENOENT),
                message: format!("exec: {arg0:?}: stat {arg0}: {}", short_io(&e)),
            }),
        };
    }
    let path = env_value(env, "PATH").unwrap_or("");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(LookupError {
        errno: libc::ENOENT,
        message: format!("exec: {arg0:?}: executable file not found in $PATH"),
    })
}

/// An executable was not found; the message is runc's.
#[derive(Debug)]
pub struct LookupError {
    pub errno: i32,
    pub message: String,
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LookupError {}

/// Go's findExecutable: exists, not a directory, some x bit (else EACCES).
fn executable(path: &Path) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EACCES));
    }
    Ok(())
}

/// An io::Error's text without Rust's " (os error N)" suffix.
fn short_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_lowercase(),
        None => s,
    }
}

/// C strings for execve.
pub fn c_strings<S: AsRef<std::ffi::OsStr>>(items: &[S]) -> Result<Vec<CString>> {
    items
        .iter()
        .map(|s| CString::new(s.as_ref().as_bytes()).context("a NUL byte in args or env"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_errors_read_like_runc() {
        let env = vec!["PATH=/nonexistent-dir".to_string()];
        let e = lookup("nosuchcmd", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        assert_eq!(e.errno, libc::ENOENT);
        let e = lookup("/no/such/file", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "exec: \"/no/such/file\": stat /no/such/file: no such file or directory"
        );
        // A directory, or a file with no x bit: runc's (Go's) permission
        // denied.
        let e = lookup("/etc", &env).unwrap_err();
        assert_eq!(e.to_string(), "exec: \"/etc\": permission denied");
        assert_eq!(e.errno, libc::EACCES);
        let e = lookup("/etc/passwd", &env).unwrap_err();
        assert_eq!(e.to_string(), "exec: \"/etc/passwd\": permission denied");
        let env = vec!["PATH=/usr/bin:/bin".to_string()];
        assert!(lookup("sh", &env).unwrap().ends_with("sh"));
    }

    #[test]
    fn the_environment_is_runcs() {
        let process = |env: &[&str], uid: u32| -> Process {
            serde_json::from_value(serde_json::json!({
                "cwd": "/", "user": {"uid": uid, "gid": 0},
                "env": env,
            }))
            .unwrap()
        };
        // One entry per name, the last value in the first place.
        let p = process(&["A=1", "B=2", "A=3", "HOME=/h"], 0);
        assert_eq!(environment(&p, 0), ["A=3", "B=2", "HOME=/h"]);
        // An empty HOME is filled in as a missing one ("/" for a uid
        // /etc/passwd does not have).
        let p = process(&["HOME=", "X=1"], 4_000_000);
        assert_eq!(environment(&p, 0), ["HOME=/", "X=1"]);
        let p = process(&["X=1"], 4_000_000);
        assert_eq!(environment(&p, 2)[..2], ["X=1", "HOME=/"]);
        assert_eq!(environment(&p, 2)[2], "LISTEN_FDS=2");
    }

    #[test]
    fn env_values() {
        let env = vec!["A=1".to_string(), "AB=2".to_string(), "A=3".to_string()];
        assert_eq!(env_value(&env, "A"), Some("3"));
        assert_eq!(env_value(&env, "AB"), Some("2"));
        assert_eq!(env_value(&env, "B"), None);
    }

    #[test]
    fn oci_capability_names_map_to_caps() {
        use oci_spec::runtime::Capability;
        for c in [
            Capability::AuditWrite,
            Capability::SysAdmin,
            Capability::NetBindService,
            Capability::CheckpointRestore,
            Capability::Perfmon,
        ] {
            let name = format!("CAP_{c}");
            assert!(name.parse::<caps::Capability>().is_ok(), "{name}");
        }
    }
}
