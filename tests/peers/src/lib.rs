//! Shared helpers for the peers end-to-end tests: containerd and dockerd, run as
//! private children, drive the OCI runtime under test (`HULL_RUNTIME`).
//!
//! Everything a test starts is owned by a guard whose `Drop` stops it and undoes
//! its traces (mounts, cgroups, host directories the daemons create), so a failing
//! assertion still leaves the host as it was.

pub mod cgroup;
pub mod cmd;
pub mod host;
pub mod preflight;

use std::path::{Path, PathBuf};

pub use cgroup::CgroupCleanup;
pub use cmd::{run_with_timeout, Daemon, RunOutput};
pub use host::{HostPathsCleanup, Sandbox};
pub use preflight::{preflight, Peers};

/// The workspace root (two levels above this package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/peers sits two levels below the workspace root")
        .to_path_buf()
}

/// Build the busybox image archive (`docker save` format) with
/// `scripts/mk-busybox-image.sh` into `dir`, and return its path.
pub fn busybox_image(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let script = workspace_root().join("scripts/mk-busybox-image.sh");
    let mut cmd = std::process::Command::new(&script);
    cmd.arg(&out);
    let res = run_with_timeout(&mut cmd, std::time::Duration::from_secs(60));
    assert!(
        res.success() && out.is_file(),
        "{} failed:\n{}",
        script.display(),
        res.describe()
    );
    out
}
