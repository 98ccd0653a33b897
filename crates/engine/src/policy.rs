//! The request check that keeps a caller from handing a container the host.
//!
//! Anyone who can reach the API socket can ask for any container; with Docker that is root on
//! the host (`docker run -v /:/host --privileged`). hulld runs [`check`] on every create
//! request before building a spec: everything that gives a container the host is refused
//! unless the daemon's [`Policy`] allows it, and each refusal names the request parameter and
//! the policy field (and hulld flag) that would allow it.

mod paths;

use std::path::{Path, PathBuf};

pub use paths::{normalize, resolve, HostFs, HostPaths};

use crate::defaults;
use crate::docker_types::{ContainerConfig, HostConfig};
use crate::spec::{normalize_cap, sysctl_namespace};

/// Capabilities that give a container the host (load modules, reboot, raw I/O, any mount,
/// bypass file read checks, change the clock or the network, eBPF, ...). `ALL` stands for all.
pub const DENIED_CAPS: [&str; 15] = [
    "CAP_SYS_ADMIN",
    "CAP_SYS_MODULE",
    "CAP_SYS_PTRACE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_BOOT",
    "CAP_SYS_TIME",
    "CAP_NET_ADMIN",
    "CAP_DAC_READ_SEARCH",
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_MAC_ADMIN",
    "CAP_MAC_OVERRIDE",
    "CAP_SYSLOG",
    "CAP_LINUX_IMMUTABLE",
    "ALL",
];

/// Host device nodes that are the host's memory or I/O ports, whatever their type.
pub const DENIED_DEVICES: [&str; 3] = ["/dev/mem", "/dev/kmem", "/dev/port"];

/// What the daemon lets callers ask for. [`Policy::new`] denies everything below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `--privileged`, `systempaths=unconfined`, and MaskedPaths/ReadonlyPaths that unmask a
    /// default path (hulld `--allow-privileged`).
    pub allow_privileged: bool,
    /// `--pid/--network/--ipc/--uts/--cgroupns=host` (hulld `--allow-host-namespaces`).
    pub allow_host_namespaces: bool,
    /// Capabilities of [`DENIED_CAPS`] that may still be added (hulld `--allow-cap NAME`).
    pub allowed_caps: Vec<String>,
    /// When not empty, bind sources must lie under one of these; one that lies inside a
    /// denied path opens exactly that subtree (hulld `--allow-bind PATH`).
    pub allowed_bind_prefixes: Vec<PathBuf>,
    /// Never bind-mounted, nor any path under them, nor any parent of them (`/` only itself
    /// and as a parent) (hulld `--deny-bind PATH` adds).
    pub denied_bind_paths: Vec<PathBuf>,
    /// `--device` of block devices and /dev/mem, /dev/kmem, /dev/port; device cgroup rules
    /// for block or all devices (hulld `--allow-host-devices`).
    pub allow_host_devices: bool,
    /// `seccomp=unconfined`, or a profile that allows what it does not list (hulld
    /// `--allow-unconfined-seccomp`).
    pub allow_unconfined_seccomp: bool,
    /// `apparmor=unconfined` (hulld `--allow-unconfined-apparmor`).
    pub allow_unconfined_apparmor: bool,
    /// `--userns=host`: container root is host root (hulld `--allow-userns-host`).
    pub allow_userns_host: bool,
}

