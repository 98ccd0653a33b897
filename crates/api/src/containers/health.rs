//! Health checks (`HEALTHCHECK` in the image, `--health-*` on `run`): while a container with
//! a check runs, one thread runs its test every `Interval` in the container, as an exec
//! through `hull-shim exec` (stdout and stderr on one pipe, the first 4 KiB kept), and keeps
//! `State.Health` with Docker's rules: exit 0 is healthy; another code, or a test that
//! outlives `Timeout`, is a failure; failures in the `StartPeriod` do not count; `Retries`
//! failures in a row make the container unhealthy. A change of status is an event
//! (`health_status: healthy`), and `docker ps` shows it next to "Up".

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::record::Record;
use super::{ContainerService, ContainersError};

/// Docker's defaults for a zero duration, and its retries.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u64 = 3;
/// The last probes kept in `State.Health.Log`, and the output kept of each.
const LOG_ENTRIES: usize = 5;
const MAX_OUTPUT: usize = 4096;

/// `State.Health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// starting, healthy or unhealthy.
    pub status: String,
    pub failing_streak: u64,
    pub log: Vec<Probe>,
}

/// One run of the test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// A container's check, from its `Config.Healthcheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u64,
}

fn duration(hc: &Value, key: &str) -> Result<Option<Duration>, String> {
    match hc.get(key).and_then(Value::as_i64) {
        None | Some(0) => Ok(None),
        Some(ns) if ns < 1_000_000 => Err(format!(
            "{key} in Healthcheck cannot be less than 1ms (got {ns} ns)"
        )),
        Some(ns) => Ok(Some(Duration::from_nanos(ns as u64))),
    }
}

/// The check a `Config` (with the image's check merged in at create) asks for: None
/// without one, or with `Test: ["NONE"]`. Errors are Docker's words for bad values.
pub fn check_of(config: &Value) -> Result<Option<Check>, String> {
    let Some(hc) = config.get("Healthcheck").filter(|v| v.is_object()) else {
        return Ok(None);
    };
    let test: Vec<String> = match hc.get("Test") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| "Test in Healthcheck must be a list of strings".to_string())?,
    };
    let args = match test.split_first() {
        None => return Ok(None),
        Some((kind, rest)) => match kind.as_str() {
            "NONE" => return Ok(None),
            "CMD" if !rest.is_empty() => rest.to_vec(),
            "CMD-SHELL" if rest.len() == 1 => {
                vec!["/bin/sh".into(), "-c".into(), rest[0].clone()]
            }
            _ => {
                return Err(format!(
                    "Test in Healthcheck must be [\"NONE\"], [\"CMD\", args...] or \
                     [\"CMD-SHELL\", command], not {test:?}"
                ))
            }
        },
    };
    let retries = match hc.get("Retries").and_then(Value::as_i64) {
        None | Some(0) => DEFAULT_RETRIES,
        Some(n) if n < 0 => return Err("Retries in Healthcheck cannot be negative".into()),
        Some(n) => n as u64,
    };
    Ok(Some(Check {
        args,
        interval: duration(hc, "Interval")?.unwrap_or(DEFAULT_INTERVAL),
        timeout: duration(hc, "Timeout")?.unwrap_or(DEFAULT_TIMEOUT),
        start_period: duration(hc, "StartPeriod")?.unwrap_or_default(),
        retries,
    }))
}

/// Docker's merge at create: no check of its own takes the image's; a check without a
/// test takes the image's test and keeps its own non-zero values.
pub fn merge_image_check(config: &mut Value, image: Option<&Value>) {
    let Some(image) = image.filter(|v| v.is_object()) else {
        return;
    };
    let own = config.get("Healthcheck").filter(|v| v.is_object()).cloned();
    let merged = match own {
        None => image.clone(),
        Some(mut own) => {
            let no_test = !matches!(
                own.get("Test").and_then(Value::as_array),
                Some(t) if !t.is_empty()
            );
            if !no_test {
                return;
            }
            own["Test"] = image.get("Test").cloned().unwrap_or(Value::Null);
            for key in ["Interval", "Timeout", "StartPeriod", "Retries"] {
                if own.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
                    own[key] = image.get(key).cloned().unwrap_or(Value::Null);
                }
            }
            own
        }
    };
    if let Some(o) = config.as_object_mut() {
        o.insert("Healthcheck".into(), merged);
    }
}

