//! Networks as Docker shows and changes them (`/networks/...`), over the container
//! service's network manager. The predefined networks: `bridge` is the manager's default
//! network (made at hulld's start); `host` and `none` are modes, listed with fixed IDs.

use std::collections::BTreeMap;
use std::sync::Arc;

use hull_network::{ManagerError, Network, NetworkConfig};
use serde_json::{json, Value};

use crate::containers::{ContainerService, ContainersError};
use crate::query::Filters;

/// A failed network request: Docker's status code and message.
#[derive(Debug)]
pub struct NetError {
    pub status: u16,
    pub message: String,
}

impl From<ManagerError> for NetError {
    fn from(e: ManagerError) -> Self {
        NetError {
            status: crate::containers::network_status(&e),
            message: e.to_string(),
        }
    }
}

fn err(status: u16, message: impl Into<String>) -> NetError {
    NetError {
        status,
        message: message.into(),
    }
}

const PREDEFINED: [&str; 3] = ["bridge", "host", "none"];

/// A fixed 64-hex ID for the mode networks `host` and `none`.
fn mode_id(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut out = String::new();
    for round in 0..4u8 {
        for b in name.bytes().chain([round]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

/// The endpoint ID Docker shows: stable per network and container.
pub fn endpoint_id(network_id: &str, container_id: &str) -> String {
    mode_id(&format!("{network_id}/{container_id}"))
}

fn now_rfc3339() -> String {
    hull_runtime::state::now_rfc3339()
}

/// A network body for create: the fields hull knows; others refused where they matter.
fn config_from(body: &Value) -> Result<NetworkConfig, NetError> {
    let name = body
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(err(400, "network name is empty"));
    }
    if PREDEFINED.contains(&name.as_str()) {
        return Err(err(
            403,
            format!("{name} is a pre-defined network and cannot be created"),
        ));
    }
    let driver = body.get("Driver").and_then(Value::as_str).unwrap_or("");
    if !matches!(driver, "" | "bridge") {
        return Err(err(
            400,
            format!("network driver {driver:?} is not supported by hulld: use bridge"),
        ));
    }
    if body.get("EnableIPv6").and_then(Value::as_bool) == Some(true) {
        return Err(err(400, "IPv6 networks are not supported by hulld yet"));
    }
    let strings = |v: Option<&Value>| -> BTreeMap<String, String> {
        v.and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let options = strings(body.get("Options"));
    let mut cfg = NetworkConfig {
        name,
        internal: body
            .get("Internal")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        attachable: body
            .get("Attachable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        labels: strings(body.get("Labels")),
        bridge: options.get("com.docker.network.bridge.name").cloned(),
        created: now_rfc3339(),
        ..Default::default()
    };
    if let Some(m) = options.get("com.docker.network.driver.mtu") {
        cfg.mtu = Some(
            m.parse()
                .map_err(|_| err(400, format!("invalid MTU {m:?}")))?,
        );
    }
    cfg.options = options;
    let configs = body
        .pointer("/IPAM/Config")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match configs.as_slice() {
        [] => {}
        [c] => {
            if let Some(s) = c
                .get("Subnet")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                cfg.subnet = Some(
                    s.parse()
                        .map_err(|e| err(400, format!("invalid subnet {s:?}: {e}")))?,
                );
            }
            if let Some(g) = c
                .get("Gateway")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                cfg.gateway = Some(
                    g.parse()
                        .map_err(|_| err(400, format!("invalid gateway {g:?}")))?,
                );
                if cfg.subnet.is_none() {
                    return Err(err(400, "a gateway needs a subnet (--subnet)"));
                }
            }
            if let Some(r) = c
                .get("IPRange")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                let range: hull_network::Ipv4Net = r
                    .parse()
                    .map_err(|e| err(400, format!("invalid ip range {r:?}: {e}")))?;
                if cfg.subnet != Some(range) {
                    return Err(err(
                        400,
                        "--ip-range narrower than the subnet is not supported by hulld yet",
                    ));
                }
            }
        }
        _ => {
            return Err(err(
                400,
                "more than one IPAM config (IPv4 subnet) is not supported by hulld yet",
            ))
        }
    }
    Ok(cfg)
}

fn network_json(n: &Network, containers: Value) -> Value {
    let mut options: serde_json::Map<String, Value> = n
        .options
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    // docker shows a user network's options as they were asked for (docker-compose
    // recreates a network whose options differ from its file's); only the predefined
    // bridge network names its device.
    if n.name == "bridge" {
        options
            .entry("com.docker.network.bridge.name")
            .or_insert(json!(n.bridge));
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": if n.created.is_empty() { "0001-01-01T00:00:00Z" } else { n.created.as_str() },
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": null,
            "Config": [{ "Subnet": n.ipam.subnet.to_string(), "Gateway": n.ipam.gateway.to_string() }],
        },
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": containers,
        "Options": options,
        "Labels": n.labels,
    })
}

