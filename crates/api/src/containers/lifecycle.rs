//! Start (through a hull-shim), exit, stop, kill, wait, remove, and re-reading records when
//! hulld starts again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hull_shim::{ExitInfo, Report, ShimConfig};
use nix::sys::signal::Signal;

use super::record::Status;
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
/// How often a shim's state.json is looked at.
const WATCH: Duration = Duration::from_millis(50);

/// Whether process `pid` exists and is not a zombie (a shim whose parent, the hulld that
/// started it, is gone may wait a while to be reaped).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

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
        for f in [
            hull_shim::EXIT_FILE,
            hull_shim::STOP_FILE,
            hull_shim::STATE_FILE,
        ] {
            let _ = std::fs::remove_file(dir.join(f));
        }
        let mut cfg = ShimConfig {
            id: id.clone(),
            bundle: dir.clone(),
            runtime_root: self.paths.runtime_root.clone(),
            log_path: self.log_path(&id),
            ..Default::default()
        };
        self.fill_shim_config(&rec, &mut cfg);
        let t0 = Instant::now();
        let cfg_path = dir.join(hull_shim::CONFIG_FILE);
        hull_runtime::state::write_atomic(&cfg_path, &serde_json::to_vec(&cfg).unwrap_or_default())
            .map_err(io_err("writing", &cfg_path))?;
        self.attach_network(&id)?;
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
        tracing::debug!(
            container = %id,
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "start: the shim reported (spawn, runtime create and start)"
        );
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
                rec.state.restart_count = 0;
                rec.state.restarting = false;
                rec.state.stopped_by_user = false;
                self.put(&mut t, rec);
                drop(t);
                self.emit_id("start", &id, &[]);
                self.start_health(&id);
                let svc = self.clone();
                std::thread::spawn(move || svc.watch_child(id, child));
                Ok(Outcome::Done)
            }
            None => {
                drop(t);
                let _ = child.wait();
                self.detach_network(&id);
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

    /// Follows the shim (restarts it reports in state.json) until it ends.
    fn watch_child(self: Arc<Self>, id: String, mut child: Child) {
        // The shim's exit is seen at once (a thread waits for it); meanwhile restarts it
        // reports in state.json are synced every WATCH.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::Builder::new()
            .name("shim-wait".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = child.wait();
                let _ = tx.send(());
            });
        if let Err(e) = waiter {
            tracing::warn!("container {id}: cannot start the shim's waiter thread: {e}");
        }
        loop {
            let done = !matches!(
                rx.recv_timeout(WATCH),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout)
            );
            self.sync_shim_state(&id);
            if done {
                break;
            }
        }
        let t0 = Instant::now();
        self.exited(&id);
        tracing::debug!(
            container = %id,
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "exit recorded (and --rm removal done)"
        );
    }

    /// A shim that is not our child (hulld restarted): poll until it is gone.
    fn watch_pid(self: Arc<Self>, id: String, pid: i32) {
        while alive(pid) {
            self.sync_shim_state(&id);
            std::thread::sleep(WATCH);
        }
        self.exited(&id);
    }

    /// Takes the shim's restarts into the record: each one is an exit (waiters, exit code)
    /// and a new start.
    fn sync_shim_state(&self, id: &str) {
        let st = hull_shim::read_state(&self.exec_dir(id));
        let mut t = self.table();
        let Some(rec) = t.records.get(id) else {
            return;
        };
        let mut rec = rec.clone();
        let mut changed = false;
        if st.restart_count > rec.state.restart_count {
            rec.state.exits += st.restart_count - rec.state.restart_count;
            rec.state.restart_count = st.restart_count;
            rec.state.exit_code = st.exit_code;
            rec.state.finished_at = st.finished_at.clone();
            self.emit("die", &rec, &[("exitCode", st.exit_code.to_string())]);
            changed = true;
        }
        if st.restarting != rec.state.restarting {
            rec.state.restarting = st.restarting;
            changed = true;
        }
        if st.pid > 0 && st.pid != rec.state.pid {
            rec.state.pid = st.pid;
            rec.state.started_at = st.started_at;
            self.emit("start", &rec, &[]);
            changed = true;
        }
        if changed {
            self.put(&mut t, rec);
        }
    }

    /// Tells the shim not to restart the container any more (before it is signalled).
    fn no_more_restarts(&self, id: &str) {
        let _ = std::fs::write(self.exec_dir(id).join(hull_shim::STOP_FILE), b"");
        let mut t = self.table();
        if let Some(mut rec) = t.records.get(id).cloned() {
            if !rec.state.stopped_by_user {
                rec.state.stopped_by_user = true;
                self.put(&mut t, rec);
            }
        }
    }

    /// Records the end the shim wrote; removes the container if it asked for that.
    fn exited(self: &Arc<Self>, id: &str) {
        let path = self.exec_dir(id).join(hull_shim::EXIT_FILE);
        let info: Option<ExitInfo> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if info.is_none() {
            // The shim died without cleaning up (killed, or the machine went down): what
            // is left of the container (processes, cgroup, runtime state) goes now.
            if let Err(e) = self.runtime().delete(id, true) {
                tracing::debug!("container {id}: deleting what its dead shim left: {e}");
            }
        }
        // Before the exit is seen, so that a start right after it cannot lose its new
        // endpoints to this.
        self.detach_network(id);
        let auto_remove = {
            let mut t = self.table();
            let Some(mut rec) = t.records.get(id).cloned() else {
                return;
            };
            rec.state.status = Status::Exited;
            rec.state.pid = 0;
            rec.state.shim_pid = 0;
            rec.state.exits += 1;
            rec.state.restarting = false;
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
            let mounts = self.get(id).map(|r| r.mounts).unwrap_or_default();
            if let Err(e) = self.remove(id, false) {
                tracing::warn!("container {id}: removing it (--rm): {e}");
            } else {
                // As Docker: --rm takes the container's anonymous volumes with it.
                self.remove_anonymous_volumes(&mounts);
            }
        }
    }

    /// Re-reads the records of earlier runs; containers whose shim still runs are watched.
    /// Containers that were running but whose shim is gone are restarted when their policy
    /// is `always`, or `unless-stopped` and the user did not stop them.
    pub(crate) fn restore(self: &Arc<Self>) {
        let imported = self.store.import_files(&self.paths.data);
        if imported > 0 {
            tracing::info!("imported {imported} container records into the state store");
        }
        let records = self.store.containers().unwrap_or_else(|e| {
            tracing::error!("reading container records: {e}");
            Vec::new()
        });
        for rec in records {
            let id = rec.id.clone();
            let shim = rec.state.shim_pid;
            let running = rec.running();
            let policy = super::interactive::restart_policy(&rec.host_config).name;
            let again =
                policy == "always" || (policy == "unless-stopped" && !rec.state.stopped_by_user);
            self.table().records.insert(id.clone(), rec);
            if !running {
                continue;
            }
            let svc = self.clone();
            if shim > 0 && alive(shim) {
                svc.start_health(&id);
                std::thread::spawn(move || svc.watch_pid(id, shim));
            } else {
                svc.exited(&id);
                if again {
                    // exited() removed what the dead shim left (cgroup, runtime state).
                    match svc.start(&id) {
                        Ok(_) => {
                            tracing::info!("container {id}: restarted (restart policy {policy})")
                        }
                        Err(e) => tracing::warn!("container {id}: restarting it ({policy}): {e}"),
                    }
                }
            }
        }
        super::create::sweep_orphans(self);
    }

    /// Sends `signal` to a running container's init; for SIGKILL, waits (a few seconds at
    /// most) until it has exited, as Docker does, so that a `rm` right after succeeds.
    pub fn kill(&self, name: &str, signal: &str) -> Result<(), ContainersError> {
        let sig = parse_signal(signal)?;
        let rec = self.get(name)?;
        if !rec.running() {
            return Err(ContainersError::NotRunning(rec.id));
        }
        // As Docker: a fatal signal (KILL, TERM, INT, QUIT or the container's stop signal)
        // disables the restart policy until the next start; USR1 and the like do not.
        let stop_signal = rec
            .config
            .get("StopSignal")
            .and_then(|v| v.as_str())
            .and_then(|s| parse_signal(s).ok());
        let fatal = [
            Signal::SIGKILL,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
        ];
        if fatal.contains(&sig) || stop_signal == Some(sig) {
            self.no_more_restarts(&rec.id);
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
        self.no_more_restarts(&rec.id);
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
            super::logs::pause(POLL);
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
            if let Err(e) = self.store.remove_container(&id) {
                tracing::error!("container {id}: removing its record: {e}");
            }
            t.removed.push((id.clone(), rec.state.exit_code));
            if t.removed.len() > 256 {
                t.removed.remove(0);
            }
            super::logs::changed();
            rec
        };
        if rec.running() {
            tracing::warn!(
                "container {id}: removed while its shim still runs (pid {})",
                rec.state.shim_pid
            );
        }
        let t0 = Instant::now();
        for p in super::create::destroy(self, &id) {
            tracing::warn!("container {id}: cleaning up: {p}");
        }
        self.emit("destroy", &rec, &[]);
        tracing::debug!(
            container = %id,
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "remove: rootfs, layer and directories cleaned up"
        );
        Ok(())
    }
}
