//! hull-cgroups: placing a container's processes in cgroups and applying its
//! `linux.resources`, on cgroup v1, v2 and hybrid hosts, behind one [`Manager`] trait.
//!
//! Every path is found below the `fs_root` the caller passes (normally /sys/fs/cgroup), so unit
//! tests run against a fake tree in a temporary directory.
//!
//! - v1: one hierarchy per mounted controller group (from /proc/self/mountinfo, or from the
//!   directory names below `fs_root` when mountinfo lists nothing there), plus named ones such
//!   as `name=systemd` (the process is placed there too).
//! - hybrid: v1 as above, and the v2 hierarchy at `fs_root/unified`, where the process is also
//!   placed (cgroup namespaces and systemd need it) while resources go through v1.
//! - v2: `fs_root` is the cgroup2 root; controllers are enabled in each ancestor's
//!   `cgroup.subtree_control`, and the device allow-list is an eBPF program.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub mod devices;
pub mod fs;
pub mod mounts;
pub mod path;
pub mod stats;
pub mod v1;
pub mod v2;
pub mod validate;

pub use path::HULL_PARENT;
pub use stats::{CpuStats, IoDeviceStats, IoStats, MemoryStats, PidsStats, Stats};

/// What cgroup layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hierarchy {
    /// Only cgroup v1 hierarchies.
    V1,
    /// Only the unified cgroup v2 hierarchy.
    V2,
    /// v1 hierarchies for the controllers plus a v2 hierarchy at `unified/`.
    Hybrid,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no cgroup filesystem found under {root} (neither cgroup.controllers nor v1 hierarchies)"
    )]
    NoCgroupFs { root: PathBuf },
    #[error(transparent)]
    Fs(#[from] fs::Error),
    #[error(transparent)]
    Mounts(#[from] mounts::Error),
    #[error(transparent)]
    Path(#[from] path::Error),
    #[error(transparent)]
    Validate(#[from] validate::Error),
    #[error(transparent)]
    V1(#[from] v1::Error),
    #[error(transparent)]
    V2(#[from] v2::Error),
}

/// One container's cgroup, in every hierarchy of the host.
pub trait Manager: Send + Sync + std::fmt::Debug {
    /// The host layout this manager works on.
    fn hierarchy(&self) -> Hierarchy;
    /// The container's cgroup below each hierarchy's root, e.g. `hull/abc`.
    fn relative_path(&self) -> &Path;
    /// Creates the directories in every hierarchy and moves `pid` into each.
    fn apply(&self, pid: i32) -> Result<(), Error>;
    /// Writes `resources` (validated first) to the controllers. Creates the directories if
    /// `apply` has not yet.
    fn set(&self, resources: &LinuxResources) -> Result<(), Error>;
    /// Freezes every process, waiting (bounded) until the kernel reports the cgroup frozen.
    fn freeze(&self) -> Result<(), Error>;
    fn thaw(&self) -> Result<(), Error>;
    fn is_frozen(&self) -> Result<bool, Error>;
    /// The pids in the container's cgroup (not in its sub-cgroups), sorted.
    fn pids(&self) -> Result<Vec<i32>, Error>;
    fn stats(&self) -> Result<Stats, Error>;
    /// Removes the container's cgroup and any cgroup below it, deepest first, in every
    /// hierarchy; a missing directory is fine. Ancestors (such as the shared `hull/`) stay.
    fn destroy(&self) -> Result<(), Error>;
    /// For mounting cgroups inside the container: (mount name, host directory of this
    /// container's cgroup in that hierarchy). v1/hybrid: one per hierarchy, named after the
    /// host mountpoint ("cpu,cpuacct", "memory", "systemd", and "unified" on hybrid hosts);
    /// pure v2: one entry with an empty name.
    fn mount_sources(&self) -> Vec<(String, PathBuf)>;
}

/// Finds the cgroup layout below `fs_root` (normally /sys/fs/cgroup).
pub fn detect(fs_root: &Path) -> Result<Hierarchy, Error> {
    if fs_root.join("cgroup.controllers").exists() {
        return Ok(Hierarchy::V2);
    }
    let v1 = mounts::v1_hierarchies(fs_root)?;
    if v1.is_empty() {
        return Err(Error::NoCgroupFs {
            root: fs_root.to_owned(),
        });
    }
    if fs_root.join("unified").join("cgroup.controllers").exists() {
        Ok(Hierarchy::Hybrid)
    } else {
        Ok(Hierarchy::V1)
    }
}

/// The manager for a container's cgroup. `cgroups_path` is the spec's `linux.cgroupsPath`:
/// `None` means `hull/<container_id>`, a relative path goes below `hull/`, an absolute path
/// (`/docker/abc`) is taken as is from each hierarchy's root, and systemd's
/// `slice:prefix:name` form is an error.
pub fn new_manager(
    fs_root: &Path,
    cgroups_path: Option<&str>,
    container_id: &str,
) -> Result<Box<dyn Manager>, Error> {
    let rel = path::resolve(cgroups_path, container_id)?;
    Ok(match detect(fs_root)? {
        Hierarchy::V2 => Box::new(v2::V2Manager::new(fs_root, rel)),
        Hierarchy::V1 => Box::new(v1::V1Manager::new(fs_root, rel, false)?),
        Hierarchy::Hybrid => Box::new(v1::V1Manager::new(fs_root, rel, true)?),
    })
}

/// Checks `resources` before any process is created; the error names the field, e.g.
/// "linux.resources.cpu.quota: ...".
pub fn validate(resources: &LinuxResources) -> Result<(), Error> {
    validate::validate(resources).map_err(Error::from)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;
