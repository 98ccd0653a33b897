//! hull-shim: one small monitor per container, started by hulld (which is multi-threaded and
//! so must not fork the container itself).
//!
//! `hull-shim DIR` reads `DIR/shim.json` ([`ShimConfig`]), starts a new session (so it
//! outlives hulld), and with the runtime library in-process creates and starts the
//! container with stdin on /dev/null and stdout/stderr on pipes. It reports one JSON line on
//! its stdout (`{"pid":N}` or `{"error":"..."}`) and then writes the container's output to
//! the json-file log ([`jsonlog`]), reaps the init (the shim is a child subreaper), deletes
//! the runtime's resources (cgroup, state) and writes `DIR/exit.json` ([`ExitInfo`]) last:
//! when that file exists, the log is complete and nothing of the container runs.

#![forbid(unsafe_code)]

pub mod exec;
pub mod jsonlog;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hull_runtime::{CreateOptions, Runtime};
use nix::sys::wait::{waitpid, WaitStatus};

/// What hulld tells the shim (`DIR/shim.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// The OCI bundle (config.json; the rootfs is already mounted by hulld).
    pub bundle: PathBuf,
    /// The runtime library's state root.
    pub runtime_root: PathBuf,
    /// The json-file log.
    pub log_path: PathBuf,
}

/// The container's end (`DIR/exit.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    /// The exit code, 128+N when killed by signal N.
    pub code: i32,
    /// RFC 3339.
    pub finished_at: String,
    /// The kernel's OOM killer killed a process of the container (Docker's State.OOMKilled).
    #[serde(default)]
    pub oom_killed: bool,
}

/// The one line the shim reports on its stdout once the container runs (or failed to).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Report {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub const CONFIG_FILE: &str = "shim.json";
pub const EXIT_FILE: &str = "exit.json";

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("reading {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing {path}: {source}")]
    ParseConfig {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("setting up the container's stdio ({step}): {source}")]
    Stdio {
        step: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Runtime(#[from] hull_runtime::Error),
}

fn stdio_err(step: &'static str) -> impl Fn(std::io::Error) -> ShimError {
    move |source| ShimError::Stdio { step, source }
}

fn errno(step: &'static str) -> impl Fn(nix::Error) -> ShimError {
    move |e| ShimError::Stdio {
        step,
        source: e.into(),
    }
}

/// The command line: `DIR` (monitor a container) or `exec FILE` (one process in it).
pub fn main_args(mut args: impl Iterator<Item = std::ffi::OsString>) -> u8 {
    match args.next() {
        Some(a) if a == "exec" => match args.next() {
            Some(f) => exec::run(Path::new(&f)),
            None => usage(),
        },
        Some(dir) => run(Path::new(&dir)),
        None => usage(),
    }
}

fn usage() -> u8 {
    eprintln!("usage: hull-shim CONTAINER-DIR | hull-shim exec FILE (started by hulld)");
    2
}

/// Runs the shim for the container directory `dir`; the process exit code.
pub fn run(dir: &Path) -> u8 {
    let _ = nix::unistd::setsid();
    // The report goes to the stdout hulld reads; keep a close-on-exec copy of it.
    let report = match std::io::stdout().as_fd().try_clone_to_owned() {
        Ok(fd) => File::from(fd),
        Err(e) => {
            eprintln!("hull-shim: duplicating stdout: {e}");
            return 1;
        }
    };
    match start(dir) {
        Ok((cfg, rt, pid, outputs)) => {
            send(
                report,
                &Report {
                    pid: Some(pid),
                    error: None,
                },
            );
            monitor(dir, &cfg, &rt, pid, outputs);
            0
        }
        Err(e) => {
            send(
                report,
                &Report {
                    pid: None,
                    error: Some(e.to_string()),
                },
            );
            1
        }
    }
}

fn send(mut to: File, r: &Report) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = to.write_all(&line);
}

