//! hull's nftables rules, all in one table of its own (`ip hull`), never another's.
//!
//! Base chains (hooks) hold fixed rules only and are flushed and written anew in the
//! same transaction each time the table is ensured; the rules of networks and
//! endpoints live in three regular chains the base chains jump to:
//!
//! - `ports` (from nat `prerouting` and `output`, for local destinations): one DNAT
//!   per published port, so it answers from other hosts and on the namespace's own
//!   loopback (`output`; with `route_localnet` on the bridge and a masquerade);
//! - `masq` (from nat `postrouting`): per network, its subnet leaving by another
//!   interface (not for `internal` networks), loopback sources entering it, and
//!   hairpin traffic (DNATed back into the bridge it came from);
//! - `isolation` (from filter `forward`): per network, a drop for traffic from its
//!   bridge to any other hull bridge (the set `bridges`), and for an internal
//!   network everything between its bridge and another interface.
//!
//! Every rule carries a comment tag (`hull net <id>` or `hull ep <id> <container>`);
//! removal lists the table with handles and deletes exactly the rules with the tag,
//! in one transaction. Container-to-container traffic on one bridge never reaches
//! these hooks (without `br_netfilter`), so `enable_icc=false` is the bridge port's
//! `isolated` flag instead (see [`crate::endpoint`]).

use std::net::Ipv4Addr;
use std::os::fd::BorrowedFd;

use serde_json::{json, Value};

use crate::netns::{self, NetnsError};
use crate::nft::{self, NftError};
use crate::ports::PortMapping;
use crate::subnet::Ipv4Net;

pub const FAMILY: &str = "ip";
pub const TABLE: &str = "hull";
const SET: &str = "bridges";

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("cannot install the firewall rules of network {network}: {source}")]
    InstallNetwork {
        network: String,
        #[source]
        source: NftError,
    },
    #[error("cannot install the published ports of {tag}: {source}")]
    InstallPorts {
        tag: String,
        #[source]
        source: NftError,
    },
    #[error("cannot list hull's firewall table: {0}")]
    List(#[source] NftError),
    #[error("cannot remove the firewall rules of {tag}: {source}")]
    Remove {
        tag: String,
        #[source]
        source: NftError,
    },
    #[error("cannot delete hull's firewall table: {0}")]
    DeleteTable(#[source] NftError),
    #[error("cannot set {path} in the network namespace: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set sysctls in the network namespace: {0}")]
    EnterNetns(#[source] NetnsError),
}

/// What the rules of one network depend on.
pub struct NetworkRules<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub bridge: &'a str,
    pub subnet: Ipv4Net,
    pub masquerade: bool,
    pub internal: bool,
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn network_tag(network_id: &str) -> String {
    format!("hull net {}", short(network_id))
}

/// The tag of an endpoint's rules (an nft comment holds at most 128 bytes).
pub fn endpoint_tag(network_id: &str, container_id: &str) -> String {
    let mut tag = format!("hull ep {} {container_id}", short(network_id));
    while tag.len() > 128 {
        tag.pop();
    }
    tag
}

fn table() -> Value {
    json!({ "family": FAMILY, "name": TABLE })
}

fn chain(name: &str) -> Value {
    json!({ "family": FAMILY, "table": TABLE, "name": name })
}

fn base_chain(name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({ "family": FAMILY, "table": TABLE, "name": name,
            "type": kind, "hook": hook, "prio": prio, "policy": "accept" })
}

fn rule(chain: &str, expr: Vec<Value>, comment: Option<&str>) -> Value {
    let mut r = json!({ "family": FAMILY, "table": TABLE, "chain": chain, "expr": expr });
    if let Some(c) = comment {
        r["comment"] = json!(c);
    }
    json!({ "add": { "rule": r } })
}

fn eq(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "==", "left": left, "right": right } })
}

