//! A container's network, for every `HostConfig.NetworkMode`:
//!
//! - the default `bridge` and user-defined networks: a new network namespace pinned at
//!   `<exec-dir>/netns` (the spec joins it by path), a veth on the network's bridge with
//!   an address from its pool, and the container's hosts, resolv.conf and hostname files
//!   (on user networks resolv.conf names the network's DNS responder, the gateway);
//! - `none`: a pinned namespace with only `lo`, up;
//! - `container:<name|id>`: the pinned namespace and the files of that (running)
//!   container; nothing of its own;
//! - `host`: nothing (the policy decides whether it is allowed).
//!
//! Made at create, undone at remove. Published ports (`-p`, `-P`) are worked out at
//! create (`<data-dir>/network-ports.json`) and installed at start, withdrawn when the
//! container stops ([`ContainerService::publish_ports`], [`ContainerService::unpublish_ports`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use hull_engine::{ContainerConfig, HostConfig, ImageConfigSubset};
use hull_network::{netns, EndpointOptions, ManagerError, NetworkMode, PortSpec};
use serde_json::{json, Value};

use super::record::Record;
use super::{ContainerService, ContainersError};

/// What the spec needs from the network.
pub(crate) struct Wired {
    pub netns: PathBuf,
    pub dir: PathBuf,
}

fn net_err(step: &'static str) -> impl Fn(String) -> ContainersError {
    move |message| ContainersError::Network { step, message }
}

/// A refused network request, with Docker's status code.
pub(crate) fn refused(status: u16, message: impl Into<String>) -> ContainersError {
    ContainersError::NetworkRequest {
        status,
        message: message.into(),
    }
}

/// The status code Docker gives a network manager error.
pub fn manager_status(e: &ManagerError) -> u16 {
    use hull_network::ipam::IpamError;
    match e {
        ManagerError::NoSuchNetwork { .. } => 404,
        ManagerError::NetworkExists { .. } => 409,
        ManagerError::InUse { .. } | ManagerError::AlreadyAttached { .. } => 403,
        ManagerError::Overlap { .. }
        | ManagerError::BridgeTaken { .. }
        | ManagerError::BadOption { .. }
        | ManagerError::Store(hull_network::store::StoreError::InvalidName { .. }) => 400,
        ManagerError::Ipam { source, .. } => match source {
            IpamError::NoFreeSubnet | IpamError::Exhausted { .. } => 500,
            _ => 400,
        },
        _ => 500,
    }
}

fn from_manager(e: ManagerError) -> ContainersError {
    refused(manager_status(&e), e.to_string())
}

/// Whether `mode` is the default bridge.
pub(crate) fn is_bridge(mode: &str) -> bool {
    matches!(mode, "" | "default" | "bridge")
}

/// The sysctl hulld sets itself in a namespace it made ([`ContainerService::wire`]).
pub(crate) const PING_SYSCTL: &str = "net.ipv4.ping_group_range";

/// Set by hulld too (0, as Docker): the spec leaves it out.
pub(crate) const PORT_SYSCTL: &str = "net.ipv4.ip_unprivileged_port_start";

const PORTS_FILE: &str = "network-ports.json";

/// `NetworkingConfig.EndpointsConfig[network]` as far as hull uses it.
#[derive(Default)]
struct EndpointRequest {
    aliases: Vec<String>,
    ip: Option<Ipv4Addr>,
    mac: Option<[u8; 6]>,
}

fn parse_mac(text: &str) -> Result<[u8; 6], ContainersError> {
    let bad = || refused(400, format!("invalid MAC address {text:?}"));
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    Ok(mac)
}

fn endpoint_request(
    networking: &Value,
    keys: &[&str],
    cfg: &ContainerConfig,
) -> Result<EndpointRequest, ContainersError> {
    let eps = networking.get("EndpointsConfig");
    let ep = keys
        .iter()
        .find_map(|k| eps.and_then(|e| e.get(*k)))
        .cloned()
        .unwrap_or_default();
    let mut out = EndpointRequest::default();
    if let Some(a) = ep.get("Aliases").and_then(Value::as_array) {
        out.aliases = a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect();
    }
    if let Some(ip) = ep
        .pointer("/IPAMConfig/IPv4Address")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.ip = Some(
            ip.parse()
                .map_err(|_| refused(400, format!("invalid IPv4 address {ip:?}")))?,
        );
    }
    let mac = ep
        .get("MacAddress")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(&cfg.mac_address);
    if !mac.is_empty() {
        out.mac = Some(parse_mac(mac)?);
    }
    Ok(out)
}

