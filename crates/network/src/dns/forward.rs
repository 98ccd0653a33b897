//! Names a network does not have go to the upstream servers (the host's, as the
//! engine sets them), one short-lived thread per query. The thread is spawned by
//! the responder's thread, which lives in the manager's namespace: its socket is
//! made there, so upstream traffic leaves from the host's side, as Docker's does.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::message;
use super::Resolver;

/// How long one upstream server gets to answer.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_millis(1500);
/// Queries forwarded at once, over all networks; more are answered SERVFAIL.
const MAX_IN_FLIGHT: usize = 64;

static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Forwards `query` from `peer` on a thread of its own; the answer (or SERVFAIL)
/// goes back through `socket`.
pub(super) fn spawn(socket: &UdpSocket, peer: SocketAddr, query: &[u8], resolver: &Resolver) {
    let (Ok(reply_socket), upstreams) = (socket.try_clone(), resolver.upstreams()) else {
        return;
    };
    if IN_FLIGHT.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if let Some(r) = servfail(query) {
            let _ = socket.send_to(&r, peer);
        }
        return;
    }
    let query = query.to_vec();
    let spawned = std::thread::Builder::new()
        .name("dns-forward".into())
        .spawn(move || {
            let answer = ask(&query, &upstreams).or_else(|| servfail(&query));
            if let Some(a) = answer {
                let _ = reply_socket.send_to(&a, peer);
            }
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// SERVFAIL with the question echoed (the query parsed before it was forwarded).
fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    let q = message::parse(query).ok()?;
    Some(message::answer(query, &q, message::SERVFAIL, &[]))
}

/// The first answer of the upstream servers, in order, with the query's ID.
fn ask(query: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    let id = message::id(query)?;
    let mut buf = vec![0u8; 4096];
    for up in upstreams {
        let local: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(s) = UdpSocket::bind(local) else {
            continue;
        };
        if s.set_read_timeout(Some(UPSTREAM_TIMEOUT)).is_err()
            || s.connect(up).is_err()
            || s.send(query).is_err()
        {
            continue;
        }
        // a connected socket only hears from `up`; skip stray answers
        while let Ok(n) = s.recv(&mut buf) {
            if message::id(&buf[..n]) == Some(id) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}
