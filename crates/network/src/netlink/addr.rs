//! IPv4 addresses on links.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, NetlinkError};
use crate::subnet::Ipv4Net;

/// One IPv4 address of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressInfo {
    pub index: u32,
    pub address: Ipv4Addr,
    pub prefix_len: u8,
}

impl Netlink {
    /// Adds `address/prefix_len` (with its broadcast address) to the link `index`.
    pub fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        let mut msg = AddressMessage::default();
        msg.header.family = AddressFamily::Inet;
        msg.header.prefix_len = prefix_len;
        msg.header.index = index;
        let net = Ipv4Net::containing(address, prefix_len);
        msg.attributes = vec![
            AddressAttribute::Local(IpAddr::V4(address)),
            AddressAttribute::Address(IpAddr::V4(address)),
        ];
        if prefix_len < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(net.broadcast()));
        }
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_EXCL,
        )
    }

    /// Every IPv4 address of the namespace.
    pub fn addresses(&mut self) -> Result<Vec<AddressInfo>, NetlinkError> {
        let mut req = AddressMessage::default();
        req.header.family = AddressFamily::Inet;
        let msgs = self.dump(RouteNetlinkMessage::GetAddress(req))?;
        let mut out = Vec::new();
        for m in msgs {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            for attr in &a.attributes {
                if let AddressAttribute::Local(IpAddr::V4(ip)) = attr {
                    out.push(AddressInfo {
                        index: a.header.index,
                        address: *ip,
                        prefix_len: a.header.prefix_len,
                    });
                }
            }
        }
        Ok(out)
    }
}
