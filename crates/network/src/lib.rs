//! hull's container networking, first slice: bridge networks (a Linux bridge with the
//! gateway address, one veth pair per container with `eth0` inside), IPAM with
//! persisted pools, the `none`/`host`/`container:` modes as data, and the per-container
//! `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`.
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
//! # Next slices (planned)
//!
//! - **NAT and port publishing** (nftables, by netlink through `nftnl`-style messages
//!   or the `nft` JSON API): one hull table per family; per network a masquerade rule
//!   for `subnet` leaving by a non-bridge interface (unless the network is
//!   `internal`); per published port a DNAT in `prerouting`/`output` and an accept in
//!   `forward`. `Network` gets `internal`, `enable_ip_masquerade` fields (serde
//!   defaults keep old records readable) and `Endpoint` gets `ports: Vec<PortMapping>`,
//!   so teardown deletes exactly the rules the endpoint made (rules tagged with the
//!   container ID in their comment, removed by handle).
//! - **Isolation**: a `forward` rule dropping traffic between two hull bridges
//!   (Docker's DOCKER-ISOLATION chains), and `icc=false` as a per-network option.
//! - **DNS**: an embedded resolver per container namespace (listening on 127.0.0.11,
//!   as Docker's), answering container names and `Endpoint` aliases of the networks the
//!   container is on and forwarding the rest to the nameservers `files` would have
//!   written; `Endpoint` gains `aliases`.
//! - IPv6 (a second `Pool` per network), and `restore()` after a reboot for every
//!   network (today only the default network's bridge is re-made, in
//!   [`Manager::ensure_default`]).

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
