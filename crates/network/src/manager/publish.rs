//! Published ports of an endpoint: host ports chosen, DNAT rules installed.

use super::{Manager, ManagerError};
use crate::endpoint::Endpoint;
use crate::firewall;
use crate::ports::{self, PortMapping, PortSpec};

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
}
