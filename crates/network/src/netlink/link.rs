//! Links: bridges, veth pairs, up/down, delete, lookups.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Netlink, NetlinkError};

/// What a dump says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// The index of the bridge this link is a port of.
    pub controller: Option<u32>,
    pub mtu: Option<u32>,
    pub mac: Option<Vec<u8>>,
    /// The driver (`bridge`, `veth`, ...); none for `lo` and physical devices.
    pub kind: Option<String>,
}

/// A veth pair: `name` stays in the namespace of the socket, `peer_name` is created
/// directly in `peer_netns` (one request: no moment where the peer sits in the wrong
/// namespace, nothing to undo when it fails).
pub struct VethSpec<'a> {
    pub name: &'a str,
    pub mtu: u32,
    /// Bridge to attach `name` to, by index.
    pub controller: u32,
    pub peer_name: &'a str,
    pub peer_mac: [u8; 6],
    pub peer_netns: BorrowedFd<'a>,
}

fn up_header(msg: &mut LinkMessage) {
    msg.header.flags = LinkFlags::Up;
    msg.header.change_mask = LinkFlags::Up;
}

impl Netlink {
    /// Creates a bridge, up, with this MTU. Fails if a link of that name exists.
    pub fn create_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        up_header(&mut msg);
        msg.attributes = vec![
            LinkAttribute::IfName(name.to_owned()),
            LinkAttribute::Mtu(mtu),
            LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(InfoKind::Bridge)]),
        ];
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Creates a veth pair as described by `spec`; the local end is attached and up.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), NetlinkError> {
        let mut peer = LinkMessage::default();
        peer.attributes = vec![
            LinkAttribute::IfName(spec.peer_name.to_owned()),
            LinkAttribute::Mtu(spec.mtu),
            LinkAttribute::Address(spec.peer_mac.to_vec()),
            LinkAttribute::NetNsFd(spec.peer_netns.as_raw_fd()),
        ];
        let mut msg = LinkMessage::default();
        up_header(&mut msg);
        msg.attributes = vec![
            LinkAttribute::IfName(spec.name.to_owned()),
            LinkAttribute::Mtu(spec.mtu),
            LinkAttribute::Controller(spec.controller),
            LinkAttribute::LinkInfo(vec![
                NlLinkInfo::Kind(InfoKind::Veth),
                NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
            ]),
        ];
        self.request(RouteNetlinkMessage::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL)
    }

    /// Sets the flags of a bridge port: `hairpin` lets a frame leave by the port it
    /// came in (a container reaching its own published port); `isolated` ports of
    /// one bridge exchange no frames, but each still reaches the bridge and other
    /// ports.
    pub fn set_port_flags(
        &mut self,
        index: u32,
        hairpin: bool,
        isolated: bool,
    ) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes = vec![LinkAttribute::LinkInfo(vec![
            NlLinkInfo::PortKind(InfoPortKind::Bridge),
            NlLinkInfo::PortData(InfoPortData::BridgePort(vec![
                InfoBridgePort::HairpinMode(hairpin),
                InfoBridgePort::Isolated(isolated),
            ])),
        ])];
        self.request(RouteNetlinkMessage::NewLink(msg), 0)
    }

    /// Sets the MAC address of a link.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes = vec![LinkAttribute::Address(mac.to_vec())];
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Brings a link up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        up_header(&mut msg);
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
    }

    /// Deletes a link (for a veth, both ends go).
    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0)
    }

    /// The link called `name`, if there is one.
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes = vec![LinkAttribute::IfName(name.to_owned())];
        let seq = self.send(RouteNetlinkMessage::GetLink(msg), 0)?;
        let mut found = None;
        let mut error = None;
        self.receive(seq, |payload| match payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => {
                found = Some(link_info(&m));
                true
            }
            netlink_packet_core::NetlinkPayload::Error(e) => {
                if let Some(code) = e.code {
                    if code.get() != -libc_enodev() {
                        error = Some(NetlinkError::Kernel(e.to_io()));
                    }
                }
                true
            }
            _ => false,
        })?;
        match error {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        let msgs = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(l) => Some(link_info(l)),
                _ => None,
            })
            .collect())
    }
}

fn libc_enodev() -> i32 {
    nix::errno::Errno::ENODEV as i32
}

fn link_info(m: &LinkMessage) -> LinkInfo {
    let mut info = LinkInfo {
        index: m.header.index,
        name: String::new(),
        up: m.header.flags.contains(LinkFlags::Up),
        controller: None,
        mtu: None,
        mac: None,
        kind: None,
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => info.name = n.clone(),
            LinkAttribute::Controller(c) => info.controller = Some(*c),
            LinkAttribute::Mtu(v) => info.mtu = Some(*v),
            LinkAttribute::Address(mac) => info.mac = Some(mac.clone()),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let NlLinkInfo::Kind(k) = i {
                        info.kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    info
}
