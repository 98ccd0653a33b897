//! v1 blkio: blkio.weight (or blkio.bfq.weight), per-device weights, and the
//! blkio.throttle.* per-device limits; I/O statistics from blkio.throttle.io_service*.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxBlockIo, LinuxThrottleDevice};

use super::Error;
use crate::fs;
use crate::stats::{self, IoStats};

pub(super) fn wanted(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.leaf_weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || [
            b.throttle_read_bps_device(),
            b.throttle_write_bps_device(),
            b.throttle_read_iops_device(),
            b.throttle_write_iops_device(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
}

/// The weight file: CFQ's blkio.weight, or BFQ's blkio.bfq.weight on newer kernels.
fn weight_file(dir: &Path, suffix: &str) -> Result<PathBuf, Error> {
    let cfq = dir.join(format!("blkio.weight{suffix}"));
    if fs::exists(&cfq) {
        return Ok(cfq);
    }
    let bfq = dir.join(format!("blkio.bfq.weight{suffix}"));
    if fs::exists(&bfq) {
        return Ok(bfq);
    }
    Err(Error::NoBlkioWeight {
        dir: dir.to_owned(),
    })
}

pub(super) fn set(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        fs::write(&weight_file(dir, "")?, &w.to_string())?;
    }
    let leaf = dir.join("blkio.leaf_weight");
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        if fs::exists(&leaf) {
            fs::write(&leaf, &w.to_string())?;
        } else {
            tracing::debug!("linux.resources.blockIO.leafWeight ignored: no blkio.leaf_weight");
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            let line = format!("{}:{} {w}", d.major(), d.minor());
            fs::write(&weight_file(dir, "_device")?, &line)?;
        }
        if let Some(w) = d.leaf_weight().filter(|w| *w != 0) {
            let file = dir.join("blkio.leaf_weight_device");
            if fs::exists(&file) {
                fs::write(&file, &format!("{}:{} {w}", d.major(), d.minor()))?;
            }
        }
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (file, list) in throttles {
        for d in list.iter().flatten() {
            let line = format!("{}:{} {}", d.major(), d.minor(), d.rate());
            fs::write(&dir.join(file), &line)?;
        }
    }
    Ok(())
}

/// "MAJ:MIN Read N" / "MAJ:MIN Write N" lines of blkio.throttle.io_service_bytes (bytes) and
/// blkio.throttle.io_serviced (operations). The throttle files are always present, whatever
/// the I/O scheduler.
pub(super) fn stats(dir: &Path, s: &mut IoStats) -> Result<(), Error> {
    for (file, bytes) in [
        ("blkio.throttle.io_service_bytes", true),
        ("blkio.throttle.io_serviced", false),
    ] {
        let Some(text) = fs::read_if_exists(&dir.join(file))? else {
            continue;
        };
        for line in text.lines() {
            let mut f = line.split_whitespace();
            let (Some(dev), Some(op), Some(v)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            let (Some((maj, min)), Ok(v)) = (stats::dev_numbers(dev), v.parse::<u64>()) else {
                continue;
            };
            let d = s.device(maj, min);
            match (op, bytes) {
                ("Read", true) => d.read_bytes += v,
                ("Write", true) => d.write_bytes += v,
                ("Read", false) => d.read_ops += v,
                ("Write", false) => d.write_ops += v,
                _ => {}
            }
        }
    }
    Ok(())
}
