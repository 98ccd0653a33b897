//! A container's record: what hulld knows about it, one JSON file per container
//! (`<data-root>/containers/<id>/container.json`), replaced atomically (temp, fsync, rename).
//! The issue asks for SQLite-class crash safety later; a file per container is this slice's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Docker's "zero" time, for times not reached yet.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Running, its processes frozen (`POST /containers/{id}/pause`).
    Paused,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    /// The container's init, as the host sees it (0 when not running).
    pub pid: i32,
    /// The hull-shim watching it (0 when none).
    pub shim_pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    /// How many times it has exited (waiters for the next exit compare it).
    pub exits: u64,
    /// The last run ended with the OOM killer killing one of its processes.
    #[serde(default)]
    pub oom_killed: bool,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            error: String::new(),
            exits: 0,
            oom_killed: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the request named it, and its ID.
    pub image: String,
    pub image_id: String,
    /// The program and its arguments (the spec's process args).
    pub path: String,
    pub args: Vec<String>,
    /// The request's Config and HostConfig, as sent (for inspect).
    pub config: serde_json::Value,
    pub host_config: serde_json::Value,
    pub auto_remove: bool,
    /// The user-namespace slice: its index (allocation) and first host id.
    pub uid_index: u32,
    pub uid_start: u32,
    /// The network mode asked for, and the one applied (see `create.rs`).
    pub network_mode: String,
    pub state: RunState,
}

impl Record {
    /// Running or paused: its processes exist (Docker's State.Running is true for both).
    pub fn running(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Paused)
    }

    pub fn paused(&self) -> bool {
        self.state.status == Status::Paused
    }
}

/// `dir/container.json`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("container.json")
}

pub fn save(dir: &Path, rec: &Record) -> std::io::Result<()> {
    let body = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    hull_runtime::state::write_atomic(&path(dir), &body)
}

/// Every record under `root` (one directory per container); unreadable ones are skipped
/// with a warning.
pub fn load_all(root: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = path(&e.path());
        match std::fs::read(&p).map(|b| serde_json::from_slice::<Record>(&b)) {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(err)) => tracing::warn!("{}: not a container record: {err}", p.display()),
            Err(err) => tracing::warn!("{}: {err}", p.display()),
        }
    }
    out
}
