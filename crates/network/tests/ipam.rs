//! Root tests: IPAM through the manager, on real namespaces, and its persistence.

mod common;

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use hull_network::ipam::IpamError;
use hull_network::netlink::Netlink;
use hull_network::{
    netns, Attachment, EndpointOptions, Manager, ManagerError, NetworkConfig, NetworkMode,
};

use common::{env, link_names, root};

fn net_cfg(name: &str, subnet: &str) -> NetworkConfig {
    NetworkConfig {
        name: name.into(),
        subnet: Some(subnet.parse().unwrap()),
        ..NetworkConfig::default()
    }
}

fn address(a: Attachment) -> Ipv4Addr {
    match a {
        Attachment::Bridge(ep) => ep.address,
        other => panic!("expected a bridge endpoint, got {other:?}"),
    }
}

fn ipam_err(e: ManagerError) -> IpamError {
    match e {
        ManagerError::Ipam { source, .. } => source,
        other => panic!("expected an IPAM error, got {other}"),
    }
}

#[test]
fn allocation_release_static_exhaustion_and_persistence() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    // a /29: gateway .1, containers .2 - .6
    let net = m.create_network(&net_cfg("small", "10.10.0.0/29")).unwrap();
    assert!(net.bridge.starts_with("br-") && net.bridge.len() == 15);
    let mode = NetworkMode::Network("small".into());
    let none = EndpointOptions::default();
    let ns: Vec<_> = (0..7).map(|_| netns::create().unwrap()).collect();

    let ip = |o: u8| Ipv4Addr::new(10, 10, 0, o);
    assert_eq!(
        address(m.setup(&mode, "a", ns[0].as_fd(), &none).unwrap()),
        ip(2)
    );
    // static: outside the subnet, the gateway, then a free one
    let outside = EndpointOptions {
        ip: Some(ip(9)),
        ..none.clone()
    };
    let e = ipam_err(m.setup(&mode, "b", ns[1].as_fd(), &outside).unwrap_err());
    assert!(matches!(e, IpamError::AddressOutside { .. }), "{e}");
    let gateway = EndpointOptions {
        ip: Some(ip(1)),
        ..none.clone()
    };
    let e = ipam_err(m.setup(&mode, "b", ns[1].as_fd(), &gateway).unwrap_err());
    assert_eq!(
        e.to_string(),
        "address 10.10.0.1 is already in use (by gateway)"
    );
    let fixed = EndpointOptions {
        ip: Some(ip(5)),
        ..none.clone()
    };
    assert_eq!(
        address(m.setup(&mode, "b", ns[1].as_fd(), &fixed).unwrap()),
        ip(5)
    );
    let e = ipam_err(m.setup(&mode, "c", ns[2].as_fd(), &fixed).unwrap_err());
    assert_eq!(e.to_string(), "address 10.10.0.5 is already in use (by b)");
    assert_eq!(
        address(m.setup(&mode, "c", ns[2].as_fd(), &none).unwrap()),
        ip(3)
    );

    // reopen: a second manager on the same state dir sees the allocations
    let m2 = Manager::new(env.state.path(), env.host.try_clone().unwrap()).unwrap();
    let again = m2.network("small").unwrap();
    assert_eq!(again, m.network("small").unwrap());
    assert_eq!(again.endpoints.len(), 3);
    assert_eq!(
        address(m2.setup(&mode, "d", ns[3].as_fd(), &none).unwrap()),
        ip(4)
    );
    assert_eq!(
        address(m2.setup(&mode, "e", ns[4].as_fd(), &none).unwrap()),
        ip(6)
    );
    let e = ipam_err(m2.setup(&mode, "f", ns[5].as_fd(), &none).unwrap_err());
    assert_eq!(e.to_string(), "no address left in subnet 10.10.0.0/29");
    assert_eq!(link_names(ns[5].as_fd()), ["lo"]);

    // release: a's address is free again
    m2.teardown(&mode, "a").unwrap();
    assert_eq!(
        address(m2.setup(&mode, "f", ns[5].as_fd(), &none).unwrap()),
        ip(2)
    );

    // a network with endpoints cannot go
    let e = m2.remove_network("small").unwrap_err();
    assert!(matches!(e, ManagerError::InUse { .. }), "{e}");
    for c in ["b", "c", "d", "e", "f"] {
        m2.teardown(&mode, c).unwrap();
    }
    m2.remove_network("small").unwrap();
    assert_eq!(link_names(env.host.as_fd()), ["lo"]);
}

#[test]
fn overlapping_subnets_are_refused_and_auto_subnets_avoid_routes() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    m.create_network(&net_cfg("one", "10.20.0.0/16")).unwrap();
    let e = m
        .create_network(&net_cfg("two", "10.20.128.0/24"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "subnet 10.20.128.0/24 of network two overlaps subnet 10.20.0.0/16 of network one"
    );
    let e = m
        .create_network(&net_cfg("one", "10.30.0.0/16"))
        .unwrap_err();
    assert_eq!(e.to_string(), "network one already exists");

    // a route of the namespace on 172.17.5.0/24 (a link made by the test): the
    // automatic choice skips 172.17.0.0/16
    {
        let mut nl = Netlink::open_in(env.host.as_fd()).unwrap();
        nl.create_bridge("other0", 1500).unwrap();
        let other = nl.link_by_name("other0").unwrap().unwrap();
        nl.add_address(other.index, Ipv4Addr::new(172, 17, 5, 1), 24)
            .unwrap();
    }
    let auto = m.ensure_default().unwrap();
    assert_eq!(auto.ipam.subnet.to_string(), "172.18.0.0/16");
    let next = m
        .create_network(&NetworkConfig {
            name: "next".into(),
            ..NetworkConfig::default()
        })
        .unwrap();
    assert_eq!(next.ipam.subnet.to_string(), "172.19.0.0/16");
    for n in ["one", "bridge", "next"] {
        m.remove_network(n).unwrap();
    }
    assert_eq!(link_names(env.host.as_fd()), ["lo", "other0"]);
}
