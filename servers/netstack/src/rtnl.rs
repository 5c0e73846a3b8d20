//! rtnetlink, synchronously: one NETLINK_ROUTE socket per job, opened in
//! the namespace of the calling thread (a netlink socket acts on the network
//! namespace it was created in).
//!
//! rtnetlink rather than an ioctl(SIOCSIFFLAGS): no unsafe code (ifreq is a
//! C union), errors come back as the kernel's errno for this very request,
//! and netstack's later work (veth, bridge, addresses, routes) is rtnetlink
//! anyway.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use protocol::Error;

/// A link as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    /// IFF_* flags.
    pub flags: u32,
}

impl LinkState {
    pub fn up(&self) -> bool {
        self.flags & LinkFlags::Up.bits() != 0
    }
}

pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Rtnl, Error> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open a NETLINK_ROUTE socket", &e))?;
        sock.bind_auto()
            .map_err(|e| Error::io("bind the NETLINK_ROUTE socket", &e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connect the NETLINK_ROUTE socket", &e))?;
        Ok(Rtnl { sock, seq: 0 })
    }

    /// `ip link set NAME up`, then the link as read back.
    pub fn set_up(&mut self, name: &str) -> Result<LinkState, Error> {
        let mut msg = by_name(name);
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.send(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK)
            .map_err(|e| context(e, format!("set link {name} up")))?;
        match self
            .recv_one()
            .map_err(|e| context(e, format!("set link {name} up")))?
        {
            None => self.get(name),
            Some(other) => Err(Error::internal(format!(
                "set link {name} up: the kernel answered {other:?} instead of an acknowledgement"
            ))),
        }
    }

    /// `ip link show NAME`.
    pub fn get(&mut self, name: &str) -> Result<LinkState, Error> {
        self.send(RouteNetlinkMessage::GetLink(by_name(name)), NLM_F_REQUEST)
            .map_err(|e| context(e, format!("read link {name}")))?;
        match self
            .recv_one()
            .map_err(|e| context(e, format!("read link {name}")))?
        {
            Some(RouteNetlinkMessage::NewLink(m)) => Ok(LinkState {
                index: m.header.index,
                flags: m.header.flags.bits(),
            }),
            other => Err(Error::internal(format!(
                "read link {name}: the kernel answered {other:?} instead of the link"
            ))),
        }
    }

    fn send(&mut self, inner: RouteNetlinkMessage, flags: u16) -> Result<(), Error> {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(inner));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.sock
            .send(&buf, 0)
            .map_err(|e| Error::io("send to the kernel", &e))?;
        Ok(())
    }

    /// The answer to the last request: `None` for an acknowledgement,
    /// `Some` for a message; an NLMSG_ERROR becomes the kernel's errno.
    fn recv_one(&mut self) -> Result<Option<RouteNetlinkMessage>, Error> {
        loop {
            let (buf, _) = self
                .sock
                .recv_from_full()
                .map_err(|e| Error::io("receive from the kernel", &e))?;
            let mut off = 0;
            while off < buf.len() {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[off..])
                    .map_err(|e| Error::internal(format!("undecodable rtnetlink answer: {e}")))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == self.seq {
                    return match msg.payload {
                        NetlinkPayload::Error(e) if e.code.is_some() => {
                            let io = e.to_io();
                            Err(Error::kernel(
                                io.raw_os_error().unwrap_or(0),
                                io.to_string(),
                            ))
                        }
                        NetlinkPayload::Error(_) => Ok(None),
                        NetlinkPayload::InnerMessage(m) => Ok(Some(m)),
                        other => Err(Error::internal(format!(
                            "unexpected rtnetlink answer {other:?}"
                        ))),
                    };
                }
                if len == 0 {
                    break;
                }
                off += len;
            }
        }
    }
}

fn by_name(name: &str) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg
}

fn context(e: Error, what: String) -> Error {
    Error {
        message: format!("{what}: {}", e.message),
        ..e
    }
}
