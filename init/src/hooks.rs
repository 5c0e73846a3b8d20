//! OCI hooks (runtime.md "Lifecycle" and config.md "POSIX-platform Hooks").
//!
//! A hook is `path` run with `args` (args[0] is argv[0]) and exactly `env`,
//! the container's state JSON on its stdin. If it has not exited after
//! `timeout` seconds it is SIGKILLed. A non-zero exit or a timeout is an
//! error naming the phase, the hook and what happened; the caller decides
//! what that error means for the lifecycle (runtime.md: prestart,
//! createRuntime, createContainer and startContainer failures abort;
//! poststart and poststop failures are logged and the lifecycle goes on).
//!
//! Where a hook runs (which namespaces) is the caller's business: init runs
//! the runtime-namespace hooks, the launcher runs createContainer and
//! startContainer from inside the container.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The six hook phases, named as in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }

    /// The hooks of this phase in a config's `hooks`, in order.
    pub fn of(self, hooks: Option<&oci_spec::runtime::Hooks>) -> Vec<Hook> {
        let Some(h) = hooks else { return vec![] };
        #[allow(deprecated)]
        let list = match self {
            Phase::Prestart => h.prestart(),
            Phase::CreateRuntime => h.create_runtime(),
            Phase::CreateContainer => h.create_container(),
            Phase::StartContainer => h.start_container(),
            Phase::Poststart => h.poststart(),
            Phase::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// Runs every hook of `phase` in order, stopping at the first failure.
pub fn run_phase(
    phase: Phase,
    hooks: Option<&oci_spec::runtime::Hooks>,
    state_json: &str,
) -> Result<()> {
    for (i, hook) in phase.of(hooks).iter().enumerate() {
        run(hook, state_json)
            .with_context(|| format!("{} hook #{i} ({})", phase.as_str(), hook.path().display()))?;
    }
    Ok(())
}

/// Runs one hook with the state on stdin; kills it at its timeout.
pub fn run(hook: &Hook, state_json: &str) -> Result<()> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((argv0, rest)) = args.split_first() {
            cmd.arg0(argv0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().context("cannot start it")?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE ignored).
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let timeout = hook.timeout().map(|t| Duration::from_secs(t.max(1) as u64));
    let until = timeout.map(|t| Instant::now() + t);
    loop {
        if let Some(status) = child.try_wait().context("wait for it")? {
            if status.success() {
                return Ok(());
            }
            bail!("it failed: {status}");
        }
        if until.is_some_and(|u| Instant::now() >= u) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "it did not finish within its timeout of {}s and was killed",
                timeout.unwrap().as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn hook(script: &str, timeout: Option<i64>) -> Hook {
        let mut b = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".to_string(), "-c".to_string(), script.to_string()])
            .env(vec!["GREETING=hi".to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    #[test]
    fn state_on_stdin_and_exact_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(
            &format!(
                "cat > {0}; echo \"$GREETING ${{HOME:-nohome}}\" >> {0}",
                out.display()
            ),
            None,
        );
        run(&h, "{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(out).unwrap(),
            "{\"id\":\"x\"}hi nohome\n"
        );
    }

    #[test]
    fn failure_and_timeout_are_errors_that_say_so() {
        let e = run(&hook("exit 3", None), "{}").unwrap_err();
        assert!(format!("{e:#}").contains("exit status: 3"), "{e:#}");
        let t = Instant::now();
        let e = run(&hook("sleep 30", Some(1)), "{}").unwrap_err();
        assert!(format!("{e:#}").contains("timeout of 1s"), "{e:#}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
