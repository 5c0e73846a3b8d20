#!/usr/bin/env python3
"""Which of ipc's functions one command runs, in the order it first runs them.

    ipc-order.py OUT IPC ARGS...

Runs `IPC ARGS...` under ptrace with a breakpoint (int3) on the entry of
every function in its text, follows the processes it clones (the
launcher's child), and appends to OUT the mangled name of each function the
first time any of them enters it. A process that execs something else (the
container's own program) is let go at that exec; one still alive when the
command exits (a created container's child, waiting for `start`) gets its
text back and is let go too. scripts/ipc-order.sh runs the commands the
engines run through it and turns the lists into init/ipc.order, the
linker's --symbol-ordering-file for ipc (see scripts/dist.sh).

Needs root (ptrace of processes that change credentials, /proc/PID/mem).
"""
import ctypes
import os
import signal
import struct
import subprocess
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
TRACEME, CONT, GETREGS, SETREGS, DETACH, SETOPTIONS = 0, 7, 12, 13, 17, 0x4200
# PTRACE_O_TRACEFORK | TRACEVFORK | TRACECLONE | TRACEEXEC | EXITKILL
OPTIONS = 0x2 | 0x4 | 0x8 | 0x10 | 0x100000
EVENT_EXEC = 4
WALL = 0x40000000
RIP = 16  # index of rip in struct user_regs_struct


class Regs(ctypes.Structure):
    _fields_ = [("r", ctypes.c_ulong * 27)]


def text_segment(path):
    """(address, file offset, size) of the executable PT_LOAD segment."""
    data = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        kind, flags, off, vaddr, _, filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        if kind == 1 and flags & 1:
            return vaddr, data[off:off + filesz]
    sys.exit(f"{path}: no executable segment")


def functions(path, start, size):
    """Entry address -> mangled name, for every sized function in the text."""
    out = subprocess.run(["nm", "--defined-only", "-S", path],
                         capture_output=True, text=True, check=True).stdout
    funcs = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW" and int(f[1], 16) > 0:
            addr = int(f[0], 16)
            if start <= addr < start + size:
                funcs.setdefault(addr, f[3])
    return funcs


def write_mem(pid, addr, data):
    with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
        m.seek(addr)
        m.write(data)


def rewind(pid, funcs):
    """At a breakpoint's trap: back to the function's entry. Its address, or None."""
    regs = Regs()
    libc.ptrace(GETREGS, pid, None, ctypes.byref(regs))
    addr = regs.r[RIP] - 1
    if addr not in funcs:
        return None
    regs.r[RIP] = addr
    libc.ptrace(SETREGS, pid, None, ctypes.byref(regs))
    return addr


def let_go(pid, start, text, funcs):
    """Stop a traced process, give it its text back, detach."""
    os.kill(pid, signal.SIGSTOP)
    while True:
        _, st = os.waitpid(pid, WALL)
        if not os.WIFSTOPPED(st):
            return
        sig = os.WSTOPSIG(st)
        if sig == signal.SIGSTOP and st >> 16 == 0:
            break
        if sig == signal.SIGTRAP:
            rewind(pid, funcs)
        libc.ptrace(CONT, pid, None, 0)
    write_mem(pid, start, text)
    libc.ptrace(DETACH, pid, None, 0)


def trace(path, args):
    start, text = text_segment(path)
    funcs = functions(path, start, len(text))
    pid = os.fork()
    if pid == 0:
        libc.ptrace(TRACEME, 0, None, None)
        os.execv(path, [path] + args)
    _, st = os.waitpid(pid, WALL)  # stopped at its exec
    libc.ptrace(SETOPTIONS, pid, None, OPTIONS)
    patched = bytearray(text)
    for addr in funcs:
        patched[addr - start] = 0xCC
    write_mem(pid, start, bytes(patched))
    hits, seen, live = [], set(), {pid}
    libc.ptrace(CONT, pid, None, 0)
    while live:
        p, st = os.waitpid(-1, WALL)
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            live.discard(p)
            if p == pid:
                for rest in live:
                    let_go(rest, start, text, funcs)
                break
            continue
        live.add(p)
        sig, event = os.WSTOPSIG(st), st >> 16
        if event == EVENT_EXEC and p != pid:
            libc.ptrace(DETACH, p, None, 0)
            live.discard(p)
            continue
        if event or sig == signal.SIGSTOP:
            libc.ptrace(CONT, p, None, 0)
            continue
        if sig == signal.SIGTRAP:
            addr = rewind(p, funcs)
            if addr is not None:
                if addr not in seen:
                    seen.add(addr)
                    hits.append(funcs[addr])
                # A clone made before this hit keeps its own breakpoint.
                write_mem(p, addr, text[addr - start:addr - start + 1])
                libc.ptrace(CONT, p, None, 0)
                continue
        libc.ptrace(CONT, p, None, sig)
    return hits, len(funcs), (os.waitstatus_to_exitcode(st) if p == pid else None)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, path, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    hits, total, code = trace(path, args)
    with open(out, "a") as f:
        f.writelines(h + "\n" for h in hits)
    print(f"ipc-order: {' '.join(args[2:4])}: {len(hits)} of {total} functions", file=sys.stderr)
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
