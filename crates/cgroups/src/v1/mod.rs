//! cgroup v1 (and hybrid hosts, where the process is also placed in the v2 `unified/` tree but
//! every resource goes through v1). One file per controller.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::mounts::{self, V1Hierarchy};
use crate::{fs, Hierarchy, Manager, Stats};

mod blkio;
mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod memory;
pub(crate) mod misc;
mod pids;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] fs::Error),
    #[error("no cgroup v1 hierarchy is mounted under {root}")]
    NoHierarchies { root: PathBuf },
    #[error("{field}: no {controller} cgroup hierarchy is mounted under {root}")]
    ControllerMissing {
        controller: &'static str,
        field: &'static str,
        root: PathBuf,
    },
    #[error(
        "linux.resources.memory.swap {swap}: the kernel does not account swap ({path} is \
         missing), so only -1 or a value equal to the memory limit can be honoured"
    )]
    SwapUnsupported { path: PathBuf, swap: i64 },
    #[error(
        "linux.resources.blockIO weight: {dir} has neither blkio.weight nor blkio.bfq.weight \
         (is the BFQ I/O scheduler in use?)"
    )]
    NoBlkioWeight { dir: PathBuf },
    #[error("linux.resources.devices[{index}]: {reason}")]
    DeviceRule { index: usize, reason: String },
    #[error("linux.resources.unified is for cgroup v2 only; this host applies resources through cgroup v1")]
    UnifiedOnV1,
    #[error("freeze {path}: still {state} after {attempts} attempts")]
    FreezeTimeout {
        path: PathBuf,
        state: String,
        attempts: u32,
    },
    #[error("thaw {path}: still {state}")]
    ThawTimeout { path: PathBuf, state: String },
}

/// A container's cgroup on a v1 or hybrid host.
#[derive(Debug)]
pub struct V1Manager {
    root: PathBuf,
    rel: PathBuf,
    mounts: Vec<V1Hierarchy>,
    /// The v2 mountpoint on a hybrid host (`fs_root/unified`).
    unified: Option<PathBuf>,
}

impl V1Manager {
    pub fn new(fs_root: &Path, rel: PathBuf, hybrid: bool) -> Result<Self, crate::Error> {
        let mounts = mounts::v1_hierarchies(fs_root)?;
        if mounts.is_empty() {
            return Err(Error::NoHierarchies {
                root: fs_root.to_owned(),
            }
            .into());
        }
        Ok(V1Manager {
            root: fs_root.to_owned(),
            rel,
            mounts,
            unified: hybrid.then(|| fs_root.join("unified")),
        })
    }

