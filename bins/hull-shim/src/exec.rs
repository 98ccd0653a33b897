//! `hull-shim exec FILE`: runs one process in a running container ([`ExecConfig`]), waits
//! for it and exits with its code. A separate, single-threaded process because the runtime's
//! exec forks. Failures before the process runs exit with code 126 (Docker's "cannot run").
//!
//! With `io`, fd 0 is a socket to hulld speaking [`crate::io::proto`]: the process's output
//! comes on it as frames (its stdout and stderr on pipes, or a pty with `tty`), stdin and
//! resizes come from it, and a failure to start is sent as a stderr frame. Without `io` the
//! process gets this process's stdio.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use hull_runtime::{ExecOptions, Runtime};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::io;

/// What hulld asks to run (`<container-dir>/exec-<id>.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExecConfig {
    /// The container's id (its runtime state lives in `runtime_root`).
    pub id: String,
    pub runtime_root: PathBuf,
    pub process: oci_spec::runtime::Process,
    /// fd 0 is the proto socket (see the module docs).
    #[serde(default)]
    pub io: bool,
    /// A pty (the process's `terminal` must say the same).
    #[serde(default)]
    pub tty: bool,
    /// Feed stdin from the socket (else /dev/null); closed when the client's input ends.
    #[serde(default)]
    pub stdin: bool,
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
    if cfg.io {
        return run_io(&cfg);
    }
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

fn run_io(cfg: &ExecConfig) -> u8 {
    let sock = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            eprintln!("hull-shim: duplicating the exec socket: {e}");
            return CANNOT_RUN;
        }
    };
    match start(cfg) {
        Ok((pid, mut stdio, sig)) => {
            let mut clients = vec![io::Client::new(sock)];
            let code = io::serve(pid, &sig, None, &mut clients, &mut stdio, &mut None);
            code.clamp(0, 255) as u8
        }
        Err(e) => {
            let msg = format!("hull-shim: {e}\n");
            eprint!("{msg}");
            let mut s = sock;
            let _ = s.write_all(&io::proto::frame(io::proto::STDERR, msg.as_bytes()));
            CANNOT_RUN
        }
    }
}

fn err(step: &str) -> impl Fn(nix::Error) -> String + '_ {
    move |e| format!("{step}: {e}")
}

fn start(cfg: &ExecConfig) -> Result<(i32, io::Stdio, SignalFd), String> {
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null: {e}"))?;
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(err("blocking SIGCHLD"))?;
    let sig = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(err("signalfd"))?;
    let mut stdio = io::Stdio {
        outputs: Vec::new(),
        stdin: None,
        master: None,
        stdin_once: true,
    };
    // The process inherits fds 0-2 as they are during the exec; keep the shim's stderr.
    let own_err = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("duplicating stderr: {e}"))?;
    let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
    let tmp = tempdir().map_err(|e| format!("making a directory for the console socket: {e}"))?;
    let console = tmp.join("c.sock");
    let console_listener = if cfg.tty {
        nix::unistd::dup2_stdin(&null).map_err(err("stdin"))?;
        Some(UnixListener::bind(&console).map_err(|e| format!("console socket: {e}"))?)
    } else {
        let (out_r, out_w) = nix::unistd::pipe2(cloexec).map_err(err("stdout pipe"))?;
        let (err_r, err_w) = nix::unistd::pipe2(cloexec).map_err(err("stderr pipe"))?;
        if cfg.stdin {
            let (in_r, in_w) = nix::unistd::pipe2(cloexec).map_err(err("stdin pipe"))?;
            nix::unistd::dup2_stdin(&in_r).map_err(err("stdin"))?;
            stdio.stdin = Some(in_w);
        } else {
            nix::unistd::dup2_stdin(&null).map_err(err("stdin"))?;
        }
        nix::unistd::dup2_stdout(&out_w).map_err(err("stdout"))?;
        nix::unistd::dup2_stderr(&err_w).map_err(err("stderr"))?;
        stdio.outputs = vec![(out_r, 0), (err_r, 1)];
        None
    };
    let rt = Runtime::new(&cfg.runtime_root);
    let opts = ExecOptions {
        detach: true,
        console_socket: console_listener.as_ref().map(|_| console.clone()),
        ..Default::default()
    };
    let result = rt.exec(&cfg.id, &cfg.process, &opts);
    let _ = nix::unistd::dup2_stdin(&null);
    let _ = nix::unistd::dup2_stdout(&null);
    let _ = nix::unistd::dup2_stderr(&own_err);
    let _ = std::fs::remove_file(&console);
    let master = console_listener.map(|l| {
        l.accept()
            .map_err(|e| format!("accepting the console: {e}"))
            .and_then(|(s, _)| {
                hull_runtime::channel::recv_one_fd(s.as_raw_fd())
                    .map_err(|e| format!("receiving the pty master: {e}"))
            })
    });
    let _ = std::fs::remove_dir(&tmp);
    let (pid, _) = result.map_err(|e| e.to_string())?;
    if let Some(m) = master {
        let m: OwnedFd = m?;
        let dup = || {
            m.try_clone()
                .map_err(|e| format!("duplicating the master: {e}"))
        };
        stdio.outputs = vec![(dup()?, 0)];
        if cfg.stdin {
            stdio.stdin = Some(dup()?);
        }
        stdio.master = Some(m);
    }
    Ok((pid, stdio, sig))
}

/// A new private directory under the temporary directory (for the console socket: the
/// container's own directory can be too deep for a socket path).
fn tempdir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for n in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let p = base.join(format!("hull-exec-{pid}-{nanos:x}-{n}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free name"))
}
