//! Root tests: bridge networks, `none`, and rollback, each in namespaces of its own.

mod common;

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use hull_network::bridge::BridgeError;
use hull_network::endpoint::EndpointError;
use hull_network::netlink::Netlink;
use hull_network::{netns, Attachment, EndpointOptions, ManagerError, NetworkMode};

use common::{env, link_names, links, ping, root, tcp_roundtrip};

fn endpoint(a: Attachment) -> hull_network::Endpoint {
    match a {
        Attachment::Bridge(ep) => ep,
        other => panic!("expected a bridge endpoint, got {other:?}"),
    }
}

#[test]
fn two_containers_on_the_default_bridge_talk_and_teardown_removes_everything() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    let (c1, c2) = (netns::create().unwrap(), netns::create().unwrap());
    let opts = EndpointOptions::default();
    let e1 = endpoint(
        m.setup(&NetworkMode::Bridge, "c1", c1.as_fd(), &opts)
            .unwrap(),
    );
    let e2 = endpoint(
        m.setup(&NetworkMode::Bridge, "c2", c2.as_fd(), &opts)
            .unwrap(),
    );

    // an empty namespace has no routes: the first default pool
    let net = m.network("bridge").unwrap();
    assert_eq!(net.bridge, "hull0");
    assert_eq!(net.ipam.subnet.to_string(), "172.17.0.0/16");
    assert_eq!(e1.address, Ipv4Addr::new(172, 17, 0, 2));
    assert_eq!(e2.address, Ipv4Addr::new(172, 17, 0, 3));
    assert_eq!(e1.mac, "02:42:ac:11:00:02");

    // inside c1: lo and eth0, both up, with the MAC, the address and a default route
    let mut nl = Netlink::open_in(c1.as_fd()).unwrap();
    let inside = nl.links().unwrap();
    assert_eq!(inside.len(), 2, "{inside:?}");
    assert!(inside.iter().all(|l| l.up), "{inside:?}");
    let eth0 = inside.iter().find(|l| l.name == "eth0").unwrap();
    assert_eq!(eth0.mac.as_deref(), Some(&[0x02, 0x42, 172, 17, 0, 2][..]));
    assert_eq!(eth0.mtu, Some(65535));
    let addrs = nl.addresses().unwrap();
    assert!(addrs
        .iter()
        .any(|a| a.index == eth0.index && a.address == e1.address && a.prefix_len == 16));
    let routes = nl.routes().unwrap();
    assert!(routes
        .iter()
        .any(|r| r.destination.prefix_len() == 0 && r.gateway == Some(net.ipam.gateway)));

    // on the host side: the veth ends are ports of hull0
    let host_links = links(env.host.as_fd());
    let hull0 = host_links.iter().find(|l| l.name == "hull0").unwrap();
    for ep in [&e1, &e2] {
        let port = host_links
            .iter()
            .find(|l| l.name == ep.host_ifname)
            .unwrap();
        assert_eq!(port.controller, Some(hull0.index));
        assert!(port.up);
    }

    // container to container, both ways, and host (gateway) to container
    tcp_roundtrip(&c1, e1.address, &c2);
    tcp_roundtrip(&c2, e2.address, &c1);
    tcp_roundtrip(&c1, e1.address, &env.host);
    // and ICMP, where busybox is installed
    if let Some(ok) = ping(&c1, e2.address) {
        assert!(ok, "ping {} from c1", e2.address);
        assert_eq!(ping(&c2, net.ipam.gateway), Some(true));
    }

    m.teardown(&NetworkMode::Bridge, "c1").unwrap();
    m.teardown(&NetworkMode::Bridge, "c2").unwrap();
    m.teardown(&NetworkMode::Bridge, "c2").unwrap(); // twice is fine
    assert_eq!(link_names(env.host.as_fd()), ["hull0", "lo"]);
    assert_eq!(link_names(c1.as_fd()), ["lo"]);
    assert!(m.network("bridge").unwrap().endpoints.is_empty());
    m.remove_network("bridge").unwrap();
    assert_eq!(link_names(env.host.as_fd()), ["lo"]);
    assert!(m.networks().unwrap().is_empty());
}

