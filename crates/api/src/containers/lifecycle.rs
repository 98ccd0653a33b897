//! Start (through a hull-shim), exit, stop, kill, wait, remove, and re-reading records when
//! hulld starts again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hull_shim::{ExitInfo, Report, ShimConfig};
use nix::sys::signal::Signal;

use super::record::{self, Status};
use super::{io_err, resolve_in, ContainerService, ContainersError};

/// Whether an operation changed anything (Docker answers 304 when it did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotModified,
}

/// What `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

const POLL: Duration = Duration::from_millis(20);

/// Parses Docker's signal names (`KILL`, `SIGKILL`) and numbers.
pub fn parse_signal(s: &str) -> Result<Signal, ContainersError> {
    let bad = || ContainersError::BadSignal(s.to_string());
    if s.is_empty() {
        return Ok(Signal::SIGKILL);
    }
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

impl ContainerService {
    fn runtime(&self) -> hull_runtime::Runtime {
        hull_runtime::Runtime::new(&self.paths.runtime_root)
    }

    /// Starts a created or exited container through a new hull-shim.
    pub fn start(self: &Arc<Self>, name: &str) -> Result<Outcome, ContainersError> {
        let rec = self.get(name)?;
        if rec.paused() {
            return Err(ContainersError::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            ));
        }
        if rec.running() {
            return Ok(Outcome::NotModified);
        }
        let id = rec.id.clone();
        let dir = self.exec_dir(&id);
        let _ = std::fs::remove_file(dir.join(hull_shim::EXIT_FILE));
        let cfg = ShimConfig {
            id: id.clone(),
            bundle: dir.clone(),
            runtime_root: self.paths.runtime_root.clone(),
            log_path: self.log_path(&id),
        };
        let cfg_path = dir.join(hull_shim::CONFIG_FILE);
        hull_runtime::state::write_atomic(&cfg_path, &serde_json::to_vec(&cfg).unwrap_or_default())
            .map_err(io_err("writing", &cfg_path))?;
        let shim_log = dir.join("shim.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&shim_log)
            .map_err(io_err("opening", &shim_log))?;
        let mut child = Command::new(&self.shim.program)
            .args(&self.shim.args)
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|source| ContainersError::SpawnShim {
                path: self.shim.program.clone(),
                source,
            })?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        let report: Report = serde_json::from_str(&line).unwrap_or(Report {
            pid: None,
            error: Some(format!(
                "hull-shim ended without a report (see {})",
                shim_log.display()
            )),
        });
        let mut t = self.table();
        let Some(mut rec) = t.records.get(&id).cloned() else {
            return Err(ContainersError::NotFound(id));
        };
        match report.pid {
            Some(pid) => {
                rec.state.status = Status::Running;
                rec.state.pid = pid;
                rec.state.shim_pid = child.id() as i32;
                rec.state.started_at = hull_runtime::state::now_rfc3339();
                rec.state.error.clear();
                self.put(&mut t, rec);
                drop(t);
                self.emit_id("start", &id, &[]);
                let svc = self.clone();
                std::thread::spawn(move || svc.watch_child(id, child));
                Ok(Outcome::Done)
            }
            None => {
                drop(t);
                let _ = child.wait();
                let message = report.error.unwrap_or_default();
                let mut t = self.table();
                if let Some(mut rec) = t.records.get(&id).cloned() {
                    // Counted as an exit: attach streams and next-exit waiters end.
                    rec.state.error = message.clone();
                    rec.state.exit_code = 128;
                    rec.state.exits += 1;
                    self.put(&mut t, rec);
                }
                Err(ContainersError::Start { id, message })
            }
        }
    }

    fn watch_child(self: Arc<Self>, id: String, mut child: Child) {
        let _ = child.wait();
        self.exited(&id);
    }

    /// A shim that is not our child (hulld restarted): poll until it is gone.
    fn watch_pid(self: Arc<Self>, id: String, pid: i32) {
        while Path::new(&format!("/proc/{pid}")).exists() {
            std::thread::sleep(Duration::from_millis(200));
        }
        self.exited(&id);
    }

    /// Records the end the shim wrote; removes the container if it asked for that.
    fn exited(self: &Arc<Self>, id: &str) {
        let path = self.exec_dir(id).join(hull_shim::EXIT_FILE);
        let info: Option<ExitInfo> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let auto_remove = {
            let mut t = self.table();
            let Some(mut rec) = t.records.get(id).cloned() else {
                return;
            };
            rec.state.status = Status::Exited;
            rec.state.pid = 0;
            rec.state.shim_pid = 0;
            rec.state.exits += 1;
            match info {
                Some(i) => {
                    rec.state.exit_code = i.code;
                    rec.state.finished_at = i.finished_at;
                    rec.state.oom_killed = i.oom_killed;
                }
                None => {
                    rec.state.exit_code = 255;
                    rec.state.finished_at = hull_runtime::state::now_rfc3339();
                    rec.state.error = format!("hull-shim ended without writing {}", path.display());
                    rec.state.oom_killed = false;
                }
            }
            if rec.state.oom_killed {
                self.emit("oom", &rec, &[]);
            }
            let auto = rec.auto_remove;
            self.emit(
                "die",
                &rec,
                &[("exitCode", rec.state.exit_code.to_string())],
            );
            self.put(&mut t, rec);
            auto
        };
        if auto_remove {
            if let Err(e) = self.remove(id, false) {
                tracing::warn!("container {id}: removing it (--rm): {e}");
            }
        }
    }

    /// Re-reads the records of earlier runs; containers whose shim still runs are watched.
    pub(crate) fn restore(self: &Arc<Self>) {
        for rec in record::load_all(&self.paths.data) {
            let id = rec.id.clone();
            let shim = rec.state.shim_pid;
            let running = rec.running();
            self.table().records.insert(id.clone(), rec);
            if !running {
                continue;
            }
            let svc = self.clone();
            if shim > 0 && Path::new(&format!("/proc/{shim}")).exists() {
                std::thread::spawn(move || svc.watch_pid(id, shim));
            } else {
                svc.exited(&id);
            }
        }
    }

    /// Sends `signal` to a running container's init; for SIGKILL, waits (a few seconds at
    /// most) until it has exited, as Docker does, so that a `rm` right after succeeds.
    pub fn kill(&self, name: &str, signal: &str) -> Result<(), ContainersError> {
        let sig = parse_signal(signal)?;
        let rec = self.get(name)?;
        if !rec.running() {
            return Err(ContainersError::NotRunning(rec.id));
        }
        self.runtime()
            .kill(&rec.id, sig, false)
            .map_err(|source| ContainersError::Signal {
                id: rec.id.clone(),
                source: Box::new(source),
            })?;
        self.emit("kill", &rec, &[("signal", (sig as i32).to_string())]);
        // A frozen container acts on the signal once thawed (Docker does the same).
        self.thaw_if_paused(&rec.id);
        if sig == Signal::SIGKILL {
            self.wait_exits(&rec.id, rec.state.exits, Duration::from_secs(5));
        }
        Ok(())
    }

    /// Waits until the container has exited more than `exits` times (or is gone).
    fn wait_exits(&self, id: &str, exits: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.table().records.get(id) {
                Some(r) if r.state.exits <= exits => {}
                _ => return true,
            }
            std::thread::sleep(POLL);
        }
        false
    }

    /// The stop signal (the image's or request's StopSignal, else SIGTERM), then SIGKILL
    /// after `timeout` seconds (default: the request's StopTimeout, else 10).
    pub fn stop(&self, name: &str, timeout: Option<i64>) -> Result<Outcome, ContainersError> {
        let rec = self.get(name)?;
        if !rec.running() {
            return Ok(Outcome::NotModified);
        }
        let configured = rec.config.get("StopTimeout").and_then(|v| v.as_i64());
        let secs = timeout.or(configured).unwrap_or(10);
        let sig = rec
            .config
            .get("StopSignal")
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
            .unwrap_or("SIGTERM")
            .to_string();
        let exits = rec.state.exits;
        let _ = self.kill(&rec.id, &sig);
        let grace = Duration::from_secs(secs.max(0) as u64);
        if !(secs >= 0 && self.wait_exits(&rec.id, exits, grace)) {
            let _ = self.kill(&rec.id, "SIGKILL");
            self.wait_exits(&rec.id, exits, Duration::from_secs(10));
        }
        self.emit("stop", &rec, &[]);
        Ok(Outcome::Done)
    }

    /// Blocks until `cond` holds (or `cancelled()`); the exit code.
    pub fn wait(
        &self,
        name: &str,
        cond: WaitCondition,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<i32>, ContainersError> {
        let rec = self.get(name)?;
        let id = rec.id;
        let exits = rec.state.exits;
        loop {
            {
                let t = self.table();
                match t.records.get(&id) {
                    None => {
                        let code = t.removed.iter().rev().find(|(i, _)| *i == id);
                        return Ok(Some(code.map_or(0, |(_, c)| *c)));
                    }
                    Some(r) => {
                        let done = match cond {
                            WaitCondition::NotRunning => !r.running(),
                            WaitCondition::NextExit => r.state.exits > exits,
                            WaitCondition::Removed => false,
                        };
                        if done {
                            return Ok(Some(r.state.exit_code));
                        }
                    }
                }
            }
            if cancelled() {
                return Ok(None);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Removes a container (a running one only with `force`, which kills it first).
    pub fn remove(&self, name: &str, force: bool) -> Result<(), ContainersError> {
        let rec = self.get(name)?;
        let id = rec.id.clone();
        if rec.running() {
            if !force {
                return Err(ContainersError::RemoveRunning(id));
            }
            let _ = self.kill(&id, "SIGKILL");
            self.wait_exits(&id, rec.state.exits, Duration::from_secs(10));
        }
        let rec = {
            let mut t = self.table();
            let Ok(id) = resolve_in(&t, &id) else {
                return Ok(()); // removed meanwhile (--rm)
            };
            let rec = t.records.remove(&id).expect("resolved");
            t.removed.push((id.clone(), rec.state.exit_code));
            if t.removed.len() > 256 {
                t.removed.remove(0);
            }
            rec
        };
        if rec.running() {
            tracing::warn!(
                "container {id}: removed while its shim still runs (pid {})",
                rec.state.shim_pid
            );
        }
        for p in super::create::destroy(self, &id) {
            tracing::warn!("container {id}: cleaning up: {p}");
        }
        self.emit("destroy", &rec, &[]);
        Ok(())
    }
}
