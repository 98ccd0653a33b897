//! The networks of one daemon: records in the store, bridges and endpoints in the
//! network namespace it works on (given as an fd, normally the host's).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::bridge::{self, BridgeError};
use crate::dns::{DnsError, Resolver, Responder};
use crate::endpoint::{self, Endpoint, EndpointError};
use crate::firewall::{self, FirewallError, NetworkRules};
use crate::ipam::{self, IpamError, Pool};
use crate::mode::{NetworkMode, DEFAULT_BRIDGE, DEFAULT_NETWORK};
use crate::netlink::{Netlink, NetlinkError};
use crate::ports::PortsError;
use crate::store::{self, Network, Store, StoreError};
use crate::subnet::Ipv4Net;

mod config;
mod dns;
mod publish;

use config::bool_option;
pub use config::{EndpointOptions, NetworkConfig, OPT_ICC, OPT_LOCAL_MTU, OPT_MASQUERADE, OPT_MTU};

/// Docker's default MTU: what a container sends off the host.
pub const DEFAULT_MTU: u32 = 1500;
/// The MTU of bridges and veths unless a network says otherwise: the largest a veth
/// takes. A TCP connection that stays on the host then moves 64 KiB segments instead
/// of 1500-byte ones cut in software (2.2x the throughput here, bench/README.md), and
/// the default route keeps [`DEFAULT_MTU`] for everything that leaves.
pub const DEFAULT_LOCAL_MTU: u32 = 65535;

#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error("cannot open netlink in the daemon's network namespace: {0}")]
    HostNetlink(#[source] NetlinkError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read the routes of the daemon's network namespace: {0}")]
    ReadRoutes(#[source] NetlinkError),
    #[error("network {name} already exists")]
    NetworkExists { name: String },
    #[error("network {name} not found")]
    NoSuchNetwork { name: String },
    #[error("subnet {subnet} of network {name} overlaps subnet {other_subnet} of network {other}")]
    Overlap {
        name: String,
        subnet: Ipv4Net,
        other: String,
        other_subnet: Ipv4Net,
    },
    #[error("bridge {bridge} is already used by network {other}")]
    BridgeTaken { bridge: String, other: String },
    #[error("network {network}: {source}")]
    Ipam {
        network: String,
        #[source]
        source: IpamError,
    },
    #[error("cannot read random bytes for a network ID: {0}")]
    Random(#[source] io::Error),
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("network {name} has active endpoints: {containers}")]
    InUse { name: String, containers: String },
    #[error("invalid option {key}={value:?} for network {name}: {why}")]
    BadMtu {
        name: String,
        key: String,
        value: String,
        why: String,
    },
    #[error("invalid option {key}={value:?} for network {name}: use true or false")]
    BadOption {
        name: String,
        key: String,
        value: String,
    },
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("network {network}: {source}")]
    Dns {
        network: String,
        #[source]
        source: DnsError,
    },
    #[error("driver failed programming external connectivity on endpoint {container}: {source}")]
    Ports {
        container: String,
        #[source]
        source: PortsError,
    },
    #[error("container {container} is already attached to network {network}")]
    AlreadyAttached { container: String, network: String },
}

fn rules(n: &Network) -> NetworkRules<'_> {
    NetworkRules {
        id: &n.id,
        name: &n.name,
        bridge: &n.bridge,
        subnet: n.ipam.subnet,
        masquerade: n.enable_ip_masquerade,
        internal: n.internal,
    }
}

/// What [`Manager::setup`] did. (Returned once per setup, never kept in bulk: the
/// size of the `Bridge` variant costs nothing worth a box.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A veth on a bridge network.
    Bridge(Endpoint),
    /// `none`: only `lo`, up.
    Loopback,
    /// `host` or `container:`: the namespace is someone else's, nothing was done.
    Shared,
}

pub struct Manager {
    store: Store,
    host: Mutex<Netlink>,
    host_netns: OwnedFd,
    resolver: Arc<Resolver>,
    /// The DNS responder of each user-defined network, by network name.
    dns: Mutex<BTreeMap<String, Responder>>,
}

