//! Running commands with a deadline and capturing their output.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The default deadline for one runtime command.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// What a finished command did.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code (None if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panic with the full output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "{} failed: {self}", self.what);
        self
    }

    /// The first stdout line starting with `prefix`, e.g. `line("keyctl:")`.
    pub fn line(&self, prefix: &str) -> Option<&str> {
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .find(|l| l.starts_with(prefix))
    }

    /// Like [`Out::line`] but panics, showing the output, when there is no such line.
    #[track_caller]
    pub fn must_line(&self, prefix: &str) -> &str {
        match self.line(prefix) {
            Some(l) => l,
            None => panic!(
                "no line starting with {prefix:?} in output of {}: {self}",
                self.what
            ),
        }
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

fn wait_deadline(child: &mut Child, what: &str, deadline: Instant) -> Result<ExitStatus, String> {
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Ok(st),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: timed out"));
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("{what}: wait: {e}")),
        }
    }
}

/// Run `cmd` with stdin from /dev/null and stdout/stderr captured; kill it and panic after
/// `timeout`.
#[track_caller]
pub fn run(cmd: &mut Command, timeout: Duration) -> Out {
    try_run(cmd, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`run`], but returns an error instead of panicking (for cleanup code).
pub fn try_run(cmd: &mut Command, timeout: Duration) -> Result<Out, String> {
    let what = describe(cmd);
    let deadline = Instant::now() + timeout;
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("{what}: spawn: {e}"))?;
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let status = wait_deadline(&mut child, &what, deadline)?;
    // A process left behind (e.g. a container that outlived the runtime) could hold the pipes.
    let grace = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(2);
    let stdout = out
        .recv_timeout(grace)
        .map_err(|_| format!("{what}: stdout not closed"))?;
    let stderr = err
        .recv_timeout(grace)
        .map_err(|_| format!("{what}: stderr not closed"))?;
    Ok(Out {
        what,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

/// Run `cmd` with stdout and stderr sent to files (for `create`, whose container keeps them);
/// the returned output is what the files hold when the command returns.
#[track_caller]
pub fn run_to_files(cmd: &mut Command, out: &Path, err: &Path, timeout: Duration) -> Out {
    let what = describe(cmd);
    let deadline = Instant::now() + timeout;
    let fo = File::create(out).unwrap_or_else(|e| panic!("create {}: {e}", out.display()));
    let fe = File::create(err).unwrap_or_else(|e| panic!("create {}: {e}", err.display()));
    cmd.stdin(Stdio::null()).stdout(fo).stderr(fe);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: spawn: {e}"));
    let status = wait_deadline(&mut child, &what, deadline).unwrap_or_else(|e| panic!("{e}"));
    Out {
        what,
        status,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

/// Run a host helper command and return its stdout; panic unless it succeeds.
#[track_caller]
pub fn host(program: &str, args: &[&str]) -> String {
    run(Command::new(program).args(args), TIMEOUT).ok().stdout
}
