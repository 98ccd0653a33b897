//! The embedded DNS of user-defined networks: a [`Resolver`] table (per network,
//! the names of its containers: name, aliases, short ID) kept equal to the network
//! records by the manager, and one UDP [`Responder`] per network on its gateway
//! address, port 53, in the manager's namespace (containers reach it by their
//! gateway, so no socket is needed in their namespaces).
//!
//! It answers A records for those names, an empty NOERROR for another type of an
//! existing name (AAAA: the networks are IPv4 only) and NXDOMAIN for any other
//! name. Forwarding other names to the host's nameservers is not done yet: until it
//! is, the engine keeps the host's servers in `resolv.conf` after the gateway.

pub mod message;
mod server;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::RwLock;

pub use server::{DnsError, Responder};

use crate::store::Network;

/// Names of the containers of each network, looked up case-insensitively.
#[derive(Debug, Default)]
pub struct Resolver {
    networks: RwLock<BTreeMap<String, BTreeMap<String, Vec<Ipv4Addr>>>>,
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
