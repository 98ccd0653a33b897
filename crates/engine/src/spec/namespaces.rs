//! Namespace modes (`--pid`, `--ipc`, `--uts`, `--network`, `--cgroupns`, `--userns`) and
//! sysctls, which depend on them.

use std::collections::HashMap;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType};

use super::{BuildContext, SpecBuildError};
use crate::defaults::{self, UserNamespacePlan};
use crate::docker_types::{ContainerConfig, HostConfig};

/// The namespaces the container gets and what follows from them.
#[derive(Debug, Clone)]
pub(super) struct NsPlan {
    pub namespaces: Vec<LinuxNamespace>,
    pub own_net: bool,
    pub own_ipc: bool,
    /// `IpcMode=host`: /dev/shm and /dev/mqueue are the host's.
    pub host_ipc: bool,
    pub own_uts: bool,
    /// A sysfs of the container's network namespace (its own or another container's) is
    /// mounted on /sys; with the host's network namespace, the host's /sys is bound. In a
    /// user namespace that does not own the network namespace (hulld makes it), hull's
    /// runtime makes the sysfs mount itself, outside the user namespace, and hands it to
    /// the init (runtime::rootfs::sysfs_for_joined_netns).
    pub sysfs_mountable: bool,
    /// The container runs in a user namespace (its own, or one it joins).
    pub in_userns: bool,
    /// The mappings to write for a new user namespace.
    pub userns_plan: Option<UserNamespacePlan>,
    pub hostname: String,
}

enum Mode {
    New,
    Host,
    Join(String),
}

fn mode(
    field: &'static str,
    value: &str,
    new: &[&str],
    expected: &'static str,
) -> Result<Mode, SpecBuildError> {
    if new.contains(&value) {
        Ok(Mode::New)
    } else if value == "host" {
        Ok(Mode::Host)
    } else if let Some(id) = value.strip_prefix("container:").filter(|id| !id.is_empty()) {
        Ok(Mode::Join(id.to_owned()))
    } else {
        Err(SpecBuildError::NamespaceMode {
            field,
            value: value.to_owned(),
            expected,
        })
    }
}

fn ns(typ: LinuxNamespaceType, path: Option<std::path::PathBuf>) -> LinuxNamespace {
    let mut b = LinuxNamespaceBuilder::default().typ(typ);
    if let Some(p) = path {
        b = b.path(p);
    }
    b.build().expect("namespace type is set")
}

fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Time => "time",
    }
}

