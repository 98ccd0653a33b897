//! hull's container networking: bridge networks (a Linux bridge with the gateway
//! address, one veth pair per container with `eth0` inside), IPAM with persisted
//! pools, the `none`/`host`/`container:` modes as data, the per-container
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`; and (second slice) NAT,
//! published ports, isolation and an embedded DNS per user-defined network.
//!
//! Everything works on network namespace fds passed in: the [`Manager`] is given the
//! namespace where bridges live (the host's in hulld, a throwaway one in tests) and
//! each container's namespace, and opens its netlink sockets inside them (on a thread
//! that `setns`es, see [`netns`]); it never uses the namespace of the calling thread.
//!
//! Netlink goes through `netlink-packet-route` (message types) and `netlink-sys` (a
//! blocking socket): a handful of synchronous requests per container need no async
//! runtime, and this keeps tokio out of every crate that links this one.
//!
//! Firewall rules ([`firewall`]) live only in hull's own table `ip hull`, written
//! through `nft`'s JSON API ([`nft`]: one document is one kernel transaction; `nft`
//! is spawned from a thread inside the target namespace). Per network: masquerade
//! of its subnet (not for `--internal` or `enable_ip_masquerade=false`), hairpin
//! and loopback masquerades, and a forward drop towards every other hull bridge
//! (an internal network drops everything in and out). Per endpoint: one DNAT per
//! published port ([`ports`]), tagged with the endpoint so that teardown deletes
//! exactly its rules; the table goes with the last network. `enable_icc=false` is
//! the bridge port's `isolated` flag (no `br_netfilter` needed). The manager's
//! namespace gets `ip_forward=1` and `route_localnet=1` on each bridge (in hulld,
//! the host's: published ports answer on 127.0.0.1 through the kernel, no proxy).
//! User-defined networks get a DNS responder on their gateway ([`dns`]).
//!
//! # Next slices (planned)
//!
//! - IPv6 (a second `Pool` per network, a table `ip6 hull`), `--ip-range`, port ranges
//!   in `-p`, and holding a socket on each published port so that a later bind by another
//!   program fails instead of being shadowed by the DNAT.
//! - `127.0.0.11` inside the container as Docker's, if a client needs it.

#![forbid(unsafe_code)]

pub mod bridge;
pub mod dns;
pub mod endpoint;
pub mod files;
pub mod firewall;
pub mod ipam;
pub mod manager;
pub mod mode;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod store;
pub mod subnet;

pub use endpoint::Endpoint;
pub use manager::{Attachment, EndpointOptions, Manager, ManagerError, NetworkConfig};
pub use mode::{NetnsPlan, NetworkMode};
pub use ports::{PortMapping, PortSpec, Proto};
pub use store::Network;
pub use subnet::Ipv4Net;
