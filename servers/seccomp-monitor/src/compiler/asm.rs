//! A tiny assembler: code is generated with symbolic labels, then laid out.
//! Classic BPF conditional jumps reach at most 255 instructions forward, so
//! a jump that lands farther is routed through an inserted `ja` (32-bit
//! offset) trampoline, repeated until every jump fits.

use super::bpf::*;
use protocol::seccomp::Insn;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The instruction right after the jump.
    Next,
    To(Label),
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Ld(u32),
    And(u32),
    Jump {
        op: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Ja(Label),
    Ret(u32),
}

#[derive(Default)]
pub struct Asm {
    items: Vec<Item>,
    /// Label id -> index of the item it stands before.
    labels: Vec<Option<usize>>,
}

impl Asm {
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `l` before the next emitted instruction.
    pub fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.items.len());
    }

    pub fn ld(&mut self, offset: u32) {
        self.items.push(Item::Ld(offset));
    }

    pub fn and(&mut self, k: u32) {
        self.items.push(Item::And(k));
    }

    pub fn jump(&mut self, op: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { op, k, jt, jf });
    }

    pub fn ret(&mut self, k: u32) {
        self.items.push(Item::Ret(k));
    }

    /// Lays the program out, inserting trampolines for far jumps.
    pub fn finish(mut self) -> Vec<Insn> {
        // An inserted trampoline lengthens the jumps that cross it, so
        // passes repeat until one changes nothing.
        loop {
            let mut changed = false;
            let mut i = 0;
            while i < self.items.len() {
                if self.fix_far_jump(i) {
                    changed = true;
                } else {
                    i += 1;
                }
            }
            if !changed {
                break;
            }
        }
        (0..self.items.len()).map(|i| self.encode(i)).collect()
    }

    fn pos(&self, l: Label) -> usize {
        self.labels[l.0].expect("every label is bound before finish")
    }

    fn offset(&self, at: usize, t: Target) -> usize {
        match t {
            Target::Next => 0,
            Target::To(l) => self.pos(l) - (at + 1),
        }
    }

    /// If the jump at `at` has a target over 255 away, route that branch
    /// through a `ja` inserted right after it; returns whether it did.
    fn fix_far_jump(&mut self, at: usize) -> bool {
        let Item::Jump { op, k, jt, jf } = self.items[at] else {
            return false;
        };
        let far = |t| self.offset(at, t) > 255;
        let (far_target, jt_far) = match (far(jt), far(jf)) {
            (true, _) => (jt, true),
            (false, true) => (jf, false),
            (false, false) => return false,
        };
        let Target::To(dest) = far_target else {
            unreachable!("Next is never far")
        };
        // `Next` on the other branch must keep meaning the old next item.
        let other = if jt_far { jf } else { jt };
        let other = match other {
            Target::Next => {
                let l = self.label();
                self.labels[l.0] = Some(at + 1);
                Target::To(l)
            }
            t => t,
        };
        self.insert(at + 1, Item::Ja(dest));
        let tramp = self.label();
        self.labels[tramp.0] = Some(at + 1);
        let t = Target::To(tramp);
        let (jt, jf) = if jt_far { (t, other) } else { (other, t) };
        self.items[at] = Item::Jump { op, k, jt, jf };
        true
    }

    fn insert(&mut self, at: usize, item: Item) {
        self.items.insert(at, item);
        for p in self.labels.iter_mut().flatten() {
            if *p >= at {
                *p += 1;
            }
        }
    }

    fn encode(&self, at: usize) -> Insn {
        let insn = |code, jt, jf, k| Insn { code, jt, jf, k };
        match self.items[at] {
            Item::Ld(k) => insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, k),
            Item::And(k) => insn(BPF_ALU | BPF_AND | BPF_K, 0, 0, k),
            Item::Ret(k) => insn(BPF_RET | BPF_K, 0, 0, k),
            Item::Ja(l) => insn(
                BPF_JMP | BPF_JA,
                0,
                0,
                self.offset(at, Target::To(l)) as u32,
            ),
            Item::Jump { op, k, jt, jf } => insn(
                BPF_JMP | op | BPF_K,
                self.offset(at, jt) as u8,
                self.offset(at, jf) as u8,
                k,
            ),
        }
    }
}
