//! The loop every server runs.
//!
//! One accept thread; one small thread per connection that does the hello,
//! checks the peer, decodes frames, answers ping/status/subscribe and calls
//! the [`Service`] for the rest, on the same thread: a request costs no
//! hand-off to another thread (a wake-up each way, 0.1 to 0.3 ms on a busy
//! small VM), and the requests of one connection are served in order.
//! Connections are served side by side, so a handler that waits on another
//! request to the same server (init's `run --detach` waits on the
//! `ipc create` it started, which calls init back on its own connection)
//! never blocks it. A panic in a handler becomes an `Internal` error for that
//! request, never a dead server.

use crate::wire::{self, Conn, RecvError};
use protocol::{
    Call, ClientHello, Error, ErrorKind, Hello, Protocol, Reply, Request, Response, ServerFrame,
    ServerStatus, PROTOCOL_VERSION,
};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::wire::PeerCred;

/// Everything a handler may need about the request besides its body.
pub struct Ctx {
    pub peer: PeerCred,
    /// Idempotency key from the envelope.
    pub key: Option<String>,
    pub deadline: Option<Instant>,
    /// File descriptors that came with the request (count already checked).
    pub fds_in: Vec<OwnedFd>,
    /// File descriptors to send back with the response.
    pub fds_out: Vec<OwnedFd>,
}

/// A server's own logic.
pub trait Service: Send + Sync + 'static {
    type P: Protocol;
    fn handle(
        &self,
        ctx: &mut Ctx,
        req: <Self::P as Protocol>::Request,
    ) -> Result<<Self::P as Protocol>::Response, Error>;

    /// Whether `event` goes to a subscriber that asked with `filter`.
    fn event_matches(&self, _filter: &str, _event: &<Self::P as Protocol>::Event) -> bool {
        true
    }

    /// The server was asked to stop (SIGTERM or SIGINT: init stopping the
    /// constellation). Undo what is ours alone and holds nothing (an empty
    /// base cgroup), and return; the process then exits. Requests in
    /// flight finish first where the service serializes them.
    fn shutdown(&self) {}
}

/// How a server process was started.
pub struct ServerOptions {
    pub name: &'static str,
    pub root: PathBuf,
    pub epoch: u64,
    /// A listening socket handed down by init (so connections queue in its
    /// backlog while the server restarts); None = bind our own.
    pub listen_fd: Option<OwnedFd>,
    /// Peer uids allowed to call (root and our own uid by default).
    pub allowed_uids: Vec<u32>,
}

impl ServerOptions {
    /// Options for a server started in-process (init's own socket).
    pub fn new(name: &'static str, root: PathBuf, epoch: u64) -> Self {
        ServerOptions {
            name,
            root,
            epoch,
            listen_fd: None,
            allowed_uids: default_allowed_uids(),
        }
    }

    /// Parses a server binary's argv: `--root DIR --epoch N --listen-fd N`.
    pub fn from_args(name: &'static str) -> Result<Self, Error> {
        let mut opts = ServerOptions {
            name,
            root: PathBuf::from(crate::DEFAULT_ROOT),
            epoch: 1,
            listen_fd: None,
            allowed_uids: default_allowed_uids(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = |flag: &str| {
                args.next()
                    .ok_or_else(|| Error::invalid(format!("{name}: {flag} needs a value")))
            };
            match a.as_str() {
                "--root" => opts.root = PathBuf::from(value("--root")?),
                "--epoch" => {
                    let v = value("--epoch")?;
                    opts.epoch = v.parse().map_err(|_| {
                        Error::invalid(format!("{name}: --epoch {v:?} is not a number"))
                    })?
                }
                "--listen-fd" => {
                    let v = value("--listen-fd")?;
                    let n: i32 = v.parse().map_err(|_| {
                        Error::invalid(format!("{name}: --listen-fd {v:?} is not a number"))
                    })?;
                    opts.listen_fd = Some(inherited_fd(n)?);
                }
                "-h" | "--help" => {
                    println!(
                        "usage: {name} [--root DIR] [--epoch N] [--listen-fd N]\n\
                              Normally started by init; see `ipc status`."
                    );
                    std::process::exit(0);
                }
                other => {
                    return Err(Error::invalid(format!(
                        "{name}: unknown argument {other:?}"
                    )))
                }
            }
        }
        Ok(opts)
    }

    pub fn state_dir(&self) -> PathBuf {
        crate::state_dir(&self.root, self.name)
    }
}

fn default_allowed_uids() -> Vec<u32> {
    let me = rustix::process::geteuid().as_raw();
    if me == 0 {
        vec![0]
    } else {
        vec![0, me]
    }
}

/// Takes ownership of a listening socket inherited across exec.
#[allow(unsafe_code)]
fn inherited_fd(n: i32) -> Result<OwnedFd, Error> {
    use std::os::fd::{BorrowedFd, FromRawFd};
    if n < 3 {
        return Err(Error::invalid(format!(
            "--listen-fd {n}: must be 3 or above"
        )));
    }
    // Check the fd is open and really a socket before claiming it.
    // SAFETY: the borrow lives only for this fstat; n is not owned yet.
    let stat = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(n) }).map_err(|e| {
        Error::invalid(format!(
            "--listen-fd {n}: not an open file descriptor ({e})"
        ))
    })?;
    if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
        return Err(Error::invalid(format!("--listen-fd {n}: not a socket")));
    }
    // SAFETY: init passed fd n to us across exec for us to own, nothing
    // else in this process refers to it, and it was just checked open.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Sets up tracing to stderr; the level comes from ASTERISM_LOG (default warn).
