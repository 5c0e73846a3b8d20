//! A small classic-BPF interpreter for seccomp programs, shared by the
//! compiler tests (included with #[path]); it checks what the kernel's
//! verifier checks that matters here: forward jumps inside the program,
//! aligned loads inside seccomp_data, a ret at the end.
#![allow(dead_code)]

use protocol::seccomp::Insn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    fn word(&self, off: u32) -> u32 {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&self.nr.to_ne_bytes());
        bytes.extend_from_slice(&self.arch.to_ne_bytes());
        bytes.extend_from_slice(&self.ip.to_ne_bytes());
        for a in self.args {
            bytes.extend_from_slice(&a.to_ne_bytes());
        }
        let o = off as usize;
        assert!(o.is_multiple_of(4) && o + 4 <= 64, "bad load offset {off}");
        u32::from_ne_bytes(bytes[o..o + 4].try_into().unwrap())
    }
}

/// Runs `prog` on `d`; returns the seccomp return value and the number of
/// instructions executed.
pub fn run(prog: &[Insn], d: &SeccompData) -> (u32, usize) {
    let (mut a, mut pc, mut steps) = (0u32, 0usize, 0usize);
    loop {
        let i = prog
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} ran off the program"));
        steps += 1;
        pc += 1;
        match i.code {
            0x20 => a = d.word(i.k),
            0x54 => a &= i.k,
            0x06 => return (i.k, steps),
            0x05 => pc += i.k as usize,
            c if c & 0x07 == 0x05 => {
                let taken = match c & 0xf0 {
                    0x10 => a == i.k,
                    0x20 => a > i.k,
                    0x30 => a >= i.k,
                    0x40 => a & i.k != 0,
                    _ => panic!("unsupported jump {c:#x}"),
                };
                pc += if taken { i.jt } else { i.jf } as usize;
            }
            c => panic!("unsupported opcode {c:#x} at {}", pc - 1),
        }
    }
}

/// Decodes struct sock_filter bytes (native endian).
pub fn decode(bytes: &[u8]) -> Vec<Insn> {
    assert_eq!(bytes.len() % 8, 0);
    bytes
        .chunks(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

pub const AUDIT_X86_64: u32 = 0xc000_003e;
pub const AUDIT_I386: u32 = 0x4000_0003;
pub const AUDIT_AARCH64: u32 = 0xc000_00b7;
pub const AUDIT_ARM: u32 = 0x4000_0028;

pub fn data(arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
    SeccompData {
        nr,
        arch,
        ip: 0,
        args,
    }
}
