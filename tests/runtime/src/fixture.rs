//! The base rootfs shared by all tests of one process: busybox (scripts/mk-busybox-rootfs.sh)
//! plus the static `/probe` compiled from probe/probe.c. Each test copies it into its bundle.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::cmd;

static BASE: OnceLock<PathBuf> = OnceLock::new();
const PREFIX: &str = "hull-e2e-rootfs-";

/// The base rootfs, built once per test process as $TMPDIR/hull-e2e-rootfs-PID.
pub fn base_rootfs() -> &'static Path {
    BASE.get_or_init(build)
}

fn build() -> PathBuf {
    let tmp = std::env::temp_dir();
    remove_stale(&tmp);
    let dir = tmp.join(format!("{PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: remove_at_exit is a plain function that is sound to call at any time.
    unsafe { libc::atexit(remove_at_exit) };
    let script = crate::workspace().join("scripts/mk-busybox-rootfs.sh");
    cmd::run(Command::new(&script).arg(&dir), cmd::TIMEOUT).ok();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("probe/probe.c");
    let probe = dir.join("probe");
    cmd::run(
        Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&probe)
            .arg(&src),
        cmd::TIMEOUT,
    )
    .ok();
    dir
}

extern "C" fn remove_at_exit() {
    if let Some(dir) = BASE.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Remove base rootfs dirs left by test processes that no longer run.
fn remove_stale(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Copy the base rootfs to `dest` (which must not exist).
pub fn copy_rootfs(dest: &Path) {
    cmd::run(
        Command::new("cp").arg("-a").arg(base_rootfs()).arg(dest),
        cmd::TIMEOUT,
    )
    .ok();
}
