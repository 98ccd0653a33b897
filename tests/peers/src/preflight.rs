//! Decide whether a peer test can run: root, the peer binaries, the runtime.

use std::path::{Path, PathBuf};

/// What a peer test needs, found on this host.
#[derive(Debug)]
pub struct Peers {
    /// Absolute path of the OCI runtime under test.
    pub runtime: PathBuf,
    /// Absolute paths of the peer binaries, in the order asked for.
    pub bins: Vec<PathBuf>,
}

/// Check the preconditions of a peer test.
///
/// - not root: print a skip and return `None`;
/// - a peer binary missing: panic if `HULL_REQUIRE_PEERS=1`, else print a skip and
///   return `None`;
/// - the runtime missing (`HULL_RUNTIME`, default `<target>/debug/hull-runtime`):
///   panic, saying how to build it.
pub fn preflight(test: &str, peer_bins: &[&str]) -> Option<Peers> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP {test}: needs root (peer daemons, mounts, cgroups)");
        return None;
    }
    let mut bins = Vec::new();
    let mut missing = Vec::new();
    for name in peer_bins {
        match find_bin(name) {
            Some(p) => bins.push(p),
            None => missing.push(*name),
        }
    }
    if !missing.is_empty() {
        let msg = format!(
            "{test}: peer binaries not found: {} (Debian: apt-get install containerd docker.io)",
            missing.join(", ")
        );
        if std::env::var("HULL_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("{msg}; HULL_REQUIRE_PEERS=1 makes this a failure");
        }
        eprintln!("SKIP {msg}; set HULL_REQUIRE_PEERS=1 to fail instead");
        return None;
    }
    let runtime = runtime_path();
    assert!(
        is_executable(&runtime),
        "{test}: OCI runtime {} not found or not executable: build it with \
         `cargo build -p hull-runtime-cli`, or set HULL_RUNTIME=/path/to/runtime \
         (e.g. /usr/sbin/runc)",
        runtime.display()
    );
    let runtime = std::fs::canonicalize(&runtime).unwrap_or(runtime);
    eprintln!("{test}: runtime {}", runtime.display());
    Some(Peers { runtime, bins })
}

/// `HULL_RUNTIME`, else `<target>/debug/hull-runtime` where `<target>` is
/// `CARGO_TARGET_DIR` (relative to the workspace root if relative) or
/// `<workspace>/target`.
pub fn runtime_path() -> PathBuf {
    if let Some(p) = std::env::var_os("HULL_RUNTIME").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.components().count() == 1 {
            // a bare name: look it up like a shell would
            if let Some(found) = find_bin(&p.to_string_lossy()) {
                return found;
            }
        }
        return absolute(&p);
    }
    let root = crate::workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|p| !p.is_empty())
        .map(|p| root.join(p))
        .unwrap_or_else(|| root.join("target"));
    target.join("debug").join("hull-runtime")
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Look a program up in `PATH`, then in the sbin/bin directories that a
/// non-login environment may leave out of `PATH`.
pub fn find_bin(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
