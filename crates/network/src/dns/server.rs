//! One UDP responder: a socket made in the manager's namespace on a network's
//! gateway, served by a thread of its own until the [`Responder`] is dropped.

use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::message::{self, MessageError};
use super::Resolver;
use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot open a DNS socket in the network namespace: {0}")]
    EnterNetns(#[source] NetnsError),
    #[error("cannot listen for DNS on {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the DNS thread of network {network}: {source}")]
    Thread {
        network: String,
        #[source]
        source: std::io::Error,
    },
}

/// How long the thread waits for a query before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(200);

pub struct Responder {
    addr: SocketAddrV4,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    /// Listens on `addr` (UDP) in `netns`, answering from `resolver`'s table of
    /// `network`.
    pub fn start(
        netns: BorrowedFd<'_>,
        addr: SocketAddrV4,
        network: &str,
        resolver: Arc<Resolver>,
    ) -> Result<Self, DnsError> {
        let socket = netns::run_in(netns, || UdpSocket::bind(addr))
            .map_err(DnsError::EnterNetns)?
            .map_err(|source| DnsError::Bind { addr, source })?;
        socket
            .set_read_timeout(Some(POLL))
            .map_err(|source| DnsError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = network.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("dns-{network}"))
            .spawn(move || serve(&socket, &name, &resolver, &flag))
            .map_err(|source| DnsError::Thread {
                network: network.to_owned(),
                source,
            })?;
        Ok(Responder {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(socket: &UdpSocket, network: &str, resolver: &Resolver, stop: &AtomicBool) {
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue; // the poll timeout, or an error of one datagram
        };
        if let Some(reply) = handle(&buf[..n], network, resolver) {
            let _ = socket.send_to(&reply, peer);
        }
    }
}

/// The answer to one datagram, if it deserves one.
pub(crate) fn handle(msg: &[u8], network: &str, resolver: &Resolver) -> Option<Vec<u8>> {
    let query = match message::parse(msg) {
        Ok(q) => q,
        Err(MessageError::Short) => return None,
        Err(MessageError::Question) => {
            return Some(message::error(message::id(msg)?, message::FORMERR))
        }
    };
    if query.is_response() {
        return None;
    }
    let (rcode, addrs) = if query.opcode() != 0 {
        (message::NOTIMP, Vec::new())
    } else if query.qclass != message::CLASS_IN {
        (message::REFUSED, Vec::new())
    } else {
        match resolver.lookup(network, &query.name) {
            None => (message::NXDOMAIN, Vec::new()),
            Some(a) if query.qtype == message::TYPE_A => (message::NOERROR, a),
            Some(_) => (message::NOERROR, Vec::new()),
        }
    };
    Some(message::answer(msg, &query, rcode, &addrs))
}
