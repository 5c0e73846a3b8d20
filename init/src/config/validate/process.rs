//! `process`: the rules runc's validateProcessSpec applies (cwd, args) and
//! config.md's MUSTs for env, capabilities, rlimits and oomScoreAdj.

use oci_spec::runtime::{Capabilities, Process};

use super::{env, err, Check};
use crate::config::error::{field, index, ConfigError};

/// Checks one process; `path` is where it sits (`process`, or the empty
/// string for an `ipc exec --process` file).
pub(crate) fn process(p: &Process, path: &str) -> Check {
    cwd(p, path)?;
    args(p, path)?;
    env(p.env().as_deref(), &field(path, "env"))?;
    capabilities(p, path)?;
    rlimits(p, path)?;
    if let Some(adj) = p.oom_score_adj().filter(|a| !(-1000..=1000).contains(a)) {
        return err(
            field(path, "oomScoreAdj"),
            format!("must be between -1000 and 1000, got {adj}"),
        );
    }
    if let Some(io) = p.io_priority() {
        if !(0..=7).contains(&io.priority()) {
            return err(
                field(&field(path, "ioPriority"), "priority"),
                format!(
                    "must be between 0 (highest) and 7 (lowest), got {}",
                    io.priority()
                ),
            );
        }
    }
    Ok(())
}

/// `cwd` is REQUIRED and MUST be absolute.
fn cwd(p: &Process, path: &str) -> Check {
    let at = field(path, "cwd");
    if p.cwd().as_os_str().is_empty() {
        return err(at, "is required (an absolute path)");
    }
    if !p.cwd().is_absolute() {
        return err(at, "must be an absolute path");
    }
    Ok(())
}

/// `args` needs at least one entry on Linux: the program (execvp's file).
fn args(p: &Process, path: &str) -> Check {
    let at = field(path, "args");
    match p.args().as_deref() {
        None | Some([]) => err(at, "must have at least one entry (the program to run)"),
        Some([first, ..]) if first.is_empty() => err(index(&at, 0), "must not be empty"),
        Some(_) => Ok(()),
    }
}

/// Names are checked against capabilities(7) before parsing; here, that
/// this kernel has each one (/proc/sys/kernel/cap_last_cap): the launcher
/// could not set a bit the kernel does not know.
fn capabilities(p: &Process, path: &str) -> Check {
    let Some(c) = p.capabilities() else {
        return Ok(());
    };
    let sets = [
        ("bounding", c.bounding()),
        ("effective", c.effective()),
        ("inheritable", c.inheritable()),
        ("permitted", c.permitted()),
        ("ambient", c.ambient()),
    ];
    let last = crate::config::caps::last_cap();
    for (name, set) in sets {
        if let Some(set) = set {
            known_to_kernel(set, last, &field(&field(path, "capabilities"), name))?;
        }
    }
    Ok(())
}

fn known_to_kernel(set: &Capabilities, last: u8, path: &str) -> Check {
    let mut names: Vec<String> = set.iter().map(crate::config::caps::oci_name).collect();
    names.sort();
    for name in names {
        match crate::config::caps::index_of(&name) {
            Some(i) if i <= last => {}
            Some(_) => {
                return err(
                    path,
                    format!(
                        "{name} is not known to this kernel (its last capability is number {last})"
                    ),
                )
            }
            None => return err(path, format!("unknown capability {name:?}")),
        }
    }
    Ok(())
}

/// rlimits: no type twice (MUST), and soft <= hard (setrlimit(2) refuses
/// anything else).
fn rlimits(p: &Process, path: &str) -> Check {
    let list = p.rlimits().as_deref().unwrap_or(&[]);
    let at = field(path, "rlimits");
    for (i, r) in list.iter().enumerate() {
        if let Some(j) = list[..i].iter().position(|o| o.typ() == r.typ()) {
            return err(
                index(&at, i),
                format!(
                    "duplicate rlimit type {} (also at {})",
                    r.typ(),
                    index(&at, j)
                ),
            );
        }
        if r.soft() > r.hard() {
            return Err(ConfigError::new(
                index(&at, i),
                format!(
                    "soft limit {} is above hard limit {} for {}",
                    r.soft(),
                    r.hard(),
                    r.typ()
                ),
            ));
        }
    }
    Ok(())
}
