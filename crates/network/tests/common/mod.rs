//! Helpers for the root tests: every namespace is made here with
//! `hull_network::netns::create` (a thread's `unshare(CLONE_NEWNET)`, kept by fd:
//! nothing is mounted, and dropping the fd ends it with whatever links are in it).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use hull_network::netlink::{LinkInfo, Netlink};
use hull_network::{netns, Manager};

/// False (and a note on stderr) when not root: the caller returns early.
pub fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root (network namespaces)");
        false
    }
}

pub struct Env {
    pub state: tempfile::TempDir,
    pub host: OwnedFd,
    pub manager: Manager,
}

/// A fresh "host" namespace and a manager working on it, state in a temp dir.
pub fn env() -> Env {
    let state = tempfile::tempdir().unwrap();
    let host = netns::create().unwrap();
    let manager = Manager::new(state.path(), host.try_clone().unwrap()).unwrap();
    Env {
        state,
        host,
        manager,
    }
}

pub fn links(ns: BorrowedFd<'_>) -> Vec<LinkInfo> {
    Netlink::open_in(ns).unwrap().links().unwrap()
}

pub fn link_names(ns: BorrowedFd<'_>) -> Vec<String> {
    let mut names: Vec<String> = links(ns).into_iter().map(|l| l.name).collect();
    names.sort();
    names
}

/// Listens on `addr:port` inside `server_ns`, connects from `client_ns`, and checks
/// that bytes go both ways.
pub fn tcp_roundtrip(server_ns: &OwnedFd, addr: Ipv4Addr, client_ns: &OwnedFd) {
    let listener = netns::run_in(server_ns.as_fd(), || TcpListener::bind((addr, 0)))
        .unwrap()
        .unwrap();
    let target: SocketAddr = listener.local_addr().unwrap();
    std::thread::scope(|s| {
        let server = s.spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ping");
            conn.write_all(b"pong").unwrap();
        });
        let mut conn = netns::run_in(client_ns.as_fd(), || {
            TcpStream::connect_timeout(&target, Duration::from_secs(5))
        })
        .unwrap()
        .unwrap_or_else(|e| panic!("connect to {target}: {e}"));
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pong");
        server.join().unwrap();
    });
}

