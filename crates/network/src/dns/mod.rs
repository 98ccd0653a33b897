//! The embedded DNS of user-defined networks: a [`Resolver`] table (per network,
//! the names of its containers: name, aliases, short ID) kept equal to the network
//! records by the manager, and one UDP [`Responder`] per network on its gateway
//! address, port 53, in the manager's namespace (containers reach it by their
//! gateway, so no socket is needed in their namespaces).
//!
//! It answers A records for those names, an empty NOERROR for another type of an
//! existing name (AAAA: the networks are IPv4 only); other names go to the upstream
//! servers set by [`crate::Manager::set_dns_upstreams`] (the host's, in hulld), from
//! the manager's namespace, or are NXDOMAIN when none is set (SERVFAIL when none
//! answers).

mod forward;
pub mod message;
mod server;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::RwLock;

pub use server::{DnsError, Responder};

use crate::store::Network;

/// Names of the containers of each network, looked up case-insensitively.
#[derive(Debug, Default)]
pub struct Resolver {
    networks: RwLock<BTreeMap<String, BTreeMap<String, Vec<Ipv4Addr>>>>,
    /// Where names no network has go; none: NXDOMAIN.
    upstreams: RwLock<Vec<SocketAddr>>,
}

impl Resolver {
    /// Makes the names of `network` those of its record's endpoints.
    pub fn set_network(&self, network: &Network) {
        let mut names: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for ep in network.endpoints.values() {
            let short = &ep.container_id[..ep.container_id.len().min(12)];
            let all = ep.name.iter().chain(&ep.aliases).map(String::as_str);
            for n in all.chain([short]) {
                let addrs = names.entry(n.to_ascii_lowercase()).or_default();
                if !addrs.contains(&ep.address) {
                    addrs.push(ep.address);
                }
            }
        }
        self.write().insert(network.name.clone(), names);
    }

    /// The servers to forward other names to (port 53 unless given), in order.
    pub fn set_upstreams(&self, servers: Vec<SocketAddr>) {
        *self.upstreams.write().unwrap_or_else(|e| e.into_inner()) = servers;
    }

    pub fn upstreams(&self) -> Vec<SocketAddr> {
        self.upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn has_upstreams(&self) -> bool {
        !self
            .upstreams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    pub fn remove_network(&self, network: &str) {
        self.write().remove(network);
    }

    /// The addresses of `name` on `network`; None when it has no such name.
    pub fn lookup(&self, network: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let tables = self.networks.read().unwrap_or_else(|e| e.into_inner());
        tables.get(network)?.get(&name).cloned()
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, BTreeMap<String, Vec<Ipv4Addr>>>> {
        self.networks.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Endpoint;
    use crate::ipam::Pool;

    fn ep(id: &str, name: &str, aliases: &[&str], last: u8) -> Endpoint {
        Endpoint {
            container_id: id.into(),
            network: "u".into(),
            host_ifname: "veth0".into(),
            ifname: "eth0".into(),
            mac: String::new(),
            address: Ipv4Addr::new(10, 0, 0, last),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            mtu: 1500,
            ports: Vec::new(),
            name: Some(name.into()),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn names_aliases_and_short_ids_resolve_and_a_shared_alias_has_both() {
        let mut net = Network {
            id: "n".into(),
            name: "u".into(),
            driver: "bridge".into(),
            bridge: "br-u".into(),
            mtu: 1500,
            local_mtu: 65535,
            ipam: Pool::new("10.0.0.0/24".parse().unwrap(), None).unwrap(),
            internal: false,
            enable_icc: true,
            enable_ip_masquerade: true,
            created: String::new(),
            labels: Default::default(),
            attachable: false,
            options: Default::default(),
            endpoints: Default::default(),
        };
        let a = ep("aaaaaaaaaaaaaaaa", "Web", &["svc"], 2);
        let b = ep("bbbbbbbbbbbbbbbb", "db", &["svc"], 3);
        net.endpoints.insert(a.container_id.clone(), a);
        net.endpoints.insert(b.container_id.clone(), b);
        let r = Resolver::default();
        r.set_network(&net);
        let ip = |n| Ipv4Addr::new(10, 0, 0, n);
        assert_eq!(r.lookup("u", "web."), Some(vec![ip(2)]));
        assert_eq!(r.lookup("u", "aaaaaaaaaaaa"), Some(vec![ip(2)]));
        assert_eq!(r.lookup("u", "svc"), Some(vec![ip(2), ip(3)]));
        assert_eq!(r.lookup("u", "aaaaaaaaaaaaaaaa"), None);
        assert_eq!(r.lookup("other", "web"), None);
        net.endpoints.remove("aaaaaaaaaaaaaaaa");
        r.set_network(&net);
        assert_eq!(r.lookup("u", "web"), None);
        assert_eq!(r.lookup("u", "svc"), Some(vec![ip(3)]));
        r.remove_network("u");
        assert_eq!(r.lookup("u", "db"), None);
    }
}
