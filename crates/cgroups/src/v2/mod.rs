//! cgroup v2 (the unified hierarchy). One file per controller; the device allow-list is an eBPF
//! program (devices.rs).

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::{fs, Hierarchy, Manager, Stats};

mod cpu;
mod devices;
mod freezer;
mod io_ctl;
mod memory;
mod misc;

pub use devices::compile as compile_device_program;

/// Controllers enabled for every container when available: the ones its limits and its
/// statistics need. Others (hugetlb, rdma, misc) are enabled when a limit asks for them.
const CORE_CONTROLLERS: [&str; 5] = ["cpu", "cpuset", "io", "memory", "pids"];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] fs::Error),
    #[error(
        "{field} needs the {controller} controller, which is not available in {path} (not in \
         the cgroup.controllers of the cgroup root, or could not be enabled in an ancestor's \
         cgroup.subtree_control)"
    )]
    ControllerUnavailable {
        controller: String,
        field: String,
        path: PathBuf,
    },
    #[error("linux.resources.cpu.realtimeRuntime/realtimePeriod: realtime scheduling limits do not exist on cgroup v2")]
    RealtimeUnsupported,
    #[error(
        "linux.resources.memory.swap {swap}: the kernel does not account swap ({path} is \
         missing), so only -1 or a value equal to the memory limit can be honoured"
    )]
    SwapUnsupported { path: PathBuf, swap: i64 },
    #[error("linux.resources.devices[{index}]: {reason}")]
    DeviceRule { index: usize, reason: String },
    #[error("load the device filter eBPF program for {path}: {source}")]
    LoadDeviceProgram { path: PathBuf, source: io::Error },
    #[error("list the eBPF device programs attached to {path}: {source}")]
    QueryDevicePrograms { path: PathBuf, source: io::Error },
    #[error("attach the device filter eBPF program to {path}: {source}")]
    AttachDeviceProgram { path: PathBuf, source: io::Error },
    #[error("detach the previous eBPF device program {id} from {path}: {source}")]
    DetachDeviceProgram {
        path: PathBuf,
        id: u32,
        source: io::Error,
    },
    #[error("freeze {path}: the kernel has no cgroup.freeze (Linux 5.2 or later is needed)")]
    FreezerUnavailable { path: PathBuf },
    #[error("freeze {path}: cgroup.events still says frozen {frozen} after waiting")]
    FreezeTimeout { path: PathBuf, frozen: bool },
}

/// A container's cgroup on a pure v2 host (or any cgroup2 mount given as the root).
#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    rel: PathBuf,
}

