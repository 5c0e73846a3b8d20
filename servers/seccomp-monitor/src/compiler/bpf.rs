//! Classic BPF as seccomp uses it: opcodes, seccomp_data offsets, return
//! values, and the readable dump.

use protocol::seccomp::Insn;

pub const BPF_LD: u16 = 0x00;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_K: u16 = 0x00;
pub const BPF_AND: u16 = 0x50;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;

/// The kernel's BPF_MAXINSNS: a longer seccomp program is refused.
pub const BPF_MAXINSNS: usize = 4096;

/// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
pub const SECCOMP_DATA_NR: u32 = 0;
pub const SECCOMP_DATA_ARCH: u32 = 4;
pub const SECCOMP_DATA_ARGS: u32 = 16;

/// Offset of the low and high 32-bit halves of argument `index`: the
/// struct is in the kernel's (native) byte order.
pub fn arg_offsets(index: u8) -> (u32, u32) {
    let base = SECCOMP_DATA_ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        (base, base + 4)
    } else {
        (base + 4, base)
    }
}

pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// Name of a seccomp return value, for the dump.
pub fn ret_name(k: u32) -> String {
    let data = k & SECCOMP_RET_DATA;
    match k & SECCOMP_RET_ACTION_FULL {
        SECCOMP_RET_KILL_PROCESS => "KILL_PROCESS".into(),
        SECCOMP_RET_KILL_THREAD => "KILL_THREAD".into(),
        SECCOMP_RET_TRAP => "TRAP".into(),
        SECCOMP_RET_ERRNO => format!("ERRNO({data})"),
        SECCOMP_RET_USER_NOTIF => "NOTIFY".into(),
        SECCOMP_RET_TRACE => format!("TRACE({data})"),
        SECCOMP_RET_LOG => "LOG".into(),
        SECCOMP_RET_ALLOW => "ALLOW".into(),
        _ => format!("unknown {k:#x}"),
    }
}

fn field_name(k: u32) -> String {
    match k {
        SECCOMP_DATA_NR => "nr".into(),
        SECCOMP_DATA_ARCH => "arch".into(),
        8 | 12 => "instruction_pointer".into(),
        16..=63 => {
            let i = (k - SECCOMP_DATA_ARGS) / 8;
            let (lo, _) = arg_offsets(i as u8);
            let half = if k == lo { "lo" } else { "hi" };
            format!("args[{i}].{half}")
        }
        _ => format!("?{k}"),
    }
}

/// One line per instruction in bpf_asm-like syntax, jump targets as absolute
/// line numbers, preceded by the instruction count.
pub fn dump(program: &[Insn]) -> String {
    let mut out = format!("; {} instructions\n", program.len());
    for (pc, insn) in program.iter().enumerate() {
        out.push_str(&format!("{pc:04}: {}\n", dump_one(pc, insn)));
    }
    out
}

fn dump_one(pc: usize, i: &Insn) -> String {
    let next = pc + 1;
    match i.code {
        c if c == BPF_LD | BPF_W | BPF_ABS => {
            format!("{:<24}; {}", format!("ld  [{}]", i.k), field_name(i.k))
        }
        c if c == BPF_ALU | BPF_AND | BPF_K => format!("and #{:#x}", i.k),
        c if c == BPF_RET | BPF_K => {
            format!("{:<24}; {}", format!("ret #{:#x}", i.k), ret_name(i.k))
        }
        c if c == BPF_JMP | BPF_JA => format!("ja  {}", next + i.k as usize),
        c if c & 0x07 == BPF_JMP => {
            let op = match c & 0xf0 {
                BPF_JEQ => "jeq",
                BPF_JGT => "jgt",
                BPF_JGE => "jge",
                BPF_JSET => "jset",
                _ => "j??",
            };
            format!(
                "{op:<4}#{:#x}, {}, {}",
                i.k,
                next + i.jt as usize,
                next + i.jf as usize
            )
        }
        c => format!(".insn {c:#06x}, {}, {}, {:#x}", i.jt, i.jf, i.k),
    }
}

/// struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; } in native order.
pub fn to_sock_filter_bytes(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}