fn mode_network_json(name: &str, driver: &str) -> Value {
    json!({
        "Name": name,
        "Id": mode_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": driver,
        "EnableIPv6": false,
        "IPAM": { "Driver": "default", "Options": null, "Config": [] },
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": { "Network": "" },
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// The network service; every call is blocking (run on tokio's blocking pool).
pub struct NetworkService {
    pub containers: Arc<ContainerService>,
}

impl NetworkService {
    fn mgr(&self) -> Result<&hull_network::Manager, NetError> {
        self.containers.network_manager().ok_or_else(|| {
            err(
                400,
                "hulld runs without bridge networking (--bridge none): only host and none exist",
            )
        })
    }

    fn containers_of(&self, n: &Network) -> Value {
        let mut out = serde_json::Map::new();
        for (cid, ep) in &n.endpoints {
            let name = self
                .containers
                .get(cid)
                .map(|r| r.name)
                .or_else(|_| ep.name.clone().ok_or(()))
                .unwrap_or_default();
            out.insert(
                cid.clone(),
                json!({
                    "Name": name,
                    "EndpointID": endpoint_id(&n.id, cid),
                    "MacAddress": ep.mac,
                    "IPv4Address": format!("{}/{}", ep.address, ep.prefix_len),
                    "IPv6Address": "",
                }),
            );
        }
        Value::Object(out)
    }

    /// Every network: the manager's, then `host` and `none`.
    fn all(&self) -> Vec<(Value, bool)> {
        let mut out = Vec::new();
        if let Some(m) = self.containers.network_manager() {
            if m.network("bridge").is_err() {
                if let Err(e) = m.ensure_default() {
                    tracing::warn!("the default network: {e}");
                }
            }
            for n in m.networks().unwrap_or_default() {
                let builtin = n.name == "bridge";
                out.push((network_json(&n, self.containers_of(&n)), builtin));
            }
        }
        out.push((mode_network_json("host", "host"), true));
        out.push((mode_network_json("none", "null"), true));
        out
    }

    /// `GET /networks`.
    pub fn list(&self, f: &Filters) -> Result<Value, NetError> {
        let mut out = Vec::new();
        for (v, builtin) in self.all() {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let ok = f.get("name").iter().all(|p| s("Name").contains(p.as_str()))
                && f.get("id").iter().all(|p| s("Id").starts_with(p.as_str()))
                && f.get("driver").iter().all(|p| s("Driver") == *p)
                && f.get("scope").iter().all(|p| p == "local")
                && f.get("type").iter().all(|p| match p.as_str() {
                    "builtin" => builtin,
                    "custom" => !builtin,
                    _ => true,
                })
                && f.get("label").iter().all(|l| {
                    let (k, val) = l
                        .split_once('=')
                        .map_or((l.as_str(), None), |(k, v)| (k, Some(v)));
                    match (v["Labels"].get(k).and_then(Value::as_str), val) {
                        (Some(_), None) => true,
                        (Some(a), Some(b)) => a == b,
                        _ => false,
                    }
                })
                && f.get("dangling").iter().all(|d| {
                    let dangling =
                        !builtin && v["Containers"].as_object().is_some_and(|c| c.is_empty());
                    (d == "true" || d == "1") == dangling
                });
            if ok {
                out.push(v);
            }
        }
        Ok(Value::Array(out))
    }

    /// `GET /networks/{id}`: by name, ID or unique ID prefix.
    pub fn inspect(&self, name: &str) -> Result<Value, NetError> {
        for (v, _) in self.all() {
            if v["Name"] == name || v["Id"] == name {
                return Ok(v);
            }
        }
        let hits: Vec<Value> = self
            .all()
            .into_iter()
            .map(|(v, _)| v)
            .filter(|v| !name.is_empty() && v["Id"].as_str().is_some_and(|i| i.starts_with(name)))
            .collect();
        match hits.len() {
            1 => Ok(hits.into_iter().next().expect("one")),
            0 => Err(err(404, format!("network {name} not found"))),
            _ => Err(err(
                400,
                format!(
                    "network {name} is ambiguous ({} matches found based on ID prefix)",
                    hits.len()
                ),
            )),
        }
    }

    /// `POST /networks/create`; the new network's ID.
    pub fn create(&self, body: &[u8]) -> Result<String, NetError> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("the request body is not a network config: {e}"),
            )
        })?;
        let cfg = config_from(&body)?;
        let n = self.mgr()?.create_network(&cfg).map_err(|e| match e {
            ManagerError::NetworkExists { name } => {
                err(409, format!("network with name {name} already exists"))
            }
            e => e.into(),
        })?;
        tracing::info!(network = %n.name, subnet = %n.ipam.subnet, bridge = %n.bridge, "network created");
        Ok(n.id)
    }

    /// `DELETE /networks/{id}`.
    pub fn remove(&self, name: &str) -> Result<(), NetError> {
        let v = self.inspect(name)?;
        let real = v["Name"].as_str().unwrap_or_default().to_string();
        if PREDEFINED.contains(&real.as_str()) {
            return Err(err(
                403,
                format!("{real} is a pre-defined network and cannot be removed"),
            ));
        }
        self.mgr()?.remove_network(&real).map_err(|e| match e {
            ManagerError::InUse { name, .. } => err(
                403,
                format!(
                    "error while removing network: network {name} id {} has active endpoints",
                    v["Id"].as_str().unwrap_or_default()
                ),
            ),
            e => e.into(),
        })
    }

    /// `POST /networks/{id}/connect`.
    pub fn connect(&self, name: &str, body: &[u8]) -> Result<(), NetError> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("the request body is not a connect request: {e}"),
            )
        })?;
        let container = body.get("Container").and_then(Value::as_str).unwrap_or("");
        if container.is_empty() {
            return Err(err(400, "no container given to connect"));
        }
        if matches!(name, "host" | "none") {
            return Err(err(
                403,
                format!("container cannot be disconnected from host network or connected to {name} network"),
            ));
        }
        let ep = body.get("EndpointConfig").cloned().unwrap_or(Value::Null);
        self.containers
            .connect_network(container, name, &ep)
            .map_err(container_err)
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn disconnect(&self, name: &str, body: &[u8]) -> Result<(), NetError> {
        let body: Value = serde_json::from_slice(body).map_err(|e| {
            err(
                400,
                format!("the request body is not a disconnect request: {e}"),
            )
        })?;
        let container = body.get("Container").and_then(Value::as_str).unwrap_or("");
        let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
        self.containers
            .disconnect_network(container, name, force)
            .map_err(container_err)
    }

    /// `POST /networks/prune`: user networks without endpoints (label filters apply).
    pub fn prune(&self, f: &Filters) -> Result<Value, NetError> {
        let mut deleted = Vec::new();
        let Some(m) = self.containers.network_manager() else {
            return Ok(json!({ "NetworksDeleted": [] }));
        };
        for n in m.networks()? {
            if n.name == "bridge" || !n.endpoints.is_empty() {
                continue;
            }
            let labelled = f.get("label").iter().all(|l| {
                let (k, val) = l
                    .split_once('=')
                    .map_or((l.as_str(), None), |(k, v)| (k, Some(v)));
                match (n.labels.get(k), val) {
                    (Some(_), None) => true,
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                }
            });
            if !labelled {
                continue;
            }
            match m.remove_network(&n.name) {
                Ok(()) => deleted.push(n.name.clone()),
                Err(e) => tracing::warn!("prune: network {}: {e}", n.name),
            }
        }
        Ok(json!({ "NetworksDeleted": deleted }))
    }
}

