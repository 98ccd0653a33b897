//! IPv4 subnets (`172.17.0.0/16`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubnetError {
    #[error("invalid subnet {text:?}: expected an IPv4 address, '/', and a prefix length 0-32")]
    Parse { text: String },
    #[error("invalid subnet {text:?}: host bits are set (did you mean {network}?)")]
    HostBits { text: String, network: Ipv4Net },
}

/// An IPv4 network: an address with its host bits clear, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix_len: u8,
}

fn mask(prefix_len: u8) -> u32 {
    if prefix_len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_len.min(32)))
    }
}

impl Ipv4Net {
    /// The network of `prefix_len` bits that contains `addr`.
    pub fn containing(addr: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = prefix_len.min(32);
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix_len)),
            prefix_len,
        }
    }

    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix_len))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix_len) == u32::from(self.addr)
    }

    /// Whether the two networks share an address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The addresses a host may use: all but the network and broadcast addresses
    /// (for /31 and /32, every address).
    pub fn hosts(&self) -> (u32, u32) {
        let first = u32::from(self.addr);
        let last = u32::from(self.broadcast());
        if self.prefix_len >= 31 {
            (first, last)
        } else {
            (first + 1, last - 1)
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

impl FromStr for Ipv4Net {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse = || SubnetError::Parse {
            text: text.to_owned(),
        };
        let (addr, len) = text.split_once('/').ok_or_else(parse)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| parse())?;
        let len: u8 = len.parse().map_err(|_| parse())?;
        if len > 32 {
            return Err(parse());
        }
        let network = Ipv4Net::containing(addr, len);
        if network.addr != addr {
            return Err(SubnetError::HostBits {
                text: text.to_owned(),
                network,
            });
        }
        Ok(network)
    }
}

impl Serialize for Ipv4Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_overlap() {
        let a: Ipv4Net = "172.17.0.0/16".parse().unwrap();
        let b: Ipv4Net = "172.17.5.0/24".parse().unwrap();
        let c: Ipv4Net = "172.18.0.0/16".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!a.overlaps(&c));
        assert_eq!(a.broadcast(), Ipv4Addr::new(172, 17, 255, 255));
        assert!(matches!(
            "172.17.0.1/16".parse::<Ipv4Net>(),
            Err(SubnetError::HostBits { .. })
        ));
        assert!("172.17.0.0/33".parse::<Ipv4Net>().is_err());
        assert_eq!(
            Ipv4Net::containing(Ipv4Addr::UNSPECIFIED, 0).to_string(),
            "0.0.0.0/0"
        );
    }
}
