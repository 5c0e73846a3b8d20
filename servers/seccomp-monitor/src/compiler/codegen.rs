//! Code generation: an architecture dispatch, then per architecture a
//! binary search over syscall-number ranges, each leaf returning an action
//! or checking arguments.
//!
//! Layout of the program:
//!
//! ```text
//!   ld [arch]
//!   jeq #AUDIT_ARCH_A, A, next      one per audit arch in the filter
//!   ...
//!   ret BADARCH                     an architecture not in the filter
//! A:
//!   ld [nr]
//!   <search tree over the ranges of A>
//! ```
//!
//! The syscall-number space of an architecture is cut into ranges with one
//! handler each (the default action, one rule action, or argument checks for
//! one syscall); neighbouring ranges with the same plain action are merged,
//! so a large allow-list becomes few ranges and evaluation costs about
//! log2(ranges) jumps.

use super::action::Action;
use super::arch::{Arch, X32_SYSCALL_BIT};
use super::asm::{Asm, Label, Target};
use super::bpf::*;
use super::profile::{ArgCmp, CmpOp};
use std::collections::BTreeMap;

/// The rules of one syscall on one architecture, merged as libseccomp
/// merges them: the first unconditional rule wins over everything else;
/// otherwise the conditional rules are tried in profile order (ORed).
#[derive(Debug, Clone, Default)]
pub struct SyscallRules {
    pub unconditional: Option<Action>,
    pub conditional: Vec<(Vec<ArgCmp>, Action)>,
}

impl SyscallRules {
    pub fn add(&mut self, args: &[ArgCmp], action: Action) {
        if self.unconditional.is_some() {
            return;
        }
        if args.is_empty() {
            self.unconditional = Some(action);
            self.conditional.clear();
        } else {
            self.conditional.push((args.to_vec(), action));
        }
    }
}

/// Everything the generator needs for one architecture.
pub struct ArchFilter {
    pub arch: Arch,
    pub syscalls: BTreeMap<u32, SyscallRules>,
}

/// What a range of syscall numbers does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handler {
    Ret(u32),
    /// Argument checks of the syscall with this number.
    Args(u32),
}

pub const BAD_ARCH_ACTION: u32 = SECCOMP_RET_KILL_THREAD;

/// `filters` in dispatch order (native first: it is the common case).
/// x86_64 and x32 share an audit arch and are generated as one tree.
pub fn generate(filters: &[ArchFilter], default: Action) -> Vec<protocol::seccomp::Insn> {
    let mut asm = Asm::default();
    let groups = audit_groups(filters);
    asm.ld(SECCOMP_DATA_ARCH);
    let labels: Vec<Label> = groups.iter().map(|_| asm.label()).collect();
    for (group, l) in groups.iter().zip(&labels) {
        asm.jump(BPF_JEQ, group[0].arch.audit(), Target::To(*l), Target::Next);
    }
    asm.ret(BAD_ARCH_ACTION);
    for (group, l) in groups.iter().zip(&labels) {
        asm.bind(*l);
        asm.ld(SECCOMP_DATA_NR);
        let ranges = ranges(group, default);
        let rules = |nr: u32| {
            group
                .iter()
                .find_map(|f| f.syscalls.get(&nr))
                .expect("an Args handler names a syscall with rules")
        };
        search(&mut asm, &ranges, &|asm, nr| {
            emit_args(asm, rules(nr), arch_is_64(group, nr), default)
        });
    }
    asm.finish()
}

fn arch_is_64(group: &[&ArchFilter], nr: u32) -> bool {
    group
        .iter()
        .find(|f| f.syscalls.contains_key(&nr))
        .map(|f| f.arch.is_64bit())
        .unwrap_or(false)
}

/// Filters grouped by audit arch, keeping the given order.
fn audit_groups(filters: &[ArchFilter]) -> Vec<Vec<&ArchFilter>> {
    let mut groups: Vec<Vec<&ArchFilter>> = Vec::new();
    for f in filters {
        match groups
            .iter_mut()
            .find(|g| g[0].arch.audit() == f.arch.audit())
        {
            Some(g) => g.push(f),
            None => groups.push(vec![f]),
        }
    }
    groups
}

/// Cuts [0, 2^32) into (start, handler) ranges, sorted, merged.
fn ranges(group: &[&ArchFilter], default: Action) -> Vec<(u32, Handler)> {
    let has = |a| group.iter().any(|f| f.arch == a);
    let mut out = vec![(0u32, Handler::Ret(default.ret()))];
    // On the x86_64 audit arch, numbers with the x32 bit belong to x32:
    // without x32 in the filter they are a foreign ABI (libseccomp's
    // behaviour: the bad-arch action); with it, unmatched ones get the default.
    if has(Arch::X86_64) && !has(Arch::X32) {
        out.push((X32_SYSCALL_BIT, Handler::Ret(BAD_ARCH_ACTION)));
    }
    if has(Arch::X32) && !has(Arch::X86_64) {
        out[0].1 = Handler::Ret(BAD_ARCH_ACTION);
        out.push((X32_SYSCALL_BIT, Handler::Ret(default.ret())));
    }
    let mut points: BTreeMap<u32, Handler> = BTreeMap::new();
    for f in group {
        for (&nr, rules) in &f.syscalls {
            let h = match rules.unconditional {
                Some(a) => Handler::Ret(a.ret()),
                None => Handler::Args(nr),
            };
            points.insert(nr, h);
        }
    }
    for (nr, h) in points {
        let after = handler_at(&out, nr.wrapping_add(1));
        let after_start = nr.checked_add(1);
        overwrite(&mut out, nr, h);
        if let Some(next) = after_start {
            if handler_at(&out, next) != after {
                overwrite(&mut out, next, after);
            }
        }
    }
    merge(out)
}