fn ne(left: Value, right: Value) -> Value {
    json!({ "match": { "op": "!=", "left": left, "right": right } })
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

fn prefix(net: Ipv4Net) -> Value {
    json!({ "prefix": { "addr": net.network().to_string(), "len": net.prefix_len() } })
}

fn local_dst() -> Value {
    eq(
        json!({ "fib": { "result": "type", "flags": ["daddr"] } }),
        json!("local"),
    )
}

const BASE_CHAINS: [&str; 4] = ["prerouting", "output", "postrouting", "forward"];

/// The table, its set and chains, and the fixed rules of the base chains, unless
/// `existing` (the listed table) has them all: flushing a base chain costs a kernel
/// RCU grace period (some 15 ms here), so it is done only when one is missing.
fn ensure_table(existing: &[Value]) -> Vec<Value> {
    let has_chain = |name: &str| {
        existing
            .iter()
            .filter_map(|o| o.get("chain"))
            .any(|c| c.get("name").and_then(Value::as_str) == Some(name))
    };
    let chains = ["ports", "masq", "isolation"];
    if BASE_CHAINS.into_iter().chain(chains).all(has_chain)
        && existing.iter().any(|o| o.get("set").is_some())
    {
        return Vec::new();
    }
    let mut c = vec![
        json!({ "add": { "table": table() } }),
        json!({ "add": { "set": { "family": FAMILY, "table": TABLE, "name": SET,
                                   "type": "ifname" } } }),
    ];
    for name in chains {
        c.push(json!({ "add": { "chain": chain(name) } }));
    }
    let bases = [
        (
            "prerouting",
            "nat",
            "prerouting",
            -100,
            vec![local_dst(), jump("ports")],
        ),
        (
            "output",
            "nat",
            "output",
            -100,
            vec![local_dst(), jump("ports")],
        ),
        ("postrouting", "nat", "postrouting", 100, vec![jump("masq")]),
        ("forward", "filter", "forward", 0, vec![jump("isolation")]),
    ];
    for (name, kind, hook, prio, expr) in bases {
        c.push(json!({ "add": { "chain": base_chain(name, kind, hook, prio) } }));
        c.push(json!({ "flush": { "chain": chain(name) } }));
        c.push(rule(name, expr, None));
    }
    c
}

fn jump(target: &str) -> Value {
    json!({ "jump": { "target": target } })
}

/// The table's objects with handles; empty when there is no table.
fn list(netns: BorrowedFd<'_>) -> Result<Vec<Value>, FirewallError> {
    Ok(nft::list_table(netns, FAMILY, TABLE)
        .map_err(FirewallError::List)?
        .unwrap_or_default())
}

/// Delete commands for every rule tagged `tag` in `objects`.
fn delete_tagged(objects: &[Value], tag: &str) -> Vec<Value> {
    objects
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| r.get("comment").and_then(Value::as_str) == Some(tag))
        .filter_map(|r| {
            let handle = r.get("handle")?.as_u64()?;
            let chain = r.get("chain")?.as_str()?;
            Some(json!({ "delete": { "rule": {
                "family": FAMILY, "table": TABLE, "chain": chain, "handle": handle } } }))
        })
        .collect()
}

fn has_bridge(objects: &[Value], bridge: &str) -> bool {
    objects
        .iter()
        .filter_map(|o| o.get("set"))
        .filter(|s| s.get("name").and_then(Value::as_str) == Some(SET))
        .filter_map(|s| s.get("elem").and_then(Value::as_array))
        .flatten()
        .any(|e| e.as_str() == Some(bridge))
}

fn element(bridge: &str) -> Value {
    json!({ "element": { "family": FAMILY, "table": TABLE, "name": SET, "elem": [bridge] } })
}

