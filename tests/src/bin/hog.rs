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
