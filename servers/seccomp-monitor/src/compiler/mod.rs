//! Our seccomp BPF compiler: the runtime-spec `linux.seccomp` object in,
//! a classic BPF program for seccomp(2) out. libseccomp is not linked: the
//! tests use it only as an oracle that our programs must agree with.
//!
//! Semantics follow runc + libseccomp, so profiles behave as they do there:
//! - the filter covers the native architecture plus the companions listed in
//!   `architectures`; any other audit arch gets KILL_THREAD (libseccomp's
//!   default bad-arch action);
//! - a syscall name unknown to an architecture is skipped there; when no
//!   architecture of the filter knows it, a warning says so (runc logs it);
//! - a rule whose action equals the default action is dropped (libseccomp
//!   refuses such rules and runc skips them);
//! - per syscall, the first rule without args wins; otherwise rules with
//!   args are ORed (first match in profile order), the args of one rule ANDed;
//! - a MASKED_EQ compares `arg & value` with `valueTwo & value`, and one whose
//!   mask has no bit in the ABI's width is dropped (a rule left with no
//!   comparison is unconditional);
//! - 32-bit ABIs (x86, x32, arm) compare the low 32 bits of arguments only;
//! - on x86 a socket or SysV IPC call is also matched through socketcall(2) /
//!   ipc(2) with argument 0 naming the call (a process can use either).
//!
//! The tests check all of this against libseccomp (tests/compiler_oracle.rs).

mod action;
mod arch;
mod asm;
mod bpf;
mod codegen;
mod moby;
mod profile;

pub use arch::X32_SYSCALL_BIT;
pub use bpf::{dump, to_sock_filter_bytes, BPF_MAXINSNS};
pub use moby::moby_default_profile_json;

use action::Action;
use arch::{Arch, Lookup, Target};
use codegen::{ArchFilter, SyscallRules};
use profile::{ArgCmp, CmpOp};
use protocol::seccomp::Insn;
use protocol::Error;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub const SECCOMP_FILTER_FLAG_TSYNC: u32 = 1;
pub const SECCOMP_FILTER_FLAG_LOG: u32 = 2;
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: u32 = 4;
pub const SECCOMP_FILTER_FLAG_NEW_LISTENER: u32 = 8;
pub const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: u32 = 16;
pub const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: u32 = 32;

/// Bumped whenever the generated code changes, so cached programs keyed by
/// `profile_hash` are not reused across compiler versions.
const COMPILER_VERSION: &str = "asterism-seccomp-compiler/1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub program: Vec<Insn>,
    /// SECCOMP_FILTER_FLAG_* to pass to seccomp(SECCOMP_SET_MODE_FILTER).
    pub flags: u32,
    /// A rule uses SCMP_ACT_NOTIFY: install with NEW_LISTENER (in `flags`)
    /// and hand the returned fd to an agent.
    pub needs_listener: bool,
    pub warnings: Vec<String>,
}

/// Compiles `profile_json` (the config's `linux.seccomp` object) for `arch`
/// (a runtime-spec architecture name, None = this machine's).
pub fn compile(profile_json: &str, arch: Option<&str>) -> Result<Compiled, Error> {
    let native = native_arch(arch)?;
    let profile = profile::parse(profile_json)?;
    let mut warnings = Vec::new();
    let arches = filter_arches(native, &profile.architectures, &mut warnings)?;
    let needs_listener = profile.rules.iter().any(|r| r.action == Action::Notify);
    let flags = flags(&profile.flags, needs_listener, &mut warnings)?;
    let filters = arch_filters(&arches, &profile, &mut warnings);
    let program = codegen::generate(&filters, profile.default_action);
    if program.len() > BPF_MAXINSNS {
        return Err(too_large(program.len(), &profile, arches.len()));
    }
    Ok(Compiled {
        program,
        flags,
        needs_listener,
        warnings,
    })
}

/// sha256 (hex) of the profile with the whitespace between JSON tokens
/// removed (so indentation does not matter), the architecture and the
/// compiler version: the key of the service's program cache. Key order is
/// not normalised: a reordered profile is a cache miss, never a wrong hit,
/// and skipping a full JSON parse keeps a cache hit in a few microseconds.
pub fn profile_hash(profile_json: &str, arch: Option<&str>) -> String {
    let arch = match arch {
        Some(a) => a,
        None => Arch::native().map_or("native", Arch::spec_name),
    };
    let mut h = Sha256::new();
    for part in [COMPILER_VERSION, arch] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hash_json_without_whitespace(&mut h, profile_json);
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Feeds `h` the JSON text without the whitespace outside strings, in
/// slices (no copy: a minified profile is one update).
fn hash_json_without_whitespace(h: &mut Sha256, json: &str) {
    let bytes = json.as_bytes();
    let (mut in_string, mut escaped, mut start) = (false, false, 0);
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            h.update(&bytes[start..i]);
            start = i + 1;
        } else if b == b'"' {
            in_string = true;
        }
    }
    h.update(&bytes[start..]);
}

fn native_arch(arch: Option<&str>) -> Result<Arch, Error> {
    match arch {
        None => Arch::native().ok_or_else(|| {
            Error::unsupported("seccomp: no syscall tables for this machine's architecture")
        }),
        Some(name) => match Arch::lookup(name) {
            Lookup::Supported(a) => Ok(a),
            Lookup::Foreign => Err(Error::unsupported(format!(
                "arch: {name} is a valid architecture but this compiler has no syscall table \
                 for it (supported: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, \
                 SCMP_ARCH_AARCH64, SCMP_ARCH_ARM)"
            ))),
            Lookup::Unknown => Err(Error::invalid(format!(
                "arch: unknown architecture {name:?}"
            ))),
        },
    }
}

