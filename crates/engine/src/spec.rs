//! A Docker create-container request turned into an OCI runtime spec.
//!
//! [`build_spec`] starts from the secure defaults in `defaults.rs` and applies the request the
//! way Docker does, area by area: `spec/process.rs` (command, env, user, capabilities,
//! rlimits), `spec/security.rs` (`--security-opt`, `--cap-add/--cap-drop`), `spec/namespaces.rs`
//! (namespace modes, sysctls), `spec/mounts.rs` (kernel filesystems, binds, volumes, tmpfs)
//! and `spec/resources.rs` (cgroup limits, devices). Nothing here touches the host: what the
//! daemon knows about it comes in through [`BuildContext`] and [`HostLookup`].
//!
//! The policy check (`policy.rs`) runs before this; this module refuses only what cannot be
//! expressed or would not run, not what is dangerous.

mod mounts;
mod namespaces;
mod process;
mod resources;
mod security;
mod users;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespaceType, PosixRlimitType, RootBuilder, Spec, SpecBuilder,
};

use crate::defaults::{self, UserNamespacePlan};
use crate::docker_types::{ContainerConfig, HostConfig, ImageConfigSubset};

pub use namespaces::sysctl_namespace;
pub(crate) use security::normalize_cap;

/// An exec's `User` (`name|uid[:group|gid]`), resolved against the container's /etc/passwd
/// and /etc/group (None: the file is missing, numbers only) the way the container's own
/// `User` is: (uid, gid, supplementary gids, home directory).
pub fn resolve_exec_user(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<(u32, u32, Vec<u32>, Option<String>), SpecBuildError> {
    let u = users::resolve(user, &[], passwd, group, usize::MAX)?;
    Ok((u.uid, u.gid, u.additional_gids, u.home))
}

/// The annotation that tells the daemon to run its init (`--init`) as pid 1.
pub const INIT_ANNOTATION: &str = "io.hull.init";

/// What the daemon knows about the host and other containers, asked for only when a request
/// needs it.
pub trait HostLookup {
    /// hulld's own hard limit for `typ` (None: unknown, not checked).
    fn hard_limit(&self, typ: PosixRlimitType) -> Option<u64>;
    /// The host directory of volume `name` for a mount at `target`; `name` is empty for an
    /// anonymous volume, which the daemon creates. None: no such volume.
    fn volume_path(&self, name: &str, target: &str) -> Option<PathBuf>;
    /// The device node at `path` on the host.
    fn device(&self, path: &Path) -> std::io::Result<HostDevice>;
    /// The namespace file (`/proc/<pid>/ns/<type>`) of running container `id`.
    fn container_namespace(&self, id: &str, typ: LinuxNamespaceType) -> Option<PathBuf>;
    /// A text file of the container's image (`/etc/passwd`, `/etc/group`), read inside the
    /// rootfs. None: the image has no such file.
    fn rootfs_file(&self, path: &str) -> Option<String>;
    /// hulld's own capability bounding set (bit n: capability n). `--privileged` and
    /// `--cap-add ALL` get the capabilities in it, not more: the runtime cannot grant what it
    /// lacks (capset fails with EPERM). None: unknown, every capability.
    fn bounding_set(&self) -> Option<u64> {
        own_bounding_set()
    }
    /// Every device node under the host's /dev, for `--privileged` (Docker's HostDevices):
    /// not under pts, shm, mqueue or fd, and none of the standard nodes the runtime makes.
    fn host_devices(&self) -> Vec<(PathBuf, HostDevice)> {
        let mut out = Vec::new();
        let mut dirs = vec![PathBuf::from("/dev")];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(ft) = e.file_type() else { continue };
                let name = e.file_name();
                let name = name.to_string_lossy();
                if ft.is_dir() {
                    let skip = ["pts", "shm", "mqueue", "fd", ".lxc", ".lxd-mounts", ".udev"];
                    if !(dir == Path::new("/dev") && skip.contains(&name.as_ref())) {
                        dirs.push(path);
                    }
                    continue;
                }
                let standard = [
                    "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx",
                ];
                if dir == Path::new("/dev") && standard.contains(&name.as_ref()) {
                    continue;
                }
                use std::os::unix::fs::FileTypeExt;
                if ft.is_char_device() || ft.is_block_device() {
                    if let Ok(dev) = self.device(&path) {
                        out.push((path, dev));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
    /// The host's online CPUs (`0-3`), for `--cpus` and `--cpuset-cpus`. None: not checked.
    fn online_cpus(&self) -> Option<String> {
        std::fs::read_to_string("/sys/devices/system/cpu/online")
            .ok()
            .map(|s| s.trim().to_owned())
    }
    /// The host's online memory nodes (`0`), for `--cpuset-mems`. None: not checked.
    fn online_mems(&self) -> Option<String> {
        std::fs::read_to_string("/sys/devices/system/node/online")
            .ok()
            .map(|s| s.trim().to_owned())
    }
}

/// The `CapBnd` line of /proc/self/status.
pub fn own_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapBnd:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// A host device node, as stat(2) shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDevice {
    /// `'c'` (character) or `'b'` (block); anything else is not a device node.
    pub kind: char,
    pub major: i64,
    pub minor: i64,
    /// Permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What [`build_spec`] needs besides the request.
pub struct BuildContext<'a> {
    /// The container's root filesystem (prepared by the snapshotter).
    pub rootfs: PathBuf,
    /// The host ids container root maps to; None when the daemon runs without user
    /// namespaces (`hulld --userns=off`).
    pub userns: Option<UserNamespacePlan>,
    /// Keep the user namespace for `--privileged` too (Docker drops it).
    pub userns_for_privileged: bool,
    /// Files the daemon writes per container, bound over the image's.
    pub resolv_conf: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub hostname_file: Option<PathBuf>,
    /// The network namespace the network layer prepared (bridge and named networks); None
    /// for `none` and `host`.
    pub netns_path: Option<PathBuf>,
    /// The kernel's NGROUPS_MAX (65536 on Linux).
    pub ngroups_max: usize,
    pub host: &'a dyn HostLookup,
}

/// Why a request cannot become a spec. Each names the request field and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpecBuildError {
    #[error("no command: neither the request nor the image sets Cmd or Entrypoint; give a command (docker run IMAGE COMMAND)")]
    NoCommand,
    #[error("WorkingDir: {dir:?} is not an absolute path; use a path starting with /")]
    WorkingDir { dir: String },
    #[error("Env[{index}]: {entry:?} has an empty variable name")]
    EnvEntry { index: usize, entry: String },
    #[error("User: {user:?} is not NAME|UID[:GROUP|GID]")]
    UserFormat { user: String },
    #[error("User: no user {user:?} in the image's /etc/passwd; use a numeric uid or a user the image has")]
    UnknownUser { user: String },
    #[error("{field}: no group {group:?} in the image's /etc/group; use a numeric gid or a group the image has")]
    UnknownGroup { field: String, group: String },
    #[error("GroupAdd: {count} groups is more than the kernel's limit of {max}")]
    TooManyGroups { count: usize, max: usize },
    #[error("{field}: unknown capability {name:?}; use a name such as NET_ADMIN or CAP_NET_ADMIN, or ALL")]
    UnknownCapability { field: String, name: String },
    #[error("SecurityOpt: {opt:?} is not an option hull knows (seccomp=, no-new-privileges, apparmor=, label=, systempaths=)")]
    SecurityOpt { opt: String },
    #[error("SecurityOpt: the seccomp profile is not usable: {source}")]
    SeccompProfile {
        #[source]
        source: hull_seccomp::Error,
    },
    #[error("resolving hull's default seccomp profile: {source}")]
    DefaultSeccomp {
        #[source]
        source: hull_seccomp::Error,
    },
    #[error("{field}: {value:?} is not one of {expected}")]
    NamespaceMode {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error(
        "{field}: container {id:?} is not running (no {ns} namespace to join); start it first"
    )]
    ContainerNamespace {
        field: &'static str,
        id: String,
        ns: &'static str,
    },
    #[error("NetworkMode: network {mode:?} needs a network namespace from the network layer, and none was prepared")]
    NetworkNamespace { mode: String },
    #[error("{field}: sharing the host's pid namespace needs UsernsMode=host (hull runs containers in a user namespace, whose /proc cannot show host processes)")]
    HostPidWithUserns { field: &'static str },
    #[error("{fields}: joining namespaces of two containers ({first:?}, {second:?}) needs two user namespaces at once; join one container only")]
    TwoUserNamespaces {
        fields: &'static str,
        first: String,
        second: String,
    },
    #[error(
        "Sysctls: {key:?} is not a namespaced sysctl; hull never changes host-wide kernel settings"
    )]
    SysctlNotNamespaced { key: String },
    #[error("Sysctls: {key:?} needs the container's own {ns} namespace, and {field} shares one")]
    SysctlNamespace {
        key: String,
        ns: &'static str,
        field: &'static str,
    },
    #[error("Ulimits[{index}]: unknown limit {name:?}; use one of core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack, as")]
    UlimitName { index: usize, name: String },
    #[error("Ulimits[{index}] ({name}): {which} limit {value} is not a valid limit (0 or more, or -1 for unlimited)")]
    UlimitValue {
        index: usize,
        name: String,
        which: &'static str,
        value: i64,
    },
    #[error("Ulimits[{index}] ({name}): soft limit {soft} is above the hard limit {hard}")]
    UlimitSoftAboveHard {
        index: usize,
        name: String,
        soft: u64,
        hard: u64,
    },
    #[error("Ulimits[{index}] ({name}): hard limit {hard} is above the host's hard limit {host}; use at most {host} or raise hulld's limit")]
    UlimitAboveHost {
        index: usize,
        name: String,
        hard: u64,
        host: u64,
    },
    #[error("{field}: {value} is out of range; {expected}")]
    ResourceRange {
        field: &'static str,
        value: i64,
        expected: &'static str,
    },
    #[error("{field}: cannot be combined with {other}; set one of them")]
    ResourceConflict {
        field: &'static str,
        other: &'static str,
    },
    #[error("{field}: {value:?} is not a CPU/node list such as 0-3,5")]
    Cpuset { field: &'static str, value: String },
    #[error("{field}: requested {what} {value:?} are not available; available: {available}")]
    CpusetUnavailable {
        field: &'static str,
        what: &'static str,
        value: String,
        available: String,
    },
    #[error("NanoCpus: {value} is out of range; the range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs available")]
    TooManyCpus { value: i64, count: usize },
    #[error("Devices[{index}]: reading host device {path}: {source}")]
    DeviceLookup {
        index: usize,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Devices[{index}]: {path} is not a character or block device")]
    DeviceNotNode { index: usize, path: PathBuf },
    #[error("{field}: {value:?} must be an absolute path")]
    RelativePath { field: String, value: String },
    #[error("Devices[{index}].CgroupPermissions: {perms:?} is not a combination of r, w and m")]
    DevicePermissions { index: usize, perms: String },
    #[error("DeviceCgroupRules[{index}]: {rule:?} is not TYPE MAJOR:MINOR ACCESS (e.g. \"c 10:200 rwm\", \"*\" for any number)")]
    DeviceCgroupRule { index: usize, rule: String },
    #[error("Binds[{index}]: {bind:?} is not SOURCE:TARGET[:OPTIONS]")]
    BindFormat { index: usize, bind: String },
    #[error("{field}: unknown option {option:?} (ro, rw, z, Z, nocopy, or a propagation: private, rprivate, shared, rshared, slave, rslave)")]
    BindOption { field: String, option: String },
    #[error("Mounts[{index}].Type: {typ:?} is not bind, volume or tmpfs")]
    MountType { index: usize, typ: String },
    #[error("Binds/Mounts/Tmpfs: mount target {target} {reason}", target = .target.display())]
    MountTarget {
        target: PathBuf,
        reason: &'static str,
    },
    #[error("{field}: no volume {name:?}; create it first (docker volume create)")]
    VolumeNotFound { field: String, name: String },
    #[error("CgroupParent: {parent:?} climbs out of the cgroup tree with \"..\"; name a cgroup below the root")]
    CgroupParent { parent: String },
    #[error("{field}: {value:?} is not a valid ShmSize or tmpfs size")]
    Size { field: String, value: i64 },
}

/// Turns a create-container request into the OCI spec hull-runtime runs.
///
/// `id` is the container's full id; `image` is the image config's `config` section.
pub fn build_spec(
    id: &str,
    cfg: &ContainerConfig,
    host: &HostConfig,
    image: &ImageConfigSubset,
    ctx: &BuildContext,
) -> Result<Spec, SpecBuildError> {
    if host.cgroup_parent.split('/').any(|c| c == "..") {
        return Err(SpecBuildError::CgroupParent {
            parent: host.cgroup_parent.clone(),
        });
    }
    let opts = security::SecurityOpts::parse(&host.security_opt)?;
    let caps = security::capabilities(host, ctx.host.bounding_set())?;
    let ns = namespaces::plan(id, cfg, host, ctx)?;
    let process = process::build(cfg, host, image, ctx, &caps, &opts, &ns)?;
    let mounts = mounts::build(cfg, host, image, ctx, &ns)?;
    let (resources, devices, device_binds) = resources::build(host, ctx, &ns)?;

    let mut linux = LinuxBuilder::default()
        .namespaces(ns.namespaces.clone())
        .resources(resources)
        .devices(devices)
        .cgroups_path(defaults::cgroups_path(&host.cgroup_parent, id))
        .sysctl(namespaces::sysctls(host, &ns)?)
        .build()
        .expect("all linux fields are set");
    if let Some(plan) = ns.userns_plan {
        linux.set_uid_mappings(Some(defaults::id_mappings(plan)));
        linux.set_gid_mappings(Some(defaults::id_mappings(plan)));
    }
    let confined = !host.privileged && !opts.systempaths_unconfined;
    let masked = match &host.masked_paths {
        Some(list) => list.clone(),
        None if confined => defaults::MASKED_PATHS.map(String::from).to_vec(),
        None => Vec::new(),
    };
    let readonly = match &host.readonly_paths {
        Some(list) => list.clone(),
        None if confined => defaults::READONLY_PATHS.map(String::from).to_vec(),
        None => Vec::new(),
    };
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_seccomp(security::seccomp(host, &opts, &caps)?);

    let mut all_mounts = mounts;
    all_mounts.extend(device_binds);

    let mut annotations: HashMap<String, String> = cfg
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if host.init == Some(true) {
        annotations.insert(INIT_ANNOTATION.to_owned(), "true".to_owned());
    }

    let mut spec = SpecBuilder::default()
        .version("1.2.0")
        .root(
            RootBuilder::default()
                .path(ctx.rootfs.clone())
                .readonly(host.readonly_rootfs)
                .build()
                .expect("all root fields are set"),
        )
        .process(process)
        .mounts(all_mounts)
        .linux(linux)
        .annotations(annotations)
        .build()
        .expect("all spec fields are set");
    // Set even when absent: oci-spec's builder would otherwise fill in its own default.
    spec.set_hostname(None);
    if ns.own_uts {
        spec.set_hostname(Some(ns.hostname.clone()));
        if !cfg.domainname.is_empty() {
            spec.set_domainname(Some(cfg.domainname.clone()));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests;
