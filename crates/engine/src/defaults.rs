//! Every secure default hull gives a container, in one place, each with the reason for it.
//!
//! `spec.rs` and its submodules start from these values and change them only where the request
//! asks (and the policy check in `policy.rs` allows it). To review what a container gets when
//! nobody asks for anything, read this file.
//!
//! | Default | Here | Docker flag that changes it | Checked from inside by (bins/hulld/tests/security.rs) |
//! |---|---|---|---|
//! | Docker's capabilities minus NET_RAW, MKNOD, AUDIT_WRITE | [`DEFAULT_CAPS`] | `--cap-add`, `--cap-drop` | `defaults_caps_nnp_seccomp_ping`, `flags_caps_and_security_opts` |
//! | ping without NET_RAW (ICMP datagram sockets) | [`PING_GROUP_RANGE`] | `--sysctl` | `defaults_caps_nnp_seccomp_ping`, `defaults_seccomp_denies_syscalls` (pings) |
//! | seccomp profile stricter than Docker's | [`seccomp`] | `--security-opt seccomp=FILE` | `defaults_seccomp_denies_syscalls`, `flags_caps_and_security_opts` |
//! | no_new_privs | [`NO_NEW_PRIVILEGES`] | `--security-opt no-new-privileges=false` | `defaults_caps_nnp_seccomp_ping`, `flags_caps_and_security_opts` |
//! | Docker's masked and read-only paths | [`MASKED_PATHS`], [`READONLY_PATHS`] | `systempaths=unconfined` (policy) | `defaults_masked_and_readonly_paths` |
//! | pids limit 4096 | [`PIDS_LIMIT`] | `--pids-limit` | `defaults_userns_and_pids` |
//! | RLIMIT_NOFILE 1024 / host hard | [`rlimits`] | `--ulimit` | `defaults_userns_and_pids`, `flags_user_readonly_ulimit_sysctl_device` |
//! | user namespace, per-container range of /etc/subuid `hull` | [`UserNamespacePlan`] | `--userns=host` (policy) | `defaults_userns_and_pids` |
//! | no devices but the standard nodes | [`mounts`] (/dev tmpfs) | `--device` | `flags_user_readonly_ulimit_sysctl_device` |
//! | read-only /sys and cgroup tree | [`mounts`] | `--privileged` (policy) | `defaults_masked_and_readonly_paths` |
//! | /sys of the container's own network namespace (its interfaces, not the host's), also in a user namespace | [`mounts`], runtime `rootfs::sysfs_for_joined_netns` | `--network host` (policy) | `defaults_masked_and_readonly_paths` |
//!
//! What gives a container the host is refused (403 naming the parameter) unless hulld is
//! started with the matching switch, or its daemon.json key of the same name:
//! `--allow-privileged` (`--privileged`, `systempaths=unconfined`), `--allow-cap CAP` (a
//! capability of [`crate::policy::DENIED_CAPS`], e.g. SYS_ADMIN, NET_ADMIN, ALL),
//! `--allow-unconfined-seccomp`, `--allow-unconfined-apparmor`, `--allow-userns-host`,
//! `--allow-host-namespaces` (`--pid/--network/--ipc/--uts/--cgroupns=host`),
//! `--allow-host-devices`, `--allow-bind PATH` / `--deny-bind PATH`. Tests:
//! `flags_refused_by_policy`, `flags_allowed_by_daemon_policy`. Resource flags (`-m`,
//! `--cpus`, `--cpuset-cpus`, OOM kill reported as State.OOMKilled): `flags_memory_cpu_limits`.

use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceType, LinuxSeccomp, Mount, MountBuilder,
    PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

/// The capabilities a container's processes get: Docker's default set minus three.
///
/// Left out, unlike Docker:
/// - `CAP_NET_RAW`: raw sockets let a container forge packets and spoof ARP/IPv6 RA on the
///   bridge; ping works without it through ICMP datagram sockets ([`PING_GROUP_RANGE`]).
/// - `CAP_MKNOD`: device nodes are the runtime's job; a container that can mknod can make a
///   node for a disk (the device cgroup still guards it, but one layer is better as two).
/// - `CAP_AUDIT_WRITE`: writing to the host's audit log is a host concern; only sshd-like
///   daemons use it, and they can be given it with `--cap-add`.
pub const DEFAULT_CAPS: [&str; 11] = [
    "CAP_CHOWN",            // chown files in the image (package managers, entrypoints)
    "CAP_DAC_OVERRIDE",     // root in the container may read and write its own files
    "CAP_FSETID",           // keep setuid/setgid bits when root edits a file
    "CAP_FOWNER",           // chmod/utime files root does not own (tar, cp -p)
    "CAP_SETGID",           // drop to another group (su, gosu, daemons)
    "CAP_SETUID",           // drop to another user (su, gosu, daemons)
    "CAP_SETFCAP",          // install files with file capabilities (packages)
    "CAP_SETPCAP",          // drop capabilities from the bounding set (daemons that harden)
    "CAP_NET_BIND_SERVICE", // bind ports below 1024 (web servers)
    "CAP_SYS_CHROOT",       // chroot (package scripts, some daemons)
    "CAP_KILL",             // signal processes of other users in the container
];

