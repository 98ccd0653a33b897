//! v1 cpu and cpuacct: cpu.shares, cpu.cfs_period_us / cpu.cfs_quota_us, cpu.cfs_burst_us,
//! cpu.rt_period_us / cpu.rt_runtime_us, cpu.idle; usage from cpuacct.

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
        || c.realtime_runtime().is_some_and(|v| v != 0)
        || c.realtime_period().is_some_and(|v| v != 0)
}

/// Writes `first` then `second`; if `first` is refused with EINVAL (a new period that does not
/// fit the current quota or runtime), writes `second` first and retries `first`.
fn write_pair(first: (&Path, String), second: Option<(&Path, String)>) -> Result<(), Error> {
    match fs::write(first.0, &first.1) {
        Ok(()) => {
            if let Some((p, v)) = second {
                fs::write(p, &v)?;
            }
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EINVAL as i32) => {
            let Some((p, v)) = second else {
                return Err(e.into());
            };
            fs::write(p, &v)?;
            fs::write(first.0, &first.1)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn set(dir: &Path, c: &LinuxCpu) -> Result<(), Error> {
    if let Some(shares) = c.shares().filter(|s| *s != 0) {
        fs::write(&dir.join("cpu.shares"), &shares.to_string())?;
    }
    let period_file = dir.join("cpu.cfs_period_us");
    let quota_file = dir.join("cpu.cfs_quota_us");
    let quota = c.quota().filter(|q| *q != 0);
    match c.period().filter(|p| *p != 0) {
        Some(period) => write_pair(
            (&period_file, period.to_string()),
            quota.map(|q| (quota_file.as_path(), q.to_string())),
        )?,
        None => {
            if let Some(q) = quota {
                fs::write(&quota_file, &q.to_string())?;
            }
        }
    }
    if let Some(burst) = c.burst() {
        fs::write(&dir.join("cpu.cfs_burst_us"), &burst.to_string())?;
    }
    let rt_period_file = dir.join("cpu.rt_period_us");
    let rt_runtime_file = dir.join("cpu.rt_runtime_us");
    let runtime = c.realtime_runtime().filter(|r| *r != 0);
    match c.realtime_period().filter(|p| *p != 0) {
        Some(period) => write_pair(
            (&rt_period_file, period.to_string()),
            runtime.map(|r| (rt_runtime_file.as_path(), r.to_string())),
        )?,
        None => {
            if let Some(r) = runtime {
                fs::write(&rt_runtime_file, &r.to_string())?;
            }
        }
    }
    if let Some(idle) = c.idle() {
        fs::write(&dir.join("cpu.idle"), &idle.to_string())?;
    }
    Ok(())
}

/// Usage from the cpuacct hierarchy: cpuacct.usage (ns), cpuacct.stat (USER_HZ ticks),
/// cpuacct.usage_percpu (ns).
pub(super) fn acct_stats(dir: &Path, s: &mut CpuStats) -> Result<(), Error> {
    s.usage_total_ns = fs::read_u64(&dir.join("cpuacct.usage"))?.unwrap_or(0);
    if let Some(text) = fs::read_if_exists(&dir.join("cpuacct.stat"))? {
        let ticks = stats::flat_keyed(&text);
        let ns_per_tick = 1_000_000_000 / clock_ticks();
        s.usage_user_ns = ticks.get("user").copied().unwrap_or(0) * ns_per_tick;
        s.usage_system_ns = ticks.get("system").copied().unwrap_or(0) * ns_per_tick;
    }
    if let Some(text) = fs::read_if_exists(&dir.join("cpuacct.usage_percpu"))? {
        s.per_cpu_ns = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
    }
    Ok(())
}

/// USER_HZ, the unit of cpuacct.stat (100 on every Linux architecture in practice).
fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

/// CFS throttling from cpu.stat (v1 reports throttled_time in ns).
pub(super) fn throttle_stats(dir: &Path, s: &mut CpuStats) -> Result<(), Error> {
    if let Some(text) = fs::read_if_exists(&dir.join("cpu.stat"))? {
        let m = stats::flat_keyed(&text);
        s.nr_periods = m.get("nr_periods").copied().unwrap_or(0);
        s.nr_throttled = m.get("nr_throttled").copied().unwrap_or(0);
        s.throttled_time_ns = m.get("throttled_time").copied().unwrap_or(0);
    }
    Ok(())
}
