//! Root tests: published ports, masquerade and the firewall table's life, each in
//! namespaces of its own (the manager's "host", an "outside" host joined to it by a
//! veth, and the containers'). Rules are only ever made in those namespaces.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::time::Duration;

use hull_network::{
    firewall, netns, Attachment, EndpointOptions, ManagerError, NetworkConfig, NetworkMode,
    PortSpec,
};

use common::{
    env, link_names, links, lo_up, outside, root, tcp_mss, tcp_via, udp_via, HOST_EXT, OUTSIDE,
};

fn endpoint(a: Attachment) -> hull_network::Endpoint {
    match a {
        Attachment::Bridge(ep) => ep,
        other => panic!("expected a bridge endpoint, got {other:?}"),
    }
}

fn sa(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

const T: Duration = Duration::from_secs(3);

fn ports(specs: &[&str]) -> EndpointOptions {
    EndpointOptions {
        ports: specs.iter().map(|s| PortSpec::parse(s).unwrap()).collect(),
        ..Default::default()
    }
}

fn tags(env: &common::Env) -> Option<Vec<String>> {
    firewall::rule_tags(env.host.as_fd()).unwrap()
}

#[test]
fn published_ports_answer_on_loopback_and_from_another_host() {
    if !root() {
        return;
    }
    let env = env();
    lo_up(&env.host);
    let out = outside(&env.host);
    let c = netns::create().unwrap();
    let opts = ports(&["18080:80", "90", "127.0.0.1:15353:53/udp", "15354:54/udp"]);
    let ep = endpoint(
        env.manager
            .setup(&NetworkMode::Bridge, "c1", c.as_fd(), &opts)
            .unwrap(),
    );
    assert_eq!(ep.ports.len(), 4);
    assert_eq!(ep.ports[0].host_port, 18080);
    let random = ep.ports[1].host_port;
    assert_ne!(random, 0);
    assert_eq!(
        env.manager.network("bridge").unwrap().endpoints["c1"].ports,
        ep.ports
    );

    let any = Ipv4Addr::UNSPECIFIED;
    // the namespace's own loopback (output DNAT, route_localnet, masquerade)
    let peer = tcp_via(
        &c,
        sa(any, 80),
        &env.host,
        sa(Ipv4Addr::LOCALHOST, 18080),
        T,
    )
    .unwrap();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(ep.gateway),
        "loopback is masqueraded"
    );
    tcp_via(
        &c,
        sa(any, 90),
        &env.host,
        sa(Ipv4Addr::LOCALHOST, random),
        T,
    )
    .unwrap();
    // another host, through the namespace's outside address (prerouting DNAT)
    let peer = tcp_via(&c, sa(any, 80), &out, sa(HOST_EXT, 18080), T).unwrap();
    assert_eq!(
        peer.ip(),
        std::net::IpAddr::V4(OUTSIDE),
        "no NAT of the source"
    );
    tcp_via(&c, sa(any, 90), &out, sa(HOST_EXT, random), T).unwrap();
    // UDP, on loopback only for 15353, everywhere for 15354
    assert!(udp_via(
        &c,
        sa(any, 53),
        &env.host,
        sa(Ipv4Addr::LOCALHOST, 15353)
    ));
    assert!(udp_via(&c, sa(any, 54), &out, sa(HOST_EXT, 15354)));
    assert!(!udp_via(&c, sa(any, 53), &out, sa(HOST_EXT, 15353)));
    // hairpin: another container, and the container itself, by the host's address
    let c2 = netns::create().unwrap();
    env.manager
        .setup(
            &NetworkMode::Bridge,
            "c2",
            c2.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap();
    let peer = tcp_via(&c, sa(any, 80), &c2, sa(HOST_EXT, 18080), T).unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(ep.gateway));
    tcp_via(&c, sa(any, 80), &c, sa(HOST_EXT, 18080), T).unwrap();

    env.manager.teardown(&NetworkMode::Bridge, "c1").unwrap();
    assert!(tcp_via(
        &c,
        sa(any, 80),
        &env.host,
        sa(Ipv4Addr::LOCALHOST, 18080),
        T
    )
    .is_err());
}

