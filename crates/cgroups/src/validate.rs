//! Checking `linux.resources` before any process is created, so that a bad value fails
//! `create` with a message naming the field instead of a kernel EINVAL halfway through setup.

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxHugepageLimit, LinuxMemory, LinuxResources, LinuxThrottleDevice,
};

use crate::devices;

/// cpu.shares bounds (kernel MIN_SHARES / MAX_SHARES).
pub const MIN_SHARES: u64 = 2;
pub const MAX_SHARES: u64 = 262_144;
/// CFS period and quota bounds in microseconds (1ms .. 1s for the period, at least 1ms quota).
pub const MIN_CFS_PERIOD: u64 = 1_000;
pub const MAX_CFS_PERIOD: u64 = 1_000_000;
pub const MIN_CFS_QUOTA: i64 = 1_000;
/// blkio weight bounds (v1 CFQ/BFQ).
pub const MIN_BLKIO_WEIGHT: u16 = 10;
pub const MAX_BLKIO_WEIGHT: u16 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks every value of `resources`; the first bad one is returned.
pub fn validate(r: &LinuxResources) -> Result<(), Error> {
    if let Some(m) = r.memory() {
        memory(m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c)?;
    }
    if let Some(b) = r.block_io() {
        block_io(b)?;
    }
    if let Some(rules) = r.devices() {
        for (i, rule) in rules.iter().enumerate() {
            devices::convert(rule)
                .map_err(|reason| invalid(format!("linux.resources.devices[{i}]"), reason))?;
        }
    }
    if let Some(limits) = r.hugepage_limits() {
        hugepages(limits)?;
    }
    if let Some(u) = r.unified() {
        for key in u.keys() {
            if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.') {
                return Err(invalid(
                    format!("linux.resources.unified[{key:?}]"),
                    "not a cgroup v2 file name such as \"memory.high\"",
                ));
            }
        }
    }
    if let Some(rdma) = r.rdma() {
        for dev in rdma.keys() {
            if dev.is_empty() || dev.contains(char::is_whitespace) || dev.contains('/') {
                return Err(invalid(
                    format!("linux.resources.rdma[{dev:?}]"),
                    "not an RDMA device name",
                ));
            }
        }
    }
    Ok(())
}

/// A memory value: -1 (unlimited), 0 (unset) or a positive byte count.
fn memory_value(field: &str, v: Option<i64>) -> Result<(), Error> {
    match v {
        Some(v) if v < -1 => Err(invalid(
            field,
            format!("{v} is not -1 (unlimited) or a byte count"),
        )),
        _ => Ok(()),
    }
}

fn memory(m: &LinuxMemory) -> Result<(), Error> {
    const F: &str = "linux.resources.memory";
    memory_value(&format!("{F}.limit"), m.limit())?;
    memory_value(&format!("{F}.reservation"), m.reservation())?;
    memory_value(&format!("{F}.swap"), m.swap())?;
    let limit = m.limit().filter(|l| *l > 0);
    if let (Some(res), Some(limit)) = (m.reservation().filter(|r| *r > 0), limit) {
        if res > limit {
            return Err(invalid(
                format!("{F}.reservation"),
                format!("{res} is above the memory limit {limit}"),
            ));
        }
    }
    if let Some(swap) = m.swap().filter(|s| *s > 0) {
        match limit {
            None => {
                return Err(invalid(
                    format!("{F}.swap"),
                    format!(
                    "{swap} (memory+swap) needs a memory limit; set linux.resources.memory.limit"
                ),
                ))
            }
            Some(limit) if swap < limit => {
                return Err(invalid(
                    format!("{F}.swap"),
                    format!("{swap} (memory+swap) is below the memory limit {limit}"),
                ))
            }
            _ => {}
        }
    }
    if let Some(s) = m.swappiness() {
        if s > 100 {
            return Err(invalid(
                format!("{F}.swappiness"),
                format!("{s} is above 100"),
            ));
        }
    }
    Ok(())
}