pub fn init_logging(name: &str) {
    let filter = tracing_subscriber_filter();
    let _ = name;
    let _ = tracing::subscriber::set_global_default(SimpleLogger { max: filter });
}

fn tracing_subscriber_filter() -> tracing::Level {
    match std::env::var("ASTERISM_LOG").unwrap_or_default().as_str() {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "info" => tracing::Level::INFO,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::WARN,
    }
}

/// A minimal stderr logger so that every server does not pull in
/// tracing-subscriber (idle RSS matters: six processes run all the time).
struct SimpleLogger {
    max: tracing::Level,
}

impl tracing::Subscriber for SimpleLogger {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= self.max
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.0.push_str(&format!("{v:?}"));
                } else {
                    self.0.push_str(&format!(" {}={v:?}", f.name()));
                }
            }
        }
        let mut v = V(String::new());
        e.record(&mut v);
        let exe = std::env::args().next().unwrap_or_default();
        let exe = exe.rsplit('/').next().unwrap_or("");
        // One write per line: stderr is unbuffered, and eprintln! writes
        // each piece of its format on its own, so the lines of the servers
        // sharing init's log came out interleaved mid-line.
        let line = format!(
            "{exe}[{}] {}: {}\n",
            std::process::id(),
            e.metadata().level(),
            v.0
        );
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Publishes events to subscribers. Cheap to clone; `publish` never blocks
/// on a slow subscriber (a dispatcher thread does the sending).
pub struct Events<E> {
    tx: crossbeam_channel::Sender<E>,
}

impl<E> Clone for Events<E> {
    fn clone(&self) -> Self {
        Events {
            tx: self.tx.clone(),
        }
    }
}

impl<E: Send + 'static> Events<E> {
    pub fn publish(&self, event: E) {
        let _ = self.tx.send(event);
    }
}

struct Subscriber {
    conn: Arc<Conn>,
    filter: Option<String>,
}

struct Shared<P: Protocol> {
    name: &'static str,
    epoch: u64,
    started: Instant,
    requests: AtomicU64,
    allowed_uids: Vec<u32>,
    subscribers: Mutex<Vec<Subscriber>>,
    _p: std::marker::PhantomData<fn() -> P>,
}

