//! The device rules on cgroup v2, which has no devices files: an eBPF
//! program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the group's
//! directory, which the kernel runs on every open and mknod of a device
//! node by a process in the group (or below), as runc and crun do.
//!
//! The rules are first folded as the v1 files would take them in order
//! (see [`crate::devices`]): a wildcard rule (`a *:*`) sets the default
//! and forgets the rules before it, every other rule is an exception. The
//! program then tries the exceptions last to first (the last that matches
//! wins) and falls back to the default. A new v1 group starts from its
//! parent's list, normally "allow all": so does the fold.

#![allow(unsafe_code)]

use protocol::cpu::DeviceRule;
use protocol::Error;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// struct bpf_insn.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    /// dst in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_W_MEM: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JNE_K: u8 = 0x55; // if dst != imm goto +off
const JMP_JNE_X: u8 = 0x5d; // if dst != src goto +off
const JMP_EXIT: u8 = 0x95;

// struct bpf_cgroup_dev_ctx: access_type = (access << 16) | type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

/// (default allow, the exceptions in order).
pub fn fold(rules: &[DeviceRule]) -> (bool, Vec<DeviceRule>) {
    let mut default = true;
    let mut exceptions = vec![];
    for r in rules {
        if r.kind == 'a' && r.major.is_none() && r.minor.is_none() {
            default = r.allow;
            exceptions.clear();
        } else {
            exceptions.push(r.clone());
        }
    }
    (default, exceptions)
}

fn access_bits(access: &str) -> i32 {
    access
        .chars()
        .map(|c| match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        })
        .fold(0, |a, b| a | b)
}

/// The program for `rules`. Registers: r2 type, r3 access, r4 major,
/// r5 minor; r1 scratch once they are loaded.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let (default, exceptions) = fold(rules);
    let mut p = vec![
        insn(LDX_W_MEM, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W_MEM, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_W_MEM, 4, 1, 4, 0),
        insn(LDX_W_MEM, 5, 1, 8, 0),
    ];
    for r in exceptions.iter().rev() {
        p.extend(block(r));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, default as i32));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// One rule: every test jumps past the block when it fails; a match
