//! The per-container `/etc/hosts`, `/etc/resolv.conf` and `/etc/hostname`, written
//! into a directory of the container's for the engine to bind-mount.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot read the host's resolver configuration {path}: {source}")]
    ReadResolvConf {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Used when neither the request nor the host (once loopback resolvers are dropped)
/// gives a nameserver, as Docker does.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// What goes into the three files.
#[derive(Debug, Clone, Default)]
pub struct FilesSpec {
    pub hostname: String,
    pub domainname: Option<String>,
    /// The container's address on its network (none in `none` mode).
    pub address: Option<IpAddr>,
    /// More names for the container's address (network aliases).
    pub aliases: Vec<String>,
    /// `--add-host` entries: name and address.
    pub extra_hosts: Vec<(String, IpAddr)>,
    /// `--dns`; empty means the host's nameservers less loopback ones.
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
}

/// The `/etc/hosts` text.
pub fn hosts(spec: &FilesSpec) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for (name, ip) in &spec.extra_hosts {
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    if let Some(ip) = spec.address {
        let mut names = Vec::new();
        if let Some(d) = spec.domainname.as_deref().filter(|d| !d.is_empty()) {
            names.push(format!("{}.{d}", spec.hostname));
        }
        names.push(spec.hostname.clone());
        names.extend(
            spec.aliases
                .iter()
                .filter(|a| **a != spec.hostname)
                .cloned(),
        );
        out.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    out
}

/// The `/etc/resolv.conf` text; `host` is the host's resolv.conf.
pub fn resolv_conf(spec: &FilesSpec, host: &str) -> String {
    let mut servers: Vec<String> = spec.dns.iter().map(IpAddr::to_string).collect();
    let mut search = spec.dns_search.clone();
    let mut options = spec.dns_options.clone();
    if servers.is_empty() {
        for line in host.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        if !ip.is_loopback() {
                            servers.push(ip.to_string());
                        }
                    }
                }
                Some("search") | Some("domain") if spec.dns_search.is_empty() => {
                    search = words.map(str::to_owned).collect();
                }
                Some("options") if spec.dns_options.is_empty() => {
                    options.extend(words.map(str::to_owned));
                }
                _ => {}
            }
        }
        if servers.is_empty() {
            servers = FALLBACK_NAMESERVERS.iter().map(|s| s.to_string()).collect();
        }
    }
    let mut out = String::new();
    for s in servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

/// Writes `hosts`, `resolv.conf` and `hostname` into `dir`; `host_resolv_conf` is the
/// host's resolver file (read only when `spec.dns` is empty; a missing one counts as
/// empty).
pub fn write(dir: &Path, spec: &FilesSpec, host_resolv_conf: &Path) -> Result<(), FilesError> {
    let host = if spec.dns.is_empty() {
        match fs::read_to_string(host_resolv_conf) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(FilesError::ReadResolvConf {
                    path: host_resolv_conf.to_owned(),
                    source,
                })
            }
        }
    } else {
        String::new()
    };
    for (name, text) in [
        ("hosts", hosts(spec)),
        ("resolv.conf", resolv_conf(spec, &host)),
        ("hostname", format!("{}\n", spec.hostname)),
    ] {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        fs::write(&tmp, text)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|source| FilesError::Write { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_and_falls_back() {
        let spec = FilesSpec::default();
        let host =
            "nameserver 127.0.0.53\nnameserver 10.1.2.3\nsearch corp.example\noptions edns0\n";
        assert_eq!(
            resolv_conf(&spec, host),
            "nameserver 10.1.2.3\nsearch corp.example\noptions edns0\n"
        );
        assert_eq!(
            resolv_conf(&spec, "nameserver 127.0.0.53\n"),
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        let given = FilesSpec {
            dns: vec!["1.1.1.1".parse().unwrap()],
            ..FilesSpec::default()
        };
        assert_eq!(resolv_conf(&given, host), "nameserver 1.1.1.1\n");
    }
}