/// Installs (or installs anew, replacing its old rules, unless they are all there)
/// the rules of a network, and enables forwarding in `netns`.
pub fn install_network(netns: BorrowedFd<'_>, n: &NetworkRules<'_>) -> Result<(), FirewallError> {
    enable_forwarding(netns, n.bridge)?;
    let tag = network_tag(n.id);
    let existing = list(netns)?;
    let mut c = Vec::new();
    let (iif, oif) = (meta("iifname"), meta("oifname"));
    let br = json!(n.bridge);
    let saddr = payload("ip", "saddr");
    let t = Some(tag.as_str());
    if n.masquerade && !n.internal {
        let e = vec![
            eq(saddr.clone(), prefix(n.subnet)),
            ne(oif.clone(), br.clone()),
            json!({ "masquerade": null }),
        ];
        c.push(rule("masq", e, t));
    }
    // hairpin: a container reaching a published port of its own network by a host
    // address must see the answer come from that side too
    let dnat =
        json!({ "match": { "op": "in", "left": { "ct": { "key": "status" } }, "right": "dnat" } });
    // (no iifname in postrouting: the kernel has no input device there)
    let e = vec![
        eq(saddr.clone(), prefix(n.subnet)),
        eq(oif.clone(), br.clone()),
        dnat,
        json!({ "masquerade": null }),
    ];
    c.push(rule("masq", e, t));
    let lo: Ipv4Net = "127.0.0.0/8".parse().expect("a valid prefix");
    let e = vec![
        eq(saddr, prefix(lo)),
        eq(oif.clone(), br.clone()),
        json!({ "masquerade": null }),
    ];
    c.push(rule("masq", e, t));
    let drop = json!({ "drop": null });
    let e = vec![
        eq(iif.clone(), br.clone()),
        ne(oif.clone(), br.clone()),
        eq(oif.clone(), json!(format!("@{SET}"))),
        drop.clone(),
    ];
    c.push(rule("isolation", e, t));
    if n.internal {
        let e = vec![
            eq(iif.clone(), br.clone()),
            ne(oif.clone(), br.clone()),
            drop.clone(),
        ];
        c.push(rule("isolation", e, t));
        let e = vec![eq(oif, br.clone()), ne(iif, br), drop];
        c.push(rule("isolation", e, t));
    }
    // already there (a container joining the default network ensures it each time):
    // deleting and adding again would cost a grace period for nothing
    let base = ensure_table(&existing);
    let present = delete_tagged(&existing, &tag);
    if base.is_empty() && has_bridge(&existing, n.bridge) && present.len() == c.len() {
        return Ok(());
    }
    let mut rules = base;
    rules.extend(present);
    if !has_bridge(&existing, n.bridge) {
        rules.push(json!({ "add": element(n.bridge) }));
    }
    rules.extend(c);
    nft::apply(netns, rules).map_err(|source| FirewallError::InstallNetwork {
        network: n.name.to_owned(),
        source,
    })
}

/// Removes a network's rules and its bridge from the set; with `last`, the whole
/// table goes (no hull network is left).
pub fn remove_network(
    netns: BorrowedFd<'_>,
    network_id: &str,
    bridge: &str,
    last: bool,
) -> Result<(), FirewallError> {
    let existing = list(netns)?;
    if existing.is_empty() {
        return Ok(());
    }
    if last {
        return nft::apply(netns, vec![json!({ "delete": { "table": table() } })])
            .map_err(FirewallError::DeleteTable);
    }
    let tag = network_tag(network_id);
    let mut c = delete_tagged(&existing, &tag);
    if has_bridge(&existing, bridge) {
        c.push(json!({ "delete": element(bridge) }));
    }
    nft::apply(netns, c).map_err(|source| FirewallError::Remove { tag, source })
}

/// Installs one DNAT per published port of the endpoint at `address`, tagged `tag`
/// (replacing rules of that tag). Nothing to publish changes nothing.
pub fn install_ports(
    netns: BorrowedFd<'_>,
    tag: &str,
    address: Ipv4Addr,
    ports: &[PortMapping],
) -> Result<(), FirewallError> {
    if ports.is_empty() {
        return Ok(());
    }
    let existing = list(netns)?;
    let mut c = ensure_table(&existing);
    c.extend(delete_tagged(&existing, tag));
    for p in ports {
        let mut e = Vec::new();
        if let Some(ip) = p.host_ip {
            e.push(eq(payload("ip", "daddr"), json!(ip.to_string())));
        }
        e.push(eq(payload(p.proto.as_str(), "dport"), json!(p.host_port)));
        e.push(json!({ "dnat": { "addr": address.to_string(), "port": p.container_port } }));
        c.push(rule("ports", e, Some(tag)));
    }
    nft::apply(netns, c).map_err(|source| FirewallError::InstallPorts {
        tag: tag.to_owned(),
        source,
    })
}

