//! Architectures: their AUDIT_ARCH_* values, argument width, companions
//! and syscall tables (the `syscalls` crate, plus the x32 and ARM-private
//! numbers that crate does not carry, from the kernel's tables).

use std::str::FromStr;

/// __X32_SYSCALL_BIT: x32 syscalls are x86_64 syscalls with this bit set.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

/// Every architecture name the runtime-spec (libseccomp 2.6) knows.
const SPEC_ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
];

/// How a spec architecture name resolves.
pub enum Lookup {
    Supported(Arch),
    /// A valid spec name this compiler has no syscall table for.
    Foreign,
    Unknown,
}

impl Arch {
    pub fn lookup(name: &str) -> Lookup {
        let arch = match name {
            "SCMP_ARCH_X86_64" => Arch::X86_64,
            "SCMP_ARCH_X86" => Arch::X86,
            "SCMP_ARCH_X32" => Arch::X32,
            "SCMP_ARCH_AARCH64" => Arch::Aarch64,
            "SCMP_ARCH_ARM" => Arch::Arm,
            n if SPEC_ARCHES.contains(&n) => return Lookup::Foreign,
            _ => return Lookup::Unknown,
        };
        Lookup::Supported(arch)
    }

    pub fn native() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Aarch64)
        } else {
            None
        }
    }

    pub fn spec_name(self) -> &'static str {
        match self {
            Arch::X86_64 => "SCMP_ARCH_X86_64",
            Arch::X86 => "SCMP_ARCH_X86",
            Arch::X32 => "SCMP_ARCH_X32",
            Arch::Aarch64 => "SCMP_ARCH_AARCH64",
            Arch::Arm => "SCMP_ARCH_ARM",
        }
    }

    /// The architectures whose processes can run on a kernel of this one:
    /// those a filter for this native architecture can meet.
    pub fn companions(self) -> &'static [Arch] {
        match self {
            Arch::X86_64 => &[Arch::X86, Arch::X32],
            Arch::Aarch64 => &[Arch::Arm],
            Arch::X86 | Arch::X32 | Arch::Arm => &[],
        }
    }

    /// AUDIT_ARCH_* as seccomp_data.arch carries it. x32 shares x86_64's
    /// and is told apart by X32_SYSCALL_BIT in the syscall number.
    pub fn audit(self) -> u32 {
        match self {
            Arch::X86_64 | Arch::X32 => 0xc000_003e,
            Arch::X86 => 0x4000_0003,
            Arch::Aarch64 => 0xc000_00b7,
            Arch::Arm => 0x4000_0028,
        }
    }

    /// Whether argument comparisons use both 32-bit halves. libseccomp
    /// treats x32 as a 32-bit ABI (its pointers and longs are 32 bits), and
    /// so do we, so that both filters agree.
    pub fn is_64bit(self) -> bool {
        matches!(self, Arch::X86_64 | Arch::Aarch64)
    }

    /// Where a rule on `name` lands on this architecture: its own number,
    /// and on x86 also the socketcall(2)/ipc(2) multiplexer with argument 0
    /// naming the call, as libseccomp does (a process can reach the call
    /// either way, so a rule must cover both).
    pub fn targets(self, name: &str) -> Vec<Target> {
        let mut out: Vec<Target> = self.resolve(name).map(Target::Direct).into_iter().collect();
        if self == Arch::X86 {
            if let Some(m) = x86_multiplexed(name) {
                out.push(m);
            }
        }
        out
    }

    /// The syscall number of `name` on this architecture, if it has one.
    pub fn resolve(self, name: &str) -> Option<u32> {
        match self {
            Arch::X86_64 => syscalls::x86_64::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::X86 => syscalls::x86::Sysno::from_str(name)
                .ok()
                .map(|s| s.id() as u32),
            Arch::X32 => resolve_x32(name),
            Arch::Aarch64 => resolve_aarch64(name),
            Arch::Arm => resolve_arm(name),
        }
    }
}

