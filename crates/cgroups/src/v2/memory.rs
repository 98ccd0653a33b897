//! v2 memory: memory.max, memory.low (reservation), memory.swap.max (= OCI swap - memory).

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::Error;
use crate::fs;
use crate::stats::{self, MemoryStats};

pub(super) fn wanted(m: &LinuxMemory) -> bool {
    m.limit().is_some_and(|v| v != 0)
        || m.reservation().is_some_and(|v| v != 0)
        || m.swap().is_some_and(|v| v != 0)
}

/// The v1-only knobs, logged and dropped.
pub(super) fn ignored(m: &LinuxMemory) {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!(
            "linux.resources.memory.kernel/kernelTCP ignored (deprecated by the kernel)"
        );
    }
    if m.swappiness().is_some() {
        tracing::debug!("linux.resources.memory.swappiness ignored: no cgroup v2 equivalent");
    }
    if m.disable_oom_killer().is_some() {
        tracing::debug!("linux.resources.memory.disableOOMKiller ignored: no cgroup v2 equivalent");
    }
}

/// 0: leave unset; -1: "max"; else the number.
fn value(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".to_owned()),
        v => Some(v.to_string()),
    }
}

/// OCI's swap is memory+swap; v2's memory.swap.max is swap alone (runc's
/// ConvertMemorySwapToCgroupV2Value). Inputs are validated: swap > 0 implies limit > 0 and
/// swap >= limit. Returns None to leave it unset.
pub(crate) fn swap_max(swap: i64, limit: i64) -> Option<String> {
    match (swap, limit) {
        // Unlimited memory with no swap value: unlimited swap too.
        (0, -1) => Some("max".to_owned()),
        (0, _) => None,
        (-1, _) => Some("max".to_owned()),
        (s, l) => Some((s - l).to_string()),
    }
}

pub(super) fn set(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    let limit = m.limit().unwrap_or(0);
    if let Some(swap) = swap_max(m.swap().unwrap_or(0), limit) {
        let file = dir.join("memory.swap.max");
        if fs::exists(&file) {
            fs::write(&file, &swap)?;
        } else if swap != "max" && swap != "0" {
            return Err(Error::SwapUnsupported {
                path: file,
                swap: m.swap().unwrap_or(0),
            });
        } else {
            tracing::debug!(
                swap,
                "no swap accounting; swap limit that adds nothing accepted"
            );
        }
    }
    if let Some(v) = value(limit) {
        fs::write(&dir.join("memory.max"), &v)?;
    }
    if let Some(v) = m.reservation().and_then(value) {
        fs::write(&dir.join("memory.low"), &v)?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path, s: &mut MemoryStats) -> Result<(), Error> {
    let num = |f: &str| fs::read_u64(&dir.join(f));
    s.usage = num("memory.current")?.unwrap_or(0);
    s.max_usage = num("memory.peak")?.unwrap_or(0);
    s.limit = num("memory.max")?.and_then(stats::limit);
    s.swap_usage = num("memory.swap.current")?;
    if let Some(text) = fs::read_if_exists(&dir.join("memory.stat"))? {
        s.stat = stats::flat_keyed(&text);
        s.cache = s.stat.get("file").copied().unwrap_or(0);
    }
    if let Some(text) = fs::read_if_exists(&dir.join("memory.events"))? {
        let ev = stats::flat_keyed(&text);
        s.failcnt = ev.get("max").copied().unwrap_or(0);
        s.oom_events = ev.get("oom").copied().unwrap_or(0);
        s.oom_kill = ev.get("oom_kill").copied().unwrap_or(0);
    }
    Ok(())
}
