//! The three runtimes under test, driven through their command lines the
//! way an engine drives them: asterism's `ipc`, Debian's runc and crun, each
//! with its own private --root. Every command gets the same stdio (stdin
//! and stdout /dev/null, stderr a fresh file read only on failure), so
//! none pays for a pipe the others do not.
//!
//! crun 1.8 refuses this host's v1/v2 hybrid while cgroup2 lists a
//! controller, so crun runs in a private mount namespace (`CrunNs`),
//! prepared once: the forked child joins it with one setns(2) before exec.
//! That hook's cost is measured by `hook_overhead` and reported.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Seek};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lifecycle_cgroups::CgroupMount;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Asterism,
    Runc,
    Crun,
}

pub struct Runtime {
    pub kind: Kind,
    bin: PathBuf,
    root: PathBuf,
    /// crun only: the mount namespace its commands run in.
    ns: Option<Arc<OwnedFd>>,
}

impl Runtime {
    pub fn new(kind: Kind, bin: PathBuf, root: PathBuf, ns: Option<&CrunNs>) -> Runtime {
        Runtime {
            kind,
            bin,
            root,
            ns: ns.map(|n| n.fd.clone()),
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            Kind::Asterism => "asterism",
            Kind::Runc => "runc",
            Kind::Crun => "crun",
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The process name (/proc/PID/status `Name:`) once the binary runs.
    pub fn comm(&self) -> String {
        let base = self.bin.file_name().unwrap_or_default().to_string_lossy();
        base.chars().take(15).collect()
    }

    /// `BIN --root ROOT ARGS...`, stdin and stdout /dev/null.
    pub fn command(&self, args: &[&OsStr]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(ns) = &self.ns {
            enter_mount_ns_before_exec(&mut c, ns.clone());
        }
        c
    }

    /// The command line as a person would type it, for error reports.
    pub fn describe(&self, args: &[&OsStr]) -> String {
        let mut s = format!("{} --root {}", self.bin.display(), self.root.display());
        for a in args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        if self.ns.is_some() {
            s.push_str("  (in crun's private mount namespace)");
        }
        s
    }

    /// Runs one command to completion, timed from spawn to its exit.
    pub fn timed(&self, args: &[&OsStr]) -> Result<Duration> {
        let mut err = tempfile::tempfile().context("stderr file")?;
        let mut cmd = self.command(args);
        cmd.stderr(err.try_clone()?);
        let t0 = Instant::now();
        let status = cmd
            .status()
            .with_context(|| format!("spawn `{}`", self.describe(args)))?;
        let took = t0.elapsed();
        if !status.success() {
            bail!(self.failure(args, status, &read_all(&mut err)));
        }
        Ok(took)
    }

    pub fn failure(&self, args: &[&OsStr], status: ExitStatus, stderr: &str) -> String {
        format!(
            "`{}` failed ({status}): {}",
            self.describe(args),
            stderr.trim()
        )
    }

    /// Untimed, stdout captured (list, version).
    pub fn output(&self, args: &[&OsStr]) -> Result<String> {
        let out = self
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("spawn `{}`", self.describe(args)))?;
        if !out.status.success() {
            bail!(self.failure(args, out.status, &String::from_utf8_lossy(&out.stderr)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn run(&self, bundle: &Path, id: &str) -> Result<Duration> {
        self.timed(&run_args(bundle, id))
    }

    pub fn run_args<'a>(&self, bundle: &'a Path, id: &'a str) -> Vec<&'a OsStr> {
        run_args(bundle, id)
    }

    /// `run --detach`: the container keeps running after the command.
    pub fn run_detached(&self, bundle: &Path, id: &str) -> Result<Duration> {
        self.timed(&[
            "run".as_ref(),
            "--detach".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            id.as_ref(),
        ])
    }

    pub fn create(&self, bundle: &Path, id: &str, pid_file: &Path) -> Result<Duration> {
        self.timed(&[
            "create".as_ref(),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            id.as_ref(),
        ])
    }

    pub fn start(&self, id: &str) -> Result<Duration> {
        self.timed(&["start".as_ref(), id.as_ref()])
    }

    pub fn delete(&self, id: &str) -> Result<Duration> {
        self.timed(&["delete".as_ref(), id.as_ref()])
    }

    /// The ids this runtime still knows under its root.
    pub fn ids(&self) -> Result<Vec<String>> {
        let out = self.output(&["list".as_ref(), "-q".as_ref()])?;
        Ok(out.split_whitespace().map(String::from).collect())
    }

    /// `delete --force` of everything left; returns what went wrong.
    pub fn delete_all(&self) -> Vec<String> {
        let ids = match self.ids() {
            Ok(ids) => ids,
            Err(e) => return vec![format!("{e:#}")],
        };
        ids.iter()
            .filter_map(|id| {
                self.timed(&["delete".as_ref(), "--force".as_ref(), id.as_ref()])
                    .err()
                    .map(|e| format!("{e:#}"))
            })
            .collect()
    }

    /// The first line of `BIN --version`.
    pub fn version(&self) -> String {
        let out = Command::new(&self.bin).arg("--version").output();
        out.ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .map(String::from)
            })
            .unwrap_or_else(|| "version unknown".into())
    }
}

fn run_args<'a>(bundle: &'a Path, id: &'a str) -> Vec<&'a OsStr> {
    vec![
        "run".as_ref(),
        "--bundle".as_ref(),
        bundle.as_os_str(),
        id.as_ref(),
    ]
}

fn read_all(f: &mut std::fs::File) -> String {
    let mut s = String::new();
    let _ = f.rewind();
    let _ = f.read_to_string(&mut s);
    s
}

/// Makes the child join `ns` (a mount namespace) between fork and exec.
#[allow(unsafe_code)]
fn enter_mount_ns_before_exec(cmd: &mut Command, ns: Arc<OwnedFd>) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe work is allowed. It makes one setns(2) system call
    // on a descriptor opened before the fork; it allocates nothing and
    // takes no lock (the Arc is only borrowed).
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::setns(&*ns, nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(std::io::Error::from)
        });
    }
}

