//! Malformed, truncated, oversized and garbage messages, a wrong protocol
//! version and a non-root peer, sent to a live server over its real socket:
//! each gets a clear error, and the server stays up with the same pid.

use asterism_tests::Constellation;
use libipc::wire::Conn;
use protocol::memory::{MemoryRequest, MemoryResponse};
use protocol::*;
use std::os::fd::AsFd;
use std::time::Duration;

type Frame = ServerFrame<MemoryResponse, memory::MemoryEvent>;
const SERVER: &str = "memory-controller";

fn connect(c: &Constellation) -> Conn {
    Conn::connect(&libipc::socket_path(c.root(), SERVER)).expect("connect")
}

fn hello_answer(conn: &Conn, bytes: &[u8]) -> Result<Hello, Error> {
    conn.send(bytes, &[]).unwrap();
    let m = conn
        .recv(Some(Duration::from_secs(5)))
        .expect("an answer to the hello");
    decode::<Result<Hello, Error>>(&m.bytes).expect("hello answers decode")
}

fn greeted(c: &Constellation) -> Conn {
    let conn = connect(c);
    let h = ClientHello {
        version: PROTOCOL_VERSION,
        client: "test".into(),
    };
    hello_answer(&conn, &encode(&h).unwrap()).expect("hello accepted");
    conn
}

fn next_error(conn: &Conn) -> Error {
    let m = conn.recv(Some(Duration::from_secs(5))).expect("an answer");
    match decode::<Frame>(&m.bytes).expect("frame decodes") {
        ServerFrame::Response(Response { result: Err(e), .. }) => e,
        other => panic!("expected an error response, got {other:?}"),
    }
}

fn ping_works(conn: &Conn) {
    let req = Request::<MemoryRequest> {
        id: 99,
        deadline_unix_ms: 0,
        key: None,
        fds: 0,
        call: Call::Ping,
    };
    conn.send(&encode(&req).unwrap(), &[]).unwrap();
    let m = conn.recv(Some(Duration::from_secs(5))).unwrap();
    match decode::<Frame>(&m.bytes).unwrap() {
        ServerFrame::Response(Response {
            id: 99,
            result: Ok(Reply::Pong),
            ..
        }) => {}
        other => panic!("ping after bad input: {other:?}"),
    }
}

#[test]
fn wrong_protocol_version_is_named() {
    let c = Constellation::start();
    let pid = c.server_pid(SERVER);
    let conn = connect(&c);
    let h = ClientHello {
        version: 99,
        client: "future-ipc".into(),
    };
    let e = hello_answer(&conn, &encode(&h).unwrap()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::VersionMismatch);
    assert!(
        e.message.contains("99") && e.message.contains(&PROTOCOL_VERSION.to_string()),
        "{e}"
    );
    assert_eq!(c.server_pid(SERVER), pid);
}

