//! A small synchronous rtnetlink client: one socket bound to one network namespace,
//! requests answered by an ack, and dumps. The operations live in `link.rs`,
//! `addr.rs` and `route.rs`; errors from the kernel keep their errno.

mod addr;
mod link;
mod route;

use std::io;
use std::os::fd::BorrowedFd;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

pub use addr::AddressInfo;
pub use link::{LinkInfo, VethSpec};
pub use route::RouteInfo;

use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("cannot open a netlink socket in the network namespace: {0}")]
    EnterNetns(#[source] NetnsError),
    #[error("cannot send to netlink: {0}")]
    Send(#[source] io::Error),
    #[error("cannot receive from netlink: {0}")]
    Receive(#[source] io::Error),
    #[error("cannot decode a netlink message: {0}")]
    Decode(String),
    #[error("{0}")]
    Kernel(#[source] io::Error),
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

/// A netlink route socket in one network namespace.
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the network namespace `netns` (created on a thread that
    /// entered it: the socket stays bound there, whatever thread uses it later).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Self, NetlinkError> {
        let socket = netns::run_in(netns, || Socket::new(NETLINK_ROUTE))
            .map_err(NetlinkError::EnterNetns)?
            .map_err(NetlinkError::Socket)?;
        Self::from_socket(socket)
    }

    fn from_socket(mut socket: Socket) -> Result<Self, NetlinkError> {
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, NetlinkError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0).map_err(NetlinkError::Send)?;
        Ok(self.seq)
    }

    /// Sends a request (`NLM_F_ACK` is added) and waits for the kernel's answer.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<(), NetlinkError> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        let mut result = None;
        self.receive(seq, |payload| match payload {
            NetlinkPayload::Error(e) => {
                result = Some(match e.code {
                    None => Ok(()),
                    Some(_) => Err(NetlinkError::Kernel(e.to_io())),
                });
                true
            }
            _ => false,
        })?;
        result.unwrap_or(Ok(()))
    }

    /// Sends a dump request and collects every answer until the end of the dump.
    pub(crate) fn dump(
        &mut self,
        msg: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        let mut error = None;
        self.receive(seq, |payload| match payload {
            NetlinkPayload::InnerMessage(m) => {
                out.push(m);
                false
            }
            NetlinkPayload::Error(e) if e.code.is_some() => {
                error = Some(NetlinkError::Kernel(e.to_io()));
                true
            }
            NetlinkPayload::Done(_) | NetlinkPayload::Error(_) => true,
            _ => false,
        })?;
        match error {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Reads messages for `seq` and hands each to `f` until it returns true.
    fn receive(
        &mut self,
        seq: u32,
        mut f: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> bool,
    ) -> Result<(), NetlinkError> {
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(NetlinkError::Receive)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| NetlinkError::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if msg.header.sequence_number == seq && f(msg.payload) {
                    return Ok(());
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}
