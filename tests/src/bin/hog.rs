//! A process for tests to put under limits.
//!
//! - `hog mem MIB`: waits for a line on stdin, allocates and touches MIB MiB,
//!   prints `allocated`, then sleeps until killed.
//! - `hog spin`: burns CPU until killed.
//! - `hog forks N`: starts N sleeping children, prints `forked K` (how many
//!   fork calls succeeded), waits for a line on stdin, kills them, exits.
//! - `hog sleep`: sleeps until killed.
//! - `hog hello SOCKET`: connects to a server socket, sends a hello, prints
//!   the server's answer (for the peer-credential test, run as another uid).
//! - `hog attrs`: prints what the kernel says of its own scheduling, one
//!   `name=value` per line: `personality`, `ioprio` (class and level),
//!   `mempolicy` (mode with its flags, and node mask) and, from
//!   /proc/self/stat, `policy`, `rt_priority` and `nice`. Copied into a
//!   container's rootfs, it reads back what the runtime set.

use std::io::{BufRead, Write};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("mem") => mem(args
            .get(1)
            .and_then(|s| s.parse().ok())
            .expect("hog mem MIB")),
        Some("spin") => spin(),
        Some("forks") => forks(
            args.get(1)
                .and_then(|s| s.parse().ok())
                .expect("hog forks N"),
        ),
        Some("hello") => hello(args.get(1).expect("hog hello SOCKET")),
        Some("attrs") => attrs(),
        Some("sleep") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        _ => {
            eprintln!("usage: hog mem MIB | hog spin | hog forks N | hog sleep");
            std::process::exit(2);
        }
    }
}

fn wait_line() {
    let mut s = String::new();
    let _ = std::io::stdin().lock().read_line(&mut s);
}

fn mem(mib: usize) {
    wait_line();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for _ in 0..mib {
        // Touch every page so that the memory is really charged.
        let mut v = vec![0u8; 1 << 20];
        for i in (0..v.len()).step_by(4096) {
            v[i] = 1;
        }
        chunks.push(v);
    }
    println!("allocated");
    std::io::stdout().flush().ok();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        std::hint::black_box(&chunks);
    }
}

fn spin() {
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn forks(n: usize) {
    let me = std::env::current_exe().expect("own path");
    let mut kids = vec![];
    for _ in 0..n {
        if let Ok(c) = std::process::Command::new(&me).arg("sleep").spawn() {
            kids.push(c);
        }
    }
    println!("forked {}", kids.len());
    std::io::stdout().flush().ok();
    wait_line();
    for mut k in kids {
        let _ = k.kill();
        let _ = k.wait();
    }
}

fn hello(path: &str) {
    let conn = match libipc::wire::Conn::connect(std::path::Path::new(path)) {
        Ok(c) => c,
        Err(e) => {
            println!("connect failed: {e}");
            return;
        }
    };
    let hello = protocol::ClientHello {
        version: protocol::PROTOCOL_VERSION,
        client: "hog".into(),
    };
    conn.send(&protocol::encode(&hello).unwrap(), &[]).unwrap();
    match conn.recv(Some(std::time::Duration::from_secs(5))) {
        Ok(m) => match protocol::decode::<Result<protocol::Hello, protocol::Error>>(&m.bytes) {
            Ok(Ok(h)) => println!("accepted by {}", h.server),
            Ok(Err(e)) => println!("refused: {e}"),
            Err(e) => println!("undecodable answer: {e}"),
        },
        Err(e) => println!("no answer: {:?}", e.into_error("server")),
    }
}

fn attrs() {
    let (personality, ioprio, (mode, mask)) = kernel::own_attrs();
    println!("personality={personality:#x}");
    println!("ioprio={}:{}", ioprio >> 13, ioprio & 0x1fff);
    println!("mempolicy={mode:#x}:{mask:#x}");
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name, which may hold spaces: state is 3.
    let after = &stat[stat.rfind(')').expect("stat has a comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    println!("nice={}", f[19 - 3]);
    println!("rt_priority={}", f[40 - 3]);
    println!("policy={}", f[41 - 3]);
}

/// The three syscalls `attrs` needs that have no safe wrapper.
#[allow(unsafe_code)]
mod kernel {
    /// (personality, ioprio, (mempolicy mode, first word of its node mask)).
    pub fn own_attrs() -> (i32, i64, (i32, u64)) {
        const QUERY: libc::c_ulong = 0xffff_ffff;
        const IOPRIO_WHO_PROCESS: libc::c_long = 1;
        let mut mode: libc::c_int = 0;
        let mut mask: [libc::c_ulong; 16] = [0; 16];
        // SAFETY: 0xffffffff only queries; ioprio_get takes integers;
        // get_mempolicy writes one int and at most 16*64 bits of mask,
        // both of which are ours and that large.
        unsafe {
            let p = libc::personality(QUERY);
            let io = libc::syscall(libc::SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
            let r = libc::syscall(
                libc::SYS_get_mempolicy,
                &mut mode as *mut libc::c_int,
                mask.as_mut_ptr(),
                (16 * 64) as libc::c_ulong,
                0usize,
                0 as libc::c_ulong,
            );
            assert_eq!(r, 0, "get_mempolicy: {}", std::io::Error::last_os_error());
            (p, io, (mode, mask[0]))
        }
    }
}