/// What one probe did to the health: the new value, and whether the status changed.
pub fn record_probe(
    health: Option<&Health>,
    probe: Probe,
    in_start_period: bool,
    retries: u64,
) -> (Health, bool) {
    let mut h = health.cloned().unwrap_or_else(starting);
    let before = h.status.clone();
    if probe.exit_code == 0 {
        h.status = "healthy".into();
        h.failing_streak = 0;
    } else if !in_start_period || h.status != "starting" {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = "unhealthy".into();
        }
    }
    h.log.push(probe);
    if h.log.len() > LOG_ENTRIES {
        let extra = h.log.len() - LOG_ENTRIES;
        h.log.drain(..extra);
    }
    let changed = h.status != before;
    (h, changed)
}

/// A duration as Go prints it (Docker's messages do): 30s, 1.5s, 500ms, 2m0s.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        return format!("{}s", s.trim_end_matches('0').trim_end_matches('.'));
    }
    format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
}

fn starting() -> Health {
    Health {
        status: "starting".into(),
        failing_streak: 0,
        log: Vec::new(),
    }
}

/// " (healthy)" and the like, for `docker ps`'s status of a running container.
pub fn status_suffix(r: &Record) -> String {
    match r.state.health.as_ref().map(|h| h.status.as_str()) {
        Some("starting") => " (health: starting)".into(),
        Some(s) => format!(" ({s})"),
        None => String::new(),
    }
}

/// The `health` filter's value for a container: its status, or "none".
pub fn filter_value(r: &Record) -> &str {
    match (&r.state.health, r.running()) {
        (Some(h), true) => h.status.as_str(),
        _ => "none",
    }
}