/// The native architecture first, then the listed companions. A listed
/// architecture that cannot run on the native kernel stays out of the
/// filter (its processes would get the bad-arch action anyway).
fn filter_arches(
    native: Arch,
    listed: &[String],
    warnings: &mut Vec<String>,
) -> Result<Vec<Arch>, Error> {
    let mut arches = vec![native];
    for (i, name) in listed.iter().enumerate() {
        match Arch::lookup(name) {
            Lookup::Unknown => {
                return Err(Error::invalid(format!(
                    "linux.seccomp.architectures[{i}]: unknown architecture {name:?}"
                )))
            }
            Lookup::Supported(a) if a == native || native.companions().contains(&a) => {
                if !arches.contains(&a) {
                    arches.push(a);
                }
            }
            _ => warnings.push(format!(
                "linux.seccomp.architectures[{i}]: {name} cannot run on {}; its syscalls get \
                 the bad-architecture action (kill)",
                native.spec_name()
            )),
        }
    }
    Ok(arches)
}

fn flags(names: &[String], needs_listener: bool, warnings: &mut Vec<String>) -> Result<u32, Error> {
    let mut flags = 0;
    for (i, name) in names.iter().enumerate() {
        flags |= match name.as_str() {
            "SECCOMP_FILTER_FLAG_TSYNC" => SECCOMP_FILTER_FLAG_TSYNC,
            "SECCOMP_FILTER_FLAG_LOG" => SECCOMP_FILTER_FLAG_LOG,
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" if !needs_listener => {
                // The kernel refuses it without NEW_LISTENER.
                warnings.push(format!(
                    "linux.seccomp.flags[{i}]: {name} ignored: no rule uses SCMP_ACT_NOTIFY"
                ));
                0
            }
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
            _ => {
                return Err(Error::invalid(format!(
                    "linux.seccomp.flags[{i}]: unknown flag {name:?}"
                )))
            }
        };
    }
    if needs_listener {
        flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
        // TSYNC and NEW_LISTENER together need TSYNC_ESRCH (as libseccomp).
        if flags & SECCOMP_FILTER_FLAG_TSYNC != 0 {
            flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    Ok(flags)
}

fn arch_filters(
    arches: &[Arch],
    profile: &profile::Profile,
    warnings: &mut Vec<String>,
) -> Vec<ArchFilter> {
    let mut tables: Vec<BTreeMap<u32, SyscallRules>> = vec![BTreeMap::new(); arches.len()];
    for rule in &profile.rules {
        if rule.action == profile.default_action {
            continue;
        }
        for name in &rule.names {
            let mut known = false;
            for (arch, table) in arches.iter().zip(tables.iter_mut()) {
                for target in arch.targets(name) {
                    known = true;
                    let (nr, args) = match target {
                        Target::Direct(nr) => (nr, rule.args.clone()),
                        Target::Multiplexed { nr, call } => {
                            (nr, multiplexed_args(&rule.args, call))
                        }
                    };
                    let args = effective_args(*arch, args);
                    table.entry(nr).or_default().add(&args, rule.action);
                }
            }
            if !known {
                warnings.push(format!(
                    "linux.seccomp.syscalls[{}]: unknown syscall {name:?} skipped",
                    rule.position
                ));
            }
        }
    }
    arches
        .iter()
        .zip(tables)
        .map(|(&arch, syscalls)| ArchFilter { arch, syscalls })
        .collect()
}

/// The rule's comparisons for the multiplexer: argument 0 selects the call
/// (libseccomp replaces any comparison on argument 0 with it and keeps the
/// others, so do we).
fn multiplexed_args(args: &[ArgCmp], call: u64) -> Vec<ArgCmp> {
    let mut out = vec![ArgCmp {
        index: 0,
        op: CmpOp::Eq,
        value: call,
        value_two: 0,
    }];
    out.extend(args.iter().filter(|a| a.index != 0).copied());
    out
}

/// Drops comparisons that hold for every value on this architecture: a
/// MASKED_EQ whose mask has no bit in the compared width. libseccomp drops
/// them too, and a rule left without comparisons is unconditional (which
/// matters for how rules of one syscall merge).
fn effective_args(arch: Arch, args: Vec<ArgCmp>) -> Vec<ArgCmp> {
    let width = if arch.is_64bit() {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    args.into_iter()
        .filter(|a| !(a.op == CmpOp::MaskedEq && a.value & width == 0))
        .collect()
}

/// The error for a program over BPF_MAXINSNS, naming the rule that weighs
/// most: argument comparisons cost 3 to 6 instructions per syscall and
/// architecture, where a plain rule costs about one.
fn too_large(len: usize, profile: &profile::Profile, arches: usize) -> Error {
    let weight = |r: &profile::Rule| r.names.len() * arches * (1 + 5 * r.args.len());
    let heaviest = profile
        .rules
        .iter()
        .filter(|r| r.action != profile.default_action)
        .max_by_key(|r| weight(r));
    let culprit = match heaviest {
        Some(r) => format!(
            "; the heaviest rule is linux.seccomp.syscalls[{}] ({} names x {} argument \
             comparisons)",
            r.position,
            r.names.len(),
            r.args.len()
        ),
        None => String::new(),
    };
    Error::invalid(format!(
        "linux.seccomp: the profile compiles to {len} BPF instructions, over the kernel's \
         limit of {BPF_MAXINSNS}{culprit}; use fewer argument rules or fewer architectures"
    ))
}
