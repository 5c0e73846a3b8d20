//! The cgroup v1 devices controller: which device nodes a container's
//! processes may open (read, write) or create (mknod). Without it a
//! container given CAP_MKNOD could make and open any of the host's
//! devices, whatever its config's `linux.resources.devices` says.
//!
//! A new group starts with its parent's list. The rules are written in the
//! config's order, each to devices.allow or devices.deny, as runc did
//! before its emulator: the usual first rule, deny `a *:* rwm`, empties the
//! list, and the allow rules after it add to it. (cgroup v2 has no devices
//! files: there the same rules become an eBPF program, see
//! [`crate::devices_bpf`].)

use cgroupfs::CgroupDir;
use protocol::cpu::DeviceRule;
use protocol::Error;

pub fn apply(dir: &CgroupDir, rules: &[DeviceRule]) -> Result<(), Error> {
    // In order, a run of rules of one kind at a time, each run through one
    // open of its file (the usual list is one deny, then only allows: two
    // opens rather than one a rule).
    let mut start = 0;
    while start < rules.len() {
        let allow = rules[start].allow;
        let end = rules[start..]
            .iter()
            .position(|r| r.allow != allow)
            .map_or(rules.len(), |n| start + n);
        let lines: Vec<String> = rules[start..end].iter().map(DeviceRule::line).collect();
        let file = match allow {
            true => "devices.allow",
            false => "devices.deny",
        };
        dir.write_each(file, &lines)?;
        start = end;
    }
    Ok(())
}

/// Refuses a rule the kernel would refuse, before anything is made.
pub fn check(rules: &[DeviceRule]) -> Result<(), Error> {
    rules.iter().try_for_each(DeviceRule::check)
}
