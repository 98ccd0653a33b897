//! Resource usage of one container's cgroup, the same shape on v1 and v2; fields a hierarchy
//! cannot report stay at their defaults (0, empty, `None`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
    pub io: IoStats,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time consumed, in nanoseconds.
    pub usage_total_ns: u64,
    pub usage_user_ns: u64,
    pub usage_system_ns: u64,
    /// Per-CPU total usage in nanoseconds (v1 cpuacct only).
    pub per_cpu_ns: Vec<u64>,
    /// CFS bandwidth: periods elapsed, periods throttled, time throttled.
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_time_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage in bytes (v1 memory.usage_in_bytes, v2 memory.current).
    pub usage: u64,
    /// Peak usage in bytes (v1 memory.max_usage_in_bytes, v2 memory.peak where present).
    pub max_usage: u64,
    /// The limit in bytes; `None` when unlimited.
    pub limit: Option<u64>,
    /// Page cache in bytes (v1 "cache", v2 "file" in memory.stat).
    pub cache: u64,
    /// Swap in use in bytes, where the kernel accounts it.
    pub swap_usage: Option<u64>,
    /// Times the limit was hit (v1 memory.failcnt, v2 "max" in memory.events).
    pub failcnt: u64,
    /// OOM events (v2 "oom" in memory.events; v1: under_oom transitions are not counted, so
    /// this equals `oom_kill` there).
    pub oom_events: u64,
    /// Processes killed by the OOM killer in this cgroup.
    pub oom_kill: u64,
    /// The raw memory.stat counters (e.g. "inactive_file", which `docker stats` subtracts).
    pub stat: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    /// `None` when unlimited.
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoStats {
    pub devices: Vec<IoDeviceStats>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoDeviceStats {
    pub major: u64,
    pub minor: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ops: u64,
    pub write_ops: u64,
}

impl IoStats {
    /// The entry for a device, created on first use.
    pub(crate) fn device(&mut self, major: u64, minor: u64) -> &mut IoDeviceStats {
        let i = match self
            .devices
            .iter()
            .position(|d| d.major == major && d.minor == minor)
        {
            Some(i) => i,
            None => {
                self.devices.push(IoDeviceStats {
                    major,
                    minor,
                    ..Default::default()
                });
                self.devices.len() - 1
            }
        };
        &mut self.devices[i]
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events); lines that do not parse are
/// skipped.
pub(crate) fn flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_owned(), v.trim().parse().ok()?))
        })
        .collect()
}

/// "MAJ:MIN" into its numbers.
pub(crate) fn dev_numbers(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A limit as reported by the kernel: "max" or a huge v1 value (the page counter maximum,
/// 0x7FFFFFFFFFFFF000 on 4K pages) mean unlimited.
pub(crate) fn limit(v: u64) -> Option<u64> {
    if v >= 1 << 62 {
        None
    } else {
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        let m = flat_keyed("cache 10\nrss 20\nbad line x\n");
        assert_eq!(m["cache"], 10);
        assert_eq!(m.len(), 2);
        assert_eq!(dev_numbers("8:16"), Some((8, 16)));
        assert_eq!(dev_numbers("Total"), None);
        assert_eq!(limit(9223372036854771712), None);
        assert_eq!(limit(u64::MAX), None);
        assert_eq!(limit(1024), Some(1024));
        let mut io = IoStats::default();
        io.device(8, 0).read_bytes = 5;
        io.device(8, 0).write_bytes = 6;
        io.device(8, 16).read_ops = 1;
        assert_eq!(io.devices.len(), 2);
        assert_eq!(io.devices[0].read_bytes, 5);
        assert_eq!(io.devices[0].write_bytes, 6);
    }
}