/// `-p` and `-P` as port specs: PortBindings, and with PublishAllPorts every exposed
/// port (request and image) that has no binding, on a random host port.
fn port_specs(
    cfg: &ContainerConfig,
    host: &HostConfig,
    image_cfg: &ImageConfigSubset,
) -> Result<Vec<PortSpec>, ContainersError> {
    let bad = |e: hull_network::ports::PortsError| refused(400, e.to_string());
    let mut specs = Vec::new();
    for (port, bindings) in &host.port_bindings {
        let (cport, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        for b in bindings.iter().flatten() {
            let ip = if b.host_ip.is_empty() {
                String::new()
            } else {
                format!("{}:", b.host_ip)
            };
            let text = format!("{ip}{}:{cport}/{proto}", b.host_port);
            let mut s = PortSpec::parse(&text).map_err(bad)?;
            if b.host_ip == "::" {
                s.host_ip = None;
            }
            specs.push(s);
        }
    }
    if host.publish_all_ports {
        let exposed = cfg
            .exposed_ports
            .keys()
            .chain(image_cfg.exposed_ports.keys())
            .filter(|k| !host.port_bindings.contains_key(*k))
            .map(|k| {
                if k.contains('/') {
                    k.clone()
                } else {
                    format!("{k}/tcp")
                }
            })
            .collect::<std::collections::BTreeSet<_>>();
        for e in exposed {
            specs.push(PortSpec::parse(&e).map_err(bad)?);
        }
    }
    Ok(specs)
}

/// `HostConfig.Links`: `name:alias` (or `/name:/me/alias`).
fn links(raw_host: &Value) -> Vec<(String, String)> {
    raw_host
        .get("Links")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(|l| {
                    let (n, a) = l.split_once(':').unwrap_or((l, l));
                    let n = n.trim_start_matches('/').to_string();
                    let a = a.rsplit('/').next().unwrap_or(a).to_string();
                    (n, a)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl ContainerService {
    /// The network manager; None when hulld runs without bridge networking.
    pub fn network_manager(&self) -> Option<&hull_network::Manager> {
        self.network.as_ref()
    }

    /// Sets up the network `host.network_mode` asks for; None when the spec makes (or
    /// shares) the namespace itself. `host.network_mode` becomes what the spec builder
    /// must see (a pinned namespace is given as `bridge` with its path).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn wire_request(
        &self,
        id: &str,
        name: &str,
        dir: &Path,
        cfg: &ContainerConfig,
        host: &mut HostConfig,
        image_cfg: &ImageConfigSubset,
        raw: &Value,
        gids: (u32, u32),
    ) -> Result<Option<Wired>, ContainersError> {
        if cfg.network_disabled {
            return Ok(None);
        }
        let mode: NetworkMode = if host.network_mode.is_empty() {
            NetworkMode::Bridge
        } else {
            host.network_mode
                .parse()
                .map_err(|e: hull_network::mode::ModeError| refused(400, e.to_string()))?
        };
        let specs = port_specs(cfg, host, image_cfg)?;
        let hostname = if cfg.hostname.is_empty() {
            hull_engine::defaults::hostname(id)
        } else {
            cfg.hostname.clone()
        };
        // As Docker: an error with `container:`, ignored with `host` and `none`.
        if !specs.is_empty() && matches!(mode, NetworkMode::Container(_)) {
            return Err(refused(
                400,
                "conflicting options: port publishing and the container type network mode",
            ));
        }
        let specs = match mode {
            NetworkMode::Bridge | NetworkMode::Network(_) => specs,
            _ => Vec::new(),
        };
        match &mode {
            NetworkMode::Host => Ok(None),
            NetworkMode::Container(other) => {
                let rec = self.get(other)?;
                if !rec.running() {
                    return Err(refused(
                        409,
                        format!("cannot join network of a non running container: {other}"),
                    ));
                }
                let odir = self.exec_dir(&rec.id);
                let ns = odir.join("netns");
                if !ns.exists() {
                    return Err(refused(
                        400,
                        format!("container {other} has no network namespace hulld made (it uses the host's, or hulld runs without networking), so it cannot be shared"),
                    ));
                }
                host.network_mode = "bridge".into();
                Ok(Some(Wired {
                    netns: ns,
                    dir: odir,
                }))
            }
            NetworkMode::None | NetworkMode::Bridge | NetworkMode::Network(_) => {
                let Some(mgr) = &self.network else {
                    if let NetworkMode::Network(n) = &mode {
                        return Err(refused(
                            404,
                            format!("network {n} not found (hulld runs with --bridge none)"),
                        ));
                    }
                    host.network_mode = "none".into();
                    return Ok(None);
                };
                let network = match &mode {
                    NetworkMode::Network(n) => Some(mgr.find_network(n).map_err(from_manager)?),
                    // Made (or re-made) at hulld's start; ensured here only when missing,
                    // which costs an `nft` run.
                    NetworkMode::Bridge => {
                        Some(match mgr.network(hull_network::mode::DEFAULT_NETWORK) {
                            Ok(n) => n,
                            Err(_) => mgr.ensure_default().map_err(|e| {
                                net_err("making the default network")(e.to_string())
                            })?,
                        })
                    }
                    _ => None,
                };
                let mut opts = EndpointOptions::default();
                let mut user_net = false;
                if let Some(n) = &network {
                    user_net = n.name != hull_network::mode::DEFAULT_NETWORK;
                    let req = endpoint_request(
                        raw.get("NetworkingConfig").unwrap_or(&Value::Null),
                        &[n.name.as_str(), n.id.as_str(), host.network_mode.as_str()],
                        cfg,
                    )?;
                    if !user_net && !req.aliases.is_empty() {
                        return Err(refused(
                            400,
                            "network-scoped alias is supported only for containers in user defined networks",
                        ));
                    }
                    opts.ip = req.ip;
                    opts.mac = req.mac;
                    opts.aliases = req.aliases;
                    opts.name = Some(name.to_string());
                }
                if !specs.is_empty() {
                    let body = serde_json::to_vec(
                        &specs
                            .iter()
                            .map(|s| {
                                format!(
                                    "{}{}:{}/{}",
                                    s.host_ip.map(|i| format!("{i}:")).unwrap_or_default(),
                                    if s.host_port == 0 {
                                        String::new()
                                    } else {
                                        s.host_port.to_string()
                                    },
                                    s.container_port,
                                    s.proto
                                )
                            })
                            .collect::<Vec<_>>(),
                    )
                    .unwrap_or_default();
                    let data = self.data_dir(id);
                    std::fs::create_dir_all(&data)
                        .and_then(|()| std::fs::write(data.join(PORTS_FILE), body))
                        .map_err(|e| net_err("saving the published ports")(e.to_string()))?;
                }
                let mode = match &network {
                    Some(n) => NetworkMode::Network(n.name.clone()),
                    None => NetworkMode::None,
                };
                let wired = self.wire(id, dir, &mode, &opts, gids)?;
                let address = match (&network, &wired.1) {
                    (Some(_), Some(ep)) => Some(IpAddr::V4(ep.address)),
                    _ => None,
                };
                let mut spec = hull_network::files::FilesSpec {
                    hostname,
                    domainname: Some(cfg.domainname.clone()).filter(|d| !d.is_empty()),
                    address,
                    aliases: Vec::new(),
                    extra_hosts: Vec::new(),
                    dns: Vec::new(),
                    dns_search: host.dns_search.clone(),
                    dns_options: host.dns_options.clone(),
                };
                for d in &host.dns {
                    spec.dns.push(
                        d.parse().map_err(|_| {
                            refused(400, format!("invalid DNS server address {d:?}"))
                        })?,
                    );
                }
                for e in &host.extra_hosts {
                    let (h, ip) = e.split_once(':').ok_or_else(|| {
                        refused(400, format!("invalid extra host {e:?}: use name:ip"))
                    })?;
                    let ip = ip.parse().map_err(|_| {
                        refused(400, format!("invalid IP address in extra host {e:?}"))
                    })?;
                    spec.extra_hosts.push((h.to_string(), ip));
                }
                if let (Some(n), true) = (&network, spec.dns.is_empty()) {
                    if user_net {
                        spec.dns.push(IpAddr::V4(n.ipam.gateway));
                    }
                }
                if network.is_some() && !user_net {
                    for (other, alias) in links(raw.get("HostConfig").unwrap_or(&Value::Null)) {
                        let ip = self.link_address(&other)?;
                        spec.extra_hosts.push((alias.clone(), ip));
                        if alias != other {
                            spec.extra_hosts.push((other, ip));
                        }
                    }
                }
                if let Err(e) =
                    hull_network::files::write(dir, &spec, Path::new("/etc/resolv.conf"))
                {
                    self.unwire(id, dir);
                    return Err(net_err("writing hosts and resolv.conf")(e.to_string()));
                }
                host.network_mode = "bridge".into();
                Ok(Some(wired.0))
            }
        }
    }

    /// The address of linked container `name` on the default bridge.
    fn link_address(&self, name: &str) -> Result<IpAddr, ContainersError> {
        let rec = self
            .get(name)
            .map_err(|_| refused(400, format!("could not get container for {name}")))?;
        let ep = self.network.as_ref().and_then(|m| {
            m.network(hull_network::mode::DEFAULT_NETWORK)
                .ok()
                .and_then(|n| n.endpoints.get(&rec.id).cloned())
        });
        ep.map(|e| IpAddr::V4(e.address)).ok_or_else(|| {
            refused(
                400,
                format!("cannot link to {name}: it is not on the default bridge network"),
            )
        })
    }

    /// Makes and pins the namespace at `dir/netns` and attaches it for `mode`.
    fn wire(
        &self,
        id: &str,
        dir: &Path,
        mode: &NetworkMode,
        opts: &EndpointOptions,
        gids: (u32, u32),
    ) -> Result<(Wired, Option<hull_network::Endpoint>), ContainersError> {
        let mgr = self.network.as_ref().expect("checked by the caller");
        let started = std::time::Instant::now();
        let path = dir.join("netns");
        let ns =
            netns::create().map_err(|e| net_err("creating a network namespace")(e.to_string()))?;
        netns::pin(ns.as_fd(), &path)
            .map_err(|e| net_err("pinning the namespace")(e.to_string()))?;
        let t_ns = started.elapsed();
        let attached = mgr.setup(mode, id, ns.as_fd(), opts);
        let t_setup = started.elapsed();
        let range = format!("{} {}", gids.0, gids.1);
        // As Docker: every port is bindable by the container's root, which is not root
        // of the namespace's owner (hulld's user namespace), so needs this.
        let ping = netns::run_in(ns.as_fd(), move || {
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", range)?;
            std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
        });
        if let Err(e) = ping
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!(
                "container {id}: setting ping_group_range and ip_unprivileged_port_start: {e}"
            );
        }
        let ep = match attached {
            Ok(hull_network::Attachment::Bridge(ep)) => Some(ep),
            Ok(_) => None,
            Err(e) => {
                let _ = netns::unpin(&path);
                return Err(from_manager(e));
            }
        };
        tracing::info!(
            container = id,
            network = %mode,
            micros = started.elapsed().as_micros() as u64,
            netns_micros = t_ns.as_micros() as u64,
            endpoint_micros = (t_setup - t_ns).as_micros() as u64,
            "network setup done"
        );
        Ok((
            Wired {
                netns: path,
                dir: dir.to_path_buf(),
            },
            ep,
        ))
    }

    /// Undoes the wiring: every endpoint of the container (and its published ports) and
    /// the pinned namespace; what is not there is skipped.
    pub(crate) fn unwire(&self, id: &str, dir: &Path) {
        if let Some(mgr) = &self.network {
            for n in mgr.networks().unwrap_or_default() {
                if !n.endpoints.contains_key(id) {
                    continue;
                }
                if let Err(e) = mgr.teardown(&NetworkMode::Network(n.name.clone()), id) {
                    tracing::warn!("container {id}: removing its endpoint on {}: {e}", n.name);
                }
            }
        }
        let path = dir.join("netns");
        if path.exists() {
            if let Err(e) = netns::unpin(&path) {
                tracing::warn!("container {id}: {e}");
            }
        }
    }

    fn saved_specs(&self, id: &str) -> Vec<PortSpec> {
        let text = std::fs::read(self.data_dir(id).join(PORTS_FILE)).unwrap_or_default();
        let list: Vec<String> = serde_json::from_slice(&text).unwrap_or_default();
        list.iter()
            .filter_map(|s| PortSpec::parse(s).ok())
            .collect()
    }

    /// The network whose endpoint publishes the container's ports: the one it was
    /// created on (its first endpoint).
    fn primary_network(&self, id: &str) -> Option<String> {
        let mgr = self.network.as_ref()?;
        let nets = mgr.networks().ok()?;
        let rec = self.get(id).ok()?;
        let mode = rec.network_mode.as_str();
        let mut mine: Vec<_> = nets
            .into_iter()
            .filter(|n| n.endpoints.contains_key(id))
            .collect();
        mine.sort_by_key(|n| {
            !(n.name == mode || n.id.starts_with(mode) || is_bridge(mode) && n.name == "bridge")
        });
        mine.first().map(|n| n.name.clone())
    }

    /// Installs the container's published ports (at start); a port in use fails the start.
    pub(crate) fn publish_ports(&self, id: &str) -> Result<(), ContainersError> {
        let specs = self.saved_specs(id);
        let (Some(mgr), false) = (&self.network, specs.is_empty()) else {
            return Ok(());
        };
        let Some(net) = self.primary_network(id) else {
            return Ok(());
        };
        mgr.publish_ports(&net, id, &specs)
            .map(|_| ())
            .map_err(|e| net_err("publishing ports")(e.to_string()))
    }

    /// Withdraws the container's published ports (at stop).
    pub(crate) fn unpublish_ports(&self, id: &str) {
        let Some(mgr) = &self.network else {
            return;
        };
        for n in mgr.networks().unwrap_or_default() {
            if n.endpoints.get(id).is_some_and(|e| !e.ports.is_empty()) {
                if let Err(e) = mgr.unpublish_ports(&n.name, id) {
                    tracing::warn!("container {id}: withdrawing its ports on {}: {e}", n.name);
                }
            }
        }
    }

    /// After a daemon restart (records and networks restored): endpoints of containers
    /// that are gone are removed, ports of stopped ones withdrawn.
    pub(crate) fn restore_network(&self) {
        let Some(mgr) = &self.network else {
            return;
        };
        let running: BTreeMap<String, bool> = self
            .table()
            .records
            .values()
            .map(|r| (r.id.clone(), r.running()))
            .collect();
        for n in mgr.networks().unwrap_or_default() {
            for (cid, ep) in &n.endpoints {
                match running.get(cid) {
                    None => {
                        tracing::info!(
                            "network {}: removing the endpoint of gone container {cid}",
                            n.name
                        );
                        let _ = mgr.teardown(&NetworkMode::Network(n.name.clone()), cid);
                    }
                    Some(false) if !ep.ports.is_empty() => {
                        let _ = mgr.unpublish_ports(&n.name, cid);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Connects a created or running container to network `name` (`docker network connect`).
    pub fn connect_network(
        &self,
        container: &str,
        network: &str,
        endpoint: &Value,
    ) -> Result<(), ContainersError> {
        let mgr = self
            .network
            .as_ref()
            .ok_or_else(|| refused(404, format!("network {network} not found")))?;
        let n = mgr.find_network(network).map_err(from_manager)?;
        let rec = self.get(container)?;
        let path = self.exec_dir(&rec.id).join("netns");
        if !path.exists() {
            return Err(refused(
                400,
                format!("container {container} has no network namespace of its own (host, container: or disabled networking): it cannot be connected"),
            ));
        }
        if n.endpoints.contains_key(&rec.id) {
            return Err(refused(
                403,
                format!(
                    "endpoint with name {} already exists in network {}",
                    rec.name, n.name
                ),
            ));
        }
        let wrapped = json!({ "EndpointsConfig": { n.name.clone(): endpoint } });
        let cfg: ContainerConfig = Default::default();
        let req = endpoint_request(&wrapped, &[n.name.as_str()], &cfg)?;
        let count = mgr
            .networks()
            .unwrap_or_default()
            .iter()
            .filter(|o| o.endpoints.contains_key(&rec.id))
            .count();
        let ns = netns::open(&path).map_err(|e| net_err("opening the namespace")(e.to_string()))?;
        let user_net = n.name != hull_network::mode::DEFAULT_NETWORK;
        let opts = EndpointOptions {
            ip: req.ip,
            mac: req.mac,
            aliases: req.aliases,
            name: Some(rec.name.clone()),
            ifname: Some(format!("eth{count}")),
            secondary: count > 0,
            ports: Vec::new(),
        };
        let mode = if user_net {
            NetworkMode::Network(n.name.clone())
        } else {
            NetworkMode::Bridge
        };
        mgr.setup(&mode, &rec.id, ns.as_fd(), &opts)
            .map_err(from_manager)?;
        Ok(())
    }

    /// Disconnects a container from network `name`.
    pub fn disconnect_network(
        &self,
        container: &str,
        network: &str,
        force: bool,
    ) -> Result<(), ContainersError> {
        let mgr = self
            .network
            .as_ref()
            .ok_or_else(|| refused(404, format!("network {network} not found")))?;
        let n = mgr.find_network(network).map_err(from_manager)?;
        let id = match self.resolve(container) {
            Ok(id) => id,
            Err(e) if force => {
                // a gone container's endpoint, by ID
                if n.endpoints.contains_key(container) {
                    container.to_string()
                } else {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        };
        if !n.endpoints.contains_key(&id) {
            return Err(refused(
                403,
                format!(
                    "container {container} is not connected to network {}",
                    n.name
                ),
            ));
        }
        mgr.teardown(&NetworkMode::Network(n.name.clone()), &id)
            .map_err(from_manager)
    }

    /// `NetworkSettings` of inspect.
    pub(crate) fn network_settings(&self, r: &Record) -> Value {
        let mut networks = serde_json::Map::new();
        let mut ports = serde_json::Map::new();
        let (mut ip, mut gw, mut mac, mut prefix, mut bridge) = (
            String::new(),
            String::new(),
            String::new(),
            0u8,
            String::new(),
        );
        let shares = r.network_mode.starts_with("container:") || r.network_mode == "host";
        if let Some(mgr) = &self.network {
            for n in mgr.networks().unwrap_or_default() {
                let Some(ep) = n.endpoints.get(&r.id) else {
                    continue;
                };
                if n.name == hull_network::mode::DEFAULT_NETWORK || ip.is_empty() {
                    ip = ep.address.to_string();
                    gw = ep.gateway.to_string();
                    mac = ep.mac.clone();
                    prefix = ep.prefix_len;
                    bridge = n.bridge.clone();
                }
                for p in &ep.ports {
                    let key = format!("{}/{}", p.container_port, p.proto);
                    let entry = ports.entry(key).or_insert_with(|| json!([]));
                    if let Some(a) = entry.as_array_mut() {
                        a.push(json!({
                            "HostIp": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                            "HostPort": p.host_port.to_string(),
                        }));
                    }
                }
                networks.insert(
                    n.name.clone(),
                    json!({
                        "IPAMConfig": null,
                        "Links": null,
                        "Aliases": ep.aliases,
                        "NetworkID": n.id,
                        "EndpointID": crate::networks_service::endpoint_id(&n.id, &r.id),
                        "Gateway": ep.gateway.to_string(),
                        "IPAddress": ep.address.to_string(),
                        "IPPrefixLen": ep.prefix_len,
                        "IPv6Gateway": "",
                        "GlobalIPv6Address": "",
                        "GlobalIPv6PrefixLen": 0,
                        "MacAddress": ep.mac,
                        "DriverOpts": null,
                    }),
                );
            }
        }
        if !shares && networks.is_empty() && r.network_mode == "none" {
            networks.insert("none".into(), json!({ "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "" }));
        }
        if r.network_mode == "host" {
            networks.insert("host".into(), json!({ "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "" }));
        }
        // Exposed ports without a binding are listed as null, as Docker does.
        if let Some(e) = r.config.get("ExposedPorts").and_then(Value::as_object) {
            for k in e.keys() {
                ports.entry(k.clone()).or_insert(Value::Null);
            }
        }
        let sandbox = self.exec_dir(&r.id).join("netns");
        json!({
            "Bridge": bridge,
            "SandboxID": "",
            "SandboxKey": if sandbox.exists() { sandbox.display().to_string() } else { String::new() },
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "Ports": if r.running() { Value::Object(ports) } else { json!({}) },
            "SecondaryIPAddresses": null,
            "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": gw,
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": ip,
            "IPPrefixLen": prefix,
            "IPv6Gateway": "",
            "MacAddress": mac,
            "Networks": networks,
        })
    }

    /// The `Ports` array of `GET /containers/json`.
    pub(crate) fn port_list(&self, r: &Record) -> Value {
        let mut out = Vec::new();
        if let Some(mgr) = &self.network {
            for n in mgr.networks().unwrap_or_default() {
                if let Some(ep) = n.endpoints.get(&r.id) {
                    for p in &ep.ports {
                        out.push(json!({
                            "IP": p.host_ip.map_or("0.0.0.0".to_string(), |i| i.to_string()),
                            "PrivatePort": p.container_port,
                            "PublicPort": p.host_port,
                            "Type": p.proto.as_str(),
                        }));
                    }
                }
            }
        }
        Value::Array(out)
    }
}
