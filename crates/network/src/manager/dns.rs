//! The manager's DNS responders, one per user-defined network, and their names.

use std::net::{SocketAddr, SocketAddrV4};

use super::{Manager, ManagerError};
use crate::dns::{Resolver, Responder};
use crate::mode::DEFAULT_NETWORK;
use crate::store::Network;

impl Manager {
    /// Where the networks' DNS sends names it does not have (hulld: the host's
    /// nameservers, loopback ones included, since the responders live in the host's
    /// namespace); empty (the default): such names are NXDOMAIN.
    pub fn set_dns_upstreams(&self, servers: Vec<SocketAddr>) {
        self.resolver.set_upstreams(servers);
    }

    /// The names the networks' DNS answers.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Starts the DNS responder of `network` (user-defined networks only, as
    /// Docker's) on its gateway, port 53, if it is not running, and makes its names
    /// those of the record.
    pub(super) fn start_dns(&self, network: &Network) -> Result<(), ManagerError> {
        if network.name == DEFAULT_NETWORK {
            return Ok(());
        }
        self.resolver.set_network(network);
        let mut dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        if !dns.contains_key(&network.name) {
            let addr = SocketAddrV4::new(network.ipam.gateway, 53);
            let r = Responder::start(
                self.host_netns(),
                addr,
                &network.name,
                self.resolver.clone(),
            )
            .map_err(|source| ManagerError::Dns {
                network: network.name.clone(),
                source,
            })?;
            dns.insert(network.name.clone(), r);
        }
        Ok(())
    }

    pub(super) fn stop_dns(&self, name: &str) {
        let r = self
            .dns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        drop(r);
        self.resolver.remove_network(name);
    }

    /// Makes the DNS names of a network with a running responder those of its record.
    pub(super) fn refresh_names(&self, network: &Network) {
        let dns = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        if dns.contains_key(&network.name) {
            self.resolver.set_network(network);
        }
    }
}
