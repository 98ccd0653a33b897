//! A container's network, for every `HostConfig.NetworkMode`:
//!
//! - the default `bridge` and user-defined networks: a network namespace pinned at
//!   `<exec-dir>/netns` (the spec joins it by path), a veth on the network's bridge with
//!   an address from its pool (`eth0`; `eth1`... for `network connect`), and the
//!   container's hosts, resolv.conf and hostname files (on user networks resolv.conf
//!   names the network's DNS responder, the gateway; on the default bridge `--link`s
//!   are hosts lines);
//! - `none`: a pinned namespace with only `lo`, up;
//! - `container:<name|id>`: the pinned namespace and the files of that (running)
//!   container; nothing of its own;
//! - `host`: nothing (the policy decides whether it is allowed).
//!
//! Create validates the request and saves the plan (`<data-dir>/network.json`) and the
//! files; start makes the namespace, endpoints and published ports
//! ([`ContainerService::attach_network`]); the container's exit, its removal, and
//! hulld's start for stopped containers undo them
//! ([`ContainerService::detach_network`]): a stopped container holds no address, veth
//! or rule.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use hull_engine::{ContainerConfig, HostConfig, ImageConfigSubset};
use hull_network::{netns, EndpointOptions, ManagerError, NetworkMode, PortSpec};
use serde::{Deserialize, Serialize};
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
        | ManagerError::BadMtu { .. }
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

const PLAN_FILE: &str = "network.json";

/// What create decided about the container's network, made real at each start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NetPlan {
    /// The container's name, for the networks' DNS.
    name: String,
    /// The container's host gids (`ping_group_range`).
    gids: (u32, u32),
    /// The networks, the first one the container's own (empty: `none`).
    networks: Vec<PlanEndpoint>,
    hostname: String,
    domainname: String,
    dns: Vec<IpAddr>,
    dns_search: Vec<String>,
    dns_options: Vec<String>,
    extra_hosts: Vec<(String, IpAddr)>,
    /// `--link name:alias` on the default bridge, resolved at start.
    links: Vec<(String, String)>,
    /// `-p`/`-P`, as `[ip:]hostPort:containerPort/proto` (host port empty: random).
    ports: Vec<String>,
    /// `--sysctl net.*`: hulld writes them in the namespace it makes (the container's root
    /// may not: the namespace is not its user namespace's).
    #[serde(default)]
    sysctls: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PlanEndpoint {
    network: String,
    ip: Option<Ipv4Addr>,
    mac: Option<[u8; 6]>,
    aliases: Vec<String>,
}

impl PlanEndpoint {
    /// The manager's options for this endpoint as the container's `index`th interface
    /// (`eth{index}`; only the first has the default route), named `name` in DNS.
    fn options(&self, name: &str, index: usize) -> EndpointOptions {
        EndpointOptions {
            ip: self.ip,
            mac: self.mac,
            aliases: self.aliases.clone(),
            name: Some(name.to_string()),
            ifname: Some(format!("eth{index}")),
            secondary: index > 0,
            ports: Vec::new(),
        }
    }
}

