//! v2 cpu and cpuset: cpu.weight (from shares), cpu.max ("quota period"), cpu.max.burst,
//! cpu.idle, cpuset.cpus, cpuset.mems; usage from cpu.stat.

use std::path::Path;

use oci_spec::runtime::LinuxCpu;

use super::Error;
use crate::fs;
use crate::stats::{self, CpuStats};

pub(super) fn wanted(c: &LinuxCpu) -> bool {
    c.shares().is_some_and(|v| v != 0)
        || c.quota().is_some_and(|v| v != 0)
        || c.period().is_some_and(|v| v != 0)
        || c.burst().is_some()
        || c.idle().is_some()
}

pub(super) fn cpuset_wanted(c: &LinuxCpu) -> bool {
    c.cpus().as_deref().is_some_and(|s| !s.trim().is_empty())
        || c.mems().as_deref().is_some_and(|s| !s.trim().is_empty())
}

/// v1 shares (2..262144) to v2 weight (1..10000), as runc converts.
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// The cpu.max line: quota ("max" when unlimited) and, if given, the period.
pub(crate) fn max_line(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut line = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_owned(),
    };
    if let Some(p) = period {
        line.push_str(&format!(" {p}"));
    }
    Some(line)
}

pub(super) fn set(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        fs::write(
            &dir.join("cpu.weight"),
            &shares_to_weight(shares).to_string(),
        )?;
    }
    if let Some(line) = max_line(c.quota(), c.period()) {
        fs::write(&dir.join("cpu.max"), &line)?;
    }
    if let Some(burst) = c.burst() {
        fs::write(&dir.join("cpu.max.burst"), &burst.to_string())?;
    }
    if let Some(idle) = c.idle() {
        fs::write(&dir.join("cpu.idle"), &idle.to_string())?;
    }
    Ok(())
}

pub(super) fn set_cpuset(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    for (file, value) in [("cpuset.cpus", c.cpus()), ("cpuset.mems", c.mems())] {
        if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            fs::write(&dir.join(file), v)?;
        }
    }
    Ok(())
}

/// cpu.stat exists in every v2 cgroup (usage even without the cpu controller); times are in
/// microseconds there.
pub(super) fn stats(dir: &Path, s: &mut CpuStats) -> Result<(), Error> {
    let Some(text) = fs::read_if_exists(&dir.join("cpu.stat"))? else {
        return Ok(());
    };
    let m = stats::flat_keyed(&text);
    let get = |k: &str| m.get(k).copied().unwrap_or(0);
    s.usage_total_ns = get("usage_usec") * 1000;
    s.usage_user_ns = get("user_usec") * 1000;
    s.usage_system_ns = get("system_usec") * 1000;
    s.nr_periods = get("nr_periods");
    s.nr_throttled = get("nr_throttled");
    s.throttled_time_ns = get("throttled_usec") * 1000;
    Ok(())
}
