//! v2 io: io.weight (from the blkio weight) or io.bfq.weight, per-device weights, and io.max
//! ("MAJ:MIN rbps=.. wbps=.. riops=.. wiops=.."); statistics from io.stat.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::LinuxBlockIo;

use super::Error;
use crate::fs;
use crate::stats::{self, IoStats};

pub(super) fn wanted(b: &LinuxBlockIo) -> bool {
    b.weight().is_some_and(|w| w != 0)
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || !max_lines(b).is_empty()
}

/// v1 blkio weight (10..1000) to v2 io.weight (1..10000), as runc converts.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

/// One io.max line per device, all four limits of a device together.
pub(crate) fn max_lines(b: &LinuxBlockIo) -> Vec<String> {
    let mut per_dev: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (key, list) in [
        ("rbps", b.throttle_read_bps_device()),
        ("wbps", b.throttle_write_bps_device()),
        ("riops", b.throttle_read_iops_device()),
        ("wiops", b.throttle_write_iops_device()),
    ] {
        for d in list.iter().flatten() {
            let rate = if d.rate() == 0 {
                "max".to_owned()
            } else {
                d.rate().to_string()
            };
            per_dev
                .entry((d.major(), d.minor()))
                .or_default()
                .push(format!("{key}={rate}"));
        }
    }
    per_dev
        .into_iter()
        .map(|((maj, min), parts)| format!("{maj}:{min} {}", parts.join(" ")))
        .collect()
}

pub(super) fn set(dir: &Path, b: &LinuxBlockIo) -> Result<(), Error> {
    let bfq = dir.join("io.bfq.weight");
    let weight = dir.join("io.weight");
    if b.leaf_weight().is_some() {
        tracing::debug!("linux.resources.blockIO.leafWeight ignored: no cgroup v2 equivalent");
    }
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        if fs::exists(&weight) {
            fs::write(&weight, &blkio_to_io_weight(w).to_string())?;
        } else {
            // BFQ takes the v1 range as is.
            fs::write(&bfq, &w.to_string())?;
        }
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(w) = d.weight().filter(|w| *w != 0) {
            let dev = format!("{}:{}", d.major(), d.minor());
            if fs::exists(&bfq) {
                fs::write(&bfq, &format!("{dev} {w}"))?;
            } else {
                fs::write(&weight, &format!("{dev} {}", blkio_to_io_weight(w)))?;
            }
        }
    }
    for line in max_lines(b) {
        fs::write(&dir.join("io.max"), &line)?;
    }
    Ok(())
}

/// io.stat lines: "8:0 rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..".
pub(super) fn stats(dir: &Path, s: &mut IoStats) -> Result<(), Error> {
    let Some(text) = fs::read_if_exists(&dir.join("io.stat"))? else {
        return Ok(());
    };
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(stats::dev_numbers) else {
            continue;
        };
        let d = s.device(maj, min);
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else {
                continue;
            };
            match k {
                "rbytes" => d.read_bytes += v,
                "wbytes" => d.write_bytes += v,
                "rios" => d.read_ops += v,
                "wios" => d.write_ops += v,
                _ => {}
            }
        }
    }
    Ok(())
}
