//! IP address management: one pool per network (subnet, gateway, allocations), and
//! the choice of a subnet for a network created without one.
//!
//! Allocation goes round the subnet from the last address handed out (as Docker
//! does), so a released address is not reused at once while peers may still have it
//! in their ARP caches.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::subnet::Ipv4Net;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("subnet {subnet} is too small for a gateway and containers (at most /30)")]
    SubnetTooSmall { subnet: Ipv4Net },
    #[error("gateway {gateway} is not a host address of subnet {subnet}")]
    GatewayOutside { gateway: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is not a host address of subnet {subnet}")]
    AddressOutside { ip: Ipv4Addr, subnet: Ipv4Net },
    #[error("address {ip} is already in use (by {owner})")]
    AddressInUse { ip: Ipv4Addr, owner: String },
    #[error("no address left in subnet {subnet}")]
    Exhausted { subnet: Ipv4Net },
    #[error("no free subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16 in /20s) that does not overlap an existing network or route")]
    NoFreeSubnet,
}

/// What owns the gateway address in `Pool::allocated`.
pub const GATEWAY_OWNER: &str = "gateway";

/// The addresses of one network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Address -> owner (a container ID, or [`GATEWAY_OWNER`]).
    pub allocated: BTreeMap<Ipv4Addr, String>,
    /// The last address handed out; the next search starts after it.
    pub last: Option<Ipv4Addr>,
}

impl Pool {
    /// A pool for `subnet`; the gateway is the first host address unless given.
    pub fn new(subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Result<Self, IpamError> {
        if subnet.prefix_len() > 30 {
            return Err(IpamError::SubnetTooSmall { subnet });
        }
        let (first, last) = subnet.hosts();
        let gateway = gateway.unwrap_or(Ipv4Addr::from(first));
        let g = u32::from(gateway);
        if g < first || g > last {
            return Err(IpamError::GatewayOutside { gateway, subnet });
        }
        let mut allocated = BTreeMap::new();
        allocated.insert(gateway, GATEWAY_OWNER.to_owned());
        Ok(Pool {
            subnet,
            gateway,
            allocated,
            last: None,
        })
    }

    /// Allocates `requested` if given (it must be free and in the subnet), or the
    /// next free address.
    pub fn allocate(
        &mut self,
        owner: &str,
        requested: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = self.subnet.hosts();
        let ip = match requested {
            Some(ip) => {
                let n = u32::from(ip);
                if n < first || n > last {
                    return Err(IpamError::AddressOutside {
                        ip,
                        subnet: self.subnet,
                    });
                }
                if let Some(o) = self.allocated.get(&ip) {
                    return Err(IpamError::AddressInUse {
                        ip,
                        owner: o.clone(),
                    });
                }
                ip
            }
            None => self.next_free(first, last)?,
        };
        self.allocated.insert(ip, owner.to_owned());
        if requested.is_none() {
            self.last = Some(ip);
        }
        Ok(ip)
    }

    fn next_free(&self, first: u32, last: u32) -> Result<Ipv4Addr, IpamError> {
        let start = match self.last.map(u32::from) {
            Some(l) if l >= first && l < last => l + 1,
            _ => first,
        };
        (start..=last)
            .chain(first..start)
            .map(Ipv4Addr::from)
            .find(|ip| !self.allocated.contains_key(ip))
            .ok_or(IpamError::Exhausted {
                subnet: self.subnet,
            })
    }

    /// Releases `ip` if `owner` holds it; returns whether it did.
    pub fn release(&mut self, ip: Ipv4Addr, owner: &str) -> bool {
        if self.allocated.get(&ip).map(String::as_str) == Some(owner) && owner != GATEWAY_OWNER {
            self.allocated.remove(&ip);
            true
        } else {
            false
        }
    }
}

/// The default pools, in order: 172.17.0.0/16 ... 172.31.0.0/16, then
/// 192.168.0.0/20 ... 192.168.240.0/20 (Docker's defaults).
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let b = (17..=31).map(|o| Ipv4Net::containing(Ipv4Addr::new(172, o, 0, 0), 16));
    let c = (0..16).map(|i| Ipv4Net::containing(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    b.chain(c)
}

/// The first default pool that overlaps none of `taken` (other networks' subnets and
/// the routes of the namespace; a default route, 0.0.0.0/0, is not counted).
pub fn choose_subnet(taken: &[Ipv4Net]) -> Result<Ipv4Net, IpamError> {
    default_pools()
        .find(|p| {
            !taken
                .iter()
                .filter(|t| t.prefix_len() > 0)
                .any(|t| t.overlaps(p))
        })
        .ok_or(IpamError::NoFreeSubnet)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn allocates_round_and_honours_static() {
        let mut p = Pool::new(net("10.0.0.0/29"), None).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.allocate("a", None).unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(p.allocate("b", None).unwrap(), Ipv4Addr::new(10, 0, 0, 3));
        assert!(p.release(Ipv4Addr::new(10, 0, 0, 2), "a"));
        // not reused at once
        assert_eq!(p.allocate("c", None).unwrap(), Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(
            p.allocate("d", Some(Ipv4Addr::new(10, 0, 0, 3))),
            Err(IpamError::AddressInUse {
                ip: Ipv4Addr::new(10, 0, 0, 3),
                owner: "b".into()
            })
        );
        assert!(matches!(
            p.allocate("d", Some(Ipv4Addr::new(10, 0, 0, 7))),
            Err(IpamError::AddressOutside { .. })
        ));
        assert_eq!(
            p.allocate("d", Some(Ipv4Addr::new(10, 0, 0, 6))).unwrap(),
            Ipv4Addr::new(10, 0, 0, 6)
        );
        assert_eq!(p.allocate("e", None).unwrap(), Ipv4Addr::new(10, 0, 0, 5));
        // wraps round to the released .2
        assert_eq!(p.allocate("f", None).unwrap(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(matches!(
            p.allocate("g", None),
            Err(IpamError::Exhausted { .. })
        ));
        assert!(!p.release(p.gateway, GATEWAY_OWNER));
        assert!(!p.release(Ipv4Addr::new(10, 0, 0, 3), "someone else"));
    }

    #[test]
    fn chooses_a_free_default_pool() {
        assert_eq!(choose_subnet(&[]).unwrap(), net("172.17.0.0/16"));
        let taken = [net("0.0.0.0/0"), net("172.17.3.0/24"), net("172.18.0.0/16")];
        assert_eq!(choose_subnet(&taken).unwrap(), net("172.19.0.0/16"));
        let all: Vec<_> = default_pools().collect();
        assert_eq!(all.len(), 31);
        assert_eq!(choose_subnet(&all), Err(IpamError::NoFreeSubnet));
        assert!(Pool::new(net("10.0.0.0/31"), None).is_err());
        assert!(Pool::new(net("10.0.0.0/24"), Some(Ipv4Addr::new(10, 0, 1, 1))).is_err());
    }
}