#[test]
fn masquerade_hides_containers_behind_the_outside_address() {
    if !root() {
        return;
    }
    let env = env();
    let out = outside(&env.host);
    let c = netns::create().unwrap();
    let ep = endpoint(
        env.manager
            .setup(
                &NetworkMode::Bridge,
                "c1",
                c.as_fd(),
                &EndpointOptions::default(),
            )
            .unwrap(),
    );
    let peer = tcp_via(&out, sa(OUTSIDE, 0), &c, sa(OUTSIDE, 0), T).unwrap();
    assert_eq!(peer.ip(), std::net::IpAddr::V4(HOST_EXT), "{ep:?}");

    // without masquerade the outside host sees the container (and cannot answer)
    let net = env
        .manager
        .create_network(&NetworkConfig {
            name: "nomasq".into(),
            subnet: Some("10.45.0.0/24".parse().unwrap()),
            options: [(
                hull_network::manager::OPT_MASQUERADE.to_owned(),
                "false".to_owned(),
            )]
            .into(),
            ..Default::default()
        })
        .unwrap();
    assert!(!net.enable_ip_masquerade);
    let c2 = netns::create().unwrap();
    let mode = NetworkMode::Network("nomasq".into());
    env.manager
        .setup(&mode, "c2", c2.as_fd(), &EndpointOptions::default())
        .unwrap();
    assert!(tcp_via(
        &out,
        sa(OUTSIDE, 0),
        &c2,
        sa(OUTSIDE, 0),
        Duration::from_secs(1)
    )
    .is_err());
}

#[test]
fn a_port_in_use_is_a_clear_error_and_leaves_nothing_behind() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    m.ensure_default().unwrap();
    let held = netns::run_in(env.host.as_fd(), || {
        std::net::TcpListener::bind("0.0.0.0:0")
    })
    .unwrap()
    .unwrap();
    let busy = held.local_addr().unwrap().port();
    let c = netns::create().unwrap();
    let spec = format!("{busy}:80");
    let err = m
        .setup(&NetworkMode::Bridge, "c1", c.as_fd(), &ports(&[&spec]))
        .unwrap_err();
    assert!(matches!(err, ManagerError::Ports { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "driver failed programming external connectivity on endpoint c1: \
             Bind for 0.0.0.0:{busy} failed: port is already allocated"
        )
    );
    let net = m.network("bridge").unwrap();
    assert!(net.endpoints.is_empty());
    assert_eq!(net.ipam.allocated.len(), 1);
    assert_eq!(link_names(env.host.as_fd()), ["hull0", "lo"]);
    assert_eq!(link_names(c.as_fd()), ["lo"]);
    assert!(tags(&env)
        .unwrap()
        .iter()
        .all(|t| t.starts_with("hull net ")));

    // a port hull publishes already (no socket holds it) is taken too
    m.setup(&NetworkMode::Bridge, "c1", c.as_fd(), &ports(&["18081:80"]))
        .unwrap();
    let c2 = netns::create().unwrap();
    for spec in ["18081:81", "127.0.0.1:18081:80"] {
        let err = m
            .setup(&NetworkMode::Bridge, "c2", c2.as_fd(), &ports(&[spec]))
            .unwrap_err();
        assert!(
            err.to_string().ends_with("port is already allocated"),
            "{err}"
        );
    }
    // an address the namespace does not have
    let err = m
        .setup(
            &NetworkMode::Bridge,
            "c2",
            c2.as_fd(),
            &ports(&["10.9.9.9:18090:80"]),
        )
        .unwrap_err();
    assert!(
        err.to_string().ends_with(
            "cannot bind tcp 10.9.9.9:18090: Cannot assign requested address (os error 99)"
        ),
        "{err}"
    );
    // -P: every exposed port on a random host port
    let all = PortSpec::publish_all(["80/tcp", "53/udp"]).unwrap();
    let c3 = netns::create().unwrap();
    let opts = EndpointOptions {
        ports: all,
        ..Default::default()
    };
    let ep = endpoint(
        m.setup(&NetworkMode::Bridge, "c3", c3.as_fd(), &opts)
            .unwrap(),
    );
    assert_eq!(ep.ports.len(), 2);
    assert!(ep
        .ports
        .iter()
        .all(|p| p.host_port != 0 && p.host_ip.is_none()));
    m.teardown(&NetworkMode::Bridge, "c3").unwrap();
    // but not the same number in UDP
    m.setup(
        &NetworkMode::Bridge,
        "c2",
        c2.as_fd(),
        &ports(&["18081:80/udp"]),
    )
    .unwrap();
    let eps = tags(&env).unwrap();
    assert_eq!(
        eps.iter().filter(|t| t.starts_with("hull ep ")).count(),
        2,
        "{eps:?}"
    );
}