impl<P: Protocol> Shared<P> {
    fn status(&self) -> ServerStatus {
        ServerStatus {
            name: self.name.to_string(),
            pid: std::process::id(),
            epoch: self.epoch,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    fn send_response(
        &self,
        conn: &Conn,
        id: u64,
        result: Result<Reply<P::Response>, Error>,
        fds: Vec<OwnedFd>,
    ) {
        let frame: ServerFrame<P::Response, P::Event> = ServerFrame::Response(Response {
            id,
            epoch: self.epoch,
            fds: fds.len() as u8,
            result,
        });
        self.requests.fetch_add(1, Ordering::Relaxed);
        let bytes = match protocol::encode(&frame) {
            Ok(b) => b,
            Err(e) => return tracing::error!("cannot encode response {id}: {e}"),
        };
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        if let Err(e) = conn.send(&bytes, &borrowed) {
            // The client went away; it will retry with the same key if it cares.
            tracing::debug!("cannot send response {id}: {e}");
        }
    }
}

pub struct Server<P: Protocol> {
    opts: ServerOptions,
    listener: OwnedFd,
    events_tx: crossbeam_channel::Sender<P::Event>,
    events_rx: crossbeam_channel::Receiver<P::Event>,
}

impl<P: Protocol> Server<P> {
    /// Takes the listening socket from init, or binds `<root>/sockets/<name>.sock`.
    pub fn bind(mut opts: ServerOptions) -> Result<Self, Error> {
        let dir = opts.state_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), &e))?;
        let listener = match opts.listen_fd.take() {
            Some(fd) => fd,
            None => {
                let path = crate::socket_path(&opts.root, opts.name);
                wire::listen(&path)
                    .map_err(|e| Error::io(format!("listen on {}", path.display()), &e))?
            }
        };
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        Ok(Server {
            opts,
            listener,
            events_tx,
            events_rx,
        })
    }

    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    pub fn events(&self) -> Events<P::Event> {
        Events {
            tx: self.events_tx.clone(),
        }
    }

    /// Runs the server until the process is killed.
    pub fn serve<S: Service<P = P>>(self, service: S) -> Result<(), Error> {
        self.serve_shared(Arc::new(service))
    }

    /// As `serve`, with the service shared with the caller.
    pub fn serve_shared<S: Service<P = P>>(self, service: Arc<S>) -> Result<(), Error> {
        let shared = Arc::new(Shared::<P> {
            name: self.opts.name,
            epoch: self.opts.epoch,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            allowed_uids: self.opts.allowed_uids.clone(),
            subscribers: Mutex::new(Vec::new()),
            _p: std::marker::PhantomData,
        });
        {
            let (sh, svc, rx) = (shared.clone(), service.clone(), self.events_rx.clone());
            spawn_small("events", move || dispatch_events(rx, sh, svc))?;
        }
        tracing::info!("{} ready (epoch {})", self.opts.name, self.opts.epoch);
        crate::acceptors::run(self.listener, "conn", MAX_IDLE_CONN_THREADS, move |conn| {
            read_connection(conn, shared.clone(), service.clone())
        })
    }
}

/// How many connection threads may wait in accept at once: a short-lived
/// client (one `ipc` command) then costs no thread creation and exit.
const MAX_IDLE_CONN_THREADS: usize = 16;

/// Blocks SIGTERM and SIGINT in the calling thread. run_main calls it
/// before any thread starts (the service spawns its own in `make`), so
/// every thread inherits the mask and only the "signals" thread takes
/// them, by sigwait.
fn block_stop_signals() -> Result<nix::sys::signal::SigSet, Error> {
    let mut stop = nix::sys::signal::SigSet::empty();
    stop.add(nix::sys::signal::Signal::SIGTERM);
    stop.add(nix::sys::signal::Signal::SIGINT);
    stop.thread_block()
        .map_err(|e| Error::internal(format!("block SIGTERM and SIGINT: {e}")))?;
    Ok(stop)
}

fn spawn_small(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), Error> {
    std::thread::Builder::new()
        .name(name.to_string())
        .stack_size(crate::THREAD_STACK)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| Error::io(format!("spawn thread {name}"), &e))
}

