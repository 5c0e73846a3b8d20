//! The client and the server loop together, in one process, over a real
//! socket: fds through a call, events to filtered subscribers, retry of
//! "unavailable" until a server appears.

use libipc::{Client, ClientOptions, Ctx, Events, Server, ServerOptions, Service};
use protocol::{Error, Protocol};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Echo;
#[derive(Debug, Clone, Serialize, Deserialize)]
enum EchoReq {
    /// Answers with the fds it got, in the same order.
    BounceFds,
    /// Publishes an event for `topic`.
    Publish {
        topic: String,
    },
    Fail,
    /// Answers with the name of the thread that served it.
    Thread,
}
#[derive(Debug, Clone, Serialize, Deserialize)]
enum EchoResp {
    Bounced(usize),
    Published,
    Thread(String),
}
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
enum EchoEvent {
    Topic(String),
}
impl Protocol for Echo {
    const NAME: &'static str = "echo";
    type Request = EchoReq;
    type Response = EchoResp;
    type Event = EchoEvent;
}

struct EchoService(Events<EchoEvent>);
impl Service for EchoService {
    type P = Echo;
    fn handle(&self, ctx: &mut Ctx, req: EchoReq) -> Result<EchoResp, Error> {
        match req {
            EchoReq::BounceFds => {
                let n = ctx.fds_in.len();
                ctx.fds_out = std::mem::take(&mut ctx.fds_in);
                Ok(EchoResp::Bounced(n))
            }
            EchoReq::Publish { topic } => {
                self.0.publish(EchoEvent::Topic(topic));
                Ok(EchoResp::Published)
            }
            EchoReq::Fail => Err(Error::invalid("asked to fail")),
            EchoReq::Thread => Ok(EchoResp::Thread(format!(
                "{:?}",
                std::thread::current().id()
            ))),
        }
    }
    fn event_matches(&self, filter: &str, e: &EchoEvent) -> bool {
        matches!(e, EchoEvent::Topic(t) if t == filter)
    }
}

fn start(root: &std::path::Path) {
    let server = Server::<Echo>::bind(ServerOptions::new("echo", root.to_path_buf(), 7)).unwrap();
    let events = server.events();
    std::thread::spawn(move || server.serve(EchoService(events)));
}

#[test]
fn fds_travel_both_ways_with_a_call() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path());
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(b"through the server").unwrap();
    let (resp, fds) = c
        .call_with_fds(EchoReq::BounceFds, None, vec![f.into()])
        .unwrap();
    assert!(matches!(resp, EchoResp::Bounced(1)));
    let mut back = std::fs::File::from(fds.into_iter().next().unwrap());
    back.rewind().unwrap();
    let mut s = String::new();
    back.read_to_string(&mut s).unwrap();
    assert_eq!(s, "through the server");
    assert_eq!(c.epoch(), Some(7));
    let e = c.call(EchoReq::Fail, None).unwrap_err();
    assert!(e.message.contains("asked to fail"));
}

#[test]
fn subscribers_get_only_their_events() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path());
    let mut a =
        Client::<Echo>::subscribe(dir.path(), Some("a".into()), ClientOptions::default()).unwrap();
    let mut all = Client::<Echo>::subscribe(dir.path(), None, ClientOptions::default()).unwrap();
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    c.call(EchoReq::Publish { topic: "b".into() }, None)
        .unwrap();
    c.call(EchoReq::Publish { topic: "a".into() }, None)
        .unwrap();
    assert_eq!(
        a.next(Some(Duration::from_secs(2))).unwrap(),
        Some(EchoEvent::Topic("a".into()))
    );
    assert_eq!(a.next(Some(Duration::from_millis(100))).unwrap(), None);
    assert_eq!(
        all.next(Some(Duration::from_secs(2))).unwrap(),
        Some(EchoEvent::Topic("b".into()))
    );
    assert_eq!(
        all.next(Some(Duration::from_secs(2))).unwrap(),
        Some(EchoEvent::Topic("a".into()))
    );
}

#[test]
fn a_call_waits_for_a_server_that_is_not_there_yet() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        start(&root);
    });
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    let t = std::time::Instant::now();
    c.ping().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250));
    late.join().unwrap();
}

#[test]
fn without_a_server_the_call_gives_up_at_its_deadline_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ClientOptions {
        deadline: Duration::from_millis(200),
        ..ClientOptions::default()
    };
    let e = Client::<Echo>::new(dir.path(), opts).ping().unwrap_err();
    assert_eq!(e.kind, protocol::ErrorKind::Unavailable);
    assert!(
        e.message.contains("echo") && e.message.contains("gave up"),
        "{e}"
    );
}

