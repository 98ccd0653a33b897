//! v2 pids (pids.max), hugetlb (hugetlb.<size>.max) and rdma (rdma.max).

use std::collections::HashMap;
use std::path::Path;

use oci_spec::runtime::{LinuxHugepageLimit, LinuxPids, LinuxRdma};

use super::Error;
use crate::fs;
use crate::stats::{self, PidsStats};

pub(super) fn set_pids(dir: &Path, p: &LinuxPids) -> Result<(), Error> {
    let value = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_owned()
    };
    Ok(fs::write(&dir.join("pids.max"), &value)?)
}

pub(super) fn pids_stats(dir: &Path, s: &mut PidsStats) -> Result<(), Error> {
    s.current = fs::read_u64(&dir.join("pids.current"))?.unwrap_or(0);
    s.limit = fs::read_u64(&dir.join("pids.max"))?.and_then(stats::limit);
    Ok(())
}

pub(super) fn set_hugetlb(dir: &Path, limits: &[LinuxHugepageLimit]) -> Result<(), Error> {
    for l in limits {
        let value = if l.limit() < 0 {
            "max".to_owned()
        } else {
            l.limit().to_string()
        };
        fs::write(&dir.join(format!("hugetlb.{}.max", l.page_size())), &value)?;
    }
    Ok(())
}

pub(super) fn set_rdma(dir: &Path, rdma: &HashMap<String, LinuxRdma>) -> Result<(), Error> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, r) in devices {
        if let Some(line) = crate::v1::misc::rdma_line(device, r) {
            fs::write(&dir.join("rdma.max"), &line)?;
        }
    }
    Ok(())
}
