//! Root tests: isolation between networks, `enable_icc=false` and `--internal`, in
//! namespaces of their own.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use hull_network::manager::OPT_ICC;
use hull_network::netlink::Netlink;
use hull_network::{
    netns, Attachment, Endpoint, EndpointOptions, Manager, NetworkConfig, NetworkMode,
};

use common::{env, outside, root, tcp_via, OUTSIDE};

const OK: Duration = Duration::from_secs(3);
const DROPPED: Duration = Duration::from_secs(1);

fn net(m: &Manager, name: &str, subnet: &str, internal: bool, icc: bool) {
    m.create_network(&NetworkConfig {
        name: name.into(),
        subnet: Some(subnet.parse().unwrap()),
        internal,
        options: [(OPT_ICC.to_owned(), icc.to_string())].into(),
        ..Default::default()
    })
    .unwrap();
}

fn join(m: &Manager, network: &str, id: &str) -> (OwnedFd, Endpoint) {
    let ns = netns::create().unwrap();
    let mode = NetworkMode::Network(network.into());
    match m
        .setup(&mode, id, ns.as_fd(), &EndpointOptions::default())
        .unwrap()
    {
        Attachment::Bridge(ep) => (ns, ep),
        other => panic!("{other:?}"),
    }
}

fn sa(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::from((ip, 0))
}

/// A listener on `ip` in `server`, reached from `client` (or not, within `t`).
fn reaches(server: &OwnedFd, ip: Ipv4Addr, client: &OwnedFd, t: Duration) -> bool {
    tcp_via(server, sa(ip), client, sa(ip), t).is_ok()
}

#[test]
fn networks_are_isolated_icc_false_and_internal_networks_hold() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    let out = outside(&env.host);
    net(m, "a", "10.41.0.0/24", false, true);
    net(m, "b", "10.42.0.0/24", false, true);
    net(m, "noicc", "10.43.0.0/24", false, false);
    net(m, "int", "10.44.0.0/24", true, true);
    let (a1, ea1) = join(m, "a", "a1");
    let (a2, ea2) = join(m, "a", "a2");
    let (b1, eb1) = join(m, "b", "b1");
    let (n1, en1) = join(m, "noicc", "n1");
    let (n2, en2) = join(m, "noicc", "n2");
    let (i1, ei1) = join(m, "int", "i1");
    let (i2, ei2) = join(m, "int", "i2");

    // one network: containers talk; they reach the outside host
    assert!(reaches(&a2, ea2.address, &a1, OK));
    assert!(reaches(&out, OUTSIDE, &a1, OK));
    assert!(reaches(&out, OUTSIDE, &b1, OK));
    // two networks: dropped both ways
    assert!(!reaches(&b1, eb1.address, &a1, DROPPED));
    assert!(!reaches(&a1, ea1.address, &b1, DROPPED));

    // enable_icc=false: the bridge ports are isolated, the gateway still answers
    assert!(!reaches(&n2, en2.address, &n1, DROPPED));
    assert!(!reaches(&n1, en1.address, &n2, DROPPED));
    assert!(reaches(&env.host, en1.gateway, &n1, OK));
    assert!(reaches(&n1, en1.address, &env.host, OK));
    assert!(reaches(&out, OUTSIDE, &n1, OK));

    // internal: no default route, nothing forwarded in or out; inside it talks
    let routes = Netlink::open_in(i1.as_fd()).unwrap().routes().unwrap();
    assert!(
        routes.iter().all(|r| r.destination.prefix_len() != 0),
        "{routes:?}"
    );
    assert!(reaches(&i2, ei2.address, &i1, OK));
    assert!(reaches(&env.host, ei1.gateway, &i1, OK));
    assert!(!reaches(&out, OUTSIDE, &i1, DROPPED));
    assert!(!reaches(&i1, ei1.address, &a1, DROPPED));
    // even with a route, the forward hook drops it
    {
        let mut nl = Netlink::open_in(i1.as_fd()).unwrap();
        let eth0 = nl.link_by_name("eth0").unwrap().unwrap();
        nl.add_default_route(ei1.gateway, eth0.index, None).unwrap();
    }
    assert!(!reaches(&out, OUTSIDE, &i1, DROPPED));
}
