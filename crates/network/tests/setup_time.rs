//! Root test: network setup time per container on an existing bridge (veth pair,
//! MAC, addresses, routes, lo; with and without the record update). Prints the
//! figures; no timing assertion (the target, under 10 ms, is for bench/README.md).

mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hull_network::endpoint::{self, Plan};
use hull_network::netlink::Netlink;
use hull_network::{netns, EndpointOptions, NetworkMode};

use common::{env, link_names, root};

const N: usize = 30;

fn summary(mut d: Vec<Duration>) -> String {
    d.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.2} ms, p90 {:.2} ms, min {:.2} ms, max {:.2} ms (n={})",
        ms(d[d.len() / 2]),
        ms(d[d.len() * 9 / 10]),
        ms(d[0]),
        ms(d[d.len() - 1]),
        d.len()
    )
}

#[test]
fn network_setup_time_per_container() {
    if !root() {
        return;
    }
    let env = env();
    let m = &env.manager;
    let net = m.ensure_default().unwrap();
    let ns: Vec<_> = (0..N).map(|_| netns::create().unwrap()).collect();

    // Manager::setup: IPAM (locked read-modify-write, fsync'd record) + netlink
    let mut full = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        let t = Instant::now();
        m.setup(
            &NetworkMode::Bridge,
            &format!("c{i}"),
            n.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap();
        full.push(t.elapsed());
    }
    let mut down = Vec::new();
    for i in 0..N {
        let t = Instant::now();
        m.teardown(&NetworkMode::Bridge, &format!("c{i}")).unwrap();
        down.push(t.elapsed());
    }

    // the netlink work alone (veth pair, MAC, address, route, lo up)
    let mut host = Netlink::open_in(env.host.as_fd()).unwrap();
    let mut netlink_only = Vec::new();
    let mut made = Vec::new();
    for (i, n) in ns.iter().enumerate() {
        let id = format!("raw{i}");
        let t = Instant::now();
        let ep = endpoint::create(
            &mut host,
            n.as_fd(),
            &Plan {
                container_id: &id,
                network: &net.name,
                network_id: &net.id,
                bridge: &net.bridge,
                mtu: net.local_mtu,
                route_mtu: Some(net.mtu),
                address: std::net::Ipv4Addr::new(172, 17, 1, i as u8 + 1),
                prefix_len: 16,
                gateway: net.ipam.gateway,
                mac: None,
                ifname: hull_network::endpoint::CONTAINER_IFNAME,
                isolated: false,
                default_route: true,
            },
        )
        .unwrap();
        netlink_only.push(t.elapsed());
        made.push(ep.host_ifname);
    }
    for name in made {
        endpoint::delete(&mut host, &name).unwrap();
    }
    assert_eq!(link_names(env.host.as_fd()), ["hull0", "lo"]);

    eprintln!(
        "network setup per container (Manager::setup): {}",
        summary(full)
    );
    eprintln!(
        "  of which netlink (endpoint::create):        {}",
        summary(netlink_only)
    );
    eprintln!(
        "network teardown per container:               {}",
        summary(down)
    );
}
