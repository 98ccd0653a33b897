//! Shared helpers for the runtime end-to-end tests.
//!
//! The tests drive an OCI runtime binary with runc's command line: `hull-runtime` by default, or
//! whatever `HULL_RUNTIME` names (e.g. `/usr/sbin/runc`, against which the suite is validated).
//! Each test gets a [`Case`]: its own bundle (a copy of a busybox rootfs with a static `/probe`),
//! its own `--root` state dir and container id, and a guard that deletes the container and checks
//! that no state dir, cgroup or mount is left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod case;
pub mod cmd;
pub mod console;
pub mod fixture;
pub mod host;
pub mod seccomp_agent;
pub mod spec;

pub use case::Case;
pub use cmd::Out;

/// Return early from a test when not running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// Whether the test process runs as root (the suite needs it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The workspace root (two levels above this package).
pub fn workspace() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    ws.canonicalize().unwrap_or(ws)
}

/// The runtime under test.
pub struct Runtime {
    /// Path of the runtime binary.
    pub bin: PathBuf,
    /// True unless the binary says it is runc.
    pub hull: bool,
}

/// The runtime under test: `$HULL_RUNTIME`, else `hull-runtime` in `$CARGO_TARGET_DIR/debug`
/// or `<workspace>/target/debug`. Panics, saying how to build it, when there is none.
#[track_caller]
pub fn runtime() -> &'static Runtime {
    try_runtime().unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`runtime`], but an error instead of a panic (for cleanup code).
pub fn try_runtime() -> Result<&'static Runtime, &'static str> {
    static RT: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        let bin = find_runtime()?;
        let version = Command::new(&bin)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {} --version: {e}", bin.display()))?;
        let text = String::from_utf8_lossy(&version.stdout).to_lowercase();
        let hull = !text.contains("runc version");
        eprintln!("runtime under test: {} (hull: {hull})", bin.display());
        Ok(Runtime { bin, hull })
    })
    .as_ref()
    .map_err(String::as_str)
}

fn find_runtime() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("HULL_RUNTIME") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(format!("HULL_RUNTIME={} does not exist", p.display()));
        }
        return Ok(p);
    }
    let ws = workspace();
    let mut tried = Vec::new();
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        tried.push(ws.join(t).join("debug/hull-runtime"));
    }
    tried.push(ws.join("target/debug/hull-runtime"));
    if let Some(p) = tried.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    Err(format!(
        "hull-runtime binary not found (tried {tried:?}); build it with \
         `cargo build -p hull-runtime-cli`, or set HULL_RUNTIME=/path/to/runtime"
    ))
}

/// True when the runtime under test is hull-runtime (checks that runc words or does differently
/// are gated behind this).
pub fn is_hull() -> bool {
    runtime().hull
}

/// Make `fd` appear as `target` (without close-on-exec) in the process `cmd` starts, as if the
/// runtime's caller had leaked it.
pub fn leak_fd(cmd: &mut Command, fd: &impl std::os::fd::AsRawFd, target: i32) {
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: the closure only calls dup2, which is async-signal-safe, on fds it does not own.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Lower-case `s` and drop `_`, `-`, `.` and spaces, so that `uidMappings`, `uid_mappings` and
/// `UID mappings` compare equal.
pub fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `haystack` mentions `needle`, compared with [`norm`].
pub fn mentions(haystack: &str, needle: &str) -> bool {
    norm(haystack).contains(&norm(needle))
}
