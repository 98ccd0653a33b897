//! The runtime's top-level error: one variant per kind of failure, each naming the container
//! and the step.

use std::path::PathBuf;

use crate::hooks::HookError;
use crate::namespaces::NsError;
use crate::spec::SpecError;
use crate::state::{StateError, Status};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("linux.seccomp: {0}")]
    Seccomp(#[from] hull_seccomp::Error),
    #[error("container {id:?}: cgroup: {source}")]
    Cgroup {
        id: String,
        source: hull_cgroups::Error,
    },
    #[error("container {id:?}: {source}")]
    Namespaces { id: String, source: NsError },
    #[error("container {id:?}: {source}")]
    Hook { id: String, source: HookError },
    #[error("container {id:?}: {step}: {source}")]
    Io {
        id: String,
        step: &'static str,
        source: std::io::Error,
    },
    #[error("container {id:?}: setting up the container failed: {message}")]
    Setup { id: String, message: String },
    #[error("container {id:?}: --console-socket {path}: {source}")]
    ConsoleSocket {
        id: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("container {id:?}: process.terminal is true but no --console-socket was given")]
    NeedConsoleSocket { id: String },
    #[error("container {id:?}: linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath")]
    NotifyWithoutListener { id: String },
    #[error("container {id:?} is {status}: {what}")]
    WrongStatus {
        id: String,
        status: Status,
        what: &'static str,
    },
    #[error("container not running: {id:?} has stopped")]
    NotRunning { id: String },
    #[error("container {id:?}: sending signal {signal}: {source}")]
    Signal {
        id: String,
        signal: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