#[test]
fn garbage_hello_is_refused() {
    let c = Constellation::start();
    let pid = c.server_pid(SERVER);
    let conn = connect(&c);
    // Our version (a one-byte varint), then a client name that is not one.
    let version = PROTOCOL_VERSION as u8;
    let e = hello_answer(&conn, &[version, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message.contains("malformed hello"), "{e}");
    assert_eq!(c.server_pid(SERVER), pid);
}

#[test]
fn garbage_truncated_oversized_and_fd_mismatched_frames_get_errors_and_the_connection_survives() {
    let c = Constellation::start();
    let pid = c.server_pid(SERVER);
    let conn = greeted(&c);

    conn.send(b"\xde\xad\xbe\xef garbage", &[]).unwrap();
    let e = next_error(&conn);
    assert!(e.message.contains("malformed request frame"), "{e}");

    let full = encode(&Request::<MemoryRequest> {
        id: 5,
        deadline_unix_ms: 0,
        key: None,
        fds: 0,
        call: Call::Server(MemoryRequest::Stat {
            id: "some-group".into(),
        }),
    })
    .unwrap();
    conn.send(&full[..full.len() / 2], &[]).unwrap();
    let e = next_error(&conn);
    assert!(e.message.contains("malformed"), "{e}");

    // Past our own send's check, straight to the socket.
    let big = vec![0u8; MAX_MESSAGE + 4096];
    rustix::net::send(conn.as_fd(), &big, rustix::net::SendFlags::empty()).unwrap();
    let e = next_error(&conn);
    assert!(e.message.contains(&MAX_MESSAGE.to_string()), "{e}");

    // Says no fds, carries one.
    let f = tempfile::tempfile().unwrap();
    let ping = encode(&Request::<MemoryRequest> {
        id: 6,
        deadline_unix_ms: 0,
        key: None,
        fds: 0,
        call: Call::Ping,
    })
    .unwrap();
    conn.send(&ping, &[f.as_fd()]).unwrap();
    let e = next_error(&conn);
    assert!(e.message.contains("file descriptors"), "{e}");

    // A request to a server that does not exist in this protocol: a
    // variant index past the end.
    let mut bad_variant = encode(&Request::<MemoryRequest> {
        id: 8,
        deadline_unix_ms: 0,
        key: None,
        fds: 0,
        call: Call::Server(MemoryRequest::List),
    })
    .unwrap();
    let n = bad_variant.len();
    bad_variant[n - 1] = 77;
    conn.send(&bad_variant, &[]).unwrap();
    assert!(next_error(&conn).message.contains("malformed"));

    ping_works(&conn);
    assert_eq!(
        c.server_pid(SERVER),
        pid,
        "the server must not have crashed"
    );
}

#[test]
fn a_request_past_its_deadline_is_not_done() {
    let c = Constellation::start();
    let conn = greeted(&c);
    let req = Request::<MemoryRequest> {
        id: 3,
        deadline_unix_ms: 1, // 1970
        key: None,
        fds: 0,
        call: Call::Server(MemoryRequest::Create {
            id: "late".into(),
            parent: None,
            limits: Default::default(),
        }),
    };
    conn.send(&encode(&req).unwrap(), &[]).unwrap();
    let e = next_error(&conn);
    assert_eq!(e.kind, ErrorKind::Timeout, "{e}");
    let list = c.ipc_ok(&["memory-controller", "list"]);
    assert!(
        !list.contains("late"),
        "a timed-out create must not happen: {list}"
    );
}

#[test]
fn a_peer_that_is_not_root_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let c = Constellation::start();
    let pid = c.server_pid(SERVER);
    // Our private root only: open the way to the socket so that uid 65534
    // can connect at all, then the server itself must refuse it.
    for dir in [c.root().to_path_buf(), c.root().join("sockets")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let sock = libipc::socket_path(c.root(), SERVER);
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o777)).unwrap();
    let hog = asterism_tests::bin("asterism-test-hog");
    std::fs::set_permissions(c.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = std::process::Command::new(&hog)
        .arg("hello")
        .arg(&sock)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("refused") && said.contains("65534") && said.contains("permission denied"),
        "{said}"
    );
    // Root is still welcome.
    let out = std::process::Command::new(&hog)
        .arg("hello")
        .arg(&sock)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("accepted by memory-controller"));
    assert_eq!(c.server_pid(SERVER), pid);
}

/// A client pointed at another server's socket gets a clear error at once
/// (not a retry until its deadline), and its request is not served there.
#[test]
fn a_client_at_another_servers_socket_is_refused_at_once() {
    let c = Constellation::start();
    let opts = libipc::ClientOptions {
        deadline: Duration::from_secs(20),
        ..Default::default()
    };
    let mut client =
        libipc::Client::<memory::Memory>::at(libipc::socket_path(c.root(), "netstack"), opts);
    let started = std::time::Instant::now();
    let e = client.call(MemoryRequest::List, None).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(e.kind, ErrorKind::InvalidArgument, "{e}");
    assert!(
        e.message.contains(SERVER) && e.message.contains("netstack"),
        "{e}"
    );
}
