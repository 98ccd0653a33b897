//! Running commands with a time bound, and daemons that stop when dropped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a bounded command did.
#[derive(Debug)]
pub struct RunOutput {
    pub cmdline: String,
    /// `None` when it was killed at the time bound (or by a signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl RunOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The command line, status and both outputs, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "$ {}\nexit: {:?}{} after {:.1?}\n--- stdout\n{}\n--- stderr\n{}",
            self.cmdline,
            self.code,
            if self.timed_out { " (timed out)" } else { "" },
            self.elapsed,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Run `cmd` with stdin from /dev/null and both outputs captured; kill it (SIGKILL,
/// by pid) if it runs longer than `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> RunOutput {
    let cmdline = format!("{cmd:?}");
    let start = Instant::now();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunOutput {
                cmdline,
                code: None,
                timed_out: false,
                stdout: String::new(),
                stderr: format!("spawn failed: {e}"),
                elapsed: start.elapsed(),
            }
        }
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let (status, timed_out) = wait_bounded(&mut child, limit);
    RunOutput {
        cmdline,
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    }
}

fn reader(src: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = src {
            let _ = s.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Wait for `child` up to `limit`; past it, SIGKILL it and reap it.
fn wait_bounded(child: &mut Child, limit: Duration) -> (Option<ExitStatus>, bool) {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return (Some(st), false),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return (child.wait().ok(), true);
            }
        }
    }
}

/// A daemon we spawned: its output goes to a log file; dropping it sends SIGTERM
/// to its pid, waits up to `stop_grace`, then SIGKILLs it, and always reaps it.
pub struct Daemon {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    stop_grace: Duration,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, stop_grace: Duration) -> Daemon {
        let f = File::create(log).expect("create daemon log");
        let f2 = f.try_clone().expect("dup daemon log");
        cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({cmd:?}): {e}"));
        eprintln!("{name}: started pid {}", child.id());
        Daemon {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            stop_grace,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Panic (with the log's tail) if the daemon has exited.
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                panic!("{} exited early ({st}):\n{}", self.name, self.log_tail(60));
            }
        }
    }

    /// Wait until `ready()` holds, polling; panic with the log's tail after `limit`
    /// or if the daemon exits.
    pub fn wait_ready(&mut self, limit: Duration, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            self.assert_running();
            if ready() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {limit:?}:\n{}",
                self.name,
                self.log_tail(60)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `n` lines of the daemon's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stop the daemon now (SIGTERM, grace, SIGKILL) and reap it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the pid of our own unreaped child: it cannot have
        // been recycled for another process before we wait for it.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let (_, killed) = wait_bounded(&mut child, self.stop_grace);
        if killed {
            eprintln!(
                "{}: pid {pid} ignored SIGTERM for {:?}; killed",
                self.name, self.stop_grace
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
