//! `hull-shim exec FILE`: runs one process in a running container ([`ExecConfig`]) with
//! this process's stdio, waits for it and exits with its code. A separate, single-threaded
//! process because the runtime's exec forks. Failures before the process runs are reported
//! on stderr with exit code 126 (Docker's "cannot run").

use std::path::{Path, PathBuf};

use hull_runtime::{ExecOptions, Runtime};

/// What hulld asks to run (`<container-dir>/exec-<id>.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecConfig {
    /// The container's id (its runtime state lives in `runtime_root`).
    pub id: String,
    pub runtime_root: PathBuf,
    pub process: oci_spec::runtime::Process,
}

/// Exit code when the process could not be started.
pub const CANNOT_RUN: u8 = 126;

pub fn run(file: &Path) -> u8 {
    let cfg: ExecConfig = match std::fs::read(file)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hull-shim: reading {}: {e}", file.display());
            return CANNOT_RUN;
        }
    };
    let rt = Runtime::new(&cfg.runtime_root);
    match rt.exec(&cfg.id, &cfg.process, &ExecOptions::default()) {
        Ok((_, Some(code))) => code.clamp(0, 255) as u8,
        Ok((_, None)) => 0,
        Err(e) => {
            eprintln!("hull-shim: {e}");
            CANNOT_RUN
        }
    }
}
