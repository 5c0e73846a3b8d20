//! The client side: one connection per `Client`, reconnected as needed.
//!
//! A call keeps its id and idempotency key across retries. "Unavailable"
//! (no socket, connection refused, the server closed the connection
//! mid-request because it died, or an `Unavailable` answer) is retried with
//! a short backoff until the deadline, so a request sent while a server is
//! being restarted lands on the new one; the key makes sure it is applied
//! once even if the old server had already done it.

use crate::wire::{Conn, RecvError};
use protocol::{
    Call, ClientHello, Error, ErrorKind, Hello, Protocol, Reply, Request, ServerFrame,
    ServerStatus, PROTOCOL_VERSION,
};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// How long a call may take, retries included.
    pub deadline: Duration,
    /// Name sent in the hello, for the server's logs.
    pub client_name: String,
    /// Retry "unavailable" until the deadline (false: fail at once).
    pub retry: bool,
    /// Refuse a server whose hello names another server (off only for
    /// init's health pings, which speak to every server alike).
    pub check_name: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            deadline: Duration::from_secs(10),
            client_name: "ipc".into(),
            retry: true,
            check_name: true,
        }
    }
}

pub struct Client<P: Protocol> {
    path: PathBuf,
    opts: ClientOptions,
    conn: Option<Conn>,
    /// Our hello went out on `conn` and its answer is not read yet: the
    /// first request follows it at once (no round trip of its own), and
    /// the answer is read before that request's.
    hello_pending: bool,
    hello: Option<Hello>,
    next_id: u64,
    _p: std::marker::PhantomData<fn() -> P>,
}