/// Every Linux capability, for `--cap-add ALL`, `--privileged` and to catch typos (one list,
/// kept by the seccomp crate, which checks profile capability names against it).
pub const ALL_CAPS: [&str; 41] = hull_seccomp::CAPABILITIES;

/// Lets every group use ICMP datagram sockets, so `ping` works without `CAP_NET_RAW`. Set only
/// when the container has its own network namespace (it is a per-netns sysctl).
pub const PING_GROUP_RANGE: (&str, &str) = ("net.ipv4.ping_group_range", "0 2147483647");

/// hull's seccomp profile for the container's final capability set: stricter than Docker's
/// (no keyctl, io_uring, userfaultfd, bpf, perf_event_open; namespace and mount syscalls only
/// with CAP_SYS_ADMIN). See `crates/seccomp/profiles/default.json` for each entry's reason.
pub fn seccomp(caps: &[String]) -> Result<LinuxSeccomp, hull_seccomp::Error> {
    hull_seccomp::default_profile(caps, hull_seccomp::Arch::native())
}

/// `no_new_privs`: a setuid binary or file capability in the image can never raise a
/// process's privileges above what the container started with.
pub const NO_NEW_PRIVILEGES: bool = true;

/// Paths under /proc and /sys that leak host information or offer host control; the runtime
/// hides them (a tmpfs or /dev/null on top). Docker's list.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",                  // host sound devices
    "/proc/acpi",                    // host power management
    "/proc/kcore",                   // the host's physical memory
    "/proc/keys",                    // the kernel's key descriptions (all users)
    "/proc/latency_stats",           // host scheduler data
    "/proc/timer_list",              // host timers: a side channel
    "/proc/timer_stats",             // host timers: a side channel
    "/proc/sched_debug",             // every host process's name and pid
    "/proc/scsi",                    // host SCSI devices (and a rescan trigger)
    "/sys/firmware",                 // ACPI tables, EFI variables
    "/sys/devices/virtual/powercap", // energy counters: a side channel (PLATYPUS)
];

/// Paths that stay visible but read-only: host-wide kernel knobs. Docker's list.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",           // host PCI/USB configuration
    "/proc/fs",            // host filesystem settings
    "/proc/irq",           // host interrupt affinity
    "/proc/sys",           // sysctls: the namespaced ones are set through the spec instead
    "/proc/sysrq-trigger", // reboot/crash the host
];

/// The pids cgroup limit when the request sets none: stops a fork bomb from exhausting the
/// host's pid space, yet is far above what real services use.
pub const PIDS_LIMIT: i64 = 4096;

/// RLIMIT_NOFILE soft limit: 1024 (what programs using select(2) assume).
pub const NOFILE_SOFT: u64 = 1024;
/// RLIMIT_NOFILE hard limit ceiling: processes that want many fds can raise their soft limit
/// up to this, but never above what the host allows hulld itself.
pub const NOFILE_HARD_MAX: u64 = 1_048_576;

/// The default rlimits: RLIMIT_NOFILE soft 1024, hard min(host hard, 1048576). The host's
/// hard limit is passed in (never assumed): a limit above it cannot be set without
/// CAP_SYS_RESOURCE, and the runtime refuses it.
pub fn rlimits(host_nofile_hard: Option<u64>) -> Vec<PosixRlimit> {
    let hard = host_nofile_hard.map_or(NOFILE_HARD_MAX, |h| h.min(NOFILE_HARD_MAX));
    vec![rlimit(
        PosixRlimitType::RlimitNofile,
        NOFILE_SOFT.min(hard),
        hard,
    )]
}

pub(crate) fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .expect("all rlimit fields are set")
}

/// Where container root lives on the host: `size` ids from `host_uid_start` (the same for
/// gids). Container root is an unprivileged host user, so a process that escapes the
/// container owns nothing on the host. The caller allocates one range per container (see
/// [`crate::userns::SubidRanges`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserNamespacePlan {
    pub host_uid_start: u32,
    pub size: u32,
}