impl Policy {
    /// The deny-by-default policy for a daemon whose state lives in `data_root`.
    pub fn new(data_root: &Path) -> Self {
        let mut denied: Vec<PathBuf> = [
            "/",
            "/etc",
            "/proc",
            "/sys",
            "/dev",
            "/boot",
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/run/hull",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        denied.push(data_root.to_owned());
        // Other daemons whose socket or state is root on the host.
        denied.extend(
            [
                "/run/containerd",
                "/var/lib/containerd",
                "/var/lib/docker",
                "/run/crio",
                "/run/podman",
                "/var/lib/containers",
                "/run/systemd",
                "/run/dbus",
            ]
            .iter()
            .map(PathBuf::from),
        );
        Policy {
            allow_privileged: false,
            allow_host_namespaces: false,
            allowed_caps: Vec::new(),
            allowed_bind_prefixes: Vec::new(),
            denied_bind_paths: denied,
            allow_host_devices: false,
            allow_unconfined_seccomp: false,
            allow_unconfined_apparmor: false,
            allow_userns_host: false,
        }
    }
}

/// One thing a request asks for that the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    #[error("HostConfig.Privileged: --privileged gives the container every capability and the host's devices; refused by policy (allow with hulld --allow-privileged, or \"allow-privileged\": true in daemon.json)")]
    Privileged,
    #[error("{field}: {what} takes away the masking of host kernel files; refused by policy (allow with hulld --allow-privileged, or \"allow-privileged\": true in daemon.json)")]
    SystemPaths { field: &'static str, what: String },
    #[error("HostConfig.CapAdd: {cap} gives the container power over the host; refused by policy (allow with hulld --allow-cap {cap}, or \"allow-caps\": [\"{cap}\"] in daemon.json)")]
    Capability { cap: String },
    #[error("HostConfig.{field}: {field}=host shares the host's namespace; refused by policy (allow with hulld --allow-host-namespaces, or \"allow-host-namespaces\": true in daemon.json)")]
    HostNamespace { field: &'static str },
    #[error("HostConfig.UsernsMode: --userns=host makes container root host root; refused by policy (allow with hulld --allow-userns-host, or \"allow-userns-host\": true in daemon.json)")]
    UsernsHost,
    #[error("{field}: bind source {source} (resolved to {resolved}) is or contains {denied}; refused by policy (remove it from Policy.denied_bind_paths, hulld --deny-bind, to allow)", source = .bind_source.display(), resolved = .resolved.display(), denied = .denied.display())]
    BindDenied {
        field: String,
        bind_source: PathBuf,
        resolved: PathBuf,
        denied: PathBuf,
    },
    #[error("{field}: bind source {source} (resolved to {resolved}) is not under an allowed path; refused by policy (add a prefix to Policy.allowed_bind_prefixes, hulld --allow-bind PATH)", source = .bind_source.display(), resolved = .resolved.display())]
    BindNotAllowed {
        field: String,
        bind_source: PathBuf,
        resolved: PathBuf,
    },
    #[error("{field}: {path} is a host block device or the host's memory; refused by policy (allow with hulld --allow-host-devices, or \"allow-host-devices\": true in daemon.json)", path = .path.display())]
    HostDevice { field: String, path: PathBuf },
    #[error("{field}: {rule:?} opens block devices, host memory or every device; refused by policy (allow with hulld --allow-host-devices, or \"allow-host-devices\": true in daemon.json)")]
    DeviceCgroupRule { field: String, rule: String },
    #[error("HostConfig.SecurityOpt: {what} turns the syscall filter off; refused by policy (allow with hulld --allow-unconfined-seccomp, or \"allow-unconfined-seccomp\": true in daemon.json)")]
    SeccompUnconfined { what: &'static str },
    #[error("HostConfig.SecurityOpt: apparmor=unconfined; refused by policy (allow with hulld --allow-unconfined-apparmor, or \"allow-unconfined-apparmor\": true in daemon.json)")]
    ApparmorUnconfined,
    #[error("HostConfig.Sysctls: {key:?} is not a namespaced sysctl and would change the host; hull never allows it")]
    Sysctl { key: String },
    #[error("{field}: {path:?} is not an absolute path")]
    RelativePath { field: String, path: String },
}

/// Every violation in the request (empty: allowed). `paths` resolves symlinks on the host.
pub fn violations(
    cfg: &ContainerConfig,
    host: &HostConfig,
    policy: &Policy,
    paths: &dyn HostPaths,
) -> Vec<PolicyViolation> {
    let _ = cfg;
    let mut out = Vec::new();
    if host.privileged && !policy.allow_privileged {
        out.push(PolicyViolation::Privileged);
    }
    check_security_opts(host, policy, &mut out);
    check_caps(host, policy, &mut out);
    check_namespaces(host, policy, &mut out);
    check_binds(host, policy, paths, &mut out);
    check_devices(host, policy, paths, &mut out);
    for key in host.sysctls.keys() {
        if sysctl_namespace(key).is_none() {
            out.push(PolicyViolation::Sysctl { key: key.clone() });
        }
    }
    out
}

/// The first violation, if any: what hulld returns to the caller (HTTP 403).
pub fn check(
    cfg: &ContainerConfig,
    host: &HostConfig,
    policy: &Policy,
    paths: &dyn HostPaths,
) -> Result<(), PolicyViolation> {
    match violations(cfg, host, policy, paths).into_iter().next() {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// What the request's `SecurityOpt` asks for, as far as the policy cares. Options the spec
/// builder will refuse are ignored here.
#[derive(Default)]
struct SecurityOptsView {
    seccomp_unconfined: bool,
    seccomp_allows_by_default: bool,
    apparmor_unconfined: bool,
    systempaths_unconfined: bool,
}

impl SecurityOptsView {
    fn of(opts: &[String]) -> Self {
        let value = |opt: &'_ str, key: &str| -> Option<String> {
            let rest = opt.strip_prefix(key)?;
            rest.strip_prefix('=')
                .or_else(|| rest.strip_prefix(':'))
                .map(String::from)
        };
        let mut v = SecurityOptsView::default();
        for opt in opts {
            if let Some(s) = value(opt, "seccomp") {
                if s == "unconfined" {
                    v.seccomp_unconfined = true;
                } else if let Ok(profile) = serde_json::from_str::<serde_json::Value>(&s) {
                    let action = profile.get("defaultAction").and_then(|a| a.as_str());
                    v.seccomp_allows_by_default =
                        matches!(action, Some("SCMP_ACT_ALLOW" | "SCMP_ACT_LOG"));
                }
            }
            v.apparmor_unconfined |= value(opt, "apparmor").as_deref() == Some("unconfined");
            v.systempaths_unconfined |= value(opt, "systempaths").as_deref() == Some("unconfined");
        }
        v
    }
}

fn check_security_opts(host: &HostConfig, policy: &Policy, out: &mut Vec<PolicyViolation>) {
    let view = SecurityOptsView::of(&host.security_opt);
    if !policy.allow_unconfined_seccomp {
        if view.seccomp_unconfined {
            out.push(PolicyViolation::SeccompUnconfined {
                what: "seccomp=unconfined",
            });
        } else if view.seccomp_allows_by_default {
            out.push(PolicyViolation::SeccompUnconfined {
                what: "a seccomp profile whose defaultAction allows every syscall it does not list",
            });
        }
    }
    if view.apparmor_unconfined && !policy.allow_unconfined_apparmor {
        out.push(PolicyViolation::ApparmorUnconfined);
    }
    if policy.allow_privileged {
        return;
    }
    if view.systempaths_unconfined {
        out.push(PolicyViolation::SystemPaths {
            field: "HostConfig.SecurityOpt",
            what: "systempaths=unconfined".to_owned(),
        });
    }
    for (field, given, defaults) in [
        (
            "HostConfig.MaskedPaths",
            &host.masked_paths,
            &defaults::MASKED_PATHS[..],
        ),
        (
            "HostConfig.ReadonlyPaths",
            &host.readonly_paths,
            &defaults::READONLY_PATHS[..],
        ),
    ] {
        if let Some(list) = given {
            if let Some(missing) = defaults.iter().find(|d| !list.iter().any(|p| p == *d)) {
                out.push(PolicyViolation::SystemPaths {
                    field,
                    what: format!("leaving out {missing}"),
                });
            }
        }
    }
}

fn check_caps(host: &HostConfig, policy: &Policy, out: &mut Vec<PolicyViolation>) {
    let allowed: Vec<String> = policy
        .allowed_caps
        .iter()
        .map(|c| normalize_cap(c))
        .collect();
    for cap in host.cap_add.iter().map(|c| normalize_cap(c)) {
        if DENIED_CAPS.contains(&cap.as_str()) && !allowed.contains(&cap) {
            out.push(PolicyViolation::Capability { cap });
        }
    }
}

fn check_namespaces(host: &HostConfig, policy: &Policy, out: &mut Vec<PolicyViolation>) {
    if !policy.allow_host_namespaces {
        for (field, mode) in [
            ("PidMode", &host.pid_mode),
            ("NetworkMode", &host.network_mode),
            ("IpcMode", &host.ipc_mode),
            ("UTSMode", &host.uts_mode),
            ("CgroupnsMode", &host.cgroupns_mode),
        ] {
            if mode == "host" {
                out.push(PolicyViolation::HostNamespace { field });
            }
        }
    }
    if host.userns_mode == "host" && !policy.allow_userns_host {
        out.push(PolicyViolation::UsernsHost);
    }
}

fn check_binds(
    host: &HostConfig,
    policy: &Policy,
    paths: &dyn HostPaths,
    out: &mut Vec<PolicyViolation>,
) {
    let mut sources: Vec<(String, &str)> = Vec::new();
    for (i, b) in host.binds.iter().enumerate() {
        let source = b.split(':').next().unwrap_or("");
        // A source that is not a path is a volume name: the daemon owns its directory.
        if source.starts_with('/') {
            sources.push((format!("HostConfig.Binds[{i}]"), source));
        }
    }
    for (i, m) in host.mounts.iter().enumerate() {
        if m.r#type == "bind" {
            if !m.source.starts_with('/') {
                out.push(PolicyViolation::RelativePath {
                    field: format!("HostConfig.Mounts[{i}].Source"),
                    path: m.source.clone(),
                });
                continue;
            }
            sources.push((format!("HostConfig.Mounts[{i}].Source"), &m.source));
        }
    }
    let denied: Vec<PathBuf> = policy
        .denied_bind_paths
        .iter()
        .map(|d| resolve(d, paths))
        .collect();
    let allowed: Vec<PathBuf> = policy
        .allowed_bind_prefixes
        .iter()
        .map(|p| resolve(p, paths))
        .collect();
    for (field, source) in sources {
        let resolved = resolve(Path::new(source), paths);
        let bad = |denied: &Path| PolicyViolation::BindDenied {
            field: field.clone(),
            bind_source: source.into(),
            resolved: resolved.clone(),
            denied: denied.to_owned(),
        };
        // The source is a denied path or holds one: never.
        if let Some(d) = denied.iter().find(|d| d.starts_with(&resolved)) {
            out.push(bad(d));
            continue;
        }
        // Inside a denied path: only where an allowed prefix inside it opens a subtree.
        if let Some(d) = denied
            .iter()
            .find(|d| d.as_os_str() != "/" && resolved.starts_with(d))
        {
            let opened = allowed
                .iter()
                .any(|p| p.starts_with(d) && resolved.starts_with(p));
            if !opened {
                out.push(bad(d));
            }
            continue;
        }
        if !allowed.is_empty() && !allowed.iter().any(|p| resolved.starts_with(p)) {
            out.push(PolicyViolation::BindNotAllowed {
                field,
                bind_source: source.into(),
                resolved,
            });
        }
    }
}

fn check_devices(
    host: &HostConfig,
    policy: &Policy,
    paths: &dyn HostPaths,
    out: &mut Vec<PolicyViolation>,
) {
    if policy.allow_host_devices {
        return;
    }
    for (i, d) in host.devices.iter().enumerate() {
        let field = format!("HostConfig.Devices[{i}].PathOnHost");
        if !d.path_on_host.starts_with('/') {
            out.push(PolicyViolation::RelativePath {
                field,
                path: d.path_on_host.clone(),
            });
            continue;
        }
        let resolved = resolve(Path::new(&d.path_on_host), paths);
        let memory = DENIED_DEVICES.iter().any(|m| resolved == Path::new(m));
        if memory || paths.is_block_device(&resolved) {
            out.push(PolicyViolation::HostDevice {
                field,
                path: resolved,
            });
        }
    }
    for (i, rule) in host.device_cgroup_rules.iter().enumerate() {
        let f: Vec<&str> = rule.split_whitespace().collect();
        let numbers = f.get(1).and_then(|n| n.split_once(':'));
        let opens_host = match (f.first(), numbers) {
            (Some(&"c"), Some((major, minor))) => {
                major == "*" || (major == "1" && ["*", "1", "2", "4"].contains(&minor))
            }
            _ => true,
        };
        if opens_host {
            out.push(PolicyViolation::DeviceCgroupRule {
                field: format!("HostConfig.DeviceCgroupRules[{i}]"),
                rule: rule.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