/// crun's mount namespace: a private copy of ours in which an empty tmpfs
/// hides the hybrid's cgroup2 mount (crun then sees a plain v1 host), and
/// each v1 hierarchy where our cgroup is not the root is replaced by a
/// bind of our own cgroup directory, so that crun's root-relative
/// cgroupsPath lands under our cgroup as runc's does. Made once by a
/// short-lived `unshare` holder; we keep only its /proc/PID/ns/mnt
/// descriptor, which keeps the namespace alive until we close it. The
/// host's mounts are never touched.
pub struct CrunNs {
    fd: Arc<OwnedFd>,
    pub changes: Vec<String>,
}

impl CrunNs {
    pub fn prepare(mounts: &[CgroupMount]) -> Result<CrunNs> {
        let (script, changes) = ns_script(mounts);
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawn unshare (util-linux) for crun's mount namespace")?;
        let pid = holder.id();
        let mut line = String::new();
        let stdout = holder.stdout.take().context("holder's stdout")?;
        let _ = BufReader::new(stdout).read_line(&mut line);
        let fd = std::fs::File::open(format!("/proc/{pid}/ns/mnt"));
        // The descriptor holds the namespace; the holder is no longer needed.
        crate::constellation::kill(pid as i32, crate::constellation::libc_sig::KILL);
        let mut err = String::new();
        if let Some(mut e) = holder.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = holder.wait();
        if line.trim() != "ready" {
            bail!("preparing crun's mount namespace failed: `unshare --mount --propagation private sh -c '{script}'`: {}", err.trim());
        }
        let fd = fd.context("open the holder's /proc/PID/ns/mnt")?;
        Ok(CrunNs {
            fd: Arc::new(fd.into()),
            changes,
        })
    }
}

