//! One UDP responder: a socket made in the manager's namespace on a network's
//! gateway, served by a thread of its own until the [`Responder`] is dropped.

use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::message::{self, MessageError};
use super::Resolver;
use nix::sched::{setns, CloneFlags};

use super::forward;
use crate::netns::NetnsError;

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
    #[error("the DNS thread died while it was starting")]
    ThreadDied,
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
        // The thread lives in `netns`: the sockets of forwarded queries, made by
        // threads it spawns, are there too, never in the caller's namespace.
        let ns = netns
            .try_clone_to_owned()
            .map_err(|source| DnsError::Thread {
                network: network.to_owned(),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let name = network.to_owned();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("dns-{network}"))
            .spawn(move || {
                let bound = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| DnsError::EnterNetns(NetnsError::Enter(e)))
                    .and_then(|()| {
                        UdpSocket::bind(addr)
                            .and_then(|s| s.set_read_timeout(Some(POLL)).map(|()| s))
                            .map_err(|source| DnsError::Bind { addr, source })
                    });
                drop(ns);
                match bound {
                    Ok(socket) => {
                        let _ = tx.send(Ok(()));
                        serve(&socket, &name, &resolver, &flag);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .map_err(|source| DnsError::Thread {
                network: network.to_owned(),
                source,
            })?;
        let started = rx.recv().unwrap_or(Err(DnsError::ThreadDied));
        if let Err(e) = started {
            let _ = thread.join();
            return Err(e);
        }
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
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue; // the poll timeout, or an error of one datagram
        };
        match handle(&buf[..n], network, resolver) {
            Reply::Answer(reply) => {
                let _ = socket.send_to(&reply, peer);
            }
            Reply::Forward => forward::spawn(socket, peer, &buf[..n], resolver),
            Reply::Drop => {}
        }
    }
}

/// What to do with one datagram.
pub(crate) enum Reply {
    Answer(Vec<u8>),
    /// A name this network does not have, with upstream servers to ask.
    Forward,
    Drop,
}

/// The answer to one datagram, if it deserves one.
pub(crate) fn handle(msg: &[u8], network: &str, resolver: &Resolver) -> Reply {
    let query = match message::parse(msg) {
        Ok(q) => q,
        Err(MessageError::Short) => return Reply::Drop,
        Err(MessageError::Question) => {
            return match message::id(msg) {
                Some(id) => Reply::Answer(message::error(id, message::FORMERR)),
                None => Reply::Drop,
            }
        }
    };
    if query.is_response() {
        return Reply::Drop;
    }
    let (rcode, addrs) = if query.opcode() != 0 {
        (message::NOTIMP, Vec::new())
    } else if query.qclass != message::CLASS_IN {
        (message::REFUSED, Vec::new())
    } else {
        match resolver.lookup(network, &query.name) {
            None if resolver.has_upstreams() => return Reply::Forward,
            None => (message::NXDOMAIN, Vec::new()),
            Some(a) if query.qtype == message::TYPE_A => (message::NOERROR, a),
            Some(_) => (message::NOERROR, Vec::new()),
        }
    };
    Reply::Answer(message::answer(msg, &query, rcode, &addrs))
}
