//! Loading and validating a bundle's `config.json`.
//!
//! Everything that can be checked without creating a process is checked here, so that a bad
//! config is refused before any cgroup, mount, state directory or process exists. Every error
//! names the field it is about, in the spec's own JSON spelling.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Mount, PosixRlimitType, Spec};

/// What is wrong with a bundle's config.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {field}: {message}")]
    Parse {
        path: PathBuf,
        field: String,
        message: String,
    },
    #[error("config.json: {field}: {message}")]
    Invalid { field: String, message: String },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Reads and parses `<bundle>/config.json`. A parse error names the JSON path of the bad field.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|source| SpecError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&bytes).map_err(|(field, message)| SpecError::Parse {
        path,
        field,
        message,
    })
}

/// Parses a spec (or, with `T`, a process spec) from JSON, returning (field path, message) on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, (String, String)> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(document)".to_string()
        } else {
            field
        };
        (field, e.into_inner().to_string())
    })
}

fn parse(bytes: &[u8]) -> Result<Spec, (String, String)> {
    parse_json(bytes)
}

/// The namespaced sysctls a container may set, by prefix or exact name, and the namespace each needs.
pub fn sysctl_namespace(key: &str) -> Option<LinuxNamespaceType> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return Some(LinuxNamespaceType::Ipc);
    }
    if key.starts_with("net.") {
        return Some(LinuxNamespaceType::Network);
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return Some(LinuxNamespaceType::Uts);
    }
    None
}

/// True when `dest` (a container path) climbs above the container root lexically ("/../x").
fn escapes_root(dest: &Path) -> bool {
    let mut depth: i32 = 0;
    for c in dest.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// The facts about the host that validation compares against.
#[derive(Debug, Clone)]
pub struct HostLimits {
    /// Whether the runtime holds CAP_SYS_RESOURCE (and so may raise hard rlimits).
    pub can_raise_rlimits: bool,
}

impl HostLimits {
    pub fn probe() -> Self {
        let can_raise_rlimits = caps::has_cap(
            None,
            caps::CapSet::Effective,
            caps::Capability::CAP_SYS_RESOURCE,
        )
        .unwrap_or(false);
        HostLimits { can_raise_rlimits }
    }
}

pub fn rlimit_resource(t: PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource as R;
    match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    }
}

/// Checks a process section (used for `create` and for `exec --process`).
pub fn validate_process(
    p: &oci_spec::runtime::Process,
    host: &HostLimits,
    field: &str,
) -> Result<(), SpecError> {
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => {}
        _ => {
            return Err(invalid(
                format!("{field}.args"),
                "must name the program to run",
            ))
        }
    }
    if !p.cwd().is_absolute() {
        return Err(invalid(
            format!("{field}.cwd"),
            format!("{:?} is not an absolute path", p.cwd()),
        ));
    }
    if let Some(env) = p.env() {
        for (i, e) in env.iter().enumerate() {
            if !e.contains('=') || e.starts_with('=') {
                return Err(invalid(
                    format!("{field}.env[{i}]"),
                    format!("{e:?} is not NAME=value"),
                ));
            }
        }
    }
    let mut seen = HashSet::new();
    for (i, r) in p.rlimits().iter().flatten().enumerate() {
        let f = format!("{field}.rlimits[{i}]");
        if !seen.insert(format!("{:?}", r.typ())) {
            return Err(invalid(f, format!("{:?} is set twice", r.typ())));
        }
        if r.soft() > r.hard() {
            return Err(invalid(
                f,
                format!("soft limit {} is above hard limit {}", r.soft(), r.hard()),
            ));
        }
        if !host.can_raise_rlimits {
            let (_, cur_hard) = nix::sys::resource::getrlimit(rlimit_resource(r.typ()))
                .map_err(|e| invalid(f.clone(), format!("cannot read the host's limit: {e}")))?;
            if r.hard() > cur_hard {
                return Err(invalid(
                    f,
                    format!(
                        "{:?} hard limit {} is above the runtime's own hard limit {}, which cannot be raised without CAP_SYS_RESOURCE; use a value up to {}",
                        r.typ(),
                        r.hard(),
                        cur_hard,
                        cur_hard
                    ),
                ));
            }
        }
    }
    if let Some(adj) = p.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                format!("{field}.oomScoreAdj"),
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    Ok(())
}

