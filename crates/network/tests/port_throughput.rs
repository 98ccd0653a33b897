//! Root test, a measurement: a published TCP port on the namespace's loopback,
//! through the kernel (output DNAT + masquerade, what hull does) against a small
//! userland proxy (a std thread pair per connection, as docker-proxy does) and the
//! container's address straight. Prints bulk throughput, connection rate and
//! round-trip latency; asserts only that every path works. Figures in
//! bench/README.md come from `cargo test --release ... -- --nocapture`.

mod common;

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use hull_network::{netns, Attachment, EndpointOptions, NetworkMode, PortSpec};

use common::{env, lo_up, root};

const BULK: usize = 1 << 30;
const CONNS: usize = 300;
const PINGS: usize = 2000;

/// In the container: 'B' reads to EOF and answers the byte count; 'P' echoes bytes.
fn serve(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { return };
        std::thread::spawn(move || {
            let _ = conn.set_nodelay(true);
            let mut kind = [0u8; 1];
            if conn.read_exact(&mut kind).is_err() {
                return;
            }
            if kind[0] == b'B' {
                // 1 MiB reads, as the client writes (io::copy's 8 KiB buffer made
                // the reader, not the path, the limit)
                let mut buf = vec![0u8; 1 << 20];
                let mut n = 0u64;
                while let Ok(got @ 1..) = conn.read(&mut buf) {
                    n += got as u64;
                }
                let _ = conn.write_all(&n.to_le_bytes());
            } else {
                let mut b = [0u8; 1];
                while conn.read_exact(&mut b).is_ok() && conn.write_all(&b).is_ok() {}
            }
        });
    }
}

/// A userland proxy on 127.0.0.1:(any) in the thread's namespace to `target`.
fn proxy(listener: TcpListener, target: SocketAddr) {
    for conn in listener.incoming() {
        let Ok(inbound) = conn else { return };
        std::thread::spawn(move || {
            let Ok(outbound) = TcpStream::connect(target) else {
                return;
            };
            let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
            let (mut i2, mut o2) = (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            let up = std::thread::spawn(move || {
                let _ = io::copy(&mut i2, &mut o2);
                let _ = o2.shutdown(Shutdown::Write);
            });
            let (mut i, mut o) = (inbound, outbound);
            let _ = io::copy(&mut o, &mut i);
            let _ = i.shutdown(Shutdown::Write);
            let _ = up.join();
        });
    }
}

struct Figures {
    gbit: f64,
    conns_per_s: f64,
    rtt_us: f64,
}

fn measure(target: SocketAddr) -> Figures {
    // bulk
    let mut c = TcpStream::connect(target).unwrap();
    let chunk = vec![7u8; 1 << 20];
    let t = Instant::now();
    c.write_all(b"B").unwrap();
    for _ in 0..BULK / chunk.len() {
        c.write_all(&chunk).unwrap();
    }
    c.shutdown(Shutdown::Write).unwrap();
    let mut n = [0u8; 8];
    c.read_exact(&mut n).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(u64::from_le_bytes(n), BULK as u64);
    let gbit = BULK as f64 * 8.0 / secs / 1e9;
    // connection rate: connect, one byte there and back, close
    let t = Instant::now();
    for _ in 0..CONNS {
        let mut c = TcpStream::connect(target).unwrap();
        c.set_nodelay(true).unwrap();
        c.write_all(b"Px").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
    }
    let conns_per_s = CONNS as f64 / t.elapsed().as_secs_f64();
    // round trips on one connection
    let mut c = TcpStream::connect(target).unwrap();
    c.set_nodelay(true).unwrap();
    c.write_all(b"P").unwrap();
    let mut rtts = Vec::with_capacity(PINGS);
    let mut b = [0u8; 1];
    for _ in 0..PINGS {
        let t = Instant::now();
        c.write_all(b"x").unwrap();
        c.read_exact(&mut b).unwrap();
        rtts.push(t.elapsed());
    }
    rtts.sort();
    Figures {
        gbit,
        conns_per_s,
        rtt_us: rtts[PINGS / 2].as_secs_f64() * 1e6,
    }
}

/// Runs `f` on a thread of its own that entered `ns` (threads it spawns stay there).
fn spawn_in(ns: &OwnedFd, f: impl FnOnce() + Send + 'static) {
    let ns = ns.try_clone().unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    });
}

#[test]
fn published_port_throughput_kernel_path_against_a_userland_proxy() {
    if !root() {
        return;
    }
    let env = env();
    lo_up(&env.host);
    let c = netns::create().unwrap();
    let opts = EndpointOptions {
        ports: vec![PortSpec::parse("127.0.0.1::80").unwrap()],
        ..Default::default()
    };
    let Attachment::Bridge(ep) = env
        .manager
        .setup(&NetworkMode::Bridge, "c1", c.as_fd(), &opts)
        .unwrap()
    else {
        panic!("not a bridge endpoint")
    };
    let listener = netns::run_in(c.as_fd(), || TcpListener::bind("0.0.0.0:80"))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || serve(listener));
    let direct = SocketAddr::from((ep.address, 80));
    let proxy_listener = netns::run_in(env.host.as_fd(), || TcpListener::bind("127.0.0.1:0"))
        .unwrap()
        .unwrap();
    let proxied = proxy_listener.local_addr().unwrap();
    spawn_in(&env.host, move || proxy(proxy_listener, direct));

    let kernel = SocketAddr::from((Ipv4Addr::LOCALHOST, ep.ports[0].host_port));
    let paths = [
        ("container address (no NAT)", direct),
        ("127.0.0.1, kernel DNAT", kernel),
        ("127.0.0.1, userland proxy", proxied),
    ];
    let results: Vec<(&str, Figures)> = netns::run_in(env.host.as_fd(), || {
        paths.iter().map(|(name, a)| (*name, measure(*a))).collect()
    })
    .unwrap();
    println!(
        "published port, {} MiB bulk, {CONNS} connections, {PINGS} round trips:",
        BULK >> 20
    );
    for (name, f) in &results {
        println!(
            "  {name:<28} {:>6.2} Gbit/s  {:>7.0} conn/s  rtt median {:>5.1} us",
            f.gbit, f.conns_per_s, f.rtt_us
        );
    }
}

#[test]
fn setup_and_teardown_time_with_a_published_port() {
    if !root() {
        return;
    }
    const N: usize = 10;
    let env = env();
    env.manager.ensure_default().unwrap();
    let ns: Vec<_> = (0..N).map(|_| netns::create().unwrap()).collect();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for (i, n) in ns.iter().enumerate() {
        let opts = EndpointOptions {
            ports: vec![PortSpec::parse("80").unwrap()],
            ..Default::default()
        };
        let t = Instant::now();
        env.manager
            .setup(&NetworkMode::Bridge, &format!("c{i}"), n.as_fd(), &opts)
            .unwrap();
        up.push(ms(t.elapsed()));
    }
    for i in 0..N {
        let t = Instant::now();
        env.manager
            .teardown(&NetworkMode::Bridge, &format!("c{i}"))
            .unwrap();
        down.push(ms(t.elapsed()));
    }
    up.sort_by(f64::total_cmp);
    down.sort_by(f64::total_cmp);
    println!(
        "with one published port (n={N}): setup median {:.1} ms (min {:.1}), teardown median {:.1} ms",
        up[N / 2], up[0], down[N / 2]
    );
}