type Outputs = [(OwnedFd, &'static str); 2];

/// Creates and starts the container with its stdout/stderr on pipes; the init's pid and
/// the read ends.
fn start(dir: &Path) -> Result<(ShimConfig, Runtime, i32, Outputs), ShimError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read(&path).map_err(|source| ShimError::ReadConfig {
        path: path.clone(),
        source,
    })?;
    let cfg: ShimConfig =
        serde_json::from_slice(&text).map_err(|source| ShimError::ParseConfig { path, source })?;
    let own_log = File::options()
        .create(true)
        .append(true)
        .open(dir.join("shim.log"))
        .map_err(stdio_err("opening shim.log"))?;
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(stdio_err("opening /dev/null"))?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let (out_r, out_w) = nix::unistd::pipe2(cloexec).map_err(errno("stdout pipe"))?;
    let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(errno("stderr pipe"))?;
    // The init is a fork of this process: it inherits fds 0-2 as they are during create.
    nix::unistd::dup2_stdin(&null).map_err(errno("stdin"))?;
    nix::unistd::dup2_stdout(&out_w).map_err(errno("stdout"))?;
    nix::unistd::dup2_stderr(&err_w).map_err(errno("stderr"))?;
    drop((out_w, err_w));
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let rt = Runtime::new(&cfg.runtime_root);
    let opts = CreateOptions {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        ..Default::default()
    };
    let result = rt
        .create(&opts)
        .and_then(|rec| rt.start(&cfg.id).map(|()| rec.pid));
    // From here on the shim's own output goes to shim.log, never into the container's log.
    let restored = nix::unistd::dup2_stdout(&own_log)
        .and_then(|()| nix::unistd::dup2_stderr(&own_log))
        .map_err(errno("restoring the shim's stdio"));
    let pid = match result {
        Ok(pid) => pid,
        Err(e) => {
            let _ = rt.delete(&cfg.id, true);
            return Err(e.into());
        }
    };
    if let Err(e) = restored {
        let _ = rt.delete(&cfg.id, true);
        return Err(e);
    }
    Ok((cfg, rt, pid, [(out_r, "stdout"), (err_r, "stderr")]))
}

/// Logs the container's output, reaps it, cleans up, writes exit.json.
fn monitor(dir: &Path, cfg: &ShimConfig, rt: &Runtime, pid: i32, outputs: Outputs) {
    let log = File::options()
        .create(true)
        .append(true)
        .open(&cfg.log_path)
        .map(|f| Arc::new(Mutex::new(f)));
    let mut copiers = Vec::new();
    for (fd, stream) in outputs {
        let log = match &log {
            Ok(l) => Some(l.clone()),
            Err(e) => {
                eprintln!("hull-shim: opening {}: {e}", cfg.log_path.display());
                None
            }
        };
        copiers.push(std::thread::spawn(move || {
            jsonlog::copy(File::from(fd), stream, log.as_deref())
        }));
    }
    let code = loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => break c,
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => break 128 + s as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => {
                eprintln!("hull-shim: waiting for the container: {e}");
                break 255;
            }
        }
    };
    // The init was pid 1 of its namespace: everything else in it is gone, so the pipes end.
    for c in copiers {
        let _ = c.join();
    }
    // Read before the cgroup goes: v1 memory.oom_control / v2 memory.events "oom_kill".
    let oom_killed = rt.stats(&cfg.id).is_ok_and(|s| s.memory.oom_kill > 0);
    if let Err(e) = rt.delete(&cfg.id, true) {
        eprintln!("hull-shim: deleting the container's runtime state: {e}");
    }
    let info = ExitInfo {
        oom_killed,
        code,
        finished_at: hull_runtime::state::now_rfc3339(),
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    if let Err(e) = hull_runtime::state::write_atomic(&dir.join(EXIT_FILE), &body) {
        eprintln!("hull-shim: writing exit.json: {e}");
    }
}