/// The holder's script: the mounts, then "ready", then wait to be killed.
fn ns_script(mounts: &[CgroupMount]) -> (String, Vec<String>) {
    let mut script = String::from("set -e; ");
    let mut changes = vec![];
    for m in mounts {
        let point = shell_quote(&m.mount_point.to_string_lossy());
        if m.v2 && m.mount_point != Path::new("/sys/fs/cgroup") {
            script.push_str(&format!("mount -t tmpfs tmpfs {point}; "));
            changes.push(format!("empty tmpfs over {}", m.mount_point.display()));
        } else if !m.v2 && !m.own.as_os_str().is_empty() {
            let own = shell_quote(&m.own_dir().to_string_lossy());
            script.push_str(&format!("mount --bind {own} {point}; "));
            changes.push(format!(
                "{} bound over {}",
                m.own_dir().display(),
                m.mount_point.display()
            ));
        }
    }
    script.push_str("echo ready; exec sleep 3600");
    (script, changes)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Spawn and wait of /bin/true without and with the setns hook, `n` each,
/// interleaved: the hook's own cost, which every crun command pays.
pub fn hook_overhead(ns: &CrunNs, n: usize) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut plain, mut hooked) = (vec![], vec![]);
    for _ in 0..n {
        let mut c = Command::new("/bin/true");
        plain.push(time_status(&mut c)?);
        let mut c = Command::new("/bin/true");
        enter_mount_ns_before_exec(&mut c, ns.fd.clone());
        hooked.push(time_status(&mut c)?);
    }
    Ok((plain, hooked))
}

/// For reference: the per-command wrapper the host notes describe
/// (`unshare -m sh -c 'mount ... && exec CMD'`), with /bin/true as CMD.
pub fn wrapper_cost(n: usize) -> Result<Vec<Duration>> {
    (0..n)
        .map(|_| {
            time_status(Command::new("unshare").args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec /bin/true",
            ]))
        })
        .collect()
}

/// The kernel's own share of a container, with no runtime at all: util-linux
/// `unshare` making the same five namespaces as the bundle (pid, network,
/// ipc, uts, mount, with /proc mounted) and running /bin/true in them. No
/// cgroup, rootfs, pivot_root, state or config: a floor under any runtime
/// that makes its namespaces per container.
pub fn kernel_floor(n: usize) -> Result<Vec<Duration>> {
    (0..n).map(|_| time_status(&mut floor_command())).collect()
}

/// The kernel floor's containers per second, `n` runs by `workers` threads
/// at once (as section 3 runs the runtimes).
pub fn kernel_floor_rate(n: usize, workers: usize) -> Result<f64> {
    let workers = workers.max(1);
    let t0 = Instant::now();
    let done: Result<Vec<Vec<Duration>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine = n / workers + usize::from(w < n % workers);
                s.spawn(move || kernel_floor(mine))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a floor worker panicked"))
            })
            .collect()
    });
    done?;
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// What a runtime cannot avoid: the namespaces of the benchmark's config
/// made by unshare(1) around /bin/true, with no cgroup, rootfs,
/// pivot_root or state.
fn floor_command() -> Command {
    let mut c = Command::new("unshare");
    c.args([
        "--fork",
        "--pid",
        "--net",
        "--ipc",
        "--uts",
        "--mount",
        "--mount-proc",
        "/bin/true",
    ]);
    c
}

fn time_status(c: &mut Command) -> Result<Duration> {
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let t0 = Instant::now();
    let st = c.status().context("spawn /bin/true")?;
    let took = t0.elapsed();
    if !st.success() {
        bail!("{c:?} failed: {st}");
    }
    Ok(took)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_script_hides_cgroup2_and_binds_our_memory_cgroup() {
        let mounts = vec![
            CgroupMount {
                mount_point: "/sys/fs/cgroup/unified".into(),
                v2: true,
                own: "".into(),
            },
            CgroupMount {
                mount_point: "/sys/fs/cgroup/memory".into(),
                v2: false,
                own: "process_api/abc".into(),
            },
            CgroupMount {
                mount_point: "/sys/fs/cgroup/cpu".into(),
                v2: false,
                own: "".into(),
            },
        ];
        let (script, changes) = ns_script(&mounts);
        assert_eq!(
            script,
            "set -e; mount -t tmpfs tmpfs '/sys/fs/cgroup/unified'; \
             mount --bind '/sys/fs/cgroup/memory/process_api/abc' '/sys/fs/cgroup/memory'; \
             echo ready; exec sleep 3600"
        );
        assert_eq!(changes.len(), 2);
    }
}