/// Works out the namespaces from the request's modes.
pub(super) fn plan(
    id: &str,
    cfg: &ContainerConfig,
    host: &HostConfig,
    ctx: &BuildContext,
) -> Result<NsPlan, SpecBuildError> {
    let join_expected = "\"\", host or container:<id>";
    let pid = mode("PidMode", &host.pid_mode, &[""], join_expected)?;
    let ipc = mode(
        "IpcMode",
        &host.ipc_mode,
        &["", "private", "shareable", "none"],
        "\"\", private, shareable, none, host or container:<id>",
    )?;
    let uts = match host.uts_mode.as_str() {
        "" => Mode::New,
        "host" => Mode::Host,
        other => {
            return Err(SpecBuildError::NamespaceMode {
                field: "UTSMode",
                value: other.to_owned(),
                expected: "\"\" or host",
            })
        }
    };
    let cgroup = match host.cgroupns_mode.as_str() {
        "" | "private" => Mode::New,
        "host" => Mode::Host,
        other => {
            return Err(SpecBuildError::NamespaceMode {
                field: "CgroupnsMode",
                value: other.to_owned(),
                expected: "\"\", private or host",
            })
        }
    };
    // `none` (or NetworkDisabled): a new, empty namespace. Any other name (bridge, default,
    // a user network): the namespace the network layer prepared.
    let net_empty = cfg.network_disabled || host.network_mode == "none";
    let net = match host.network_mode.as_str() {
        _ if net_empty => Mode::New,
        "host" => Mode::Host,
        m if m.starts_with("container:") => mode("NetworkMode", m, &[], join_expected)?,
        _ => Mode::New,
    };
    let userns_wanted = match host.userns_mode.as_str() {
        "" => !host.privileged || ctx.userns_for_privileged,
        "host" => false,
        other => {
            return Err(SpecBuildError::NamespaceMode {
                field: "UsernsMode",
                value: other.to_owned(),
                expected: "\"\" or host",
            })
        }
    };
    let userns_plan = ctx.userns.filter(|_| userns_wanted);

    let mut list = vec![ns(LinuxNamespaceType::Mount, None)];
    let mut joined: Vec<(&'static str, String)> = Vec::new();
    let mut add =
        |typ: LinuxNamespaceType, field: &'static str, m: &Mode| -> Result<bool, SpecBuildError> {
            match m {
                Mode::New => {
                    list.push(ns(typ, None));
                    Ok(true)
                }
                Mode::Host => Ok(false),
                Mode::Join(id) => {
                    let path = ctx.host.container_namespace(id, typ).ok_or_else(|| {
                        SpecBuildError::ContainerNamespace {
                            field,
                            id: id.clone(),
                            ns: ns_name(typ),
                        }
                    })?;
                    list.push(ns(typ, Some(path)));
                    joined.push((field, id.clone()));
                    Ok(false)
                }
            }
        };
    add(LinuxNamespaceType::Pid, "PidMode", &pid)?;
    let own_ipc = add(LinuxNamespaceType::Ipc, "IpcMode", &ipc)?;
    let own_uts = add(LinuxNamespaceType::Uts, "UTSMode", &uts)?;
    add(LinuxNamespaceType::Cgroup, "CgroupnsMode", &cgroup)?;
    let own_net = match &net {
        Mode::New if !net_empty => {
            let path = ctx
                .netns_path
                .clone()
                .ok_or_else(|| SpecBuildError::NetworkNamespace {
                    mode: host.network_mode.clone(),
                })?;
            list.push(ns(LinuxNamespaceType::Network, Some(path)));
            true
        }
        m => add(LinuxNamespaceType::Network, "NetworkMode", m)?,
    };

    let mut in_userns = false;
    let mut mappings = None;
    if let Some(plan) = userns_plan {
        in_userns = true;
        if matches!(pid, Mode::Host) {
            return Err(SpecBuildError::HostPidWithUserns { field: "PidMode" });
        }
        if let Some((_, second)) = joined.iter().find(|(_, id)| *id != joined[0].1) {
            return Err(SpecBuildError::TwoUserNamespaces {
                fields: "PidMode/IpcMode/NetworkMode",
                first: joined[0].1.clone(),
                second: second.clone(),
            });
        }
        match joined.first() {
            // Namespaces of another container belong to its user namespace: join that too,
            // so the container can use them (its mappings are the other container's).
            Some((field, other)) => {
                let path = ctx
                    .host
                    .container_namespace(other, LinuxNamespaceType::User)
                    .ok_or_else(|| SpecBuildError::ContainerNamespace {
                        field,
                        id: other.clone(),
                        ns: "user",
                    })?;
                list.push(ns(LinuxNamespaceType::User, Some(path)));
            }
            None => {
                list.push(ns(LinuxNamespaceType::User, None));
                mappings = Some(plan);
            }
        }
    }
    let hostname = if cfg.hostname.is_empty() {
        defaults::hostname(id)
    } else {
        cfg.hostname.clone()
    };
    // Order as in defaults::NAMESPACES, for readable specs.
    list.sort_by_key(|n| {
        defaults::NAMESPACES
            .iter()
            .position(|t| *t == n.typ())
            .unwrap_or(usize::MAX)
    });
    Ok(NsPlan {
        namespaces: list,
        own_net,
        own_ipc,
        host_ipc: matches!(ipc, Mode::Host),
        own_uts,
        sysfs_mountable: !matches!(net, Mode::Host),
        in_userns,
        userns_plan: mappings,
        hostname,
    })
}

/// hull's ping sysctl (with its own network namespace) and the request's, each checked to be
/// namespaced and to have its namespace.
pub(super) fn sysctls(
    host: &HostConfig,
    ns: &NsPlan,
) -> Result<HashMap<String, String>, SpecBuildError> {
    let mut out = HashMap::new();
    if ns.own_net {
        let (k, v) = defaults::PING_GROUP_RANGE;
        // In a user namespace the kernel takes only gids the namespace maps (EINVAL else).
        let v = match ns.userns_plan {
            Some(plan) => format!("0 {}", plan.size.saturating_sub(1)),
            None => v.to_owned(),
        };
        out.insert(k.to_owned(), v);
    }
    for (key, value) in &host.sysctls {
        let (own, name, field) = match sysctl_namespace(key) {
            Some(LinuxNamespaceType::Ipc) => (ns.own_ipc, "ipc", "IpcMode"),
            Some(LinuxNamespaceType::Network) => (ns.own_net, "network", "NetworkMode"),
            Some(_) => (ns.own_uts, "uts", "UTSMode"),
            None => return Err(SpecBuildError::SysctlNotNamespaced { key: key.clone() }),
        };
        if !own {
            return Err(SpecBuildError::SysctlNamespace {
                key: key.clone(),
                ns: name,
                field,
            });
        }
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

/// The namespace a sysctl belongs to, or None for a host-wide one: the runtime's set (one
/// list for both), less `kernel.hostname`, which Docker sets only through `--hostname`.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    if key == "kernel.hostname" {
        return None;
    }
    hull_runtime::spec::sysctl_namespace(key)
}
