//! v1 memory: memory.limit_in_bytes, memory.memsw.limit_in_bytes (memory + swap),
//! memory.soft_limit_in_bytes, memory.swappiness, memory.oom_control.

use std::path::Path;

use oci_spec::runtime::LinuxMemory;

use super::Error;
use crate::fs;
use crate::stats::{self, MemoryStats};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// Whether the section asks for anything this controller writes (kernel memory is ignored).
pub(super) fn wanted(m: &LinuxMemory) -> bool {
    m.limit().is_some_and(|v| v != 0)
        || m.reservation().is_some_and(|v| v != 0)
        || m.swap().is_some_and(|v| v != 0)
        || m.swappiness().is_some()
        || m.disable_oom_killer().is_some()
}

pub(super) fn set(dir: &Path, m: &LinuxMemory) -> Result<(), Error> {
    if m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::debug!(
            "linux.resources.memory.kernel/kernelTCP ignored (deprecated by the kernel)"
        );
    }
    let limit = m.limit().unwrap_or(0);
    let mut swap = m.swap().unwrap_or(0);
    // Unlimited memory with no swap value means unlimited memory+swap too.
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    let memsw = dir.join(MEMSW);
    if swap != 0 && !fs::exists(&memsw) {
        // No swap accounting (swapaccount=0 or no swap support): a value that asks for no
        // more than what the memory limit already gives is fine, anything else cannot be
        // honoured.
        if swap != -1 && swap != limit {
            return Err(Error::SwapUnsupported { path: memsw, swap });
        }
        tracing::debug!(
            swap,
            "no memsw accounting; swap limit equal to the memory limit accepted"
        );
        swap = 0;
    }
    let write_limit = || fs::write(&dir.join(LIMIT), &limit.to_string());
    let write_swap = || fs::write(&memsw, &swap.to_string());
    if limit != 0 && swap != 0 {
        // memory+swap must stay >= memory at every step: when the limit grows, raise memsw
        // first; when it shrinks, lower the limit first.
        let current = fs::read_u64(&dir.join(LIMIT))?.unwrap_or(u64::MAX);
        if swap == -1 || limit == -1 || limit as u64 > current {
            write_swap()?;
            write_limit()?;
        } else {
            write_limit()?;
            write_swap()?;
        }
    } else if limit != 0 {
        write_limit()?;
    } else if swap != 0 {
        write_swap()?;
    }
    if let Some(res) = m.reservation().filter(|r| *r != 0) {
        fs::write(&dir.join("memory.soft_limit_in_bytes"), &res.to_string())?;
    }
    if let Some(s) = m.swappiness() {
        fs::write(&dir.join("memory.swappiness"), &s.to_string())?;
    }
    if let Some(disable) = m.disable_oom_killer() {
        fs::write(
            &dir.join("memory.oom_control"),
            if disable { "1" } else { "0" },
        )?;
    }
    Ok(())
}

pub(super) fn stats(dir: &Path, s: &mut MemoryStats) -> Result<(), Error> {
    let num = |f: &str| fs::read_u64(&dir.join(f));
    s.usage = num("memory.usage_in_bytes")?.unwrap_or(0);
    s.max_usage = num("memory.max_usage_in_bytes")?.unwrap_or(0);
    s.limit = num(LIMIT)?.and_then(stats::limit);
    s.failcnt = num("memory.failcnt")?.unwrap_or(0);
    if let Some(memsw) = num("memory.memsw.usage_in_bytes")? {
        s.swap_usage = Some(memsw.saturating_sub(s.usage));
    }
    if let Some(text) = fs::read_if_exists(&dir.join("memory.stat"))? {
        s.stat = stats::flat_keyed(&text);
        s.cache = s.stat.get("cache").copied().unwrap_or(0);
    }
    if let Some(text) = fs::read_if_exists(&dir.join("memory.oom_control"))? {
        s.oom_kill = stats::flat_keyed(&text)
            .get("oom_kill")
            .copied()
            .unwrap_or(0);
        s.oom_events = s.oom_kill;
    }
    Ok(())
}
