//! hull-shim: one small monitor per container, started by hulld (which is multi-threaded and
//! so must not fork the container itself).
//!
//! `hull-shim DIR` reads `DIR/shim.json` ([`ShimConfig`]), starts a new session (so it
//! outlives hulld), and with the runtime library in-process creates and starts the
//! container: with `tty` its stdio is a pty whose master the runtime hands over on a console
//! socket (`DIR/c.sock`, runc's protocol); else stdout/stderr are pipes and stdin is a pipe
//! (`open_stdin`) or /dev/null. It reports one JSON line on its stdout (`{"pid":N}` or
//! `{"error":"..."}`) and then runs [`io::serve`]: output to the json-file log
//! ([`jsonlog`], rotated) and to clients of `DIR/io.sock` (hulld's attach), stdin and
//! resizes from them. When the init exits the shim deletes the runtime's resources and,
//! following the restart policy, creates it again (same bundle) after Docker's back-off,
//! writing `DIR/state.json` ([`ShimState`]) at each start and exit; `DIR/stop` (written by
//! hulld before it signals) ends restarting. `DIR/exit.json` ([`ExitInfo`]) comes last:
//! when that file exists, the log is complete and nothing of the container runs.

#![forbid(unsafe_code)]

pub mod exec;
pub mod io;
pub mod jsonlog;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hull_runtime::{CreateOptions, Runtime};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

pub use jsonlog::Rotation;

/// What hulld tells the shim (`DIR/shim.json`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ShimConfig {
    pub id: String,
    /// The OCI bundle (config.json; the rootfs is already mounted by hulld).
    pub bundle: PathBuf,
    /// The runtime library's state root.
    pub runtime_root: PathBuf,
    /// The json-file log.
    pub log_path: PathBuf,
    /// Log driver `none`: no log file.
    #[serde(default)]
    pub no_log: bool,
    #[serde(default)]
    pub rotation: Rotation,
    /// A pty instead of pipes (the spec's process.terminal must say the same).
    #[serde(default)]
    pub tty: bool,
    /// Keep the container's stdin open for clients (else /dev/null).
    #[serde(default)]
    pub open_stdin: bool,
    /// Close stdin when the first client's stdin ends.
    #[serde(default)]
    pub stdin_once: bool,
    /// A client is about to attach: wait for it (5 s at most) before the process starts.
    #[serde(default)]
    pub wait_attach: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// Docker's restart policies: `no` (or empty), `always`, `unless-stopped`,
/// `on-failure` with `max_retry` (0: no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestartPolicy {
    pub name: String,
    #[serde(default)]
    pub max_retry: i64,
}

impl RestartPolicy {
    /// Whether to restart after an exit with `code`, `restarts` restarts done so far.
    pub fn restart(&self, code: i32, restarts: u64) -> bool {
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => code != 0 && (self.max_retry <= 0 || restarts < self.max_retry as u64),
            _ => false,
        }
    }
}

/// Written at each start and each exit that is followed by a restart (`DIR/state.json`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ShimState {
    /// The current init (0 while waiting to restart).
    pub pid: i32,
    /// Restarts so far (= exits before the last start).
    pub restart_count: u64,
    pub started_at: String,
    /// The last exit, if any.
    pub exit_code: i32,
    pub finished_at: String,
    /// Waiting out the back-off before the next start.
    pub restarting: bool,
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
pub const STATE_FILE: &str = "state.json";
/// hulld writes it before it signals the container: do not restart any more.
pub const STOP_FILE: &str = "stop";
/// The attach socket ([`io::proto`]).
pub const IO_SOCKET: &str = "io.sock";