    /// The container's directory in the hierarchy carrying `controller`.
    fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.mounts
            .iter()
            .find(|m| m.has(controller))
            .map(|m| m.mountpoint.join(&self.rel))
    }

    /// Like `dir`, but a missing hierarchy is an error naming the spec field that needs it.
    fn need(&self, controller: &'static str, field: &'static str) -> Result<PathBuf, Error> {
        self.dir(controller)
            .ok_or_else(|| Error::ControllerMissing {
                controller,
                field,
                root: self.root.clone(),
            })
    }

    /// The container's directory in every hierarchy, v2 `unified/` last.
    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .mounts
            .iter()
            .map(|m| m.mountpoint.join(&self.rel))
            .collect();
        dirs.extend(self.unified.iter().map(|u| u.join(&self.rel)));
        dirs
    }

    /// Creates the container's directory (and missing ancestors) in every hierarchy. In the
    /// cpuset hierarchy each level gets its parent's cpus and mems, since a new cpuset cgroup
    /// starts empty and attaching a task to it fails with ENOSPC.
    fn ensure_dirs(&self) -> Result<(), Error> {
        let bases = self
            .mounts
            .iter()
            .map(|m| (&m.mountpoint, m.has("cpuset")))
            .chain(self.unified.iter().map(|u| (u, false)));
        for (base, is_cpuset) in bases {
            let mut dir = base.clone();
            for comp in self.rel.components() {
                let parent = dir.clone();
                dir.push(comp);
                fs::create_dir(&dir)?;
                if is_cpuset {
                    cpuset::inherit(&parent, &dir)?;
                }
            }
        }
        Ok(())
    }

    fn set_resources(&self, r: &LinuxResources) -> Result<(), Error> {
        if let Some(m) = r.memory() {
            if memory::wanted(m) {
                memory::set(&self.need("memory", "linux.resources.memory")?, m)?;
            }
        }
        if let Some(c) = r.cpu() {
            if cpu::wanted(c) {
                cpu::set(&self.need("cpu", "linux.resources.cpu")?, c)?;
            }
            if cpuset::wanted(c) {
                let field = "linux.resources.cpu.cpus/mems";
                cpuset::set(&self.need("cpuset", field)?, c)?;
            }
        }
        if let Some(p) = r.pids() {
            // "No limit" needs no controller: fine on a host without one.
            if p.limit() > 0 || self.dir("pids").is_some() {
                pids::set(&self.need("pids", "linux.resources.pids")?, p)?;
            }
        }
        if let Some(b) = r.block_io() {
            if blkio::wanted(b) {
                blkio::set(&self.need("blkio", "linux.resources.blockIO")?, b)?;
            }
        }
        if let Some(rules) = r.devices() {
            devices::set(&self.need("devices", "linux.resources.devices")?, rules)?;
        }
        if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
            let field = "linux.resources.hugepageLimits";
            hugetlb::set(&self.need("hugetlb", field)?, limits)?;
        }
        if let Some(net) = r.network() {
            misc::set_network(self.dir("net_cls"), self.dir("net_prio"), net)?;
        }
        if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
            misc::set_rdma(&self.need("rdma", "linux.resources.rdma")?, rdma)?;
        }
        if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Error::UnifiedOnV1);
        }
        Ok(())
    }

    fn collect_stats(&self) -> Result<Stats, Error> {
        let mut s = Stats::default();
        if let Some(d) = self.dir("cpuacct") {
            cpu::acct_stats(&d, &mut s.cpu)?;
        }
        if let Some(d) = self.dir("cpu") {
            cpu::throttle_stats(&d, &mut s.cpu)?;
        }
        if let Some(d) = self.dir("memory") {
            memory::stats(&d, &mut s.memory)?;
        }
        if let Some(d) = self.dir("pids") {
            pids::stats(&d, &mut s.pids)?;
        }
        if let Some(d) = self.dir("blkio") {
            blkio::stats(&d, &mut s.io)?;
        }
        Ok(s)
    }
}

impl Manager for V1Manager {
    fn hierarchy(&self) -> Hierarchy {
        if self.unified.is_some() {
            Hierarchy::Hybrid
        } else {
            Hierarchy::V1
        }
    }

    fn relative_path(&self) -> &Path {
        &self.rel
    }

    fn apply(&self, pid: i32) -> Result<(), crate::Error> {
        self.ensure_dirs()?;
        for dir in self.all_dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn set(&self, resources: &LinuxResources) -> Result<(), crate::Error> {
        crate::validate(resources)?;
        self.ensure_dirs()?;
        Ok(self.set_resources(resources)?)
    }

    fn freeze(&self) -> Result<(), crate::Error> {
        Ok(freezer::freeze(&self.need("freezer", "freeze")?)?)
    }

    fn thaw(&self) -> Result<(), crate::Error> {
        Ok(freezer::thaw(&self.need("freezer", "thaw")?)?)
    }

    fn is_frozen(&self) -> Result<bool, crate::Error> {
        Ok(freezer::is_frozen(&self.need("freezer", "freezer state")?)?)
    }

    fn pids(&self) -> Result<Vec<i32>, crate::Error> {
        let dir = ["pids", "freezer", "memory", "devices", "cpu"]
            .iter()
            .find_map(|c| self.dir(c))
            .or_else(|| self.all_dirs().into_iter().next())
            .ok_or_else(|| Error::NoHierarchies {
                root: self.root.clone(),
            })?;
        let mut pids = fs::read_pids(&dir.join("cgroup.procs"))?;
        pids.sort_unstable();
        Ok(pids)
    }

    fn stats(&self) -> Result<Stats, crate::Error> {
        Ok(self.collect_stats()?)
    }

    fn destroy(&self) -> Result<(), crate::Error> {
        let mut first_err = None;
        for dir in self.all_dirs() {
            if let Err(e) = fs::remove_tree(&dir) {
                // The first error is returned; later ones would be lost, so log them here.
                if first_err.is_some() {
                    tracing::warn!(error = %e, "removing a cgroup directory failed");
                } else {
                    first_err = Some(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn mount_sources(&self) -> Vec<(String, PathBuf)> {
        let mut out: Vec<(String, PathBuf)> = self
            .mounts
            .iter()
            .map(|m| (m.mount_name(), m.mountpoint.join(&self.rel)))
            .collect();
        out.extend(
            self.unified
                .iter()
                .map(|u| ("unified".to_owned(), u.join(&self.rel))),
        );
        out
    }
}

#[cfg(test)]
mod tests;
