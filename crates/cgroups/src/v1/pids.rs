//! v1 pids: pids.max (a limit <= 0 means "max").

use std::path::Path;

use oci_spec::runtime::LinuxPids;

use super::Error;
use crate::fs;
use crate::stats::{self, PidsStats};

pub(super) fn set(dir: &Path, p: &LinuxPids) -> Result<(), Error> {
    let value = if p.limit() > 0 {
        p.limit().to_string()
    } else {
        "max".to_owned()
    };
    Ok(fs::write(&dir.join("pids.max"), &value)?)
}

pub(super) fn stats(dir: &Path, s: &mut PidsStats) -> Result<(), Error> {
    s.current = fs::read_u64(&dir.join("pids.current"))?.unwrap_or(0);
    s.limit = fs::read_u64(&dir.join("pids.max"))?.and_then(stats::limit);
    Ok(())
}
