//! The options of networks and endpoints that the manager knows.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::ManagerError;
use crate::ports::PortSpec;
use crate::subnet::Ipv4Net;

/// Options of `docker network create` that this slice knows.
#[derive(Debug, Clone, Default)]
pub struct NetworkConfig {
    pub name: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    pub mtu: Option<u32>,
    /// The bridge device (default: `hull0` for the default network, `br-<id:12>`).
    pub bridge: Option<String>,
    /// `--internal`.
    pub internal: bool,
    /// Driver options (`-o`): `com.docker.network.bridge.enable_icc` and
    /// `com.docker.network.bridge.enable_ip_masquerade` are known, others ignored.
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub attachable: bool,
    /// RFC 3339 creation time (empty: none recorded).
    pub created: String,
}

pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
/// hull's own: the MTU of the bridge and veths (see [`crate::store::Network::local_mtu`]).
pub const OPT_LOCAL_MTU: &str = "com.hull.network.local_mtu";
/// Docker's `--mtu`/`-o com.docker.network.driver.mtu`, as the API passes it.
pub const OPT_MTU: &str = "com.docker.network.driver.mtu";

/// The smallest MTU IPv4 allows and the largest a veth or bridge takes.
const MTU_RANGE: std::ops::RangeInclusive<u32> = 68..=65535;

/// The network's two MTUs, checked: (what leaves the host, the local links).
pub(super) fn mtus(cfg: &NetworkConfig) -> Result<(u32, u32), ManagerError> {
    let bad = |key: &str, value: String, why: &str| ManagerError::BadMtu {
        name: cfg.name.clone(),
        key: key.to_owned(),
        value,
        why: why.to_owned(),
    };
    let range = format!("use {} to {}", MTU_RANGE.start(), MTU_RANGE.end());
    let mtu = cfg.mtu.unwrap_or(super::DEFAULT_MTU);
    if !MTU_RANGE.contains(&mtu) {
        return Err(bad(OPT_MTU, mtu.to_string(), &range));
    }
    let local = match cfg.options.get(OPT_LOCAL_MTU) {
        None => super::DEFAULT_LOCAL_MTU.max(mtu),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|m| MTU_RANGE.contains(m))
            .ok_or_else(|| bad(OPT_LOCAL_MTU, v.clone(), &range))?,
    };
    if local < mtu {
        return Err(bad(
            OPT_LOCAL_MTU,
            local.to_string(),
            &format!("it cannot be below the network's MTU {mtu} ({OPT_MTU})"),
        ));
    }
    Ok((mtu, local))
}

pub(super) fn bool_option(cfg: &NetworkConfig, key: &str) -> Result<bool, ManagerError> {
    match cfg.options.get(key).map(String::as_str) {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(value) => Err(ManagerError::BadOption {
            name: cfg.name.clone(),
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Per-container options for an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointOptions {
    /// `--ip`: must be free and in the subnet.
    pub ip: Option<Ipv4Addr>,
    /// `--mac-address`; by default derived from the address.
    pub mac: Option<[u8; 6]>,
    /// `-p`/`-P`: ports to publish on the manager's namespace.
    pub ports: Vec<PortSpec>,
    /// The container's name and `--network-alias`es, for the network's DNS.
    pub name: Option<String>,
    pub aliases: Vec<String>,
    /// The interface in the container; `eth0` when None.
    pub ifname: Option<String>,
    /// A further network of the container (`network connect`): no default route, the
    /// first network keeps it.
    pub secondary: bool,
}