/// Connection threads are reused: many short-lived clients one after
/// another are served by one or two threads, not one new thread each; then
/// many at once (each held open while the others call) are all served.
#[test]
fn short_lived_and_concurrent_clients_are_all_served_by_reused_threads() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path());
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
        let EchoResp::Thread(t) = c.call(EchoReq::Thread, None).unwrap() else {
            panic!("not a thread answer")
        };
        seen.insert(t);
        drop(c);
        // Time for the thread to see the close and wait for the next one.
        std::thread::sleep(Duration::from_millis(1));
    }
    // A client that connects before the last one's thread is idle again
    // gets a new thread (a loaded machine makes that common); without
    // reuse every client gets one: 200.
    assert!(
        seen.len() <= 50,
        "200 clients one after another used {} threads",
        seen.len()
    );
    // More than the 16 threads that may wait in accept at once: every
    // open connection still gets a thread of its own.
    let mut open: Vec<Client<Echo>> = (0..24)
        .map(|_| Client::<Echo>::new(dir.path(), ClientOptions::default()))
        .collect();
    let mut threads = std::collections::BTreeSet::new();
    for round in 0..3 {
        for c in open.iter_mut() {
            let EchoResp::Thread(t) = c.call(EchoReq::Thread, None).unwrap() else {
                panic!("round {round}: not a thread answer")
            };
            threads.insert(t);
        }
    }
    assert_eq!(
        threads.len(),
        24,
        "24 open connections, each its own thread"
    );
}

/// A request sent with `send_only` is answered by `finish` after the
/// caller did other calls on another client meanwhile; without a server,
/// `send_only` fails at once.
#[test]
fn send_only_then_finish_gets_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path());
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    let sent = c.send_only(EchoReq::Thread, None, vec![]).unwrap();
    let mut other = Client::<Echo>::new(dir.path(), ClientOptions::default());
    other.call(EchoReq::BounceFds, None).unwrap();
    let (resp, fds) = c.finish(sent).unwrap();
    assert!(matches!(resp, EchoResp::Thread(_)), "{resp:?}");
    assert!(fds.is_empty());
    // The connection goes on serving ordinary calls.
    assert!(matches!(
        c.call(EchoReq::BounceFds, None).unwrap(),
        EchoResp::Bounced(0)
    ));
    let nowhere = tempfile::tempdir().unwrap();
    let mut c = Client::<Echo>::new(
        nowhere.path(),
        ClientOptions {
            retry: false,
            ..ClientOptions::default()
        },
    );
    let e = c.send_only(EchoReq::Thread, None, vec![]).err().unwrap();
    assert_eq!(e.kind, protocol::ErrorKind::Unavailable, "{e}");
}

/// The first request follows the hello without waiting for its answer.
/// A server that refuses the hello (here: our uid is not allowed) closes
/// the connection unread: the caller gets the server's reason, not
/// "unavailable", and the request it sent along is never served.
#[test]
fn a_refused_hello_is_the_answer_and_the_request_behind_it_is_not_served() {
    static SERVED: AtomicUsize = AtomicUsize::new(0);
    struct Counting;
    impl Service for Counting {
        type P = Echo;
        fn handle(&self, _: &mut Ctx, _: EchoReq) -> Result<EchoResp, Error> {
            SERVED.fetch_add(1, Ordering::SeqCst);
            Ok(EchoResp::Published)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ServerOptions::new("echo", dir.path().to_path_buf(), 9);
    opts.allowed_uids = vec![u32::MAX - 1];
    let server = Server::<Echo>::bind(opts).unwrap();
    std::thread::spawn(move || server.serve(Counting));
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    let topic = || EchoReq::Publish { topic: "t".into() };
    let e = c.call(topic(), None).unwrap_err();
    assert_eq!(e.kind, protocol::ErrorKind::PermissionDenied, "{e}");
    assert!(e.message.contains("accepts only uid"), "{e}");
    assert_eq!(c.epoch(), None);
    // The refusal comes back from `send_only` itself when the server has
    // closed before the request went (the send fails, the hello's answer
    // is read then), else from `finish`.
    let e = match c.send_only(topic(), None, vec![]) {
        Ok(sent) => c.finish(sent).unwrap_err(),
        Err(e) => e,
    };
    assert_eq!(e.kind, protocol::ErrorKind::PermissionDenied, "{e}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(SERVED.load(Ordering::SeqCst), 0);
}

/// A pipelined hello on a fresh connection is read before the answer of
/// a request sent with `send_only`, and sets the epoch.
#[test]
fn send_only_on_a_fresh_connection_reads_the_hello_first() {
    let dir = tempfile::tempdir().unwrap();
    start(dir.path());
    let mut c = Client::<Echo>::new(dir.path(), ClientOptions::default());
    assert_eq!(c.epoch(), None);
    let sent = c.send_only(EchoReq::BounceFds, None, vec![]).unwrap();
    assert!(matches!(c.finish(sent).unwrap().0, EchoResp::Bounced(0)));
    assert_eq!(c.epoch(), Some(7));
    assert_eq!(c.status().unwrap().name, "echo");
}