/// returns the rule's verdict.
fn block(r: &DeviceRule) -> Vec<Insn> {
    let mut tests: Vec<Insn> = vec![];
    match r.kind {
        'b' => tests.push(insn(JMP_JNE_K, 2, 0, 0, DEV_BLOCK)),
        'c' => tests.push(insn(JMP_JNE_K, 2, 0, 0, DEV_CHAR)),
        _ => {}
    }
    // The access asked for must be within the rule's: (r3 & rule) == r3.
    tests.push(insn(ALU64_MOV_X, 1, 3, 0, 0));
    tests.push(insn(ALU64_AND_K, 1, 0, 0, access_bits(&r.access)));
    tests.push(insn(JMP_JNE_X, 1, 3, 0, 0));
    if let Some(major) = r.major {
        tests.push(insn(JMP_JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = r.minor {
        tests.push(insn(JMP_JNE_K, 5, 0, 0, minor as i32));
    }
    let verdict = [
        insn(ALU64_MOV_K, 0, 0, 0, r.allow as i32),
        insn(JMP_EXIT, 0, 0, 0, 0),
    ];
    let len = tests.len() + verdict.len();
    // A jump's offset counts the instructions after it.
    for (i, t) in tests.iter_mut().enumerate() {
        if t.code == JMP_JNE_K || t.code == JMP_JNE_X {
            t.off = (len - i - 1) as i16;
        }
    }
    tests.extend(verdict);
    tests
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// Loads the program for `rules` and attaches it to the cgroup v2
/// directory `dir` (an O_DIRECTORY fd). The attachment lasts as long as
/// the group; the program's fd is closed on return.
pub fn attach(dir: BorrowedFd<'_>, rules: &[DeviceRule], what: &str) -> Result<(), Error> {
    let insns = program(rules);
    let prog = load(&insns).map_err(|e| {
        Error::io(
            format!("load the device rules of {what} as a cgroup eBPF program"),
            &e,
        )
    })?;
    attach_prog(dir, &prog).map_err(|e| {
        Error::io(
            format!("attach the device rules' eBPF program to {what}"),
            &e,
        )
    })
}

/// bpf(BPF_PROG_LOAD): a CGROUP_DEVICE program from `insns`.
fn load(insns: &[Insn]) -> std::io::Result<OwnedFd> {
    let license = c"Apache-2.0";
    // union bpf_attr, the BPF_PROG_LOAD part: prog_type, insn_cnt, insns,
    // license, log_level, log_size, log_buf, kern_version, prog_flags,
    // prog_name[16], prog_ifindex, expected_attach_type.
    let mut attr = [0u8; 72];
    attr[0..4].copy_from_slice(&BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes());
    attr[4..8].copy_from_slice(&(insns.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..58].copy_from_slice(b"asterism_d");
    attr[68..72].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    // SAFETY: `attr` is a bpf_attr of the size passed; the pointers in it
    // (instructions, license) are valid for the call, and the kernel only
    // reads through them. A non-negative result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// bpf(BPF_PROG_ATTACH) of `prog` to the cgroup `dir`, beside any other
/// (BPF_F_ALLOW_MULTI, as systemd and runc attach theirs).
fn attach_prog(dir: BorrowedFd<'_>, prog: &OwnedFd) -> std::io::Result<()> {
    // target_fd, attach_bpf_fd, attach_type, attach_flags, replace_bpf_fd.
    let mut attr = [0u8; 20];
    attr[0..4].copy_from_slice(&(dir.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    attr[8..12].copy_from_slice(&BPF_CGROUP_DEVICE.to_ne_bytes());
    attr[12..16].copy_from_slice(&BPF_F_ALLOW_MULTI.to_ne_bytes());
    // SAFETY: `attr` is a bpf_attr of the size passed, holding only
    // integers (two fds that stay open during the call).
    let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, attr.as_ptr(), attr.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(
        allow: bool,
        kind: char,
        major: Option<i64>,
        minor: Option<i64>,
        access: &str,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access: access.into(),
        }
    }

    #[test]
    fn the_fold_keeps_what_follows_the_last_wildcard() {
        let rules = vec![
            rule(true, 'c', Some(1), Some(1), "r"),
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
        ];
        let (default, ex) = fold(&rules);
        assert!(!default);
        assert_eq!(ex, vec![rules[2].clone()]);
        assert_eq!(fold(&[]), (true, vec![]));
    }

    #[test]
    fn jumps_land_on_the_next_block() {
        let p = program(&[
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
            rule(true, 'b', None, None, "m"),
        ]);
        // prologue 6; "b *:* m": type, 3 access, verdict 2 = 6; "c 1:3":
        // type, 3 access, major, minor, verdict 2 = 8; default 2.
        assert_eq!(p.len(), 6 + 6 + 8 + 2);
        for (i, x) in p.iter().enumerate() {
            if x.code == JMP_JNE_K || x.code == JMP_JNE_X {
                let target = i + 1 + x.off as usize;
                assert!(
                    target == 12 || target == 20,
                    "jump at {i} lands on {target}"
                );
            }
        }
        assert_eq!(p.last().unwrap().code, JMP_EXIT);
        assert_eq!(
            p[p.len() - 2],
            insn(ALU64_MOV_K, 0, 0, 0, 0),
            "deny by default"
        );
    }

    /// A cgroup v2 directory of our own under this test's cgroup2 group,
    /// removed (after its processes are gone) on drop.
    struct V2Dir(std::path::PathBuf);

    impl Drop for V2Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    /// The program runs in the real kernel, loaded and attached with only
    /// the server's capabilities: a process moved into a cgroup2 group with
    /// deny-all-but-/dev/null cannot open /dev/fuse, which the host lets
    /// root open, and still opens /dev/null; with a rule for /dev/fuse
    /// (read and write) it opens both.
    #[test]
    fn the_kernel_enforces_it_on_a_real_cgroup2_group() {
        let deny = vec![
            rule(false, 'a', None, None, "rwm"),
            rule(true, 'c', Some(1), Some(3), "rwm"),
        ];
        let Some(out) = probe_under(&deny, "deny") else {
            return;
        };
        assert_eq!(out, vec!["fuse-denied", "null-opened"]);
        let mut allow = deny.clone();
        allow.push(rule(true, 'c', Some(10), Some(229), "rw"));
        let out = probe_under(&allow, "allow").unwrap();
        assert_eq!(out, vec!["fuse-opened", "null-opened"]);
    }

    /// What a shell moved into a new cgroup2 group under `rules` could open.
    fn probe_under(rules: &[DeviceRule], tag: &str) -> Option<Vec<String>> {
        use std::io::{BufRead, Write};
        use std::os::fd::AsFd;
        let hier = cgroupfs::Hierarchies::discover().unwrap();
        let Some(unified) = hier.unified.clone() else {
            eprintln!("skipping: no cgroup2 mount on this host");
            return None;
        };
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let own = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .unwrap()
            .trim_start_matches('/');
        let name = format!("cpuctl-bpf-{}-{tag}", std::process::id());
        let dir = V2Dir(unified.join(own).join(name));
        std::fs::create_dir(&dir.0).unwrap();
        let fd = std::fs::File::open(&dir.0).unwrap();
        // From a thread with only the server's capabilities, as it runs.
        let owned = rules.to_vec();
        std::thread::scope(|s| {
            s.spawn(|| {
                libipc::caps::keep_only("cpu-controller", crate::CAPABILITIES).unwrap();
                attach(fd.as_fd(), &owned, "the test group").unwrap();
            });
        });
        let probe =
            "read x; (exec 3<>/dev/fuse) 2>/dev/null && echo fuse-opened || echo fuse-denied; \
                     (exec 3<>/dev/null) && echo null-opened";
        let mut child = std::process::Command::new("sh")
            .args(["-c", probe])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(dir.0.join("cgroup.procs"), child.id().to_string()).unwrap();
        writeln!(child.stdin.take().unwrap()).unwrap();
        let out: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map(Result::unwrap)
            .collect();
        child.wait().unwrap();
        Some(out)
    }
}
