//! hulld's settings: command-line flags like dockerd's, merged with a JSON configuration file
//! with daemon.json's keys. As in dockerd, a setting given both ways is an error, and so is
//! a key hulld does not know.

use std::path::{Path, PathBuf};

use clap::Parser;

pub const DEFAULT_HOST: &str = "unix:///run/hull/hull.sock";
pub const DEFAULT_CONFIG_FILE: &str = "/etc/hull/daemon.json";

#[derive(Parser, Debug)]
#[command(
    name = "hulld",
    version,
    about = "hull's daemon: the Docker Engine API on a UNIX socket"
)]
pub struct Flags {
    /// Socket to listen on (repeatable): unix:///path. tcp:// needs mutual TLS, not yet
    /// available. Default unix:///run/hull/hull.sock.
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub hosts: Vec<String>,
    /// Root of persistent state (images). Default /var/lib/hull.
    #[arg(long, value_name = "DIR")]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (0711: containers walk through it to their rootfs; not
    /// listable). Default /run/hull.
    #[arg(long, value_name = "DIR")]
    pub exec_root: Option<PathBuf>,
    /// Group given access to the socket (0660); root only when it does not exist. Default hull.
    #[arg(short = 'G', long, value_name = "GROUP")]
    pub group: Option<String>,
    /// debug, info, warn, error or fatal. Default info.
    #[arg(short = 'l', long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Debug logging (as --log-level debug).
    #[arg(short = 'D', long)]
    pub debug: bool,
    /// A registry (host[:port]) that may be reached over plain HTTP (repeatable); loopback
    /// registries always may.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
    /// `none`: no default bridge (containers of the default network get an empty network
    /// namespace). Default: the bridge hull0.
    #[arg(short = 'b', long, value_name = "none")]
    pub bridge: Option<String>,
    /// Use TLS (hull requires --tlsverify for tcp://; --tls alone is refused).
    #[arg(long)]
    pub tls: bool,
    /// Require every TCP client to present a certificate signed by --tlscacert (mutual TLS).
    #[arg(long)]
    pub tlsverify: bool,
    /// CA certificates (PEM) that clients' certificates must chain to.
    #[arg(long, value_name = "FILE")]
    pub tlscacert: Option<PathBuf>,
    /// The server's certificate (PEM, chain allowed).
    #[arg(long, value_name = "FILE")]
    pub tlscert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tlskey: Option<PathBuf>,
    /// JSON configuration file (daemon.json keys). Default /etc/hull/daemon.json, if present.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// What callers may ask for beyond hull's secure defaults (all refused unless given).
    #[command(flatten)]
    pub policy: PolicyFlags,
}

/// The request policy (crates/engine/src/policy.rs): each flag, or its daemon.json key of
/// the same name, lets callers ask for one thing that gives a container the host.
#[derive(clap::Args, Debug, Default, Clone)]
pub struct PolicyFlags {
    /// Allow `--privileged` and `--security-opt systempaths=unconfined`.
    #[arg(long)]
    pub allow_privileged: bool,
    /// Allow `--pid/--network/--ipc/--uts/--cgroupns=host`.
    #[arg(long)]
    pub allow_host_namespaces: bool,
    /// Allow `--cap-add` of a capability that gives the host (SYS_ADMIN, NET_ADMIN, ALL...;
    /// repeatable).
    #[arg(long = "allow-cap", value_name = "CAP")]
    pub allow_caps: Vec<String>,
    /// Bind sources must lie under one of these (repeatable; default: anywhere not denied).
    #[arg(long = "allow-bind", value_name = "PATH")]
    pub allow_binds: Vec<PathBuf>,
    /// A host path never bind-mounted, in addition to hull's list (repeatable).
    #[arg(long = "deny-bind", value_name = "PATH")]
    pub deny_binds: Vec<PathBuf>,
    /// Allow `--device` of block devices and host memory, and wide device cgroup rules.
    #[arg(long)]
    pub allow_host_devices: bool,
    /// Allow `--security-opt seccomp=unconfined` and profiles that allow by default.
    #[arg(long)]
    pub allow_unconfined_seccomp: bool,
    /// Allow `--security-opt apparmor=unconfined`.
    #[arg(long)]
    pub allow_unconfined_apparmor: bool,
    /// Allow `--userns=host` (container root is host root).
    #[arg(long)]
    pub allow_userns_host: bool,
}