/// Deletes every rule tagged `tag`; none (or no table) is not an error.
pub fn remove_tagged(netns: BorrowedFd<'_>, tag: &str) -> Result<(), FirewallError> {
    let c = delete_tagged(&list(netns)?, tag);
    nft::apply(netns, c).map_err(|source| FirewallError::Remove {
        tag: tag.to_owned(),
        source,
    })
}

/// The comments of every rule in hull's table (for tests and `hull network inspect`).
pub fn rule_tags(netns: BorrowedFd<'_>) -> Result<Option<Vec<String>>, FirewallError> {
    let Some(objects) = nft::list_table(netns, FAMILY, TABLE).map_err(FirewallError::List)? else {
        return Ok(None);
    };
    Ok(Some(
        objects
            .iter()
            .filter_map(|o| o.get("rule")?.get("comment")?.as_str().map(str::to_owned))
            .collect(),
    ))
}

/// `ip_forward` for the namespace, and `route_localnet` on the bridge so that DNAT
/// from 127.0.0.1 to a container is routed. hulld does this in the host's namespace.
fn enable_forwarding(netns: BorrowedFd<'_>, bridge: &str) -> Result<(), FirewallError> {
    let paths = [
        "/proc/sys/net/ipv4/ip_forward".to_owned(),
        format!("/proc/sys/net/ipv4/conf/{bridge}/route_localnet"),
    ];
    netns::run_in(netns, || {
        for path in &paths {
            if std::fs::read(path)
                .map(|v| v.starts_with(b"1"))
                .unwrap_or(false)
            {
                continue;
            }
            std::fs::write(path, b"1").map_err(|source| FirewallError::Sysctl {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    })
    .map_err(FirewallError::EnterNetns)?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed_rule(chain: &str, handle: u64, comment: &str) -> Value {
        json!({ "rule": { "family": "ip", "table": TABLE, "chain": chain,
                          "handle": handle, "comment": comment, "expr": [] } })
    }

    #[test]
    fn only_rules_with_exactly_the_tag_are_deleted() {
        let objects = vec![
            listed_rule("ports", 5, "hull ep 0123456789ab c1"),
            listed_rule("ports", 6, "hull ep 0123456789ab c10"),
            listed_rule("masq", 7, "hull net 0123456789ab"),
            listed_rule("ports", 8, "hull ep 0123456789ab c1"),
        ];
        let del = delete_tagged(&objects, &endpoint_tag("0123456789abcdef", "c1"));
        let handles: Vec<u64> = del
            .iter()
            .map(|d| d["delete"]["rule"]["handle"].as_u64().unwrap())
            .collect();
        assert_eq!(handles, [5, 8]);
        assert_eq!(del[0]["delete"]["rule"]["chain"], "ports");
    }

    #[test]
    fn tags_fit_a_comment_and_the_table_is_written_only_when_incomplete() {
        assert!(endpoint_tag("n", &"x".repeat(300)).len() <= 128);
        assert_eq!(network_tag("0123456789abcdef"), "hull net 0123456789ab");
        let full = ensure_table(&[]);
        assert!(full.len() > 10);
        // a listing with every chain and the set needs nothing
        let mut listed: Vec<Value> = ["prerouting", "output", "postrouting", "forward"]
            .into_iter()
            .chain(["ports", "masq", "isolation"])
            .map(|c| json!({ "chain": { "name": c } }))
            .collect();
        listed.push(json!({ "set": { "name": SET } }));
        assert!(ensure_table(&listed).is_empty());
        listed.remove(1);
        assert_eq!(ensure_table(&listed).len(), full.len());
        assert!(has_bridge(
            &[json!({ "set": { "name": SET, "elem": ["hull0", "br-1"] } })],
            "br-1"
        ));
    }
}