impl ContainerService {
    /// Starts the health monitor of a container that has just started (or is found
    /// running at hulld's start), if it has a check and no monitor yet.
    pub(crate) fn start_health(self: &Arc<Self>, id: &str) {
        let Ok(rec) = self.get(id) else { return };
        let check = match check_of(&rec.config) {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("container {id}: no health checks: {e}");
                return;
            }
        };
        if !self.table().health_monitors.insert(id.to_string()) {
            return;
        }
        let svc = self.clone();
        let id = id.to_string();
        let spawned = std::thread::Builder::new()
            .name("health".into())
            .stack_size(128 << 10)
            .spawn({
                let id = id.clone();
                move || loop {
                    svc.health_loop(&id, &check);
                    // Leave only if the container is still not running, under the lock
                    // start_health checks: a start between the loop's end and here found
                    // this monitor registered and counts on it.
                    let mut t = svc.table();
                    if !t.records.get(&id).is_some_and(|r| r.running()) {
                        t.health_monitors.remove(&id);
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("container {id}: cannot start its health monitor: {e}");
            self.table().health_monitors.remove(&id);
        }
    }

    fn health_loop(&self, id: &str, check: &Check) {
        let mut run = String::new();
        let mut run_began = Instant::now();
        loop {
            // A new run (a start, a restart by policy) starts over as "starting".
            let Ok(rec) = self.get(id) else { return };
            if !rec.running() {
                return;
            }
            if rec.state.started_at != run {
                run = rec.state.started_at.clone();
                run_began = Instant::now();
                self.set_health(id, |h| {
                    let mut h = h.cloned().unwrap_or_else(starting);
                    h.status = "starting".into();
                    h.failing_streak = 0;
                    (h, false)
                });
            }
            if !self.sleep_while_running(id, &run, check.interval) {
                // stopped (the top returns) or started again (the top starts over)
                continue;
            }
            // no probes of a frozen container or one waiting out a restart back-off
            if self.get(id).is_ok_and(|r| r.paused() || r.state.restarting) {
                continue;
            }
            let probe = self.probe(id, check);
            let in_start_period = run_began.elapsed() < check.start_period;
            let changed = self.set_health(id, |h| {
                record_probe(h, probe, in_start_period, check.retries)
            });
            if let Some(status) = changed {
                self.emit_id(&format!("health_status: {status}"), id, &[]);
            }
        }
    }

    /// Sleeps `d`, in steps, while the same run goes on; false when it ended.
    fn sleep_while_running(&self, id: &str, run: &str, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(100)));
            match self.get(id) {
                Ok(r) if r.running() && r.state.started_at == run => {}
                _ => return false,
            }
        }
    }

    /// Applies `f` to the record's health and saves it; the new status when it changed.
    fn set_health(
        &self,
        id: &str,
        f: impl FnOnce(Option<&Health>) -> (Health, bool),
    ) -> Option<String> {
        let mut t = self.table();
        let mut rec = t.records.get(id)?.clone();
        let (h, changed) = f(rec.state.health.as_ref());
        let status = h.status.clone();
        rec.state.health = Some(h);
        self.put(&mut t, rec);
        changed.then_some(status)
    }

    /// Runs the test once in the container.
    fn probe(&self, id: &str, check: &Check) -> Probe {
        let start = hull_runtime::state::now_rfc3339();
        let (exit_code, output) = match self.run_test(id, check) {
            Ok(r) => r,
            Err(e) => (-1, e.to_string()),
        };
        Probe {
            start,
            end: hull_runtime::state::now_rfc3339(),
            exit_code,
            output,
        }
    }

    fn run_test(&self, id: &str, check: &Check) -> Result<(i64, String), ContainersError> {
        let mut process = self.exec_process_template(id)?;
        process["args"] = json!(check.args);
        process["terminal"] = json!(false);
        let dir = self.exec_dir(id);
        let file = dir.join(format!("exec-health-{}.json", std::process::id()));
        let cfg = json!({
            "id": id,
            "runtime_root": self.paths.runtime_root,
            "process": process,
        });
        hull_runtime::state::write_atomic(&file, cfg.to_string().as_bytes())
            .map_err(super::io_err("writing", &file))?;
        let pipe_err = |e: nix::Error| ContainersError::Invalid(format!("making a pipe: {e}"));
        let (reader, writer) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(pipe_err)?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| ContainersError::Invalid(format!("making a pipe: {e}")))?;
        // A process group of its own: the test's processes (no terminal, so no session of
        // their own) are in it, and a timeout kills them all, not just the shim.
        use std::os::unix::process::CommandExt;
        let spawned = Command::new(&self.shim.program)
            .args(&self.shim.args)
            .arg("exec")
            .arg(&file)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(writer)
            .stderr(writer2)
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(source) => {
                let _ = std::fs::remove_file(&file);
                return Err(ContainersError::SpawnShim {
                    path: self.shim.program.clone(),
                    source,
                });
            }
        };
        // The pipe is read to its end (a test that writes much must not block), keeping
        // the first MAX_OUTPUT bytes.
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            let mut r = std::fs::File::from(reader);
            while let Ok(n @ 1..) = r.read(&mut buf) {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            let _ = out_tx.send(kept);
        });
        let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
        let kill_group = || {
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        };
        let deadline = Instant::now() + check.timeout;
        let code = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status.code().map(i64::from),
                Ok(None) if Instant::now() >= deadline => {
                    kill_group();
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => break None,
            }
        };
        let timed_out = code.is_none();
        // What the test left behind in its group (a background process holding the pipe)
        // goes with it; the output is read up to its end, or a second at most.
        kill_group();
        let output = out_rx
            .recv_timeout(Duration::from_secs(1))
            .unwrap_or_default();
        let _ = std::fs::remove_file(&file);
        if timed_out {
            return Ok((
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    go_duration(check.timeout)
                ),
            ));
        }
        Ok((
            code.unwrap_or(-1),
            String::from_utf8_lossy(&output).into_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i64) -> Probe {
        Probe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn checks_parse_with_dockers_defaults_and_refusals() {
        let c = check_of(&json!({"Healthcheck": {"Test": ["CMD-SHELL", "true"]}}))
            .unwrap()
            .unwrap();
        assert_eq!(c.args, ["/bin/sh", "-c", "true"]);
        assert_eq!(
            (c.interval, c.timeout, c.start_period, c.retries),
            (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Duration::ZERO, 3)
        );
        let c = check_of(&json!({"Healthcheck": {"Test": ["CMD", "ls", "/"],
            "Interval": 2_000_000_000i64, "Retries": 1}}))
        .unwrap()
        .unwrap();
        assert_eq!(c.args, ["ls", "/"]);
        assert_eq!((c.interval, c.retries), (Duration::from_secs(2), 1));
        assert_eq!(check_of(&json!({})).unwrap(), None);
        assert_eq!(
            check_of(&json!({"Healthcheck": {"Test": ["NONE"]}})).unwrap(),
            None
        );
        for bad in [
            json!({"Healthcheck": {"Test": ["CMD"]}}),
            json!({"Healthcheck": {"Test": ["SHELL", "x"]}}),
            json!({"Healthcheck": {"Test": ["CMD", "x"], "Interval": 5}}),
            json!({"Healthcheck": {"Test": ["CMD", "x"], "Retries": -1}}),
        ] {
            assert!(check_of(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_image_check_is_merged_as_docker_does() {
        let image = json!({"Test": ["CMD", "probe"], "Interval": 5, "Retries": 7});
        let mut none = json!({});
        merge_image_check(&mut none, Some(&image));
        assert_eq!(none["Healthcheck"], image);
        let mut own = json!({"Healthcheck": {"Test": ["CMD", "mine"]}});
        merge_image_check(&mut own, Some(&image));
        assert_eq!(own["Healthcheck"]["Test"], json!(["CMD", "mine"]));
        let mut partial = json!({"Healthcheck": {"Test": [], "Retries": 2}});
        merge_image_check(&mut partial, Some(&image));
        assert_eq!(partial["Healthcheck"]["Test"], json!(["CMD", "probe"]));
        assert_eq!(partial["Healthcheck"]["Retries"], 2);
        assert_eq!(partial["Healthcheck"]["Interval"], 5);
        let mut off = json!({"Healthcheck": {"Test": ["NONE"]}});
        merge_image_check(&mut off, Some(&image));
        assert_eq!(off["Healthcheck"]["Test"], json!(["NONE"]));
    }

    #[test]
    fn durations_read_like_gos() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
    }

    #[test]
    fn statuses_follow_dockers_rules() {
        // failures in the start period do not count while starting
        let (h, changed) = record_probe(None, probe(1), true, 2);
        assert_eq!(
            (h.status.as_str(), h.failing_streak, changed),
            ("starting", 0, false)
        );
        let (h, changed) = record_probe(Some(&h), probe(0), true, 2);
        assert_eq!((h.status.as_str(), changed), ("healthy", true));
        let (h, _) = record_probe(Some(&h), probe(1), false, 2);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 1));
        let (h, changed) = record_probe(Some(&h), probe(-1), false, 2);
        assert_eq!(
            (h.status.as_str(), h.failing_streak, changed),
            ("unhealthy", 2, true)
        );
        let mut h = h;
        for _ in 0..10 {
            h = record_probe(Some(&h), probe(0), false, 2).0;
        }
        assert_eq!(h.log.len(), LOG_ENTRIES);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
    }
}
