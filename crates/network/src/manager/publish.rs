//! Published ports of an endpoint: host ports chosen, DNAT rules installed.

use super::{Manager, ManagerError};
use crate::endpoint::Endpoint;
use crate::firewall;
use crate::ports::{self, PortMapping, PortSpec};
use crate::store::Network;

impl Manager {
    /// Chooses the host ports of `specs` (none taken by another endpoint of any
    /// network, none bound in the namespace) and installs their DNAT rules.
    pub(super) fn publish(
        &self,
        ep: &Endpoint,
        tag: &str,
        specs: &[PortSpec],
    ) -> Result<Vec<PortMapping>, ManagerError> {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        let taken: Vec<PortMapping> = self
            .store
            .list()?
            .iter()
            .flat_map(|n| n.endpoints.values())
            .flat_map(|e| e.ports.iter().copied())
            .collect();
        let ports = ports::allocate(self.host_netns(), specs, &taken).map_err(|source| {
            ManagerError::Ports {
                container: ep.container_id.clone(),
                source,
            }
        })?;
        firewall::install_ports(self.host_netns(), tag, ep.address, &ports)?;
        Ok(ports)
    }

    /// Publishes `specs` for the endpoint of `container_id` on `network` (at the
    /// container's start): ports it published before are withdrawn first. On error
    /// nothing of it is installed.
    pub fn publish_ports(
        &self,
        network: &str,
        container_id: &str,
        specs: &[PortSpec],
    ) -> Result<Vec<PortMapping>, ManagerError> {
        let _lock = self.store.lock()?;
        let mut n = self.network(network)?;
        if !n.endpoints.contains_key(container_id) {
            return Ok(Vec::new());
        }
        self.withdraw(&mut n, container_id)?;
        let ep = n.endpoints[container_id].clone();
        let tag = firewall::endpoint_tag(&n.id, container_id);
        let ports = self.publish(&ep, &tag, specs)?;
        if let Some(e) = n.endpoints.get_mut(container_id) {
            e.ports = ports.clone();
        }
        if let Err(e) = self.store.save(&n) {
            let _ = firewall::remove_tagged(self.host_netns(), &tag);
            return Err(e.into());
        }
        Ok(ports)
    }

    /// Withdraws the published ports of `container_id` on `network` (at its stop);
    /// nothing published is not an error.
    pub fn unpublish_ports(&self, network: &str, container_id: &str) -> Result<(), ManagerError> {
        let _lock = self.store.lock()?;
        let Some(mut n) = self.store.load(network)? else {
            return Ok(());
        };
        self.withdraw(&mut n, container_id)
    }

    /// Removes the rules of the endpoint's ports and saves the record without them.
    fn withdraw(&self, n: &mut Network, container_id: &str) -> Result<(), ManagerError> {
        let Some(ep) = n.endpoints.get_mut(container_id) else {
            return Ok(());
        };
        if ep.ports.is_empty() {
            return Ok(());
        }
        let tag = firewall::endpoint_tag(&n.id, container_id);
        firewall::remove_tagged(self.host_netns(), &tag)?;
        ep.ports.clear();
        self.store.save(n)?;
        Ok(())
    }
}