impl Manager {
    /// `state_dir` holds the network records; `host_netns` is the namespace where
    /// bridges live (the host's, in hulld; a test namespace in tests).
    pub fn new(state_dir: &Path, host_netns: OwnedFd) -> Result<Self, ManagerError> {
        let host = Netlink::open_in(host_netns.as_fd()).map_err(ManagerError::HostNetlink)?;
        Ok(Manager {
            store: Store::open(state_dir)?,
            host: Mutex::new(host),
            host_netns,
            resolver: Arc::default(),
            dns: Mutex::default(),
        })
    }

    pub fn host_netns(&self) -> BorrowedFd<'_> {
        self.host_netns.as_fd()
    }

    fn netlink(&self) -> MutexGuard<'_, Netlink> {
        self.host.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn networks(&self) -> Result<Vec<Network>, ManagerError> {
        Ok(self.store.list()?)
    }

    pub fn network(&self, name: &str) -> Result<Network, ManagerError> {
        self.store
            .load(name)?
            .ok_or_else(|| ManagerError::NoSuchNetwork {
                name: name.to_owned(),
            })
    }

    /// A network by its name, its full ID or a unique prefix of its ID (Docker's order).
    pub fn find_network(&self, name_or_id: &str) -> Result<Network, ManagerError> {
        let missing = || ManagerError::NoSuchNetwork {
            name: name_or_id.to_owned(),
        };
        let all = self.store.list()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name == name_or_id || n.id == name_or_id)
        {
            return Ok(n.clone());
        }
        if name_or_id.is_empty() {
            return Err(missing());
        }
        let mut by_prefix = all.into_iter().filter(|n| n.id.starts_with(name_or_id));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Ok(n),
            _ => Err(missing()),
        }
    }

    /// Creates a network and its bridge. Without a subnet, the first default pool
    /// that overlaps no other network and no route of the namespace is taken.
    pub fn create_network(&self, cfg: &NetworkConfig) -> Result<Network, ManagerError> {
        store::validate_name(&cfg.name)?;
        let enable_icc = bool_option(cfg, OPT_ICC)?;
        let enable_ip_masquerade = bool_option(cfg, OPT_MASQUERADE)?;
        let (mtu, local_mtu) = config::mtus(cfg)?;
        let _lock = self.store.lock()?;
        if self.store.load(&cfg.name)?.is_some() {
            return Err(ManagerError::NetworkExists {
                name: cfg.name.clone(),
            });
        }
        let others = self.store.list()?;
        let subnet = match cfg.subnet {
            Some(subnet) => {
                if let Some(o) = others.iter().find(|o| o.ipam.subnet.overlaps(&subnet)) {
                    return Err(ManagerError::Overlap {
                        name: cfg.name.clone(),
                        subnet,
                        other: o.name.clone(),
                        other_subnet: o.ipam.subnet,
                    });
                }
                subnet
            }
            None => {
                let routes = self.netlink().routes().map_err(ManagerError::ReadRoutes)?;
                let taken: Vec<Ipv4Net> = others
                    .iter()
                    .map(|o| o.ipam.subnet)
                    .chain(routes.iter().map(|r| r.destination))
                    .collect();
                ipam::choose_subnet(&taken).map_err(|source| ManagerError::Ipam {
                    network: cfg.name.clone(),
                    source,
                })?
            }
        };
        let ipam = Pool::new(subnet, cfg.gateway).map_err(|source| ManagerError::Ipam {
            network: cfg.name.clone(),
            source,
        })?;
        let id = random_id()?;
        let bridge = cfg.bridge.clone().unwrap_or_else(|| {
            if cfg.name == DEFAULT_NETWORK {
                DEFAULT_BRIDGE.to_owned()
            } else {
                format!("br-{}", &id[..12])
            }
        });
        if let Some(o) = others.iter().find(|o| o.bridge == bridge) {
            return Err(ManagerError::BridgeTaken {
                bridge,
                other: o.name.clone(),
            });
        }
        let network = Network {
            id,
            name: cfg.name.clone(),
            driver: "bridge".to_owned(),
            bridge,
            mtu,
            local_mtu,
            ipam,
            internal: cfg.internal,
            enable_icc,
            enable_ip_masquerade,
            created: cfg.created.clone(),
            labels: cfg.labels.clone(),
            attachable: cfg.attachable,
            options: cfg.options.clone(),
            endpoints: Default::default(),
        };
        let mut nl = self.netlink();
        bridge::ensure(
            &mut nl,
            &network.bridge,
            network.local_mtu,
            network.ipam.gateway,
            subnet.prefix_len(),
            false,
        )?;
        let installed = firewall::install_network(self.host_netns(), &rules(&network))
            .map_err(ManagerError::from)
            .and_then(|()| self.start_dns(&network))
            .and_then(|()| Ok(self.store.save(&network)?));
        if let Err(e) = installed {
            self.stop_dns(&network.name);
            let last = others.is_empty();
            let _ = firewall::remove_network(self.host_netns(), &network.id, &network.bridge, last);
            let _ = bridge::delete(&mut nl, &network.bridge);
            return Err(e);
        }
        Ok(network)
    }

    /// The default network (`bridge` on `hull0`), created if missing; its bridge is
    /// made again if it is gone (after a reboot).
    pub fn ensure_default(&self) -> Result<Network, ManagerError> {
        match self.store.load(DEFAULT_NETWORK)? {
            Some(n) => {
                bridge::ensure(
                    &mut self.netlink(),
                    &n.bridge,
                    n.local_mtu,
                    n.ipam.gateway,
                    n.ipam.subnet.prefix_len(),
                    true,
                )?;
                firewall::install_network(self.host_netns(), &rules(&n))?;
                Ok(n)
            }
            None => self.create_network(&NetworkConfig {
                name: DEFAULT_NETWORK.to_owned(),
                ..NetworkConfig::default()
            }),
        }
    }

    /// Makes the bridge of every network again where it is gone (after a reboot of
    /// the host, or a restart of a test namespace).
    pub fn restore(&self) -> Result<Vec<Network>, ManagerError> {
        let networks = self.store.list()?;
        let mut nl = self.netlink();
        for n in &networks {
            bridge::ensure(
                &mut nl,
                &n.bridge,
                n.local_mtu,
                n.ipam.gateway,
                n.ipam.subnet.prefix_len(),
                true,
            )?;
            firewall::install_network(self.host_netns(), &rules(n))?;
            for ep in n.endpoints.values() {
                let tag = firewall::endpoint_tag(&n.id, &ep.container_id);
                firewall::install_ports(self.host_netns(), &tag, ep.address, &ep.ports)?;
            }
            self.start_dns(n)?;
        }
        Ok(networks)
    }

    /// Removes a network without endpoints, and its bridge.
    pub fn remove_network(&self, name: &str) -> Result<(), ManagerError> {
        let _lock = self.store.lock()?;
        let network = self.network(name)?;
        if !network.endpoints.is_empty() {
            let containers: Vec<&str> = network.endpoints.keys().map(String::as_str).collect();
            return Err(ManagerError::InUse {
                name: name.to_owned(),
                containers: containers.join(", "),
            });
        }
        let last = self.store.list()?.iter().all(|n| n.name == name);
        firewall::remove_network(self.host_netns(), &network.id, &network.bridge, last)?;
        self.stop_dns(name);
        bridge::delete(&mut self.netlink(), &network.bridge)?;
        self.store.remove(name)?;
        Ok(())
    }

    /// Sets up the network of `container_id` in its namespace `netns` for `mode`.
    pub fn setup(
        &self,
        mode: &NetworkMode,
        container_id: &str,
        netns: BorrowedFd<'_>,
        opts: &EndpointOptions,
    ) -> Result<Attachment, ManagerError> {
        let name = match mode {
            NetworkMode::None => {
                endpoint::loopback_up(netns)?;
                return Ok(Attachment::Loopback);
            }
            NetworkMode::Host | NetworkMode::Container(_) => return Ok(Attachment::Shared),
            NetworkMode::Bridge => {
                self.ensure_default()?;
                DEFAULT_NETWORK
            }
            NetworkMode::Network(n) => n.as_str(),
        };
        let _lock = self.store.lock()?;
        let mut network = self.network(name)?;
        if network.endpoints.contains_key(container_id) {
            return Err(ManagerError::AlreadyAttached {
                container: container_id.to_owned(),
                network: name.to_owned(),
            });
        }
        let address = network
            .ipam
            .allocate(container_id, opts.ip)
            .map_err(|source| ManagerError::Ipam {
                network: name.to_owned(),
                source,
            })?;
        let mut nl = self.netlink();
        let ep = endpoint::create(
            &mut nl,
            netns,
            &endpoint::Plan {
                container_id,
                network: name,
                network_id: &network.id,
                bridge: &network.bridge,
                mtu: network.local_mtu,
                route_mtu: (network.mtu < network.local_mtu).then_some(network.mtu),
                address,
                prefix_len: network.ipam.subnet.prefix_len(),
                gateway: network.ipam.gateway,
                mac: opts.mac,
                ifname: opts.ifname.as_deref().unwrap_or(endpoint::CONTAINER_IFNAME),
                isolated: !network.enable_icc,
                default_route: !network.internal && !opts.secondary,
            },
        )?;
        let mut ep = ep;
        let tag = firewall::endpoint_tag(&network.id, container_id);
        let published = self.publish(&ep, &tag, &opts.ports);
        let saved = published.and_then(|ports| {
            ep.ports = ports;
            ep.name = opts.name.clone();
            ep.aliases = opts.aliases.clone();
            network
                .endpoints
                .insert(container_id.to_owned(), ep.clone());
            Ok(self.store.save(&network)?)
        });
        if let Err(e) = saved {
            if !ep.ports.is_empty() {
                let _ = firewall::remove_tagged(self.host_netns(), &tag);
            }
            let _ = endpoint::delete(&mut nl, &ep.host_ifname);
            return Err(e);
        }
        self.refresh_names(&network);
        Ok(Attachment::Bridge(ep))
    }

    /// Undoes [`Manager::setup`]: deletes the veth pair and releases the address.
    /// Tearing down what is not there is not an error.
    pub fn teardown(&self, mode: &NetworkMode, container_id: &str) -> Result<(), ManagerError> {
        self.teardown_endpoint(mode, container_id, true).map(drop)
    }

    /// [`Manager::teardown`] for a container whose network namespace is about to be
    /// destroyed (its last process gone, its pin removed next): the veth is left to the
    /// kernel, which deletes both ends with the namespace, asynchronously. An explicit
    /// delete waits for RCU grace periods under the rtnl lock (22-27 ms here) on the exit
    /// path of every container. Rules and the address are released at once. Returns the
    /// host-side name, for [`endpoint::delete_in`] should the namespace outlive its pin.
    pub fn teardown_leaving_veth(
        &self,
        mode: &NetworkMode,
        container_id: &str,
    ) -> Result<Option<String>, ManagerError> {
        self.teardown_endpoint(mode, container_id, false)
    }

    fn teardown_endpoint(
        &self,
        mode: &NetworkMode,
        container_id: &str,
        delete_veth: bool,
    ) -> Result<Option<String>, ManagerError> {
        let Some(name) = mode.network_name() else {
            return Ok(None);
        };
        let _lock = self.store.lock()?;
        let Some(mut network) = self.store.load(name)? else {
            return Ok(None);
        };
        let Some(ep) = network.endpoints.remove(container_id) else {
            return Ok(None);
        };
        if !ep.ports.is_empty() {
            let tag = firewall::endpoint_tag(&network.id, container_id);
            firewall::remove_tagged(self.host_netns(), &tag)?;
        }
        if delete_veth {
            endpoint::delete(&mut self.netlink(), &ep.host_ifname)?;
        }
        network.ipam.release(ep.address, container_id);
        self.store.save(&network)?;
        self.refresh_names(&network);
        Ok(Some(ep.host_ifname))
    }
}

fn random_id() -> Result<String, ManagerError> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(ManagerError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