impl PolicyFlags {
    /// The flags and the file's keys together (either may allow).
    fn merge(mut self, file: PolicyFlags) -> PolicyFlags {
        self.allow_privileged |= file.allow_privileged;
        self.allow_host_namespaces |= file.allow_host_namespaces;
        self.allow_caps.extend(file.allow_caps);
        self.allow_binds.extend(file.allow_binds);
        self.deny_binds.extend(file.deny_binds);
        self.allow_host_devices |= file.allow_host_devices;
        self.allow_unconfined_seccomp |= file.allow_unconfined_seccomp;
        self.allow_unconfined_apparmor |= file.allow_unconfined_apparmor;
        self.allow_userns_host |= file.allow_userns_host;
        self
    }

    /// The engine's policy for a daemon whose state lives in `data_root`.
    pub fn policy(&self, data_root: &Path) -> hull_engine::Policy {
        let mut p = hull_engine::Policy::new(data_root);
        p.allow_privileged = self.allow_privileged;
        p.allow_host_namespaces = self.allow_host_namespaces;
        p.allowed_caps = self.allow_caps.clone();
        p.allowed_bind_prefixes = self.allow_binds.clone();
        p.denied_bind_paths.extend(self.deny_binds.iter().cloned());
        p.allow_host_devices = self.allow_host_devices;
        p.allow_unconfined_seccomp = self.allow_unconfined_seccomp;
        p.allow_unconfined_apparmor = self.allow_unconfined_apparmor;
        p.allow_userns_host = self.allow_userns_host;
        p
    }
}

/// The configuration file's keys (daemon.json's names).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    hosts: Option<Vec<String>>,
    data_root: Option<PathBuf>,
    exec_root: Option<PathBuf>,
    group: Option<String>,
    log_level: Option<String>,
    debug: Option<bool>,
    insecure_registries: Option<Vec<String>>,
    bridge: Option<String>,
    /// Containers' default log driver (json-file or none) and its options.
    log_driver: Option<String>,
    log_opts: Option<std::collections::BTreeMap<String, String>>,
    tls: Option<bool>,
    tlsverify: Option<bool>,
    tlscacert: Option<PathBuf>,
    tlscert: Option<PathBuf>,
    tlskey: Option<PathBuf>,
    // The request policy (PolicyFlags; serde cannot flatten with deny_unknown_fields).
    #[serde(default)]
    allow_privileged: bool,
    #[serde(default)]
    allow_host_namespaces: bool,
    #[serde(default)]
    allow_caps: Vec<String>,
    #[serde(default)]
    allow_binds: Vec<PathBuf>,
    #[serde(default)]
    deny_binds: Vec<PathBuf>,
    #[serde(default)]
    allow_host_devices: bool,
    #[serde(default)]
    allow_unconfined_seccomp: bool,
    #[serde(default)]
    allow_unconfined_apparmor: bool,
    #[serde(default)]
    allow_userns_host: bool,
}

/// The merged settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<String>,
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub group: String,
    pub log_level: String,
    pub insecure_registries: Vec<String>,
    /// `--bridge none`: no bridge networking.
    pub no_bridge: bool,
    /// daemon.json's `log-driver` and `log-opts` (checked when the container service opens).
    pub log_driver: Option<String>,
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// `--tlsverify` with its files: tcp:// hosts are served with mutual TLS.
    pub tls: Option<crate::listen::TlsFiles>,
    /// What callers may ask for beyond the secure defaults.
    pub policy: PolicyFlags,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading the configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(
        "the following directives are specified both as a flag and in the configuration file: {0}"
    )]
    Conflict(String),
    #[error("--log-level {0:?}: expected one of debug, info, warn, error, fatal")]
    LogLevel(String),
    #[error("--bridge {0:?}: only \"none\" is supported (the default network's bridge is hull0)")]
    Bridge(String),
    #[error("{0}")]
    Tls(String),
    #[error("{what} {path}: must be an absolute path")]
    Relative { what: &'static str, path: PathBuf },
}