/// An idempotency key for a mutating request: unique per call, kept across
/// its retries.
pub fn new_key(op: &str, id: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{op}:{id}:{}:{nanos:x}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A server's answer: its response and the fds that came with it.
pub type Answer<P> = Result<(<P as Protocol>::Response, Vec<OwnedFd>), Error>;

/// A request `Client::send_only` sent, whose answer `Client::finish` reads.
#[must_use = "the answer is read by Client::finish"]
pub struct Sent {
    id: u64,
    deadline: Instant,
}

/// One attempt's failure: retry it, or give up with this error.
enum Attempt {
    Retry(Error),
    Fail(Error),
}

impl<P: Protocol> Client<P> {
    pub fn new(root: &Path, opts: ClientOptions) -> Self {
        Self::at(crate::socket_path(root, P::NAME), opts)
    }

    /// A client for a socket at an explicit path.
    pub fn at(path: PathBuf, opts: ClientOptions) -> Self {
        Client {
            path,
            opts,
            conn: None,
            hello_pending: false,
            hello: None,
            next_id: 1,
            _p: std::marker::PhantomData,
        }
    }

    pub fn options_mut(&mut self) -> &mut ClientOptions {
        &mut self.opts
    }

    /// The epoch of the server we last spoke to.
    pub fn epoch(&self) -> Option<u64> {
        self.hello.as_ref().map(|h| h.epoch)
    }

    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// A server-specific request, sent and answered.
    pub fn call(&mut self, req: P::Request, key: Option<String>) -> Result<P::Response, Error> {
        Ok(self.call_with_fds(req, key, vec![])?.0)
    }

    pub fn call_with_fds(
        &mut self,
        req: P::Request,
        key: Option<String>,
        fds: Vec<OwnedFd>,
    ) -> Result<(P::Response, Vec<OwnedFd>), Error> {
        match self.roundtrip(Call::Server(req), key, fds)? {
            (Reply::Server(r), fds) => Ok((r, fds)),
            (other, _) => Err(Error::internal(format!(
                "{} answered {other:?} to a request",
                P::NAME
            ))),
        }
    }

    /// Round trip of a ping.
    pub fn ping(&mut self) -> Result<Duration, Error> {
        let t = Instant::now();
        match self.roundtrip(Call::Ping, None, vec![])?.0 {
            Reply::Pong => Ok(t.elapsed()),
            other => Err(Error::internal(format!(
                "{} answered {other:?} to ping",
                P::NAME
            ))),
        }
    }

    pub fn status(&mut self) -> Result<ServerStatus, Error> {
        match self.roundtrip(Call::Status, None, vec![])?.0 {
            Reply::Status(s) => Ok(s),
            other => Err(Error::internal(format!(
                "{} answered {other:?} to status",
                P::NAME
            ))),
        }
    }

    /// Sends one call, retrying "unavailable" until the deadline.
    pub fn roundtrip(
        &mut self,
        call: Call<P::Request>,
        key: Option<String>,
        fds: Vec<OwnedFd>,
    ) -> Result<(Reply<P::Response>, Vec<OwnedFd>), Error> {
        let (request, deadline) = self.request(call, key, fds.len());
        let bytes = protocol::encode(&request)?;
        let mut backoff = Duration::from_millis(1);
        loop {
            let err = match self.attempt(&bytes, request.id, &fds, deadline) {
                Ok(done) => return Ok(done),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry(e)) => e,
            };
            self.conn = None;
            if !self.opts.retry || Instant::now() + backoff >= deadline {
                return Err(if err.kind == ErrorKind::Unavailable && self.opts.retry {
                    Error::unavailable(format!(
                        "{} (gave up after {:?})",
                        err.message, self.opts.deadline
                    ))
                } else {
                    err
                });
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(25));
        }
    }

    /// Sends a server-specific request once, without waiting for its
    /// answer: the caller does other work meanwhile and then calls
    /// `finish`. No retry here: a failure to send comes back at once, and
    /// a connection that breaks before the answer comes back from `finish`
    /// as "unavailable" (the caller may send the request again).
    pub fn send_only(
        &mut self,
        req: P::Request,
        key: Option<String>,
        fds: Vec<OwnedFd>,
    ) -> Result<Sent, Error> {
        let (request, deadline) = self.request(Call::Server(req), key, fds.len());
        let bytes = protocol::encode(&request)?;
        match self.send_attempt(&bytes, &fds, deadline) {
            Ok(()) => Ok(Sent {
                id: request.id,
                deadline,
            }),
            Err(Attempt::Fail(e) | Attempt::Retry(e)) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// The answer to a request `send_only` sent.
    pub fn finish(&mut self, sent: Sent) -> Result<(P::Response, Vec<OwnedFd>), Error> {
        match self.receive(sent.id, sent.deadline) {
            Ok((Reply::Server(r), fds)) => Ok((r, fds)),
            Ok((other, _)) => Err(Error::internal(format!(
                "{} answered {other:?} to a request",
                P::NAME
            ))),
            Err(Attempt::Fail(e) | Attempt::Retry(e)) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// The answer to a request `send_only` sent (`None`: it could not be
    /// sent), or `None` when it must be sent again: it never left, or the
    /// connection broke before its answer came (the server restarting).
    /// The caller sends it again with the same key, so it is applied once.
    pub fn finish_or_resend(&mut self, sent: Option<Sent>) -> Option<Answer<P>> {
        match self.finish(sent?) {
            Err(e) if e.kind == ErrorKind::Unavailable => None,
            answer => Some(answer),
        }
    }

    /// The next request envelope, and its deadline.
    fn request(
        &mut self,
        call: Call<P::Request>,
        key: Option<String>,
        fds: usize,
    ) -> (Request<P::Request>, Instant) {
        let deadline = Instant::now() + self.opts.deadline;
        let request = Request {
            id: self.next_id,
            deadline_unix_ms: crate::now_unix_ms() + self.opts.deadline.as_millis() as u64,
            key,
            fds: fds as u8,
            call,
        };
        self.next_id += 1;
        (request, deadline)
    }

    fn send_attempt(
        &mut self,
        bytes: &[u8],
        fds: &[OwnedFd],
        deadline: Instant,
    ) -> Result<(), Attempt> {
        self.ensure_connected()?;
        let conn = self.conn.as_ref().expect("connected");
        let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
        let sent = conn
            .send(bytes, &borrowed)
            .map_err(|e| classify_io(&format!("send to {}", P::NAME), e));
        if sent.is_err() {
            // A server that refused our hello closed the connection after
            // answering it: that answer says why.
            self.read_hello(deadline)?;
        }
        sent
    }

    fn attempt(
        &mut self,
        bytes: &[u8],
        id: u64,
        fds: &[OwnedFd],
        deadline: Instant,
    ) -> Result<(Reply<P::Response>, Vec<OwnedFd>), Attempt> {
        self.send_attempt(bytes, fds, deadline)?;
        self.receive(id, deadline)
    }

    /// Waits for the answer to request `id`.
    fn receive(
        &mut self,
        id: u64,
        deadline: Instant,
    ) -> Result<(Reply<P::Response>, Vec<OwnedFd>), Attempt> {
        self.read_hello(deadline)?;
        let Some(conn) = self.conn.as_ref() else {
            return Err(Attempt::Retry(Error::unavailable(format!(
                "no connection to {} to receive an answer on",
                P::NAME
            ))));
        };
        loop {
            let msg = recv_attempt::<P>(
                conn,
                deadline,
                "before answering (restarting?)",
                "receive from",
            )?;
            let frame: ServerFrame<P::Response, P::Event> =
                protocol::decode(&msg.bytes).map_err(Attempt::Fail)?;
            let ServerFrame::Response(resp) = frame else {
                continue;
            };
            if resp.id != id && resp.id != 0 {
                continue; // a late answer to an earlier, abandoned attempt
            }
            if msg.fds.len() != resp.fds as usize {
                return Err(Attempt::Fail(Error::internal(format!(
                    "{} said it sent {} file descriptors but {} arrived",
                    P::NAME,
                    resp.fds,
                    msg.fds.len()
                ))));
            }
            if let Some(h) = self.hello.as_mut() {
                h.epoch = resp.epoch;
            }
            return match resp.result {
                Ok(reply) => Ok((reply, msg.fds)),
                Err(e) if e.is_retryable() => Err(Attempt::Retry(e)),
                Err(e) => Err(Attempt::Fail(e)),
            };
        }
    }

    /// Connects and sends our hello, when there is no connection. Its
    /// answer is read by `read_hello`, after the first request has gone.
    fn ensure_connected(&mut self) -> Result<(), Attempt> {
        if self.conn.is_some() {
            return Ok(());
        }
        let conn = Conn::connect(&self.path).map_err(|e| {
            classify_io(
                &format!("connect to {} at {}", P::NAME, self.path.display()),
                e,
            )
        })?;
        let hello = ClientHello {
            version: PROTOCOL_VERSION,
            client: self.opts.client_name.clone(),
        };
        let bytes = protocol::encode(&hello).map_err(Attempt::Fail)?;
        conn.send(&bytes, &[])
            .map_err(|e| classify_io(&format!("send hello to {}", P::NAME), e))?;
        self.conn = Some(conn);
        self.hello_pending = true;
        Ok(())
    }

    /// Reads the server's answer to our hello, if it is still to come. A
    /// connection whose hello failed is dropped.
    fn read_hello(&mut self, deadline: Instant) -> Result<(), Attempt> {
        if !std::mem::take(&mut self.hello_pending) {
            return Ok(());
        }
        let Some(conn) = self.conn.as_ref() else {
            return Ok(()); // a new connection sends a new hello
        };
        let answered = hello_answer::<P>(conn, deadline).and_then(|hello| {
            if self.opts.check_name && hello.server != P::NAME {
                return Err(Attempt::Fail(Error::invalid(format!(
                    "{} is served by {:?}, not {}",
                    self.path.display(),
                    hello.server,
                    P::NAME
                ))));
            }
            Ok(hello)
        });
        match answered {
            Ok(hello) => {
                self.hello = Some(hello);
                Ok(())
            }
            Err(e) => {
                self.conn = None;
                Err(e)
            }
        }
    }

    /// Opens a fresh connection and turns it into an event stream.
    pub fn subscribe(
        root: &Path,
        filter: Option<String>,
        opts: ClientOptions,
    ) -> Result<Subscription<P>, Error> {
        let mut s = Subscription {
            client: Client::new(root, opts),
            filter,
        };
        s.resubscribe()?;
        Ok(s)
    }
}

/// The server's answer to our hello, read from `conn`.
fn hello_answer<P: Protocol>(conn: &Conn, deadline: Instant) -> Result<Hello, Attempt> {
    let msg = recv_attempt::<P>(conn, deadline, "during hello", "hello from")?;
    let answer: Result<Hello, Error> = protocol::decode(&msg.bytes).map_err(Attempt::Fail)?;
    answer.map_err(Attempt::Fail)
}

/// The next message from the server before `deadline`. A closed
/// connection is "unavailable" (the server restarting: retry); `closed`
/// says when it closed, `io` what failed otherwise.
fn recv_attempt<P: Protocol>(
    conn: &Conn,
    deadline: Instant,
    closed: &str,
    io: &str,
) -> Result<crate::wire::Message, Attempt> {
    let left = deadline.saturating_duration_since(Instant::now());
    match conn.recv(Some(left)) {
        Ok(m) => Ok(m),
        Err(RecvError::Closed) => Err(Attempt::Retry(Error::unavailable(format!(
            "{} closed the connection {closed}",
            P::NAME
        )))),
        Err(RecvError::Io(e)) => Err(classify_io(&format!("{io} {}", P::NAME), e)),
        Err(e) => Err(Attempt::Fail(e.into_error(P::NAME))),
    }
}

/// Connection-level errors that mean "the server is not there right now".
fn classify_io(context: &str, e: std::io::Error) -> Attempt {
    use std::io::ErrorKind as K;
    let err = Error::io(context, &e);
    match e.kind() {
        K::NotFound
        | K::ConnectionRefused
        | K::ConnectionReset
        | K::BrokenPipe
        | K::ConnectionAborted => Attempt::Retry(Error::unavailable(err.message)),
        _ => Attempt::Fail(err),
    }
}

/// A subscribed connection. Reconnects and subscribes again if the server
/// restarts (events published while it was down are not replayed).
pub struct Subscription<P: Protocol> {
    client: Client<P>,
    filter: Option<String>,
}

impl<P: Protocol> Subscription<P> {
    fn resubscribe(&mut self) -> Result<(), Error> {
        match self
            .client
            .roundtrip(
                Call::Subscribe {
                    filter: self.filter.clone(),
                },
                None,
                vec![],
            )?
            .0
        {
            Reply::Subscribed => Ok(()),
            other => Err(Error::internal(format!(
                "{} answered {other:?} to subscribe",
                P::NAME
            ))),
        }
    }

    /// The next event; Ok(None) when `timeout` passes first.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<P::Event>, Error> {
        let until = timeout.map(|t| Instant::now() + t);
        loop {
            let left = until.map(|u| u.saturating_duration_since(Instant::now()));
            let conn = match self.client.conn.as_ref() {
                Some(c) => c,
                None => {
                    self.resubscribe()?;
                    continue;
                }
            };
            match conn.recv(left) {
                Ok(msg) => {
                    if let ServerFrame::Event { event, .. } =
                        protocol::decode::<ServerFrame<P::Response, P::Event>>(&msg.bytes)?
                    {
                        return Ok(Some(event));
                    }
                }
                Err(RecvError::TimedOut) => return Ok(None),
                Err(RecvError::Closed) => self.client.conn = None,
                Err(e) => return Err(e.into_error(P::NAME)),
            }
        }
    }
}
