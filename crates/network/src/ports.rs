//! Published ports: `-p [ip:]hostPort:containerPort[/tcp|udp]` and `-P`, and the
//! choice of host ports. A host port is free when no hull endpoint publishes it
//! (kernel forwarding binds no socket, so the records are the only trace) and a
//! socket can be bound to it in the namespace where the ports are published; a
//! random one (host port empty or 0) is such a free port chosen by the kernel.

use std::fmt;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::BorrowedFd;

use serde::{Deserialize, Serialize};

use crate::netns::{self, NetnsError};

#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("invalid port specification {spec:?}: use [ip:]hostPort:containerPort[/tcp|udp]")]
    Parse { spec: String },
    #[error("Bind for {host_ip}:{host_port} failed: port is already allocated")]
    Allocated { host_ip: Ipv4Addr, host_port: u16 },
    #[error("cannot bind {proto} {host_ip}:{host_port}: {source}")]
    Bind {
        proto: Proto,
        host_ip: Ipv4Addr,
        host_port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find a free {proto} host port: {source}")]
    NoFreePort {
        proto: Proto,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot test host ports in the network namespace: {0}")]
    EnterNetns(#[source] NetnsError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A port to publish, as asked for: `host_port` 0 means any free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// `None`: every address of the namespace (Docker's 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// A published port, as set up: the host port is always a real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortMapping {
    /// Whether both would take the same host port.
    pub fn clashes(&self, proto: Proto, host_ip: Option<Ipv4Addr>, host_port: u16) -> bool {
        self.proto == proto
            && self.host_port == host_port
            && (self.host_ip.is_none() || host_ip.is_none() || self.host_ip == host_ip)
    }
}

impl PortSpec {
    /// Parses `[ip:][hostPort:]containerPort[/tcp|udp]` (an empty host port is a
    /// random one, as is a missing one).
    pub fn parse(spec: &str) -> Result<Self, PortsError> {
        let err = || PortsError::Parse {
            spec: spec.to_owned(),
        };
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some(_) => return Err(err()),
            None => (spec, Proto::Tcp),
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (ip, host, container) = match parts[..] {
            [c] => (None, "", c),
            [h, c] => (None, h, c),
            [ip, h, c] => (Some(ip), h, c),
            _ => return Err(err()),
        };
        let host_ip = match ip {
            None | Some("") | Some("0.0.0.0") => None,
            Some(ip) => Some(ip.parse().map_err(|_| err())?),
        };
        let host_port = match host {
            "" => 0,
            h => h.parse().map_err(|_| err())?,
        };
        let container_port: u16 = container.parse().map_err(|_| err())?;
        if container_port == 0 {
            return Err(err());
        }
        Ok(PortSpec {
            host_ip,
            host_port,
            container_port,
            proto,
        })
    }

    /// `-P`: every exposed port (`"80/tcp"` keys of a config's `ExposedPorts`) on a
    /// random host port.
    pub fn publish_all<'a>(
        exposed: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<Self>, PortsError> {
        exposed.into_iter().map(Self::parse).collect()
    }
}

/// Chooses the host ports of `specs` in the namespace `netns`: a port published by
/// an entry of `taken` or bound by a socket there is an error; port 0 gets a free
/// one from the kernel (retried while hull itself publishes it).
pub fn allocate(
    netns: BorrowedFd<'_>,
    specs: &[PortSpec],
    taken: &[PortMapping],
) -> Result<Vec<PortMapping>, PortsError> {
    let mut out: Vec<PortMapping> = Vec::with_capacity(specs.len());
    for s in specs {
        let clash = |m: &PortMapping, port| m.clashes(s.proto, s.host_ip, port);
        let ip = s.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let allocated = || PortsError::Allocated {
            host_ip: ip,
            host_port: s.host_port,
        };
        let host_port = if s.host_port != 0 {
            if taken.iter().chain(&out).any(|m| clash(m, s.host_port)) {
                return Err(allocated());
            }
            match bind_test(netns, s.proto, ip, s.host_port)? {
                Ok(_) => s.host_port,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(allocated()),
                Err(source) => {
                    return Err(PortsError::Bind {
                        proto: s.proto,
                        host_ip: ip,
                        host_port: s.host_port,
                        source,
                    })
                }
            }
        } else {
            let mut tries = 0;
            loop {
                let port =
                    bind_test(netns, s.proto, ip, 0)?.map_err(|source| PortsError::NoFreePort {
                        proto: s.proto,
                        source,
                    })?;
                tries += 1;
                if !taken.iter().chain(&out).any(|m| clash(m, port)) {
                    break port;
                }
                if tries > 64 {
                    return Err(PortsError::NoFreePort {
                        proto: s.proto,
                        source: std::io::ErrorKind::AddrInUse.into(),
                    });
                }
            }
        };
        out.push(PortMapping {
            host_ip: s.host_ip,
            host_port,
            container_port: s.container_port,
            proto: s.proto,
        });
    }
    Ok(out)
}

/// Binds (and closes) a socket on `ip:port` in `netns`; the port it got.
fn bind_test(
    netns: BorrowedFd<'_>,
    proto: Proto,
    ip: Ipv4Addr,
    port: u16,
) -> Result<std::io::Result<u16>, PortsError> {
    netns::run_in(netns, || match proto {
        Proto::Tcp => TcpListener::bind((ip, port)).and_then(|l| l.local_addr()),
        Proto::Udp => UdpSocket::bind((ip, port)).and_then(|s| s.local_addr()),
    })
    .map(|r| r.map(|a| a.port()))
    .map_err(PortsError::EnterNetns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        let p = |s| PortSpec::parse(s).unwrap();
        assert_eq!(
            p("127.0.0.1:8080:80/udp"),
            PortSpec {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                container_port: 80,
                proto: Proto::Udp
            }
        );
        assert_eq!(p("8080:80").host_port, 8080);
        assert_eq!(p("8080:80").host_ip, None);
        assert_eq!(p("80").host_port, 0);
        assert_eq!(p(":80/tcp").host_port, 0);
        assert_eq!(p("0.0.0.0::80").host_ip, None);
        for bad in [
            "", "a:80", "80/sctp", "1:2:3:4", "8080:0", "99999:80", "x::80",
        ] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
        let all = PortSpec::publish_all(["80/tcp", "53/udp"]).unwrap();
        assert!(all.iter().all(|s| s.host_port == 0));
    }

    #[test]
    fn clashes_by_proto_port_and_overlapping_address() {
        let m = PortMapping {
            host_ip: None,
            host_port: 80,
            container_port: 80,
            proto: Proto::Tcp,
        };
        assert!(m.clashes(Proto::Tcp, Some(Ipv4Addr::LOCALHOST), 80));
        assert!(!m.clashes(Proto::Udp, None, 80));
        assert!(!m.clashes(Proto::Tcp, None, 81));
        let l = PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            ..m
        };
        assert!(!l.clashes(Proto::Tcp, Some(Ipv4Addr::new(10, 0, 0, 1)), 80));
    }
}