fn read_file(path: &Path, explicit: bool) -> Result<File, ConfigError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(File::default())
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    serde_json::from_slice(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

pub fn load(flags: Flags) -> Result<Config, ConfigError> {
    let explicit = flags.config_file.is_some();
    let path = flags
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
    let file = read_file(&path, explicit)?;
    let mut both = Vec::new();
    let mut pick = |name: &str, flag: bool, in_file: bool| {
        if flag && in_file {
            both.push(name.to_string());
        }
    };
    pick("hosts", !flags.hosts.is_empty(), file.hosts.is_some());
    pick(
        "data-root",
        flags.data_root.is_some(),
        file.data_root.is_some(),
    );
    pick(
        "exec-root",
        flags.exec_root.is_some(),
        file.exec_root.is_some(),
    );
    pick("group", flags.group.is_some(), file.group.is_some());
    pick(
        "log-level",
        flags.log_level.is_some(),
        file.log_level.is_some(),
    );
    pick(
        "insecure-registries",
        !flags.insecure_registries.is_empty(),
        file.insecure_registries.is_some(),
    );
    pick("bridge", flags.bridge.is_some(), file.bridge.is_some());
    pick("tls", flags.tls, file.tls.is_some());
    pick("tlsverify", flags.tlsverify, file.tlsverify.is_some());
    pick(
        "tlscacert",
        flags.tlscacert.is_some(),
        file.tlscacert.is_some(),
    );
    pick("tlscert", flags.tlscert.is_some(), file.tlscert.is_some());
    pick("tlskey", flags.tlskey.is_some(), file.tlskey.is_some());
    if !both.is_empty() {
        return Err(ConfigError::Conflict(both.join(", ")));
    }
    let no_bridge = match flags.bridge.or(file.bridge).as_deref() {
        None | Some("") => false,
        Some("none") => true,
        Some(other) => return Err(ConfigError::Bridge(other.to_string())),
    };
    let debug = flags.debug || file.debug.unwrap_or(false);
    let mut log_level = flags
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| "info".into());
    if !["debug", "info", "warn", "error", "fatal"].contains(&log_level.as_str()) {
        return Err(ConfigError::LogLevel(log_level));
    }
    if debug {
        log_level = "debug".into();
    }
    let hosts = match (flags.hosts, file.hosts) {
        (h, _) if !h.is_empty() => h,
        (_, Some(h)) if !h.is_empty() => h,
        _ => vec![DEFAULT_HOST.to_string()],
    };
    let tlsverify = flags.tlsverify || file.tlsverify.unwrap_or(false);
    let tls_only = flags.tls || file.tls.unwrap_or(false);
    let ca = flags.tlscacert.or(file.tlscacert);
    let cert = flags.tlscert.or(file.tlscert);
    let key = flags.tlskey.or(file.tlskey);
    let tls = if tlsverify {
        match (ca, cert, key) {
            (Some(ca), Some(cert), Some(key)) => Some(crate::listen::TlsFiles { ca, cert, key }),
            _ => {
                return Err(ConfigError::Tls(
                    "--tlsverify needs --tlscacert, --tlscert and --tlskey".into(),
                ))
            }
        }
    } else {
        if tls_only {
            return Err(ConfigError::Tls(
                "--tls without --tlsverify would accept any client; hull serves TCP only with mutual TLS: add --tlsverify and --tlscacert".into(),
            ));
        }
        if ca.is_some() || cert.is_some() || key.is_some() {
            return Err(ConfigError::Tls(
                "--tlscacert/--tlscert/--tlskey are used only with --tlsverify".into(),
            ));
        }
        None
    };
    let cfg = Config {
        tls,
        hosts,
        data_root: flags
            .data_root
            .or(file.data_root)
            .unwrap_or_else(|| "/var/lib/hull".into()),
        exec_root: flags
            .exec_root
            .or(file.exec_root)
            .unwrap_or_else(|| "/run/hull".into()),
        group: flags.group.or(file.group).unwrap_or_else(|| "hull".into()),
        log_level,
        insecure_registries: if flags.insecure_registries.is_empty() {
            file.insecure_registries.unwrap_or_default()
        } else {
            flags.insecure_registries
        },
        no_bridge,
        log_driver: file.log_driver,
        log_opts: file.log_opts.unwrap_or_default(),
        policy: flags.policy.merge(PolicyFlags {
            allow_privileged: file.allow_privileged,
            allow_host_namespaces: file.allow_host_namespaces,
            allow_caps: file.allow_caps,
            allow_binds: file.allow_binds,
            deny_binds: file.deny_binds,
            allow_host_devices: file.allow_host_devices,
            allow_unconfined_seccomp: file.allow_unconfined_seccomp,
            allow_unconfined_apparmor: file.allow_unconfined_apparmor,
            allow_userns_host: file.allow_userns_host,
        }),
    };
    for (what, p) in [
        ("--data-root", &cfg.data_root),
        ("--exec-root", &cfg.exec_root),
    ] {
        if !p.is_absolute() {
            return Err(ConfigError::Relative {
                what,
                path: p.clone(),
            });
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::parse_from(std::iter::once("hulld").chain(args.iter().copied()))
    }

    #[test]
    fn file_and_flags_merge_and_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, r#"{"data-root": "/srv/hull", "log-level": "warn"}"#).unwrap();
        let fp = f.to_str().unwrap();
        let c = load(flags(&["--config-file", fp, "--exec-root", "/run/x"])).unwrap();
        assert_eq!(c.data_root, PathBuf::from("/srv/hull"));
        assert_eq!(c.exec_root, PathBuf::from("/run/x"));
        assert_eq!(c.log_level, "warn");
        assert_eq!(c.hosts, [DEFAULT_HOST]);
        let e = load(flags(&["--config-file", fp, "--data-root", "/a"])).unwrap_err();
        assert!(e.to_string().contains("data-root"), "{e}");
        let e = load(flags(&["--config-file", fp, "-l", "loud"])).unwrap_err();
        assert!(matches!(e, ConfigError::Conflict(_)), "{e}");
        std::fs::write(&f, r#"{"log-level": "loud"}"#).unwrap();
        let e = load(flags(&["--config-file", fp])).unwrap_err();
        assert!(matches!(e, ConfigError::LogLevel(_)), "{e}");
        std::fs::write(&f, r#"{"storage-driver": "overlay2"}"#).unwrap();
        let e = load(flags(&["--config-file", fp])).unwrap_err();
        assert!(e.to_string().contains("storage-driver"), "{e}");
        let e = load(flags(&["--config-file", "/nonexistent/daemon.json"])).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn policy_from_flags_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(
            &f,
            r#"{"allow-caps": ["NET_ADMIN"], "allow-userns-host": true}"#,
        )
        .unwrap();
        let fp = f.to_str().unwrap();
        let c = load(flags(&["--config-file", fp, "--allow-privileged"])).unwrap();
        let p = c.policy.policy(Path::new("/var/lib/hull"));
        assert!(p.allow_privileged && p.allow_userns_host);
        assert!(!p.allow_unconfined_seccomp && !p.allow_host_namespaces);
        assert_eq!(p.allowed_caps, ["NET_ADMIN"]);
        // Nothing allowed unless asked.
        std::fs::write(&f, "{}").unwrap();
        let c = load(flags(&["--config-file", fp])).unwrap();
        assert_eq!(
            c.policy.policy(Path::new("/x")),
            hull_engine::Policy::new(Path::new("/x"))
        );
    }

    #[test]
    fn bridge_none_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("daemon.json");
        std::fs::write(&f, "{}").unwrap();
        let fp = f.to_str().unwrap();
        assert!(!load(flags(&["--config-file", fp])).unwrap().no_bridge);
        assert!(
            load(flags(&["--config-file", fp, "-b", "none"]))
                .unwrap()
                .no_bridge
        );
        let e = load(flags(&["--config-file", fp, "--bridge", "br0"])).unwrap_err();
        assert!(matches!(e, ConfigError::Bridge(_)), "{e}");
        std::fs::write(&f, r#"{"bridge": "none"}"#).unwrap();
        assert!(load(flags(&["--config-file", fp])).unwrap().no_bridge);
    }
}