/// A path for the UNIX socket `dir/name` that fits a socket address (107 bytes and a NUL):
/// the path itself when it does, else `/proc/self/fd/N/name` through `dir` opened O_PATH
/// (a long `--exec-root` plus a 64-hex container id passes the limit). The returned fd keeps
/// that name valid in this process; drop it after bind/connect.
pub fn socket_path(
    dir: &Path,
    name: &str,
) -> std::io::Result<(PathBuf, Option<std::os::fd::OwnedFd>)> {
    let plain = dir.join(name);
    if plain.as_os_str().len() < 100 {
        return Ok((plain, None));
    }
    use std::os::fd::AsRawFd;
    let fd = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/{name}", fd.as_raw_fd()));
    Ok((short, Some(fd)))
}
const CONSOLE_SOCKET: &str = "c.sock";
/// Docker's restart back-off: from 100 ms, doubling, at most a minute, reset after 10 s up.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET: Duration = Duration::from_secs(10);

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
    let fail = |report: File, e: ShimError| {
        send(
            report,
            &Report {
                pid: None,
                error: Some(e.to_string()),
            },
        );
        1
    };
    let (cfg, env) = match setup(dir) {
        Ok(x) => x,
        Err(e) => return fail(report, e),
    };
    let rt = Runtime::new(&cfg.runtime_root);
    let mut clients = Vec::new();
    let mut report = Some(report);
    let mut restarts = 0u64;
    let mut backoff = BACKOFF_START;
    let mut oom_killed = false;
    let mut log = (!cfg.no_log).then(|| jsonlog::Log::open(&cfg.log_path, cfg.rotation));
    let code = loop {
        let started = match start(dir, &cfg, &rt, &env, report.is_some(), &mut clients) {
            Ok(s) => s,
            Err(e) => {
                if let Some(r) = report.take() {
                    let _ = std::fs::remove_file(dir.join(IO_SOCKET));
                    return fail(r, e);
                }
                eprintln!("hull-shim: restarting the container: {e}");
                break 128;
            }
        };
        let (pid, mut stdio) = started;
        if let Some(r) = report.take() {
            send(
                r,
                &Report {
                    pid: Some(pid),
                    error: None,
                },
            );
        }
        let t0 = Instant::now();
        let mut state = ShimState {
            pid,
            restart_count: restarts,
            started_at: hull_runtime::state::now_rfc3339(),
            ..read_state(dir)
        };
        write_state(dir, &state);
        // The create's allocations (spec, seccomp program) are not needed while it runs.
        hull_sys::process::trim_heap();
        let code = io::serve(
            pid,
            &env.sig,
            Some(&env.listener),
            &mut clients,
            &mut stdio,
            &mut log,
        );
        drop(stdio);
        // Read before the cgroup goes: v1 memory.oom_control / v2 memory.events "oom_kill".
        oom_killed = rt.stats(&cfg.id).is_ok_and(|s| s.memory.oom_kill > 0);
        if let Err(e) = rt.delete(&cfg.id, true) {
            eprintln!("hull-shim: deleting the container's runtime state: {e}");
        }
        if dir.join(STOP_FILE).exists() || !cfg.restart.restart(code, restarts) {
            break code;
        }
        if t0.elapsed() >= BACKOFF_RESET {
            backoff = BACKOFF_START;
        }
        restarts += 1;
        state.pid = 0;
        state.restart_count = restarts;
        state.exit_code = code;
        state.finished_at = hull_runtime::state::now_rfc3339();
        state.restarting = true;
        write_state(dir, &state);
        let until = Instant::now() + backoff;
        let mut stopped = false;
        while Instant::now() < until {
            if dir.join(STOP_FILE).exists() {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if stopped {
            break code;
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    };
    let _ = std::fs::remove_file(dir.join(IO_SOCKET));
    let info = ExitInfo {
        code,
        finished_at: hull_runtime::state::now_rfc3339(),
        oom_killed,
    };
    let body = serde_json::to_vec(&info).unwrap_or_default();
    if let Err(e) = hull_runtime::state::write_atomic(&dir.join(EXIT_FILE), &body) {
        eprintln!("hull-shim: writing exit.json: {e}");
    }
    0
}

/// The shim's state (`DIR/state.json`), default when absent.
pub fn read_state(dir: &Path) -> ShimState {
    std::fs::read(dir.join(STATE_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_state(dir: &Path, s: &ShimState) {
    let body = serde_json::to_vec(s).unwrap_or_default();
    if let Err(e) = hull_runtime::state::write_atomic(&dir.join(STATE_FILE), &body) {
        eprintln!("hull-shim: writing state.json: {e}");
    }
}

fn usage() -> u8 {
    eprintln!("usage: hull-shim CONTAINER-DIR | hull-shim exec FILE (started by hulld)");
    2
}

fn send(mut to: File, r: &Report) {
    let mut line = serde_json::to_vec(r).unwrap_or_default();
    line.push(b'\n');
    let _ = to.write_all(&line);
}

/// What lasts across restarts: the attach socket, the SIGCHLD signalfd, /dev/null and the
/// shim's own log (its stdout/stderr between creates).
struct Env {
    listener: UnixListener,
    sig: SignalFd,
    null: File,
    own_log: File,
}

fn setup(dir: &Path) -> Result<(ShimConfig, Env), ShimError> {
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
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // SIGCHLD only through the signalfd (the runtime's children reset their mask at exec).
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(errno("blocking SIGCHLD"))?;
    let sig = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(errno("signalfd"))?;
    let sock = dir.join(IO_SOCKET);
    let _ = std::fs::remove_file(&sock);
    let (addr, _dir) =
        socket_path(dir, IO_SOCKET).map_err(stdio_err("opening the shim's directory"))?;
    let listener = UnixListener::bind(&addr).map_err(stdio_err("binding io.sock"))?;
    // Only root (hulld) may attach: the container's users are other host uids.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(stdio_err("setting the mode of io.sock"))?;
    listener
        .set_nonblocking(true)
        .map_err(stdio_err("io.sock"))?;
    Ok((
        cfg,
        Env {
            listener,
            sig,
            null,
            own_log,
        },
    ))
}

/// Creates and starts the container with its stdio as the config says; the init's pid and
/// the shim's ends. The first time, waits for an announced client before the start.
fn start(
    dir: &Path,
    cfg: &ShimConfig,
    rt: &Runtime,
    env: &Env,
    first: bool,
    clients: &mut Vec<io::Client>,
) -> Result<(i32, io::Stdio), ShimError> {
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let mut stdio = io::Stdio {
        outputs: Vec::new(),
        stdin: None,
        master: None,
        stdin_once: cfg.stdin_once,
    };
    let (console, _console_dir) =
        socket_path(dir, CONSOLE_SOCKET).map_err(stdio_err("opening the shim's directory"))?;
    let console_listener = if cfg.tty {
        let _ = std::fs::remove_file(dir.join(CONSOLE_SOCKET));
        Some(UnixListener::bind(&console).map_err(stdio_err("binding the console socket"))?)
    } else {
        // The init is a fork of this process: it inherits fds 0-2 as they are during create.
        let (out_r, out_w) = nix::unistd::pipe2(cloexec).map_err(errno("stdout pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(errno("stderr pipe"))?;
        if cfg.open_stdin {
            let (in_r, in_w) = nix::unistd::pipe2(cloexec).map_err(errno("stdin pipe"))?;
            nix::unistd::dup2_stdin(&in_r).map_err(errno("stdin"))?;
            stdio.stdin = Some(in_w);
        } else {
            nix::unistd::dup2_stdin(&env.null).map_err(errno("stdin"))?;
        }
        nix::unistd::dup2_stdout(&out_w).map_err(errno("stdout"))?;
        nix::unistd::dup2_stderr(&err_w).map_err(errno("stderr"))?;
        stdio.outputs = vec![(out_r, 0), (err_r, 1)];
        None
    };
    let opts = CreateOptions {
        id: cfg.id.clone(),
        bundle: cfg.bundle.clone(),
        console_socket: console_listener.as_ref().map(|_| console.clone()),
        ..Default::default()
    };
    let created = rt.create(&opts);
    // From here on the shim's own output goes to shim.log, never into the container's log.
    let restored = nix::unistd::dup2_stdin(&env.null)
        .and_then(|()| nix::unistd::dup2_stdout(&env.own_log))
        .and_then(|()| nix::unistd::dup2_stderr(&env.own_log))
        .map_err(errno("restoring the shim's stdio"));
    let _ = std::fs::remove_file(dir.join(CONSOLE_SOCKET));
    let fail = |e: ShimError| {
        let _ = rt.delete(&cfg.id, true);
        Err(e)
    };
    let pid = match created {
        Ok(rec) => rec.pid,
        Err(e) => return fail(e.into()),
    };
    if let Err(e) = restored {
        return fail(e);
    }
    if let Some(l) = console_listener {
        let master = l
            .accept()
            .map_err(stdio_err("accepting the console"))
            .and_then(|(s, _)| {
                hull_runtime::channel::recv_one_fd(s.as_raw_fd())
                    .map_err(stdio_err("receiving the pty master"))
            });
        let master = match master {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let dup = |m: &OwnedFd| m.try_clone().map_err(stdio_err("duplicating the master"));
        let (out, inp) = match (dup(&master), dup(&master)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return fail(e),
        };
        stdio.outputs = vec![(out, 0)];
        if cfg.open_stdin {
            stdio.stdin = Some(inp);
        }
        stdio.master = Some(master);
    }
    if first && cfg.wait_attach {
        // Wait (up to 5 s) for the attach to connect: poll wakes at once when it does.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok((s, _)) = env.listener.accept() {
                clients.push(io::Client::new(s));
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            use std::os::fd::AsFd;
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [nix::poll::PollFd::new(
                env.listener.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
    if let Err(e) = rt.start(&cfg.id) {
        return fail(e.into());
    }
    Ok((pid, stdio))
}

#[cfg(test)]
mod tests {
    use super::RestartPolicy;

    #[test]
    fn sockets_in_long_directories_bind_and_connect() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("x".repeat(60)).join("y".repeat(64));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(dir.join(super::IO_SOCKET).as_os_str().len() > 108);
        let (addr, _fd) = super::socket_path(&dir, super::IO_SOCKET).unwrap();
        assert!(addr.as_os_str().len() < 108, "{}", addr.display());
        let l = std::os::unix::net::UnixListener::bind(&addr).unwrap();
        assert!(
            dir.join(super::IO_SOCKET).exists(),
            "the socket is in its directory"
        );
        let (addr2, _fd2) = super::socket_path(&dir, super::IO_SOCKET).unwrap();
        let _c = std::os::unix::net::UnixStream::connect(&addr2).unwrap();
        l.accept().unwrap();
        // short paths stay as they are
        let (p, fd) = super::socket_path(t.path(), "s").unwrap();
        assert_eq!(p, t.path().join("s"));
        assert!(fd.is_none());
    }

    fn p(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            max_retry: max,
        }
    }

    #[test]
    fn restart_decisions_follow_dockers_policies() {
        assert!(!p("", 0).restart(1, 0));
        assert!(!p("no", 0).restart(1, 0));
        assert!(p("always", 0).restart(0, 100));
        assert!(p("unless-stopped", 0).restart(0, 0));
        assert!(
            !p("on-failure", 0).restart(0, 0),
            "a success is not restarted"
        );
        assert!(p("on-failure", 0).restart(3, 1000), "0: no limit");
        assert!(p("on-failure", 2).restart(1, 1));
        assert!(!p("on-failure", 2).restart(1, 2), "at most 2 restarts");
    }
}