fn cpu(c: &LinuxCpu) -> Result<(), Error> {
    const F: &str = "linux.resources.cpu";
    if let Some(s) = c.shares().filter(|s| *s != 0) {
        if !(MIN_SHARES..=MAX_SHARES).contains(&s) {
            return Err(invalid(
                format!("{F}.shares"),
                format!("{s} is outside {MIN_SHARES}..={MAX_SHARES}"),
            ));
        }
    }
    if let Some(p) = c.period().filter(|p| *p != 0) {
        if !(MIN_CFS_PERIOD..=MAX_CFS_PERIOD).contains(&p) {
            return Err(invalid(
                format!("{F}.period"),
                format!("{p}us is outside {MIN_CFS_PERIOD}..={MAX_CFS_PERIOD}us"),
            ));
        }
    }
    if let Some(q) = c.quota().filter(|q| *q != 0 && *q != -1) {
        if q < MIN_CFS_QUOTA {
            return Err(invalid(
                format!("{F}.quota"),
                format!("{q}us is not -1 (unlimited) or at least {MIN_CFS_QUOTA}us"),
            ));
        }
    }
    if let Some(rt) = c.realtime_runtime() {
        if rt < -1 {
            return Err(invalid(
                format!("{F}.realtimeRuntime"),
                format!("{rt} is not -1 or a duration in us"),
            ));
        }
        if let Some(p) = c.realtime_period().filter(|p| *p != 0) {
            if rt > 0 && rt as u64 > p {
                return Err(invalid(
                    format!("{F}.realtimeRuntime"),
                    format!("{rt}us is above realtimePeriod {p}us"),
                ));
            }
        }
    }
    if let Some(idle) = c.idle() {
        if idle != 0 && idle != 1 {
            return Err(invalid(
                format!("{F}.idle"),
                format!("{idle} is not 0 or 1"),
            ));
        }
    }
    if let Some(cpus) = c.cpus() {
        cpuset_list(cpus).map_err(|reason| invalid(format!("{F}.cpus"), reason))?;
    }
    if let Some(mems) = c.mems() {
        cpuset_list(mems).map_err(|reason| invalid(format!("{F}.mems"), reason))?;
    }
    Ok(())
}

/// Parses a cpuset list such as "0-3,7" into its numbers. Empty means "inherit".
pub fn cpuset_list(s: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(out);
    }
    let num = |t: &str| {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?}: {t:?} is not a number"));
        }
        t.parse::<u32>()
            .ok()
            .filter(|n| *n < 1 << 16)
            .ok_or_else(|| format!("{s:?}: {t:?} is too large"))
    };
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("{s:?}: range {a}-{b} is reversed"));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    Ok(out)
}

fn blkio_weight(field: &str, w: Option<u16>) -> Result<(), Error> {
    match w {
        Some(w) if w != 0 && !(MIN_BLKIO_WEIGHT..=MAX_BLKIO_WEIGHT).contains(&w) => Err(invalid(
            field,
            format!("{w} is outside {MIN_BLKIO_WEIGHT}..={MAX_BLKIO_WEIGHT}"),
        )),
        _ => Ok(()),
    }
}

fn device_numbers(field: &str, major: i64, minor: i64) -> Result<(), Error> {
    if !(0..=devices::MAX_MAJOR).contains(&major) || !(0..=devices::MAX_MINOR).contains(&minor) {
        return Err(invalid(
            field,
            format!("device {major}:{minor} is not a valid major:minor"),
        ));
    }
    Ok(())
}

fn block_io(b: &LinuxBlockIo) -> Result<(), Error> {
    const F: &str = "linux.resources.blockIO";
    blkio_weight(&format!("{F}.weight"), b.weight())?;
    blkio_weight(&format!("{F}.leafWeight"), b.leaf_weight())?;
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        let field = format!("{F}.weightDevice[{i}]");
        device_numbers(&field, d.major(), d.minor())?;
        blkio_weight(&format!("{field}.weight"), d.weight())?;
        blkio_weight(&format!("{field}.leafWeight"), d.leaf_weight())?;
    }
    let throttles: [(&str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        ("throttleReadBpsDevice", b.throttle_read_bps_device()),
        ("throttleWriteBpsDevice", b.throttle_write_bps_device()),
        ("throttleReadIOPSDevice", b.throttle_read_iops_device()),
        ("throttleWriteIOPSDevice", b.throttle_write_iops_device()),
    ];
    for (name, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            device_numbers(&format!("{F}.{name}[{i}]"), d.major(), d.minor())?;
        }
    }
    Ok(())
}

/// A hugepage size as the kernel names it in hugetlb file names: "2MB", "1GB", "64KB".
pub fn hugepage_size_ok(s: &str) -> bool {
    let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &s[digits.len()..];
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && matches!(unit, "KB" | "MB" | "GB")
}

fn hugepages(limits: &[LinuxHugepageLimit]) -> Result<(), Error> {
    for (i, l) in limits.iter().enumerate() {
        let field = format!("linux.resources.hugepageLimits[{i}]");
        if !hugepage_size_ok(l.page_size()) {
            return Err(invalid(
                format!("{field}.pageSize"),
                format!(
                    "{:?} is not a size such as \"2MB\" or \"1GB\"",
                    l.page_size()
                ),
            ));
        }
        if l.limit() < -1 {
            return Err(invalid(
                format!("{field}.limit"),
                format!("{} is not -1 (unlimited) or a byte count", l.limit()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