/// `busybox ping -c1` of `addr` from inside `ns` (entered by nsenter through this
/// process's fd of the namespace); None when busybox is not installed.
pub fn ping(ns: &OwnedFd, addr: Ipv4Addr) -> Option<bool> {
    use std::os::fd::AsRawFd;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    let path = format!("/proc/{}/fd/{}", std::process::id(), ns.as_raw_fd());
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={path}"))
        .args([busybox, "ping", "-c1", "-W2"])
        .arg(addr.to_string())
        .output()
        .expect("run nsenter");
    if !out.status.success() {
        eprintln!(
            "ping {addr}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(out.status.success())
}

/// Brings `lo` up in `ns` (a new namespace has it down).
pub fn lo_up(ns: &OwnedFd) {
    Netlink::open_in(ns.as_fd()).unwrap().set_up(1).unwrap();
}

pub const HOST_EXT: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub const OUTSIDE: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);

/// Another "host": a namespace joined to `host` by a veth (`ext0` 10.200.0.1/24 in
/// `host`, `eth0` 10.200.0.2/24 in it), with no route to any container subnet.
pub fn outside(host: &OwnedFd) -> OwnedFd {
    let out = netns::create().unwrap();
    let mut nl = Netlink::open_in(host.as_fd()).unwrap();
    nl.create_veth(&hull_network::netlink::VethSpec {
        name: "ext0",
        mtu: 1500,
        controller: 0,
        peer_name: "eth0",
        peer_mac: [0x02, 0, 10, 200, 0, 2],
        peer_netns: out.as_fd(),
    })
    .unwrap();
    let ext0 = nl.link_by_name("ext0").unwrap().unwrap();
    nl.add_address(ext0.index, HOST_EXT, 24).unwrap();
    nl.set_up(ext0.index).unwrap();
    let mut nl = Netlink::open_in(out.as_fd()).unwrap();
    let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
    nl.add_address(eth0.index, OUTSIDE, 24).unwrap();
    nl.set_up(eth0.index).unwrap();
    nl.set_up(1).unwrap();
    out
}

/// A TCP listener on `bind` in `server_ns`; a client in `client_ns` connects to
/// `target` (the listener's port when `target` has port 0) and exchanges bytes both
/// ways. The peer address the server saw, or the client's error.
pub fn tcp_via(
    server_ns: &OwnedFd,
    bind: SocketAddr,
    client_ns: &OwnedFd,
    target: SocketAddr,
    timeout: Duration,
) -> std::io::Result<SocketAddr> {
    tcp_exchange(server_ns, bind, client_ns, target, timeout).map(|(peer, _)| peer)
}

/// [`tcp_via`] that answers the client's segment size (`TCP_MAXSEG`) instead: what
/// the path between the two ends lets one TCP segment carry.
pub fn tcp_mss(
    server_ns: &OwnedFd,
    bind: SocketAddr,
    client_ns: &OwnedFd,
    target: SocketAddr,
) -> u32 {
    tcp_exchange(server_ns, bind, client_ns, target, Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect to {target}: {e}"))
        .1
}

fn tcp_exchange(
    server_ns: &OwnedFd,
    bind: SocketAddr,
    client_ns: &OwnedFd,
    target: SocketAddr,
    timeout: Duration,
) -> std::io::Result<(SocketAddr, u32)> {
    let listener = netns::run_in(server_ns.as_fd(), || TcpListener::bind(bind))
        .unwrap()
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut target = target;
    if target.port() == 0 {
        target.set_port(listener.local_addr().unwrap().port());
    }
    let deadline = std::time::Instant::now() + timeout + Duration::from_secs(1);
    std::thread::scope(|s| {
        let server = s.spawn(move || loop {
            match listener.accept() {
                Ok((mut conn, peer)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut buf = [0u8; 4];
                    conn.read_exact(&mut buf).unwrap();
                    assert_eq!(&buf, b"ping");
                    conn.write_all(b"pong").unwrap();
                    return Some(peer);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        });
        let client = netns::run_in(client_ns.as_fd(), || {
            TcpStream::connect_timeout(&target, timeout)
        })
        .unwrap();
        let result = client.and_then(|mut conn| {
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            conn.write_all(b"ping")?;
            let mut buf = [0u8; 4];
            conn.read_exact(&mut buf)?;
            assert_eq!(&buf, b"pong");
            Ok(nix::sys::socket::getsockopt(
                &conn,
                nix::sys::socket::sockopt::TcpMaxSeg,
            )?)
        });
        let peer = server.join().unwrap();
        result.map(|mss| (peer.expect("the server saw the connection"), mss))
    })
}

/// A UDP echo of one datagram: server bound on `bind` in `server_ns`, client in
/// `client_ns` sending to `target`. Whether the answer came back.
pub fn udp_via(
    server_ns: &OwnedFd,
    bind: SocketAddr,
    client_ns: &OwnedFd,
    target: SocketAddr,
) -> bool {
    use std::net::UdpSocket;
    let server = netns::run_in(server_ns.as_fd(), || UdpSocket::bind(bind))
        .unwrap()
        .unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = [0u8; 16];
            if let Ok((n, peer)) = server.recv_from(&mut buf) {
                server.send_to(&buf[..n], peer).unwrap();
            }
        });
        let client = netns::run_in(client_ns.as_fd(), || UdpSocket::bind(("0.0.0.0", 0)))
            .unwrap()
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.send_to(b"hello", target).unwrap();
        let mut buf = [0u8; 16];
        matches!(client.recv_from(&mut buf), Ok((5, _))) && &buf[..5] == b"hello"
    })
}
