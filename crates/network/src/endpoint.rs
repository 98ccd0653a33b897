//! A container's endpoint on a bridge network: a veth pair whose host end is a port
//! of the bridge and whose other end is `eth0` in the container's namespace, with its
//! MAC, address, MTU and default route. A failure after the pair exists deletes it
//! (both ends go together), so nothing is left half made.

use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::netlink::{Netlink, NetlinkError, VethSpec};
use crate::ports::PortMapping;

/// The interface name inside the container.
pub const CONTAINER_IFNAME: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot open netlink in the container's network namespace: {0}")]
    ContainerNetlink(#[source] NetlinkError),
    #[error("cannot look up bridge {bridge}: {source}")]
    FindBridge {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
    #[error("bridge {bridge} does not exist")]
    NoBridge { bridge: String },
    #[error("cannot create veth pair {host_ifname} <-> {ifname} (in the container): {source}")]
    CreateVeth {
        host_ifname: String,
        ifname: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot find {ifname} in the container after creating it: {source}")]
    FindInterface {
        ifname: String,
        #[source]
        source: NetlinkError,
    },
    #[error("{ifname} is missing after creating it")]
    InterfaceMissing { ifname: String },
    #[error("cannot bring lo up in the container: {0}")]
    LoopbackUp(#[source] NetlinkError),
    #[error("cannot add address {address}/{prefix_len} to {ifname} in the container: {source}")]
    AddAddress {
        ifname: String,
        address: Ipv4Addr,
        prefix_len: u8,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot bring {ifname} up in the container: {source}")]
    InterfaceUp {
        ifname: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot add the default route via {gateway} in the container: {source}")]
    DefaultRoute {
        gateway: Ipv4Addr,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot set the hairpin and isolated flags of bridge port {host_ifname}: {source}")]
    PortFlags {
        host_ifname: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot delete veth {host_ifname}: {source}")]
    DeleteVeth {
        host_ifname: String,
        #[source]
        source: NetlinkError,
    },
}

/// A container's attachment to a bridge network, as persisted in the network record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub container_id: String,
    pub network: String,
    /// The veth end on the bridge side.
    pub host_ifname: String,
    /// The interface in the container (`eth0`).
    pub ifname: String,
    pub mac: String,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The MTU of the veth pair (the network's local MTU, see [`crate::store::Network`]).
    pub mtu: u32,
    /// The published ports, whose rules are tagged with
    /// [`crate::firewall::endpoint_tag`].
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The container's name and `--network-alias`es, answered by the network's DNS.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// What [`create`] needs to know.
pub struct Plan<'a> {
    pub container_id: &'a str,
    pub network: &'a str,
    pub network_id: &'a str,
    pub bridge: &'a str,
    /// The MTU of both veth ends.
    pub mtu: u32,
    /// The MTU of the default route, when it is smaller than the link's: what leaves
    /// the host is sized for the world outside, what stays on it uses `mtu`.
    pub route_mtu: Option<u32>,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    /// The interface name in the container (`eth0` for the first network, `eth1`...).
    pub ifname: &'a str,
    /// The bridge port is `isolated` (the network has `enable_icc=false`).
    pub isolated: bool,
    /// A default route via the gateway (not on `internal` networks).
    pub default_route: bool,
}

/// The host end's name: `veth` and 11 hex digits of a hash of network and container,
/// so it is stable (found again after a daemon restart) and fits IFNAMSIZ.
pub fn host_ifname(network_id: &str, container_id: &str) -> String {
    // FNV-1a, 64 bits
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in network_id.bytes().chain([0]).chain(container_id.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("veth{:011x}", h & 0xfff_ffff_ffff)
}

/// Docker's MAC for an address: 02:42 and the four bytes of the IPv4 address.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Creates the endpoint described by `plan`: `host` is a netlink socket in the
/// namespace of the bridge, `netns` the container's network namespace.
pub fn create(
    host: &mut Netlink,
    netns: BorrowedFd<'_>,
    plan: &Plan<'_>,
) -> Result<Endpoint, EndpointError> {
    let bridge = host
        .link_by_name(plan.bridge)
        .map_err(|source| EndpointError::FindBridge {
            bridge: plan.bridge.to_owned(),
            source,
        })?
        .ok_or_else(|| EndpointError::NoBridge {
            bridge: plan.bridge.to_owned(),
        })?;
    let host_ifname = host_ifname(plan.network_id, plan.container_id);
    // The same container's previous endpoint may still be on its way out with its old
    // namespace (teardown leaves the veth to the kernel): remove it now.
    delete(host, &host_ifname)?;
    let mac = plan.mac.unwrap_or_else(|| mac_for(plan.address));
    host.create_veth(&VethSpec {
        name: &host_ifname,
        mtu: plan.mtu,
        controller: bridge.index,
        peer_name: plan.ifname,
        peer_mac: mac,
        peer_netns: netns,
    })
    .map_err(|source| EndpointError::CreateVeth {
        host_ifname: host_ifname.clone(),
        ifname: plan.ifname.to_owned(),
        source,
    })?;
    let configured = set_port_flags(host, &host_ifname, plan.isolated)
        .and_then(|()| configure_container(netns, plan));
    if let Err(e) = configured {
        // the peer goes with it
        let _ = delete(host, &host_ifname);
        return Err(e);
    }
    Ok(Endpoint {
        container_id: plan.container_id.to_owned(),
        network: plan.network.to_owned(),
        host_ifname,
        ifname: plan.ifname.to_owned(),
        mac: format_mac(&mac),
        address: plan.address,
        prefix_len: plan.prefix_len,
        gateway: plan.gateway,
        mtu: plan.mtu,
        ports: Vec::new(),
        name: None,
        aliases: Vec::new(),
    })
}

/// Hairpin on every port: with `br_netfilter` loaded, a container's packet to its
/// own published port by a host address is DNATed on the bridge and must leave by
/// the port it came in (without it the packet is routed and needs nothing). And
/// `isolated` for `enable_icc=false`.
fn set_port_flags(
    host: &mut Netlink,
    host_ifname: &str,
    isolated: bool,
) -> Result<(), EndpointError> {
    let err = |source| EndpointError::PortFlags {
        host_ifname: host_ifname.to_owned(),
        source,
    };
    let link = host
        .link_by_name(host_ifname)
        .map_err(err)?
        .ok_or_else(|| EndpointError::InterfaceMissing {
            ifname: host_ifname.to_owned(),
        })?;
    host.set_port_flags(link.index, true, isolated).map_err(err)
}

fn configure_container(netns: BorrowedFd<'_>, plan: &Plan<'_>) -> Result<(), EndpointError> {
    let mut nl = Netlink::open_in(netns).map_err(EndpointError::ContainerNetlink)?;
    loopback_up_with(&mut nl)?;
    let ifname = plan.ifname.to_owned();
    let eth0 = nl
        .link_by_name(plan.ifname)
        .map_err(|source| EndpointError::FindInterface {
            ifname: ifname.clone(),
            source,
        })?
        .ok_or_else(|| EndpointError::InterfaceMissing {
            ifname: ifname.clone(),
        })?;
    nl.add_address(eth0.index, plan.address, plan.prefix_len)
        .map_err(|source| EndpointError::AddAddress {
            ifname: ifname.clone(),
            address: plan.address,
            prefix_len: plan.prefix_len,
            source,
        })?;
    nl.set_up(eth0.index)
        .map_err(|source| EndpointError::InterfaceUp { ifname, source })?;
    if !plan.default_route {
        return Ok(());
    }
    nl.add_default_route(plan.gateway, eth0.index, plan.route_mtu)
        .map_err(|source| EndpointError::DefaultRoute {
            gateway: plan.gateway,
            source,
        })
}

/// Brings `lo` up in `netns` (the whole of the `none` mode).
pub fn loopback_up(netns: BorrowedFd<'_>) -> Result<(), EndpointError> {
    let mut nl = Netlink::open_in(netns).map_err(EndpointError::ContainerNetlink)?;
    loopback_up_with(&mut nl)
}

fn loopback_up_with(nl: &mut Netlink) -> Result<(), EndpointError> {
    // lo is always index 1 in a network namespace
    nl.set_up(1).map_err(EndpointError::LoopbackUp)
}

/// Deletes the veth pair whose host end is `host_ifname`; one already gone (its
/// namespace died with the container) is not an error.
/// [`delete`] over a netlink socket of its own in `netns` (for a thread of its own).
pub fn delete_in(netns: BorrowedFd<'_>, host_ifname: &str) -> Result<(), EndpointError> {
    let mut nl = Netlink::open_in(netns).map_err(|source| EndpointError::DeleteVeth {
        host_ifname: host_ifname.to_owned(),
        source,
    })?;
    delete(&mut nl, host_ifname)
}

pub fn delete(host: &mut Netlink, host_ifname: &str) -> Result<(), EndpointError> {
    let err = |source| EndpointError::DeleteVeth {
        host_ifname: host_ifname.to_owned(),
        source,
    };
    let Some(link) = host.link_by_name(host_ifname).map_err(err)? else {
        return Ok(());
    };
    match host.delete_link(link.index) {
        Err(e) if e.errno() == Some(Errno::ENODEV as i32) => Ok(()),
        r => r.map_err(err),
    }
}