#[test]
fn none_gives_only_loopback_up_and_host_modes_do_nothing() {
    if !root() {
        return;
    }
    let env = env();
    let c = netns::create().unwrap();
    let opts = EndpointOptions::default();
    let a = env
        .manager
        .setup(&NetworkMode::None, "c", c.as_fd(), &opts)
        .unwrap();
    assert_eq!(a, Attachment::Loopback);
    let inside = links(c.as_fd());
    assert_eq!(inside.len(), 1);
    assert_eq!(inside[0].name, "lo");
    assert!(inside[0].up);
    let addrs = Netlink::open_in(c.as_fd()).unwrap().addresses().unwrap();
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].address, Ipv4Addr::LOCALHOST);

    for mode in [NetworkMode::Host, NetworkMode::Container("other".into())] {
        let a = env.manager.setup(&mode, "c", c.as_fd(), &opts).unwrap();
        assert_eq!(a, Attachment::Shared);
    }
    // nothing in the manager's namespace
    assert_eq!(link_names(env.host.as_fd()), ["lo"]);
}

#[test]
fn a_name_clash_on_the_veth_leaves_no_link_and_no_address_behind() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    m.ensure_default().unwrap();
    // the container's namespace already has an eth0
    let c = netns::create().unwrap();
    Netlink::open_in(c.as_fd())
        .unwrap()
        .create_bridge("eth0", 1500)
        .unwrap();
    let err = m
        .setup(
            &NetworkMode::Bridge,
            "c",
            c.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::Endpoint(EndpointError::CreateVeth { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("eth0"), "{err}");
    assert_eq!(link_names(env.host.as_fd()), ["hull0", "lo"]);
    assert_eq!(link_names(c.as_fd()), ["eth0", "lo"]);
    let net = m.network("bridge").unwrap();
    assert!(net.endpoints.is_empty());
    assert_eq!(net.ipam.allocated.len(), 1); // the gateway only
}

#[test]
fn a_failure_after_the_veth_exists_removes_it() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    m.ensure_default().unwrap();
    // the container's namespace already has a default route: the last step fails
    let c = netns::create().unwrap();
    {
        let mut nl = Netlink::open_in(c.as_fd()).unwrap();
        nl.create_bridge("pre0", 1500).unwrap();
        let pre0 = nl.link_by_name("pre0").unwrap().unwrap();
        nl.add_address(pre0.index, Ipv4Addr::new(10, 99, 0, 2), 24)
            .unwrap();
        nl.add_default_route(Ipv4Addr::new(10, 99, 0, 1), pre0.index, None)
            .unwrap();
    }
    let err = m
        .setup(
            &NetworkMode::Bridge,
            "c",
            c.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            ManagerError::Endpoint(EndpointError::DefaultRoute { .. })
        ),
        "{err}"
    );
    assert_eq!(link_names(env.host.as_fd()), ["hull0", "lo"]);
    assert_eq!(link_names(c.as_fd()), ["lo", "pre0"]);
    let net = m.network("bridge").unwrap();
    assert!(net.endpoints.is_empty());
    assert_eq!(net.ipam.allocated.len(), 1);

    // and the same container sets up fine once the namespace is clean
    let c2 = netns::create().unwrap();
    let ep = m
        .setup(
            &NetworkMode::Bridge,
            "c",
            c2.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap();
    assert!(matches!(ep, Attachment::Bridge(_)));
    m.teardown(&NetworkMode::Bridge, "c").unwrap();
}

#[test]
fn a_network_never_takes_over_a_link_and_a_failed_create_removes_its_bridge() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    Netlink::open_in(env.host.as_fd())
        .unwrap()
        .create_bridge("taken0", 1500)
        .unwrap();
    let cfg = |name: &str, bridge: &str| hull_network::NetworkConfig {
        name: name.into(),
        subnet: Some("10.40.0.0/24".parse().unwrap()),
        bridge: Some(bridge.into()),
        ..Default::default()
    };
    let err = m.create_network(&cfg("a", "taken0")).unwrap_err();
    assert!(
        matches!(err, ManagerError::Bridge(BridgeError::Create { .. })),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("cannot create bridge taken0"),
        "{err}"
    );
    assert!(m.networks().unwrap().is_empty());

    // the record cannot be written once the bridge exists: the bridge goes again
    std::fs::create_dir(env.state.path().join(".b.json.tmp")).unwrap();
    let err = m.create_network(&cfg("b", "mybr0")).unwrap_err();
    assert!(matches!(err, ManagerError::Store(_)), "{err}");
    assert_eq!(link_names(env.host.as_fd()), ["lo", "taken0"]);
    assert!(m.networks().unwrap().is_empty());
}
