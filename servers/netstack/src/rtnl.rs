//! rtnetlink, synchronously: one NETLINK_ROUTE socket per job, opened in
//! the namespace of the calling thread (a netlink socket acts on the network
//! namespace it was created in).
//!
//! rtnetlink rather than an ioctl(SIOCSIFFLAGS): no unsafe code (ifreq is a
//! C union), errors come back as the kernel's errno for this very request,
//! and netstack's later work (veth, bridge, addresses, routes) is rtnetlink
//! anyway.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use protocol::Error;
use std::os::fd::{AsRawFd, BorrowedFd};

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

    /// The name of link `index`.
    pub fn name_of(&mut self, index: u32) -> Result<String, Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.send(RouteNetlinkMessage::GetLink(msg), NLM_F_REQUEST)
            .map_err(|e| context(e, format!("read link {index}")))?;
        match self
            .recv_one()
            .map_err(|e| context(e, format!("read link {index}")))?
        {
            Some(RouteNetlinkMessage::NewLink(m)) => m
                .attributes
                .iter()
                .find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n.clone()),
                    _ => None,
                })
                .ok_or_else(|| Error::internal(format!("link {index} has no name"))),
            other => Err(Error::internal(format!(
                "read link {index}: the kernel answered {other:?} instead of the link"
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

    /// The permanent addresses of global scope of link `index` (the ones
    /// a device keeps when it moves: config-linux.md "netDevices").
    pub fn permanent_global_addresses(&mut self, index: u32) -> Result<Vec<AddressMessage>, Error> {
        self.send(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_REQUEST | NLM_F_DUMP,
        )
        .map_err(|e| context(e, format!("list the addresses of link {index}")))?;
        let all = self
            .recv_dump()
            .map_err(|e| context(e, format!("list the addresses of link {index}")))?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) if a.header.index == index => Some(a),
                _ => None,
            })
            .filter(|a| a.header.scope == AddressScope::Universe)
            .filter(|a| {
                a.header.flags.contains(AddressHeaderFlags::Permanent)
                    || a.attributes.iter().any(|x| {
                        matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent))
                    })
            })
            .collect())
    }

    /// Moves link `index` into the network namespace `ns`, named `name`
    /// there (a name ending in `%d` is a template the kernel fills in).
    pub fn move_to(&mut self, index: u32, ns: BorrowedFd<'_>, name: &str) -> Result<(), Error> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::NetNsFd(ns.as_raw_fd()));
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.send(RouteNetlinkMessage::SetLink(msg), NLM_F_REQUEST | NLM_F_ACK)?;
        match self.recv_one()? {
            None => Ok(()),
            Some(other) => Err(Error::internal(format!(
                "the kernel answered {other:?} instead of an acknowledgement"
            ))),
        }
    }

    /// Gives link `index` an address read from another namespace.
    pub fn add_address(&mut self, index: u32, a: &AddressMessage) -> Result<(), Error> {
        let mut msg = AddressMessage::default();
        msg.header = a.header.clone();
        msg.header.index = index;
        msg.attributes = a
            .attributes
            .iter()
            .filter(|x| {
                matches!(
                    x,
                    AddressAttribute::Address(_)
                        | AddressAttribute::Local(_)
                        | AddressAttribute::Broadcast(_)
                        | AddressAttribute::Flags(_)
                )
            })
            .cloned()
            .collect();
        self.send(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )?;
        match self.recv_one()? {
            None => Ok(()),
            Some(other) => Err(Error::internal(format!(
                "the kernel answered {other:?} instead of an acknowledgement"
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
        let mut answer = None;
        self.answers(|payload| match payload {
            NetlinkPayload::Error(_) => Ok(true),
            NetlinkPayload::InnerMessage(m) => {
                answer = Some(m);
                Ok(true)
            }
            other => Err(Error::internal(format!(
                "unexpected rtnetlink answer {other:?}"
            ))),
        })?;
        Ok(answer)
    }

    /// Every message of a dump, up to its NLMSG_DONE.
    fn recv_dump(&mut self) -> Result<Vec<RouteNetlinkMessage>, Error> {
        let mut out = vec![];
        self.answers(|payload| match payload {
            NetlinkPayload::Done(_) => Ok(true),
            NetlinkPayload::InnerMessage(m) => {
                out.push(m);
                Ok(false)
            }
            _ => Ok(false),
        })?;
        Ok(out)
    }

    /// Feeds `take` the payloads answering the last request, until it says
    /// it has had the last one (`Ok(true)`); an NLMSG_ERROR with a code is
    /// the kernel's errno and ends it.
    fn answers(
        &mut self,
        mut take: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> Result<bool, Error>,
    ) -> Result<(), Error> {
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
                    if let NetlinkPayload::Error(e) = &msg.payload {
                        if e.code.is_some() {
                            let io = e.to_io();
                            return Err(Error::kernel(
                                io.raw_os_error().unwrap_or(0),
                                io.to_string(),
                            ));
                        }
                    }
                    if take(msg.payload)? {
                        return Ok(());
                    }
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