/// The uid and gid maps for a plan: container ids 0..size map to host ids from the start.
pub fn id_mappings(plan: UserNamespacePlan) -> Vec<LinuxIdMapping> {
    vec![LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(plan.host_uid_start)
        .size(plan.size)
        .build()
        .expect("all id mapping fields are set")]
}

/// The namespaces a container gets: all of them (time aside, which Docker does not offer).
/// The user namespace is listed here but dropped for `--userns=host` and `--privileged`.
pub const NAMESPACES: [LinuxNamespaceType; 7] = [
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::User,
];

/// `/dev/shm` size when the request says 0: Docker's 64 MiB.
pub const SHM_SIZE: i64 = 64 * 1024 * 1024;

/// `PATH` when neither the image nor the request sets one (Docker's).
pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The container's hostname when the request sets none: the short id, as Docker does.
pub fn hostname(id: &str) -> String {
    id.chars().take(12).collect()
}

/// The cgroup every container lives under, unless the request names a `CgroupParent`.
pub const CGROUP_PARENT: &str = "/hull";

/// `/hull/<id>`, or `<parent>/<id>` for a `CgroupParent` (made absolute).
pub fn cgroups_path(parent: &str, id: &str) -> PathBuf {
    let parent = parent.trim_end_matches('/');
    if parent.is_empty() {
        PathBuf::from(format!("{CGROUP_PARENT}/{id}"))
    } else if parent.starts_with('/') {
        PathBuf::from(format!("{parent}/{id}"))
    } else {
        PathBuf::from(format!("/{parent}/{id}"))
    }
}

/// How the kernel filesystems are mounted; what the request changes about them.
#[derive(Debug, Clone, Copy)]
pub struct MountPlan {
    /// /dev/shm size in bytes.
    pub shm_size: i64,
    /// The container has a network namespace other than the host's (its own or another
    /// container's): a sysfs of it goes on /sys; else the host's /sys is bound read-only.
    /// (In a user namespace that does not own the network namespace, hull's runtime makes
    /// the sysfs mount from outside and hands it to the init.)
    pub own_netns: bool,
    /// `--ipc=host`: mqueue and /dev/shm are bound from the host.
    pub host_ipc: bool,
    /// `--privileged`: /sys and the cgroup tree are writable.
    pub privileged: bool,
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("all mount fields are set")
}

/// The kernel filesystems every container gets, Docker's set:
/// - /proc: the container's own pid namespace view.
/// - /dev: a small tmpfs; the runtime creates only the standard nodes (null, zero, ...).
/// - /dev/pts: a private devpts instance (newinstance) so the container sees only its own
///   ptys; ptmxmode=0666 so any user can open a pty, mode=0620 gid=5 (tty) as on a host.
/// - /sys: read-only; the host's devices stay unwritable.
/// - /sys/fs/cgroup: read-only; the container's own cgroup (cgroup namespace) to read limits.
/// - /dev/mqueue: POSIX message queues of the container's ipc namespace.
/// - /dev/shm: a tmpfs of `ShmSize` (default 64 MiB) so shm users cannot fill host memory.
///
/// proc, sysfs, mqueue and shm are nosuid, noexec, nodev: nothing there should run.
pub fn mounts(plan: MountPlan) -> Vec<Mount> {
    let rw_sys = if plan.privileged { "rw" } else { "ro" };
    let shm_size = format!("size={}", plan.shm_size);
    let mut m = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
    ];
    if plan.own_netns {
        m.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", rw_sys],
        ));
    } else {
        m.push(mount(
            "/sys",
            "bind",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ));
    }
    m.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["nosuid", "noexec", "nodev", "relatime", rw_sys],
    ));
    if !plan.host_ipc {
        m.push(mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ));
        m.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_size],
        ));
    } else {
        m.push(mount("/dev/mqueue", "bind", "/dev/mqueue", &["rbind"]));
        m.push(mount("/dev/shm", "bind", "/dev/shm", &["rbind"]));
    }
    m
}

/// Options every `--tmpfs` mount gets before the request's own: nothing on it is a device
/// or setuid program (Docker's defaults; the request may add `exec`).
pub const TMPFS_OPTIONS: [&str; 3] = ["nosuid", "nodev", "noexec"];

/// Bind-mount propagation when the request names none: the host never sees the container's
/// mounts and the container never sees new host mounts under the bind.
pub const BIND_PROPAGATION: &str = "rprivate";