fn spec_text(s: &PortSpec) -> String {
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
}

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

    /// Plans the network `host.network_mode` asks for (create): validates it, saves the
    /// plan (`<data-dir>/network.json`) and writes the files the spec binds in; the
    /// namespace and endpoints are made at start ([`ContainerService::attach_network`]).
    /// None when the spec makes (or shares) the namespace itself. `host.network_mode`
    /// becomes what the spec builder must see (a pinned namespace is given as `bridge`
    /// with its path).
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
                    // the spec joins the namespace made here ("bridge": a prepared one)
                    host.network_mode = "bridge".into();
                    return self.loopback_only(id, dir, &hostname, gids, host).map(Some);
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
                let mut plan = NetPlan {
                    name: name.to_string(),
                    gids,
                    hostname,
                    domainname: cfg.domainname.clone(),
                    dns_search: host.dns_search.clone(),
                    dns_options: host.dns_options.clone(),
                    ports: specs.iter().map(spec_text).collect(),
                    sysctls: net_sysctls(host)?,
                    ..Default::default()
                };
                for d in &host.dns {
                    let ip: IpAddr = d
                        .parse()
                        .map_err(|_| refused(400, format!("invalid DNS server address {d:?}")))?;
                    plan.dns.push(ip);
                }
                for e in &host.extra_hosts {
                    let (h, ip) = e.split_once(':').ok_or_else(|| {
                        refused(400, format!("invalid extra host {e:?}: use name:ip"))
                    })?;
                    let ip: IpAddr = ip.parse().map_err(|_| {
                        refused(400, format!("invalid IP address in extra host {e:?}"))
                    })?;
                    plan.extra_hosts.push((h.to_string(), ip));
                }
                if let Some(n) = &network {
                    let user_net = n.name != hull_network::mode::DEFAULT_NETWORK;
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
                    if !user_net {
                        plan.links = links(raw.get("HostConfig").unwrap_or(&Value::Null));
                        for (other, _) in &plan.links {
                            self.link_address(other)?;
                        }
                    }
                    plan.networks.push(PlanEndpoint {
                        network: n.name.clone(),
                        ip: req.ip,
                        mac: req.mac,
                        aliases: req.aliases,
                    });
                }
                self.save_plan(id, &plan)?;
                // The files exist from create on (the spec binds them); addresses come at start.
                self.write_files(id, dir, &plan, None)?;
                host.network_mode = "bridge".into();
                Ok(Some(Wired {
                    netns: dir.join("netns"),
                    dir: dir.to_path_buf(),
                }))
            }
        }
    }

    fn plan_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join(PLAN_FILE)
    }

    fn save_plan(&self, id: &str, plan: &NetPlan) -> Result<(), ContainersError> {
        let data = self.data_dir(id);
        let body = serde_json::to_vec_pretty(plan).unwrap_or_default();
        std::fs::create_dir_all(&data)
            .and_then(|()| hull_runtime::state::write_atomic(&self.plan_path(id), &body))
            .map_err(|e| net_err("saving the network plan")(e.to_string()))
    }

    fn load_plan(&self, id: &str) -> Option<NetPlan> {
        let body = std::fs::read(self.plan_path(id)).ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// hosts, resolv.conf and hostname for `plan`, with `address` on the first network
    /// (None before the start) and `--link`s resolved when given.
    /// Without a network manager (`--bridge none`): a namespace with only `lo`, up (as
    /// Docker's `none`), pinned at create and kept until rm, and the container's files.
    fn loopback_only(
        &self,
        id: &str,
        dir: &Path,
        hostname: &str,
        gids: (u32, u32),
        host: &HostConfig,
    ) -> Result<Wired, ContainersError> {
        let fail =
            |step: &'static str| move |e: String| ContainersError::Network { step, message: e };
        let path = dir.join("netns");
        let ns =
            netns::create().map_err(|e| fail("creating a network namespace")(e.to_string()))?;
        netns::pin(ns.as_fd(), &path).map_err(|e| fail("pinning the namespace")(e.to_string()))?;
        let spec = hull_network::files::FilesSpec {
            hostname: hostname.to_string(),
            ..Default::default()
        };
        // The namespace is hulld's, so the container may not write its sysctls (the spec
        // drops them): set them here, as for the namespaces the manager wires.
        if let Err(e) = namespace_sysctls(id, ns.as_fd(), gids, net_sysctls(host)?) {
            let _ = netns::unpin(&path);
            return Err(fail("writing the requested sysctls")(e));
        }
        let done = hull_network::endpoint::loopback_up(ns.as_fd())
            .map_err(|e| fail("bringing lo up")(e.to_string()))
            .and_then(|()| {
                hull_network::files::write(dir, &spec, Path::new("/etc/resolv.conf"))
                    .map_err(|e| fail("writing hosts and resolv.conf")(e.to_string()))
            });
        if let Err(e) = done {
            let _ = netns::unpin(&path);
            tracing::warn!("container {id}: {e}");
            return Err(e);
        }
        Ok(Wired {
            netns: path,
            dir: dir.to_path_buf(),
        })
    }

    fn write_files(
        &self,
        id: &str,
        dir: &Path,
        plan: &NetPlan,
        first: Option<&hull_network::Endpoint>,
    ) -> Result<(), ContainersError> {
        let mut spec = hull_network::files::FilesSpec {
            hostname: plan.hostname.clone(),
            domainname: Some(plan.domainname.clone()).filter(|d| !d.is_empty()),
            address: first.map(|e| IpAddr::V4(e.address)),
            aliases: Vec::new(),
            extra_hosts: plan.extra_hosts.clone(),
            dns: plan.dns.clone(),
            dns_search: plan.dns_search.clone(),
            dns_options: plan.dns_options.clone(),
        };
        if first.is_some() {
            for (other, alias) in &plan.links {
                match self.link_address(other) {
                    Ok(ip) => {
                        spec.extra_hosts.push((alias.clone(), ip));
                        if alias != other {
                            spec.extra_hosts.push((other.clone(), ip));
                        }
                    }
                    Err(e) => tracing::warn!("container {id}: --link {other}: {e}"),
                }
            }
        }
        if spec.dns.is_empty() {
            if let (Some(mgr), Some(pe)) = (&self.network, plan.networks.first()) {
                if pe.network != hull_network::mode::DEFAULT_NETWORK {
                    if let Ok(n) = mgr.network(&pe.network) {
                        spec.dns.push(IpAddr::V4(n.ipam.gateway));
                    }
                }
            }
        }
        hull_network::files::write(dir, &spec, Path::new("/etc/resolv.conf"))
            .map_err(|e| net_err("writing hosts and resolv.conf")(e.to_string()))
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
                format!("cannot link to {name}: it is not running on the default bridge network"),
            )
        })
    }

    /// Makes the container's network for its start, as planned at create: the namespace
    /// pinned at `<exec-dir>/netns`, `lo` up, one endpoint per network (`eth0`, `eth1`,
    /// ...), the files with its address, its published ports. On error nothing is left.
    pub(crate) fn attach_network(&self, id: &str) -> Result<(), ContainersError> {
        let (Some(mgr), Some(plan)) = (&self.network, self.load_plan(id)) else {
            return Ok(());
        };
        let dir = self.exec_dir(id);
        // Left by a daemon that died: start clean.
        self.detach_network(id);
        let started = std::time::Instant::now();
        let path = dir.join("netns");
        let ns =
            netns::create().map_err(|e| net_err("creating a network namespace")(e.to_string()))?;
        netns::pin(ns.as_fd(), &path)
            .map_err(|e| net_err("pinning the namespace")(e.to_string()))?;
        let t_ns = started.elapsed();
        let attached = self.attach_endpoints(id, ns.as_fd(), &plan);
        let t_setup = started.elapsed();
        let first = match attached {
            Ok(first) => first,
            Err(e) => {
                self.detach_network(id);
                return Err(e);
            }
        };
        if let Err(e) = namespace_sysctls(id, ns.as_fd(), plan.gids, plan.sysctls.clone()) {
            self.detach_network(id);
            return Err(ContainersError::Network {
                step: "writing the requested sysctls",
                message: e,
            });
        }
        let done = self
            .write_files(id, &dir, &plan, first.as_ref())
            .and_then(|()| self.publish_ports(id, mgr, &plan));
        if let Err(e) = done {
            self.detach_network(id);
            return Err(e);
        }
        tracing::info!(
            container = id,
            network = %plan.networks.first().map_or("none", |p| p.network.as_str()),
            micros = started.elapsed().as_micros() as u64,
            netns_micros = t_ns.as_micros() as u64,
            endpoint_micros = (t_setup - t_ns).as_micros() as u64,
            "network setup done"
        );
        Ok(())
    }

    fn attach_endpoints(
        &self,
        id: &str,
        ns: std::os::fd::BorrowedFd<'_>,
        plan: &NetPlan,
    ) -> Result<Option<hull_network::Endpoint>, ContainersError> {
        let mgr = self.network.as_ref().expect("checked by the caller");
        if plan.networks.is_empty() {
            mgr.setup(&NetworkMode::None, id, ns, &EndpointOptions::default())
                .map_err(from_manager)?;
            return Ok(None);
        }
        let mut first = None;
        for (i, pe) in plan.networks.iter().enumerate() {
            let opts = pe.options(&plan.name, i);
            let att = mgr
                .setup(&NetworkMode::Network(pe.network.clone()), id, ns, &opts)
                .map_err(from_manager)?;
            if let (hull_network::Attachment::Bridge(ep), true) = (att, first.is_none()) {
                first = Some(ep);
            }
        }
        Ok(first)
    }

    /// Undoes [`ContainerService::attach_network`] (at exit, rm, and for stopped
    /// containers at hulld's start): every endpoint of the container (and its published
    /// ports) and the pinned namespace; what is not there is skipped.
    pub(crate) fn detach_network(&self, id: &str) {
        // Made at create by an older hulld (no plan): it lives until rm, as it did then.
        if self.load_plan(id).is_none() {
            return;
        }
        self.remove_network_state(id);
    }

    fn remove_network_state(&self, id: &str) {
        let path = self.exec_dir(id).join("netns");
        // When nothing else lives in the namespace, unpinning it destroys it and the kernel
        // deletes the veths with it; an explicit delete would make every exit wait ~25 ms.
        let goes_away = path.exists() && !self.netns_shared(id);
        let mut leftover = Vec::new();
        if let Some(mgr) = &self.network {
            for n in mgr.networks().unwrap_or_default() {
                if !n.endpoints.contains_key(id) {
                    continue;
                }
                let mode = NetworkMode::Network(n.name.clone());
                let done = if goes_away {
                    mgr.teardown_leaving_veth(&mode, id)
                        .map(|v| leftover.extend(v))
                } else {
                    mgr.teardown(&mode, id)
                };
                if let Err(e) = done {
                    tracing::warn!("container {id}: removing its endpoint on {}: {e}", n.name);
                }
            }
        }
        if path.exists() {
            if let Err(e) = netns::unpin(&path) {
                tracing::warn!("container {id}: {e}");
            }
        }
        if let (false, Some(mgr)) = (leftover.is_empty(), &self.network) {
            // Should something still hold the namespace, its veths would keep released
            // addresses: check once it had time to go, and delete what is left.
            let ns = match mgr.host_netns().try_clone_to_owned() {
                Ok(ns) => ns,
                Err(e) => {
                    tracing::warn!("container {id}: cannot check for its old veths: {e}");
                    return;
                }
            };
            let cid = id.to_string();
            let spawned = std::thread::Builder::new()
                .name("veth-reaper".into())
                .stack_size(64 << 10)
                .spawn(move || {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    for name in leftover {
                        if let Err(e) = hull_network::endpoint::delete_in(ns.as_fd(), &name) {
                            tracing::warn!("container {cid}: removing its old veth {name}: {e}");
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!("container {id}: cannot check for its old veths: {e}");
            }
        }
    }

    /// Whether a running container joined `id`'s network namespace (`container:` mode).
    fn netns_shared(&self, id: &str) -> bool {
        let joined: Vec<String> = self
            .table()
            .records
            .values()
            .filter(|r| r.id != id && r.running())
            .filter_map(|r| {
                r.network_mode
                    .strip_prefix("container:")
                    .map(str::to_string)
            })
            .collect();
        // resolved as create resolved them (names, ids, id prefixes)
        joined
            .iter()
            .any(|other| self.get(other).is_ok_and(|o| o.id == id))
    }

    /// At rm: the same as [`ContainerService::detach_network`].
    pub(crate) fn unwire(&self, id: &str, _dir: &Path) {
        self.remove_network_state(id);
    }

    /// Installs the container's published ports on its first network; a port in use
    /// fails the start.
    fn publish_ports(
        &self,
        id: &str,
        mgr: &hull_network::Manager,
        plan: &NetPlan,
    ) -> Result<(), ContainersError> {
        let specs: Vec<PortSpec> = plan
            .ports
            .iter()
            .filter_map(|s| PortSpec::parse(s).ok())
            .collect();
        let Some(first) = plan.networks.first().filter(|_| !specs.is_empty()) else {
            return Ok(());
        };
        mgr.publish_ports(&first.network, id, &specs)
            .map(|_| ())
            .map_err(|e| refused(500, e.to_string()))
    }

    /// After a daemon restart (records and networks restored): endpoints of containers
    /// that are gone are removed, stopped ones hold nothing.
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
            for cid in n.endpoints.keys() {
                if !running.contains_key(cid) {
                    tracing::info!(
                        "network {}: removing the endpoint of gone container {cid}",
                        n.name
                    );
                    let _ = mgr.teardown(&NetworkMode::Network(n.name.clone()), cid);
                }
            }
        }
        for (id, up) in running {
            if !up {
                self.detach_network(&id);
            }
        }
    }

    /// Connects a container to network `name` (`docker network connect`): at once when
    /// it runs, at its next start in any case.
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
        let Some(mut plan) = self.load_plan(&rec.id) else {
            return Err(refused(
                400,
                format!("container {container} has no network namespace of its own (host, container: or disabled networking): it cannot be connected"),
            ));
        };
        if plan.networks.iter().any(|p| p.network == n.name) {
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
        let pe = PlanEndpoint {
            network: n.name.clone(),
            ip: req.ip,
            mac: req.mac,
            aliases: req.aliases,
        };
        let path = self.exec_dir(&rec.id).join("netns");
        if rec.running() && path.exists() {
            let i = plan.networks.len();
            let ns =
                netns::open(&path).map_err(|e| net_err("opening the namespace")(e.to_string()))?;
            let opts = pe.options(&rec.name, i);
            mgr.setup(
                &NetworkMode::Network(n.name.clone()),
                &rec.id,
                ns.as_fd(),
                &opts,
            )
            .map_err(from_manager)?;
        }
        plan.networks.push(pe);
        self.save_plan(&rec.id, &plan)
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
            // a gone container's endpoint, by ID
            Err(_) if force && n.endpoints.contains_key(container) => container.to_string(),
            Err(e) => return Err(e),
        };
        let mut plan = self.load_plan(&id).unwrap_or_default();
        let planned = plan.networks.iter().any(|p| p.network == n.name);
        if !planned && !n.endpoints.contains_key(&id) {
            return Err(refused(
                403,
                format!(
                    "container {container} is not connected to network {}",
                    n.name
                ),
            ));
        }
        mgr.teardown(&NetworkMode::Network(n.name.clone()), &id)
            .map_err(from_manager)?;
        if planned {
            plan.networks.retain(|p| p.network != n.name);
            self.save_plan(&id, &plan)?;
        }
        Ok(())
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
        // Planned networks of a stopped container: no address, as Docker shows them.
        if let (Some(mgr), Some(plan)) = (&self.network, self.load_plan(&r.id)) {
            for pe in &plan.networks {
                if networks.contains_key(&pe.network) {
                    continue;
                }
                let id = mgr.network(&pe.network).map(|n| n.id).unwrap_or_default();
                networks.insert(
                    pe.network.clone(),
                    json!({
                        "IPAMConfig": pe.ip.map(|ip| json!({ "IPv4Address": ip.to_string() })),
                        "Links": null,
                        "Aliases": pe.aliases,
                        "NetworkID": id,
                        "EndpointID": "",
                        "Gateway": "",
                        "IPAddress": "",
                        "IPPrefixLen": 0,
                        "MacAddress": "",
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

/// The request's `net.*` sysctls (`HostConfig.Sysctls`), checked to name a file under
/// /proc/sys/net: hulld writes them in the namespaces it makes.
fn net_sysctls(host: &HostConfig) -> Result<Vec<(String, String)>, ContainersError> {
    let mut out = Vec::new();
    for (k, v) in &host.sysctls {
        if !k.starts_with("net.") {
            continue;
        }
        let ok = k.split('.').all(|c| {
            !c.is_empty()
                && c.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
        });
        if !ok || v.contains('\n') {
            return Err(refused(400, format!("invalid sysctl {k}={v:?}")));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

/// The sysctls hulld writes in a namespace it made for container `id`: `ping_group_range`
/// (its host gids, so ping works without CAP_NET_RAW) and `ip_unprivileged_port_start=0`
/// (as Docker: its root is not root of the namespace's owner), which only warn when they
/// fail, then the request's `--sysctl net.*`, whose failure is the error returned.
fn namespace_sysctls(
    id: &str,
    ns: std::os::fd::BorrowedFd<'_>,
    gids: (u32, u32),
    asked: Vec<(String, String)>,
) -> Result<(), String> {
    let range = format!("{} {}", gids.0, gids.1);
    let defaults = netns::run_in(ns, move || {
        std::fs::write("/proc/sys/net/ipv4/ping_group_range", range)?;
        std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")
    });
    if let Err(e) = defaults
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
    {
        tracing::warn!(
            "container {id}: setting ping_group_range and ip_unprivileged_port_start: {e}"
        );
    }
    netns::run_in(ns, move || write_sysctls(&asked))
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
}

/// Writes `net.*` sysctls in the current thread's network namespace.
fn write_sysctls(list: &[(String, String)]) -> std::io::Result<()> {
    for (k, v) in list {
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::fs::write(&path, v)
            .map_err(|e| std::io::Error::new(e.kind(), format!("--sysctl {k}={v}: {path}: {e}")))?;
    }
    Ok(())
}
