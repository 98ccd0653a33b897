//! The bridge of a network, in the namespace the manager works on: created up, with
//! the gateway address; removed whole if a step fails.

use std::net::Ipv4Addr;

use nix::errno::Errno;

use crate::netlink::{Netlink, NetlinkError};

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("cannot create bridge {bridge}: {source}")]
    Create {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot look up bridge {bridge}: {source}")]
    Find {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
    #[error("a link named {bridge} exists and is not a bridge ({kind})")]
    NotABridge { bridge: String, kind: String },
    #[error("bridge {bridge} vanished while it was being set up")]
    Vanished { bridge: String },
    #[error("cannot add gateway address {address}/{prefix_len} to bridge {bridge}: {source}")]
    AddAddress {
        bridge: String,
        address: Ipv4Addr,
        prefix_len: u8,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot set the MAC address of bridge {bridge}: {source}")]
    SetMac {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot bring bridge {bridge} up: {source}")]
    Up {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
    #[error("cannot delete bridge {bridge}: {source}")]
    Delete {
        bridge: String,
        #[source]
        source: NetlinkError,
    },
}

/// Makes sure bridge `name` exists, is up and has `gateway/prefix_len`; with `reuse`
/// false an existing link of that name is an error (a new network never takes over a
/// bridge it did not make). A bridge this call created is deleted again if a later
/// step fails.
pub fn ensure(
    nl: &mut Netlink,
    name: &str,
    mtu: u32,
    gateway: Ipv4Addr,
    prefix_len: u8,
    reuse: bool,
) -> Result<(), BridgeError> {
    let find = |nl: &mut Netlink| {
        nl.link_by_name(name).map_err(|source| BridgeError::Find {
            bridge: name.to_owned(),
            source,
        })
    };
    let (index, created) = match find(nl)? {
        Some(link) if reuse && link.kind.as_deref() == Some("bridge") => (link.index, false),
        Some(link) if reuse => {
            return Err(BridgeError::NotABridge {
                bridge: name.to_owned(),
                kind: link.kind.unwrap_or_else(|| "no driver".to_owned()),
            })
        }
        _ => {
            nl.create_bridge(name, mtu)
                .map_err(|source| BridgeError::Create {
                    bridge: name.to_owned(),
                    source,
                })?;
            let link = find(nl)?.ok_or_else(|| BridgeError::Vanished {
                bridge: name.to_owned(),
            })?;
            (link.index, true)
        }
    };
    let configure = |nl: &mut Netlink| -> Result<(), BridgeError> {
        // A bridge without a MAC of its own takes the lowest of its ports', and
        // changes it when that port goes: containers would keep a stale ARP entry
        // for the gateway. Docker's MAC for the gateway address is stable.
        if created {
            nl.set_mac(index, crate::endpoint::mac_for(gateway))
                .map_err(|source| BridgeError::SetMac {
                    bridge: name.to_owned(),
                    source,
                })?;
        }
        match nl.add_address(index, gateway, prefix_len) {
            Err(e) if e.errno() == Some(Errno::EEXIST as i32) => {}
            r => r.map_err(|source| BridgeError::AddAddress {
                bridge: name.to_owned(),
                address: gateway,
                prefix_len,
                source,
            })?,
        }
        if !created {
            nl.set_up(index).map_err(|source| BridgeError::Up {
                bridge: name.to_owned(),
                source,
            })?;
        }
        Ok(())
    };
    let result = configure(nl);
    if result.is_err() && created {
        let _ = nl.delete_link(index);
    }
    result
}

/// Deletes bridge `name`; a bridge that is not there is not an error.
pub fn delete(nl: &mut Netlink, name: &str) -> Result<(), BridgeError> {
    let err = |source| BridgeError::Delete {
        bridge: name.to_owned(),
        source,
    };
    let Some(link) = nl.link_by_name(name).map_err(err)? else {
        return Ok(());
    };
    match nl.delete_link(link.index) {
        Err(e) if e.errno() == Some(Errno::ENODEV as i32) => Ok(()),
        r => r.map_err(err),
    }
}