/// Checks a whole spec for `create`/`run`. `bundle` resolves a relative root path.
pub fn validate(spec: &Spec, bundle: &Path, host: &HostLimits) -> Result<(), SpecError> {
    let ver = spec.version();
    if !ver.starts_with("1.") {
        return Err(invalid(
            "ociVersion",
            format!("{ver:?} is not a supported version (1.x)"),
        ));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "is missing"))?;
    let root_path = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match std::fs::metadata(&root_path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", root_path.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!("{}: {e}", root_path.display()),
            ))
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "is missing"))?;
    validate_process(process, host, "process")?;
    if process.terminal().unwrap_or(false) && process.console_size().is_some() {
        // fine: applied to the pty.
    }

    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "is missing"))?;
    let mut types = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !types.insert(ns.typ()) {
            return Err(invalid(
                format!("linux.namespaces[{i}]"),
                format!("{:?} namespace listed twice", ns.typ()),
            ));
        }
        if let Some(p) = ns.path() {
            if !p.is_absolute() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not absolute", p.display()),
                ));
            }
            if let Err(e) = std::fs::metadata(p) {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{}: {e}", p.display()),
                ));
            }
        }
    }
    let has = |t: LinuxNamespaceType| types.contains(&t);
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_user = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if has_maps && !has(LinuxNamespaceType::User) {
        return Err(invalid(
            "linux.uidMappings",
            "uid/gid mappings need a user namespace in linux.namespaces",
        ));
    }
    if new_user && !has_maps {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    for (name, maps) in [
        ("linux.uidMappings", linux.uid_mappings()),
        ("linux.gidMappings", linux.gid_mappings()),
    ] {
        for (i, m) in maps.iter().flatten().enumerate() {
            if m.size() == 0 {
                return Err(invalid(format!("{name}[{i}].size"), "must be at least 1"));
            }
        }
    }
    if spec.hostname().is_some() && !has(LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "setting a hostname needs a uts namespace",
        ));
    }
    if linux.time_offsets().is_some() && !new_ns(linux, LinuxNamespaceType::Time) {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    for key in linux.sysctl().iter().flat_map(|m| m.keys()) {
        match sysctl_namespace(key) {
            None => {
                return Err(invalid(
                    format!("linux.sysctl.{key}"),
                    "is not a namespaced sysctl; refusing to change the host",
                ))
            }
            Some(t) if !own_ns(linux, t) => {
                return Err(invalid(
                    format!("linux.sysctl.{key}"),
                    format!("needs the container's own {t:?} namespace (a new one, or one joined by path that is not the runtime's)"),
                ))
            }
            _ => {}
        }
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        validate_mount(i, m)?;
    }
    for (i, d) in linux.devices().iter().flatten().enumerate() {
        if !d.path().is_absolute() || escapes_root(d.path()) {
            return Err(invalid(
                format!("linux.devices[{i}].path"),
                format!(
                    "{} must be an absolute path inside the container",
                    d.path().display()
                ),
            ));
        }
    }
    for (name, paths) in [
        ("linux.maskedPaths", linux.masked_paths()),
        ("linux.readonlyPaths", linux.readonly_paths()),
    ] {
        for (i, p) in paths.iter().flatten().enumerate() {
            if !p.starts_with('/') || escapes_root(Path::new(p)) {
                return Err(invalid(
                    format!("{name}[{i}]"),
                    format!("{p:?} must be an absolute path inside the container"),
                ));
            }
        }
    }
    if let Some(p) = linux.rootfs_propagation() {
        if crate::mounts::propagation_flag(p).is_none() {
            return Err(invalid(
                "linux.rootfsPropagation",
                format!("{p:?} is not one of shared, slave, private, unbindable (or r-)"),
            ));
        }
    }
    if let Some(r) = linux.resources() {
        hull_cgroups::validate(r).map_err(|e| invalid("linux.resources", e.to_string()))?;
    }
    if let Some(cp) = linux.cgroups_path() {
        if escapes_root(cp) {
            return Err(invalid(
                "linux.cgroupsPath",
                format!("{} climbs out of the cgroup root", cp.display()),
            ));
        }
    }
    if let Some(hooks) = spec.hooks() {
        let all = [
            ("prestart", hooks.prestart()),
            ("createRuntime", hooks.create_runtime()),
            ("createContainer", hooks.create_container()),
            ("startContainer", hooks.start_container()),
            ("poststart", hooks.poststart()),
            ("poststop", hooks.poststop()),
        ];
        for (name, list) in all {
            for (i, h) in list.iter().flatten().enumerate() {
                if !h.path().is_absolute() {
                    return Err(invalid(
                        format!("hooks.{name}[{i}].path"),
                        format!("{} is not absolute", h.path().display()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// True when the container gets a namespace of type `t` that is not the runtime's own: a new
/// one, or one joined by path whose inode differs from the runtime's (a network namespace a
/// network layer prepared, say). Sysctls may be set only there.
fn own_ns(linux: &oci_spec::runtime::Linux, t: LinuxNamespaceType) -> bool {
    use std::os::unix::fs::MetadataExt;
    let name = match t {
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        _ => return new_ns(linux, t),
    };
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok();
    linux.namespaces().iter().flatten().any(|n| {
        n.typ() == t
            && match n.path() {
                None => true,
                Some(p) => match (std::fs::metadata(p), &ours) {
                    (Ok(theirs), Some(ours)) => {
                        (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino())
                    }
                    _ => false,
                },
            }
    })
}

/// True when the spec asks for a *new* namespace of type `t` (listed without a path).
pub fn new_ns(linux: &oci_spec::runtime::Linux, t: LinuxNamespaceType) -> bool {
    linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == t && n.path().is_none())
}

fn validate_mount(i: usize, m: &Mount) -> Result<(), SpecError> {
    let f = format!("mounts[{i}]");
    let dest = m.destination();
    if dest.as_os_str().is_empty() {
        return Err(invalid(format!("{f}.destination"), "is empty"));
    }
    if escapes_root(dest) {
        return Err(invalid(
            format!("{f}.destination"),
            format!("{} climbs out of the container root", dest.display()),
        ));
    }
    let opts = m.options().clone().unwrap_or_default();
    let is_bind =
        m.typ().as_deref() == Some("bind") || opts.iter().any(|o| o == "bind" || o == "rbind");
    if is_bind {
        match m.source() {
            None => {
                return Err(invalid(
                    format!("{f}.source"),
                    "a bind mount needs a source",
                ))
            }
            Some(s) if !s.is_absolute() => {} // relative to the bundle; checked at mount time
            Some(s) => {
                if let Err(e) = std::fs::symlink_metadata(s) {
                    return Err(invalid(
                        format!("{f}.source"),
                        format!("{}: {e}", s.display()),
                    ));
                }
            }
        }
    }
    for (j, o) in opts.iter().enumerate() {
        if o.is_empty() {
            return Err(invalid(format!("{f}.options[{j}]"), "is empty"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_the_field() {
        let json =
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let (field, msg) = parse(json).unwrap_err();
        assert_eq!(field, "linux.namespaces[1].type");
        assert!(msg.contains("bogus"), "{msg}");
    }

    #[test]
    fn escapes() {
        assert!(escapes_root(Path::new("/../etc")));
        assert!(escapes_root(Path::new("/a/../../etc")));
        assert!(!escapes_root(Path::new("/a/../b")));
        assert!(!escapes_root(Path::new("/proc")));
    }

    #[test]
    fn sysctls_are_classified() {
        assert_eq!(
            sysctl_namespace("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(
            sysctl_namespace("kernel.shmmax"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(sysctl_namespace("kernel.panic"), None);
        assert_eq!(sysctl_namespace("vm.overcommit_memory"), None);
    }
}