/// The x32 entries of the kernel's syscall_64.tbl (numbers 512 to 547):
/// syscalls whose x86_64 entry is 64-bit only and that x32 reaches through
/// its own compat entry point.
const X32_SPECIFIC: &[&str] = &[
    "rt_sigaction",
    "rt_sigreturn",
    "ioctl",
    "readv",
    "writev",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "execve",
    "ptrace",
    "rt_sigpending",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "sigaltstack",
    "timer_create",
    "mq_notify",
    "kexec_load",
    "waitid",
    "set_robust_list",
    "get_robust_list",
    "vmsplice",
    "move_pages",
    "preadv",
    "pwritev",
    "rt_tgsigqueueinfo",
    "recvmmsg",
    "sendmmsg",
    "process_vm_readv",
    "process_vm_writev",
    "setsockopt",
    "getsockopt",
    "io_setup",
    "io_submit",
    "execveat",
    "preadv2",
    "pwritev2",
];

/// x86_64 syscalls marked "64" in syscall_64.tbl with no x32 entry at all.
const X86_64_ONLY: &[&str] = &[
    "uselib",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "nfsservctl",
    "set_thread_area",
    "get_thread_area",
    "epoll_ctl_old",
    "epoll_wait_old",
    "vserver",
];

fn resolve_x32(name: &str) -> Option<u32> {
    if let Some(i) = X32_SPECIFIC.iter().position(|n| *n == name) {
        return Some((512 + i as u32) | X32_SYSCALL_BIT);
    }
    if X86_64_ONLY.contains(&name) {
        return None;
    }
    let nr = syscalls::x86_64::Sysno::from_str(name).ok()?.id() as u32;
    // Numbers 512+ in the x86_64 table are x32 slots, never x86_64 calls.
    (nr < 512).then_some(nr | X32_SYSCALL_BIT)
}

/// ARM's private syscalls live at __ARM_NR_BASE (0x0f0000) + n.
const ARM_PRIVATE: &[(&str, u32)] = &[
    ("breakpoint", 0x0f0001),
    ("cacheflush", 0x0f0002),
    ("usr26", 0x0f0003),
    ("usr32", 0x0f0004),
    ("set_tls", 0x0f0005),
    ("get_tls", 0x0f0006),
];

fn resolve_arm(name: &str) -> Option<u32> {
    if let Some((_, nr)) = ARM_PRIVATE.iter().find(|(n, _)| *n == name) {
        return Some(*nr);
    }
    syscalls::arm::Sysno::from_str(name)
        .ok()
        .map(|s| s.id() as u32)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Direct(u32),
    /// The multiplexer syscall `nr`, with argument 0 equal to `call`.
    Multiplexed {
        nr: u32,
        call: u64,
    },
}

const X86_SOCKETCALL: u32 = 102;
const X86_IPC: u32 = 117;

/// linux/net.h SYS_* numbers.
const SOCKETCALLS: &[&str] = &[
    "socket",
    "bind",
    "connect",
    "listen",
    "accept",
    "getsockname",
    "getpeername",
    "socketpair",
    "send",
    "recv",
    "sendto",
    "recvfrom",
    "shutdown",
    "setsockopt",
    "getsockopt",
    "sendmsg",
    "recvmsg",
    "accept4",
    "recvmmsg",
    "sendmmsg",
];

/// linux/ipc.h call numbers.
const IPC_CALLS: &[(&str, u64)] = &[
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

fn x86_multiplexed(name: &str) -> Option<Target> {
    if let Some(i) = SOCKETCALLS.iter().position(|n| *n == name) {
        return Some(Target::Multiplexed {
            nr: X86_SOCKETCALL,
            call: i as u64 + 1,
        });
    }
    IPC_CALLS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(_, call)| Target::Multiplexed { nr: X86_IPC, call })
}

/// Where the `syscalls` crate's arm64 names differ from the kernel's
/// (asm-generic/unistd.h as arm64 builds it) and libseccomp's.
const AARCH64_FIXES: &[(&str, Option<u32>)] = &[
    // __NR3264_fstatat is newfstatat on 64-bit ABIs.
    ("newfstatat", Some(79)),
    ("fstatat", None),
    // arm64 does not define __ARCH_WANT_SYNC_FILE_RANGE2.
    ("sync_file_range", Some(84)),
    ("sync_file_range2", None),
];

fn resolve_aarch64(name: &str) -> Option<u32> {
    if let Some((_, nr)) = AARCH64_FIXES.iter().find(|(n, _)| *n == name) {
        return *nr;
    }
    // 403..=423 are the 32-bit ABIs' *_time64 calls: asm-generic defines
    // them only where long is 32 bits.
    syscalls::aarch64::Sysno::from_str(name)
        .ok()
        .map(|s| s.id() as u32)
        .filter(|nr| !(403..=423).contains(nr))
}
