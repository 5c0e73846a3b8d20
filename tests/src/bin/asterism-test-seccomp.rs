//! A helper the seccomp tests copy into busybox containers:
//!
//! - `asterism-test-seccomp stack CMD ARGS...`: installs a seccomp filter
//!   of its own (rmdir fails with EACCES; x86_64 only) under no_new_privs,
//!   then execs CMD: a container's own filter stacks with the runtime's.
//! - `asterism-test-seccomp probe`: a thread calls mkdir("/tmp/probe")
//!   with a SIGSYS handler installed, then the main thread reports. Under
//!   SCMP_ACT_TRAP it prints "caught SIGSYS" and "main alive"; under
//!   KILL_THREAD only "main alive" (the thread died); under KILL_PROCESS
//!   nothing (the process died of SIGSYS).

use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};

static CAUGHT: AtomicBool = AtomicBool::new(false);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((mode, rest)) if mode == "stack" && !rest.is_empty() => stack(rest),
        Some((mode, _)) if mode == "probe" => probe(),
        _ => {
            eprintln!("usage: asterism-test-seccomp stack CMD ARGS... | probe");
            std::process::exit(2);
        }
    }
}

fn stack(cmd: &[String]) {
    if let Err(e) = install_rmdir_eacces() {
        eprintln!("asterism-test-seccomp: install the filter: {e}");
        std::process::exit(1);
    }
    let e = std::process::Command::new(&cmd[0]).args(&cmd[1..]).exec();
    eprintln!("asterism-test-seccomp: exec {}: {e}", cmd[0]);
    std::process::exit(127);
}

fn probe() {
    catch_sigsys();
    let (tx, rx) = std::sync::mpsc::channel();
    // Not joined: std panics on joining a thread the kernel killed. A
    // killed thread never sends (nor drops its sender): a timeout then.
    std::thread::spawn(move || {
        let _ = std::fs::create_dir("/tmp/probe");
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(std::time::Duration::from_secs(2));
    if CAUGHT.load(Ordering::SeqCst) {
        println!("caught SIGSYS");
    }
    println!("main alive");
}

extern "C" fn on_sigsys(_: libc::c_int) {
    CAUGHT.store(true, Ordering::SeqCst);
}

#[allow(unsafe_code)]
fn catch_sigsys() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_sigsys),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe { sigaction(Signal::SIGSYS, &act) }.expect("sigaction SIGSYS");
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn install_rmdir_eacces() -> std::io::Result<()> {
    let program = [
        insn(0x20, 0, 0, 4),                                 // ld [4]: arch
        insn(0x15, 0, 3, 0xc000_003e),                       // jeq AUDIT_ARCH_X86_64, else allow
        insn(0x20, 0, 0, 0),                                 // ld [0]: nr
        insn(0x15, 0, 1, libc::SYS_rmdir as u32),            // jeq rmdir
        insn(0x06, 0, 0, 0x0005_0000 | libc::EACCES as u32), // ret ERRNO(EACCES)
        insn(0x06, 0, 0, 0x7fff_0000),                       // ret ALLOW
    ];
    nix::sys::prctl::set_no_new_privs().map_err(std::io::Error::from)?;
    set_mode_filter(&program)
}

#[allow(unsafe_code)]
fn set_mode_filter(program: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `program`, alive for the call; the kernel
    // copies the instructions.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            0 as libc::c_ulong,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