fn words(dir: &Path, file: &str) -> Result<Vec<String>, Error> {
    let text = fs::read_if_exists(&dir.join(file))?.unwrap_or_default();
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Enables in `dir`'s cgroup.subtree_control each wanted controller that `dir` has and has not
/// yet enabled: one write for all of them, then one per controller if that is refused. A
/// refusal is logged, not returned: a container that does not use the controller should still
/// start, and one that does gets `ControllerUnavailable`.
fn enable(dir: &Path, wanted: &[&str]) -> Result<(), Error> {
    let available = words(dir, "cgroup.controllers")?;
    let enabled = words(dir, "cgroup.subtree_control")?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| available.iter().any(|a| a == *c) && !enabled.iter().any(|e| e == *c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let control = dir.join("cgroup.subtree_control");
    if fs::write(&control, &missing.join(" ")).is_ok() {
        return Ok(());
    }
    for m in &missing {
        if let Err(e) = fs::write(&control, m) {
            tracing::warn!(error = %e, "enabling a cgroup controller failed");
        }
    }
    Ok(())
}

impl V2Manager {
    pub fn new(fs_root: &Path, rel: PathBuf) -> Self {
        V2Manager {
            root: fs_root.to_owned(),
            rel,
        }
    }

    fn dir(&self) -> PathBuf {
        self.root.join(&self.rel)
    }

    /// The root and every ancestor of the container's cgroup, top down.
    fn ancestors(&self) -> Vec<PathBuf> {
        let mut out = vec![self.root.clone()];
        let mut dir = self.root.clone();
        let comps: Vec<_> = self.rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            dir.push(c);
            out.push(dir.clone());
        }
        out
    }

    /// Creates the container's cgroup and its missing ancestors, enabling the core
    /// controllers in each ancestor on the way down (the leaf itself holds processes, so its
    /// own subtree_control stays empty).
    fn ensure_dirs(&self) -> Result<(), Error> {
        for dir in self.ancestors() {
            fs::create_dir(&dir)?;
            enable(&dir, &CORE_CONTROLLERS)?;
        }
        fs::create_dir(&self.dir())?;
        Ok(())
    }

    /// The container's directory, after making sure `controller` is enabled down to it.
    fn require(&self, controller: &str, field: &str) -> Result<PathBuf, Error> {
        let leaf = self.dir();
        let has = |d: &Path| -> Result<bool, Error> {
            Ok(words(d, "cgroup.controllers")?
                .iter()
                .any(|c| c == controller))
        };
        if has(&leaf)? {
            return Ok(leaf);
        }
        for dir in self.ancestors() {
            enable(&dir, &[controller])?;
        }
        if has(&leaf)? {
            return Ok(leaf);
        }
        Err(Error::ControllerUnavailable {
            controller: controller.to_owned(),
            field: field.to_owned(),
            path: leaf,
        })
    }

    fn set_resources(&self, r: &LinuxResources) -> Result<(), Error> {
        if let Some(m) = r.memory() {
            memory::ignored(m);
            if memory::wanted(m) {
                memory::set(&self.require("memory", "linux.resources.memory")?, m)?;
            }
        }
        if let Some(c) = r.cpu() {
            if c.realtime_runtime().is_some_and(|v| v != 0)
                || c.realtime_period().is_some_and(|v| v != 0)
            {
                return Err(Error::RealtimeUnsupported);
            }
            if cpu::wanted(c) {
                cpu::set(&self.require("cpu", "linux.resources.cpu")?, c)?;
            }
            if cpu::cpuset_wanted(c) {
                let field = "linux.resources.cpu.cpus/mems";
                cpu::set_cpuset(&self.require("cpuset", field)?, c)?;
            }
        }
        if let Some(p) = r.pids() {
            match self.require("pids", "linux.resources.pids") {
                Ok(dir) => misc::set_pids(&dir, p)?,
                // "No limit" needs no controller: fine on a host without one.
                Err(Error::ControllerUnavailable { .. }) if p.limit() <= 0 => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(b) = r.block_io() {
            if io_ctl::wanted(b) {
                io_ctl::set(&self.require("io", "linux.resources.blockIO")?, b)?;
            }
        }
        if let Some(rules) = r.devices() {
            devices::set(&self.dir(), rules)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let field = "linux.resources.hugepageLimits";
            misc::set_hugetlb(&self.require("hugetlb", field)?, limits)?;
        }
        if r.network().is_some() {
            tracing::debug!("linux.resources.network ignored: cgroup v2 has no net_cls/net_prio");
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
            misc::set_rdma(&self.require("rdma", "linux.resources.rdma")?, rdma)?;
        }
        if let Some(unified) = r.unified() {
            let mut keys: Vec<_> = unified.iter().collect();
            keys.sort();
            for (key, value) in keys {
                let controller = key.split('.').next().unwrap_or_default();
                let dir = if controller == "cgroup" {
                    self.dir()
                } else {
                    self.require(controller, &format!("linux.resources.unified[{key:?}]"))?
                };
                fs::write(&dir.join(key), value)?;
            }
        }
        Ok(())
    }

    fn collect_stats(&self) -> Result<Stats, Error> {
        let dir = self.dir();
        let mut s = Stats::default();
        cpu::stats(&dir, &mut s.cpu)?;
        memory::stats(&dir, &mut s.memory)?;
        misc::pids_stats(&dir, &mut s.pids)?;
        io_ctl::stats(&dir, &mut s.io)?;
        Ok(s)
    }
}

impl Manager for V2Manager {
    fn hierarchy(&self) -> Hierarchy {
        Hierarchy::V2
    }

    fn relative_path(&self) -> &Path {
        &self.rel
    }

    fn apply(&self, pid: i32) -> Result<(), crate::Error> {
        self.ensure_dirs().map_err(crate::Error::from)?;
        fs::write(&self.dir().join("cgroup.procs"), &pid.to_string())?;
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<(), crate::Error> {
        crate::validate(resources)?;
        self.ensure_dirs()?;
        Ok(self.set_resources(resources)?)
    }

    fn freeze(&self) -> Result<(), crate::Error> {
        Ok(freezer::set(&self.dir(), true)?)
    }

    fn thaw(&self) -> Result<(), crate::Error> {
        Ok(freezer::set(&self.dir(), false)?)
    }

    fn is_frozen(&self) -> Result<bool, crate::Error> {
        Ok(freezer::is_frozen(&self.dir())?)
    }

    fn pids(&self) -> Result<Vec<i32>, crate::Error> {
        let mut pids = fs::read_pids(&self.dir().join("cgroup.procs"))?;
        pids.sort_unstable();
        Ok(pids)
    }

    fn stats(&self) -> Result<Stats, crate::Error> {
        Ok(self.collect_stats()?)
    }

    fn destroy(&self) -> Result<(), crate::Error> {
        Ok(fs::remove_tree(&self.dir())?)
    }

    fn mount_sources(&self) -> Vec<(String, PathBuf)> {
        vec![(String::new(), self.dir())]
    }
}

#[cfg(test)]
mod tests;
