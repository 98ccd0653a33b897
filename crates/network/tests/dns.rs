//! Root test: the embedded DNS of a user-defined network, queried from a container's
//! namespace through its gateway; nothing leaves the test's namespaces.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use hull_network::dns::message::{self, NOERROR, NXDOMAIN, TYPE_A, TYPE_AAAA};
use hull_network::{netns, EndpointOptions, NetworkConfig, NetworkMode};

use common::{env, root};

/// Sends one query from `ns` to `server`: the answer's rcode and addresses, or
/// None without an answer.
fn ask(ns: &OwnedFd, server: Ipv4Addr, name: &str, qtype: u16) -> Option<(u8, Vec<Ipv4Addr>)> {
    let s = netns::run_in(ns.as_fd(), || UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(
        &message::query(0x4242, name, qtype),
        SocketAddr::from((server, 53)),
    )
    .unwrap();
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).ok()?;
    let (id, rcode, addrs) = message::read_answer(&buf[..n]).unwrap();
    assert_eq!(id, 0x4242);
    Some((rcode, addrs))
}

#[test]
fn names_and_aliases_resolve_on_a_user_network() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    let net = m
        .create_network(&NetworkConfig {
            name: "u".into(),
            subnet: Some("10.46.0.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    let gw = net.ipam.gateway;
    let mode = NetworkMode::Network("u".into());
    let (c1, c2) = (netns::create().unwrap(), netns::create().unwrap());
    let id1 = "0123456789abcdef0123";
    m.setup(
        &mode,
        id1,
        c1.as_fd(),
        &EndpointOptions {
            name: Some("web".into()),
            aliases: vec!["www".into(), "API".into()],
            ..Default::default()
        },
    )
    .unwrap();
    m.setup(
        &mode,
        "c2",
        c2.as_fd(),
        &EndpointOptions {
            name: Some("db".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let (web, db) = (Ipv4Addr::new(10, 46, 0, 2), Ipv4Addr::new(10, 46, 0, 3));

    for name in ["web", "WEB.", "www", "api", "0123456789ab"] {
        assert_eq!(
            ask(&c2, gw, name, TYPE_A),
            Some((NOERROR, vec![web])),
            "{name}"
        );
    }
    assert_eq!(ask(&c1, gw, "db", TYPE_A), Some((NOERROR, vec![db])));
    assert_eq!(ask(&c1, gw, "db", TYPE_AAAA), Some((NOERROR, vec![])));
    assert_eq!(ask(&c1, gw, "nope", TYPE_A), Some((NXDOMAIN, vec![])));
    assert_eq!(ask(&c1, gw, "nope", TYPE_AAAA), Some((NXDOMAIN, vec![])));

    // a malformed query gets FORMERR, the server goes on
    let s = netns::run_in(c1.as_fd(), || UdpSocket::bind("0.0.0.0:0"))
        .unwrap()
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut bad = message::query(7, "x", TYPE_A);
    bad[12] = 40;
    s.send_to(&bad, SocketAddr::from((gw, 53))).unwrap();
    let mut buf = [0u8; 64];
    let (n, _) = s.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], message::error(7, message::FORMERR));

    // teardown takes the names away; removing the network stops the server
    m.teardown(&mode, id1).unwrap();
    assert_eq!(ask(&c2, gw, "web", TYPE_A), Some((NXDOMAIN, vec![])));
    assert_eq!(ask(&c2, gw, "db", TYPE_A), Some((NOERROR, vec![db])));
    m.teardown(&mode, "c2").unwrap();
    m.remove_network("u").unwrap();
    assert!(m.resolver().lookup("u", "db").is_none());
}

#[test]
fn other_names_go_to_the_upstream_servers_from_the_host_side() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    let out = common::outside(&env.host);
    // an "upstream" server on the outside host: every name is 192.0.2.7
    let upstream = netns::run_in(out.as_fd(), || UdpSocket::bind((common::OUTSIDE, 53)))
        .unwrap()
        .unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let seen = std::sync::Mutex::new(Vec::new());
    /// Stops the upstream when the test body ends, by a panic too.
    struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        let _stop = Stop(&stop);
        s.spawn(|| {
            let mut buf = [0u8; 512];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, peer)) = upstream.recv_from(&mut buf) {
                    seen.lock().unwrap().push(peer);
                    let q = message::parse(&buf[..n]).unwrap();
                    let a = message::answer(&buf[..n], &q, NOERROR, &[Ipv4Addr::new(192, 0, 2, 7)]);
                    upstream.send_to(&a, peer).unwrap();
                }
            }
        });
        let net = m
            .create_network(&NetworkConfig {
                name: "u".into(),
                subnet: Some("10.47.0.0/24".parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
        let gw = net.ipam.gateway;
        let c = netns::create().unwrap();
        let mode = NetworkMode::Network("u".into());
        let opts = EndpointOptions {
            name: Some("web".into()),
            ..Default::default()
        };
        m.setup(&mode, "c1", c.as_fd(), &opts).unwrap();
        let ext = SocketAddr::from((common::OUTSIDE, 53));
        m.set_dns_upstreams(vec![ext]);
        let example = Some((NOERROR, vec![Ipv4Addr::new(192, 0, 2, 7)]));
        assert_eq!(ask(&c, gw, "example.test", TYPE_A), example);
        // local names stay local
        assert_eq!(
            ask(&c, gw, "web", TYPE_A),
            Some((NOERROR, vec![Ipv4Addr::new(10, 47, 0, 2)]))
        );
        let peers = seen.lock().unwrap().clone();
        assert_eq!(peers.len(), 1, "{peers:?}");
        assert_eq!(
            peers[0].ip(),
            std::net::IpAddr::V4(common::HOST_EXT),
            "from the host side"
        );
        // a dead upstream, then the live one: the second answers
        let dead = SocketAddr::from((Ipv4Addr::new(10, 200, 0, 99), 53));
        m.set_dns_upstreams(vec![dead, ext]);
        let s2 = netns::run_in(c.as_fd(), || UdpSocket::bind("0.0.0.0:0"))
            .unwrap()
            .unwrap();
        s2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s2.send_to(
            &message::query(9, "x.test", TYPE_A),
            SocketAddr::from((gw, 53)),
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = s2.recv_from(&mut buf).unwrap();
        assert_eq!(
            message::read_answer(&buf[..n]).unwrap().2,
            [Ipv4Addr::new(192, 0, 2, 7)]
        );
        // none answers: SERVFAIL
        m.set_dns_upstreams(vec![dead]);
        s2.send_to(
            &message::query(10, "y.test", TYPE_A),
            SocketAddr::from((gw, 53)),
        )
        .unwrap();
        let (n, _) = s2.recv_from(&mut buf).unwrap();
        assert_eq!(
            message::read_answer(&buf[..n]).unwrap().1,
            message::SERVFAIL
        );
        m.teardown(&mode, "c1").unwrap();
    });
}
