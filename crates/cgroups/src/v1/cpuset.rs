//! v1 cpuset: cpuset.cpus and cpuset.mems, and filling a new cgroup's empty values from its
//! parent.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::Error;
use crate::fs;

const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

pub(super) fn wanted(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.trim().is_empty())
        || c.mems().as_deref().is_some_and(|s| !s.trim().is_empty())
}

pub(super) fn set(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    for (file, value) in FILES.iter().zip([c.cpus(), c.mems()]) {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            fs::write(&dir.join(file), v)?;
        }
    }
    Ok(())
}

/// Copies `parent`'s cpus and mems into `dir` where `dir`'s are empty (a fresh cpuset cgroup
/// has none, and a task cannot be attached to it: ENOSPC).
pub(super) fn inherit(parent: &Path, dir: &Path) -> Result<(), Error> {
    for file in FILES {
        let Some(current) = fs::read_if_exists(&dir.join(file))? else {
            continue;
        };
        if !current.trim().is_empty() {
            continue;
        }
        if let Some(value) = fs::read_if_exists(&parent.join(file))? {
            if !value.trim().is_empty() {
                fs::write(&dir.join(file), value.trim())?;
            }
        }
    }
    Ok(())
}
