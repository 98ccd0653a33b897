//! v1 net_cls / net_prio (applied where mounted, else ignored with a debug log: they only tag
//! traffic) and rdma (rdma.max).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNetwork, LinuxRdma};

use super::Error;
use crate::fs;

pub(super) fn set_network(
    net_cls: Option<PathBuf>,
    net_prio: Option<PathBuf>,
    n: &LinuxNetwork,
) -> Result<(), Error> {
    if let Some(id) = n.class_id() {
        match net_cls {
            Some(dir) => fs::write(&dir.join("net_cls.classid"), &id.to_string())?,
            None => {
                tracing::debug!("linux.resources.network.classID ignored: no net_cls hierarchy")
            }
        }
    }
    for p in n.priorities().iter().flatten() {
        match &net_prio {
            Some(dir) => fs::write(
                &dir.join("net_prio.ifpriomap"),
                &format!("{} {}", p.name(), p.priority()),
            )?,
            None => {
                tracing::debug!("linux.resources.network.priorities ignored: no net_prio hierarchy")
            }
        }
    }
    Ok(())
}

/// One rdma.max line: "mlx4_0 hca_handle=2 hca_object=2000"; shared with v2 (same format).
pub(crate) fn rdma_line(device: &str, r: &LinuxRdma) -> Option<String> {
    let mut line = device.to_owned();
    if let Some(h) = r.hca_handles() {
        line.push_str(&format!(" hca_handle={h}"));
    }
    if let Some(o) = r.hca_objects() {
        line.push_str(&format!(" hca_object={o}"));
    }
    (line.len() > device.len()).then_some(line)
}

pub(super) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<(), Error> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, r) in devices {
        if let Some(line) = rdma_line(device, r) {
            fs::write(&dir.join("rdma.max"), &line)?;
        }
    }
    Ok(())
}