fn container_err(e: ContainersError) -> NetError {
    let message = e.to_string();
    let status = crate::errors::ApiError::Containers(e).status().as_u16();
    err(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_bodies_are_checked_with_dockers_codes() {
        let cfg = config_from(&json!({
            "Name": "n1", "Driver": "bridge", "Internal": true, "Attachable": true,
            "Labels": { "a": "b" },
            "Options": { "com.docker.network.bridge.enable_icc": "false",
                         "com.docker.network.bridge.name": "brx",
                         "com.docker.network.driver.mtu": "1400" },
            "IPAM": { "Config": [{ "Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254" }] },
        }))
        .unwrap();
        assert_eq!(cfg.name, "n1");
        assert!(cfg.internal && cfg.attachable);
        assert_eq!(cfg.bridge.as_deref(), Some("brx"));
        assert_eq!(cfg.mtu, Some(1400));
        assert_eq!(cfg.subnet.unwrap().to_string(), "10.1.0.0/24");
        assert_eq!(cfg.gateway.unwrap().to_string(), "10.1.0.254");
        assert_eq!(cfg.labels["a"], "b");
        assert_eq!(cfg.options["com.docker.network.bridge.enable_icc"], "false");

        let status = |body: Value| config_from(&body).unwrap_err().status;
        assert_eq!(status(json!({})), 400);
        assert_eq!(status(json!({ "Name": "host" })), 403);
        assert_eq!(status(json!({ "Name": "x", "Driver": "overlay" })), 400);
        assert_eq!(status(json!({ "Name": "x", "EnableIPv6": true })), 400);
        assert_eq!(
            status(json!({ "Name": "x", "IPAM": { "Config": [{ "Subnet": "10.1.0.0/33" }] } })),
            400
        );
        assert_eq!(
            status(json!({ "Name": "x", "IPAM": { "Config": [{ "Gateway": "10.1.0.1" }] } })),
            400
        );
        assert_eq!(
            status(json!({ "Name": "x", "IPAM": { "Config": [
                { "Subnet": "10.1.0.0/24", "IPRange": "10.1.0.0/25" }] } })),
            400
        );
    }

    #[test]
    fn inspect_shows_a_user_networks_options_as_asked_for() {
        let mut n = hull_network::Network {
            id: "0".repeat(64),
            name: "proj_default".into(),
            driver: "bridge".into(),
            bridge: "br-000000000000".into(),
            mtu: 1500,
            local_mtu: 65535,
            ipam: hull_network::ipam::Pool::new("172.18.0.0/16".parse().unwrap(), None).unwrap(),
            internal: false,
            enable_icc: true,
            enable_ip_masquerade: true,
            created: String::new(),
            labels: Default::default(),
            attachable: false,
            options: Default::default(),
            endpoints: Default::default(),
        };
        assert_eq!(network_json(&n, json!({}))["Options"], json!({}));
        n.name = "bridge".into();
        assert_eq!(
            network_json(&n, json!({}))["Options"]["com.docker.network.bridge.name"],
            "br-000000000000"
        );
    }

    #[test]
    fn mode_ids_are_stable_and_distinct() {
        assert_eq!(mode_id("host"), mode_id("host"));
        assert_ne!(mode_id("host"), mode_id("none"));
        assert_eq!(mode_id("none").len(), 64);
        assert_ne!(endpoint_id("n", "a"), endpoint_id("n", "b"));
    }
}