#[test]
fn teardown_removes_exactly_its_rules_and_the_table_goes_with_the_last_network() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    assert_eq!(tags(&env), None);
    let a = m
        .create_network(&NetworkConfig {
            name: "a".into(),
            subnet: Some("10.41.0.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    let b = m
        .create_network(&NetworkConfig {
            name: "b".into(),
            subnet: Some("10.42.0.0/24".parse().unwrap()),
            ..Default::default()
        })
        .unwrap();
    let (net_a, net_b) = (firewall::network_tag(&a.id), firewall::network_tag(&b.id));
    let mode_a = NetworkMode::Network("a".into());
    let (c1, c2) = (netns::create().unwrap(), netns::create().unwrap());
    m.setup(
        &mode_a,
        "c1",
        c1.as_fd(),
        &ports(&["18082:80", "18083:80/udp"]),
    )
    .unwrap();
    m.setup(&mode_a, "c2", c2.as_fd(), &ports(&["18084:80"]))
        .unwrap();
    let (ep1, ep2) = (
        firewall::endpoint_tag(&a.id, "c1"),
        firewall::endpoint_tag(&a.id, "c2"),
    );
    let count = |tag: &str| tags(&env).unwrap().iter().filter(|t| *t == tag).count();
    assert_eq!(count(&ep1), 2);
    assert_eq!(count(&ep2), 1);
    // per network: masquerade of the subnet, hairpin, loopback; the isolation drop
    assert_eq!(count(&net_a), 4);
    assert_eq!(count(&net_b), 4);

    m.teardown(&mode_a, "c1").unwrap();
    assert_eq!((count(&ep1), count(&ep2), count(&net_a)), (0, 1, 4));
    m.teardown(&mode_a, "c2").unwrap();
    m.remove_network("a").unwrap();
    assert_eq!(tags(&env).unwrap(), vec![net_b.clone(); 4]);
    m.remove_network("b").unwrap();
    assert_eq!(tags(&env), None, "the table is gone with the last network");
}

#[test]
fn restore_puts_back_lost_rules_once() {
    if !root() {
        return;
    }
    let env = env();
    lo_up(&env.host);
    let m = &env.manager;
    let c = netns::create().unwrap();
    let ep = endpoint(
        m.setup(&NetworkMode::Bridge, "c1", c.as_fd(), &ports(&["18085:80"]))
            .unwrap(),
    );
    let before = tags(&env).unwrap();
    // the table is lost (a flush of the rule set, a reboot)
    let table = serde_json::json!({ "delete": { "table": { "family": "ip", "name": "hull" } } });
    hull_network::nft::apply(env.host.as_fd(), vec![table]).unwrap();
    let (any, lo) = (Ipv4Addr::UNSPECIFIED, Ipv4Addr::LOCALHOST);
    let short = Duration::from_secs(1);
    assert!(tcp_via(&c, sa(any, 80), &env.host, sa(lo, 18085), short).is_err());
    m.restore().unwrap();
    m.restore().unwrap();
    let mut after = tags(&env).unwrap();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "the same rules, once");
    tcp_via(&c, sa(any, 80), &env.host, sa(lo, 18085), T).unwrap();
    assert_eq!(ep.ports[0].host_port, 18085);
}

/// Links that stay on the host run at the local MTU (65535): a TCP connection between
/// two containers, between the host and a container, or through a port published on
/// 127.0.0.1, moves 64 KiB segments. What leaves the host keeps the network's MTU by
/// the default route. And `com.hull.network.local_mtu` = the MTU gives Docker's layout.
#[test]
fn local_links_carry_64k_segments_and_what_leaves_keeps_the_network_mtu() {
    if !root() {
        return;
    }
    let env = env();
    lo_up(&env.host);
    let out = outside(&env.host);
    let (c1, c2) = (netns::create().unwrap(), netns::create().unwrap());
    let m = &env.manager;
    let e1 = endpoint(
        m.setup(
            &NetworkMode::Bridge,
            "c1",
            c1.as_fd(),
            &ports(&["127.0.0.1:18081:80"]),
        )
        .unwrap(),
    );
    m.setup(
        &NetworkMode::Bridge,
        "c2",
        c2.as_fd(),
        &EndpointOptions::default(),
    )
    .unwrap();
    let net = m.network("bridge").unwrap();
    assert_eq!((net.mtu, net.local_mtu), (1500, 65535));

    let mtu_of = |ns: &std::os::fd::OwnedFd, name: &str| {
        links(ns.as_fd())
            .into_iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no link {name}"))
            .mtu
    };
    assert_eq!(mtu_of(&env.host, "hull0"), Some(65535));
    assert_eq!(mtu_of(&env.host, &e1.host_ifname), Some(65535));
    assert_eq!(mtu_of(&c1, "eth0"), Some(65535));
    let default_route = |ns: &std::os::fd::OwnedFd| {
        hull_network::netlink::Netlink::open_in(ns.as_fd())
            .unwrap()
            .routes()
            .unwrap()
            .into_iter()
            .find(|r| r.destination.prefix_len() == 0)
            .expect("a default route")
    };
    assert_eq!(default_route(&c1).mtu, Some(1500));

    let any = Ipv4Addr::UNSPECIFIED;
    // TCP_MAXSEG of a fresh connection is also bounded by half the largest window the
    // peer announced so far (32 KiB here), so "big" is anything no 1500-byte link allows.
    let big = 9000;
    let c2_to_c1 = tcp_mss(&c1, sa(any, 0), &c2, sa(e1.address, 0));
    assert!(c2_to_c1 > big, "container to container: MSS {c2_to_c1}");
    let host_to_c1 = tcp_mss(&c1, sa(any, 0), &env.host, sa(e1.address, 0));
    assert!(host_to_c1 > big, "host to container: MSS {host_to_c1}");
    let published = tcp_mss(&c1, sa(any, 80), &env.host, sa(Ipv4Addr::LOCALHOST, 18081));
    assert!(
        published > big,
        "127.0.0.1:18081 to the container: MSS {published}"
    );
    let leaving = tcp_mss(&out, sa(OUTSIDE, 0), &c1, sa(OUTSIDE, 0));
    assert!(leaving <= 1460, "container to another host: MSS {leaving}");

    // one MTU everywhere, as asked for
    let opt = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into();
    m.create_network(&NetworkConfig {
        name: "plain".into(),
        subnet: Some("10.46.0.0/24".parse().unwrap()),
        options: opt(hull_network::manager::OPT_LOCAL_MTU, "1500"),
        ..Default::default()
    })
    .unwrap();
    let (p1, p2) = (netns::create().unwrap(), netns::create().unwrap());
    let plain = NetworkMode::Network("plain".into());
    let ep1 = endpoint(
        m.setup(&plain, "p1", p1.as_fd(), &EndpointOptions::default())
            .unwrap(),
    );
    m.setup(&plain, "p2", p2.as_fd(), &EndpointOptions::default())
        .unwrap();
    assert_eq!(mtu_of(&p1, "eth0"), Some(1500));
    assert_eq!(default_route(&p1).mtu, None);
    let plain_mss = tcp_mss(&p1, sa(any, 0), &p2, sa(ep1.address, 0));
    assert!(plain_mss <= 1460, "plain network: MSS {plain_mss}");

    // and MTUs that cannot be are refused, naming the option, with nothing made
    let before = link_names(env.host.as_fd());
    for (name, mtu, options) in [
        (
            "m1",
            None,
            opt(hull_network::manager::OPT_LOCAL_MTU, "jumbo"),
        ),
        (
            "m2",
            None,
            opt(hull_network::manager::OPT_LOCAL_MTU, "70000"),
        ),
        (
            "m3",
            Some(9000),
            opt(hull_network::manager::OPT_LOCAL_MTU, "1500"),
        ),
        ("m4", Some(40), Default::default()),
    ] {
        let e = m
            .create_network(&NetworkConfig {
                name: name.into(),
                mtu,
                options,
                ..Default::default()
            })
            .unwrap_err();
        assert!(matches!(e, ManagerError::BadMtu { .. }), "{name}: {e}");
        assert!(e.to_string().contains("mtu"), "{name}: {e}");
    }
    assert_eq!(link_names(env.host.as_fd()), before);
}
