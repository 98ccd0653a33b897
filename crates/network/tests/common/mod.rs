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