/// The hello: version first, then the peer check.
fn handshake<P: Protocol>(conn: &Conn, shared: &Shared<P>) -> Result<PeerCred, ()> {
    let reply = |r: Result<Hello, Error>| {
        if let Ok(b) = protocol::encode(&r) {
            let _ = conn.send(&b, &[]);
        }
    };
    let msg = match conn.recv(Some(Duration::from_secs(5))) {
        Ok(m) => m,
        Err(RecvError::Closed) | Err(RecvError::TimedOut) => return Err(()),
        Err(e) => {
            reply(Err(e.into_error("client")));
            return Err(());
        }
    };
    // `version` is the first field of every hello, in every version, so a
    // hello from another version still tells us its number.
    match postcard::take_from_bytes::<u32>(&msg.bytes) {
        Ok((v, _)) if v != PROTOCOL_VERSION => {
            reply(Err(Error::new(
                ErrorKind::VersionMismatch,
                format!("client speaks protocol version {v}, {} speaks version {PROTOCOL_VERSION}; use matching ipc and server binaries", shared.name),
            )));
            return Err(());
        }
        _ => {}
    }
    let hello: ClientHello = match protocol::decode(&msg.bytes) {
        Ok(h) => h,
        Err(e) => {
            reply(Err(Error::invalid(format!(
                "malformed hello: {}",
                e.message
            ))));
            return Err(());
        }
    };
    let peer = match conn.peer() {
        Ok(p) => p,
        Err(e) => {
            reply(Err(Error::io("read peer credentials (SO_PEERCRED)", &e)));
            return Err(());
        }
    };
    if !shared.allowed_uids.contains(&peer.uid) {
        tracing::warn!(
            "refused {} (pid {}, uid {})",
            hello.client,
            peer.pid,
            peer.uid
        );
        reply(Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "{} accepts only uid {:?}; caller pid {} runs as uid {}",
                shared.name, shared.allowed_uids, peer.pid, peer.uid
            ),
        )));
        return Err(());
    }
    reply(Ok(Hello {
        version: PROTOCOL_VERSION,
        server: shared.name.to_string(),
        epoch: shared.epoch,
        pid: std::process::id(),
    }));
    Ok(peer)
}

fn read_connection<P: Protocol, S: Service<P = P>>(
    conn: Conn,
    shared: Arc<Shared<P>>,
    service: Arc<S>,
) {
    let Ok(peer) = handshake(&conn, &shared) else {
        return;
    };
    let conn = Arc::new(conn);
    loop {
        let msg = match conn.recv(None) {
            Ok(m) => m,
            Err(RecvError::Closed) => return,
            Err(RecvError::Io(e)) => {
                tracing::debug!("connection from pid {} failed: {e}", peer.pid);
                return;
            }
            Err(e) => {
                // Oversized or too many fds: answer, keep the connection.
                shared.send_response(&conn, 0, Err(e.into_error("client")), vec![]);
                continue;
            }
        };
        let request: Request<P::Request> = match protocol::decode(&msg.bytes) {
            Ok(r) => r,
            Err(e) => {
                let e = Error::invalid(format!(
                    "malformed request frame for {}: {}",
                    shared.name, e.message
                ));
                shared.send_response(&conn, 0, Err(e), vec![]);
                continue;
            }
        };
        if msg.fds.len() != request.fds as usize {
            let e = Error::invalid(format!(
                "request {} says it carries {} file descriptors but {} arrived",
                request.id,
                request.fds,
                msg.fds.len()
            ));
            shared.send_response(&conn, request.id, Err(e), vec![]);
            continue;
        }
        match request.call {
            Call::Ping => shared.send_response(&conn, request.id, Ok(Reply::Pong), vec![]),
            Call::Status => shared.send_response(
                &conn,
                request.id,
                Ok(Reply::Status(shared.status())),
                vec![],
            ),
            Call::Subscribe { filter } => {
                shared.subscribers.lock().unwrap().push(Subscriber {
                    conn: conn.clone(),
                    filter,
                });
                shared.send_response(&conn, request.id, Ok(Reply::Subscribed), vec![]);
            }
            Call::Server(_) => serve(&conn, peer, request, msg.fds, &shared, &*service),
        }
    }
}

