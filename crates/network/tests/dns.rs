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