fn handler_at(ranges: &[(u32, Handler)], nr: u32) -> Handler {
    ranges
        .iter()
        .rev()
        .find(|(start, _)| *start <= nr)
        .map(|r| r.1)
        .expect("ranges start at 0")
}

/// Makes a range start at `nr` with handler `h` (till the next start).
fn overwrite(ranges: &mut Vec<(u32, Handler)>, nr: u32, h: Handler) {
    match ranges.binary_search_by_key(&nr, |r| r.0) {
        Ok(i) => ranges[i].1 = h,
        Err(i) => ranges.insert(i, (nr, h)),
    }
}

fn merge(ranges: Vec<(u32, Handler)>) -> Vec<(u32, Handler)> {
    let mut out: Vec<(u32, Handler)> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match (out.last(), r.1) {
            (Some(&(_, Handler::Ret(a))), Handler::Ret(b)) if a == b => {}
            _ => out.push(r),
        }
    }
    out
}

/// Binary search over range starts; A holds the syscall number.
fn search(asm: &mut Asm, ranges: &[(u32, Handler)], args: &dyn Fn(&mut Asm, u32)) {
    if let [(_, h)] = ranges {
        match *h {
            Handler::Ret(k) => asm.ret(k),
            Handler::Args(nr) => args(asm, nr),
        }
        return;
    }
    let mid = ranges.len() / 2;
    let right = asm.label();
    asm.jump(BPF_JGE, ranges[mid].0, Target::To(right), Target::Next);
    search(asm, &ranges[..mid], args);
    asm.bind(right);
    search(asm, &ranges[mid..], args);
}

/// The argument checks of one syscall: each rule's comparisons ANDed, the
/// rules tried in order, the default action when none matches.
fn emit_args(asm: &mut Asm, rules: &SyscallRules, is_64: bool, default: Action) {
    for (cmps, action) in &rules.conditional {
        let fail = asm.label();
        for cmp in cmps {
            let pass = asm.label();
            emit_cmp(asm, cmp, is_64, pass, fail);
            asm.bind(pass);
        }
        asm.ret(action.ret());
        asm.bind(fail);
    }
    asm.ret(default.ret());
}

/// Jumps to `pass` when the comparison holds, else to `fail`. On 64-bit
/// ABIs the high halves decide first, then the low halves; a 32-bit ABI
/// compares the low half only, as libseccomp does.
fn emit_cmp(asm: &mut Asm, c: &ArgCmp, is_64: bool, pass: Label, fail: Label) {
    let (lo_off, hi_off) = arg_offsets(c.index);
    let (p, f) = (Target::To(pass), Target::To(fail));
    let hi = |v: u64| (v >> 32) as u32;
    let lo = |v: u64| v as u32;
    match c.op {
        CmpOp::Eq | CmpOp::Ne | CmpOp::MaskedEq => {
            // libseccomp compares against valueTwo & mask: bits outside
            // the mask cannot matter.
            let (mask, want) = match c.op {
                CmpOp::MaskedEq => (c.value, c.value_two & c.value),
                _ => (u64::MAX, c.value),
            };
            let (t, e) = if c.op == CmpOp::Ne { (f, p) } else { (p, f) };
            // A half with an empty mask always matches: skip it (at least
            // one half has mask bits: see effective_args).
            if is_64 && hi(mask) != 0 {
                asm.ld(hi_off);
                if hi(mask) != u32::MAX {
                    asm.and(hi(mask));
                }
                let lo_needed = lo(mask) != 0;
                let on_eq = if lo_needed { Target::Next } else { t };
                asm.jump(BPF_JEQ, hi(want), on_eq, e);
                if !lo_needed {
                    return;
                }
            }
            asm.ld(lo_off);
            if lo(mask) != u32::MAX {
                asm.and(lo(mask));
            }
            asm.jump(BPF_JEQ, lo(want), t, e);
        }
        CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
            // LT is "not GE", LE is "not GT".
            let (op, t, e) = match c.op {
                CmpOp::Gt => (BPF_JGT, p, f),
                CmpOp::Ge => (BPF_JGE, p, f),
                CmpOp::Lt => (BPF_JGE, f, p),
                _ => (BPF_JGT, f, p),
            };
            if is_64 {
                asm.ld(hi_off);
                asm.jump(BPF_JGT, hi(c.value), t, Target::Next);
                asm.jump(BPF_JEQ, hi(c.value), Target::Next, e);
            }
            asm.ld(lo_off);
            asm.jump(op, lo(c.value), t, e);
        }
    }
}