/// One server request: the deadline, the handler (panics caught), the answer.
fn serve<P: Protocol, S: Service<P = P>>(
    conn: &Conn,
    peer: PeerCred,
    request: Request<P::Request>,
    fds: Vec<OwnedFd>,
    shared: &Shared<P>,
    service: &S,
) {
    let id = request.id;
    let Call::Server(body) = request.call else {
        return;
    };
    let deadline = deadline_instant(request.deadline_unix_ms);
    if matches!(deadline, Some(d) if Instant::now() > d) {
        let e = Error::new(
            ErrorKind::Timeout,
            format!(
                "request {id} reached {} after its deadline; not done",
                shared.name
            ),
        );
        shared.send_response(conn, id, Err(e), vec![]);
        return;
    }
    let mut ctx = Ctx {
        peer,
        key: request.key,
        deadline,
        fds_in: fds,
        fds_out: vec![],
    };
    // ASTERISM_LOG=debug: how long each request took here (the name
    // of the request only: a body can be a whole config).
    let started = Instant::now();
    let what = tracing::enabled!(tracing::Level::DEBUG).then(|| request_name(&body));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        service.handle(&mut ctx, body)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Err(Error::internal(format!(
            "{} hit a bug handling request {id}: {what}",
            shared.name
        )))
    });
    let fds_out = if result.is_ok() {
        std::mem::take(&mut ctx.fds_out)
    } else {
        vec![]
    };
    if let Some(what) = what {
        tracing::debug!(
            "{} handled {what} in {:.3} ms",
            shared.name,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    shared.send_response(conn, id, result.map(Reply::Server), fds_out);
}

/// "Create", "Delete", ...: a request's variant name.
fn request_name(body: &impl std::fmt::Debug) -> String {
    let text = format!("{body:?}");
    text.split([' ', '(', '{']).next().unwrap_or("").to_string()
}

fn deadline_instant(unix_ms: u64) -> Option<Instant> {
    if unix_ms == 0 {
        return None;
    }
    let now = crate::now_unix_ms();
    Some(if unix_ms >= now {
        Instant::now() + Duration::from_millis(unix_ms - now)
    } else {
        Instant::now() - Duration::from_millis((now - unix_ms).min(1_000_000))
    })
}

fn dispatch_events<P: Protocol, S: Service<P = P>>(
    rx: crossbeam_channel::Receiver<P::Event>,
    shared: Arc<Shared<P>>,
    service: Arc<S>,
) {
    for event in rx {
        let frame: ServerFrame<P::Response, P::Event> = ServerFrame::Event {
            epoch: shared.epoch,
            event: event.clone(),
        };
        let Ok(bytes) = protocol::encode(&frame) else {
            continue;
        };
        let mut subs = shared.subscribers.lock().unwrap();
        subs.retain(|s| {
            let wanted = s
                .filter
                .as_deref()
                .is_none_or(|f| service.event_matches(f, &event));
            !wanted || s.conn.send(&bytes, &[]).is_ok()
        });
    }
}

/// The whole `main` of a server binary: logging, argv, bind, build the
/// service (which rebuilds its tables), serve. Exits 2 with the error on
/// stderr if any step fails.
/// `keep`: the capabilities the server needs; the others are dropped
/// first of all, while the process has one thread (see [`crate::caps`]).
pub fn run_main<P, S>(
    name: &'static str,
    keep: &[crate::caps::Capability],
    make: impl FnOnce(&ServerOptions, Events<P::Event>) -> Result<S, Error>,
) -> std::process::ExitCode
where
    P: Protocol,
    S: Service<P = P>,
{
    init_logging(name);
    let result = crate::caps::keep_only(name, keep)
        .and_then(|()| block_stop_signals())
        .and_then(|stop| {
            let server = ServerOptions::from_args(name).and_then(Server::<P>::bind)?;
            let service = Arc::new(make(server.options(), server.events())?);
            let svc = service.clone();
            spawn_small("signals", move || {
                if let Ok(sig) = stop.wait() {
                    tracing::info!("{name}: {sig:?}, stopping");
                    svc.shutdown();
                    std::process::exit(0);
                }
            })?;
            server.serve_shared(service)
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::from(2)
        }
    }
}

/// The service of a server whose issue has not landed: hello, ping and
/// status work (libipc answers them); every verb is refused as unsupported.
pub struct Unbuilt<P>(std::marker::PhantomData<fn() -> P>);

impl<P> Default for Unbuilt<P> {
    fn default() -> Self {
        Unbuilt(std::marker::PhantomData)
    }
}

impl<P> Service for Unbuilt<P>
where
    P: Protocol<Request = protocol::placeholder::PendingRequest>,
{
    type P = P;
    fn handle(&self, _ctx: &mut Ctx, req: P::Request) -> Result<P::Response, Error> {
        let protocol::placeholder::PendingRequest::Verb { name, .. } = req;
        Err(Error::unsupported(format!(
            "{}: `{name}` is not supported yet; this server answers only hello, ping and status until its issue lands",
            P::NAME
        )))
    }
}
