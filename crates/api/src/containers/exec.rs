//! `docker exec`: an exec instance is the container's process spec with the request's
//! command, env, user and working directory; starting it runs `hull-shim exec FILE` (the
//! runtime's exec forks, so it runs in that single-threaded helper) with its stdout and
//! stderr on pipes, framed into Docker's multiplexed stream. The exit code is recorded
//! before the stream ends, so a client that inspects the exec after EOF sees it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::logs::frame;
use super::{io_err, ContainerService, ContainersError};

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    /// The OCI process to run.
    pub process: Value,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

/// Docker's exec create body, the parts hull serves.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecRequest {
    cmd: Vec<String>,
    env: Option<Vec<String>>,
    user: String,
    working_dir: String,
    tty: bool,
    privileged: bool,
}

fn bad(reason: impl Into<String>) -> ContainersError {
    ContainersError::ExecRequest(reason.into())
}

/// `uid[:gid]`, numeric only (names would need the image's /etc/passwd).
fn numeric_user(user: &str) -> Result<(u32, u32), ContainersError> {
    let (u, g) = user.split_once(':').unwrap_or((user, "0"));
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(bad(format!(
            "User: {user:?}: hull's exec takes a numeric UID[:GID] so far"
        ))),
    }
}

impl ContainerService {
    /// `POST /containers/{id}/exec`: the new exec instance's id.
    pub fn exec_create(&self, name: &str, body: &[u8]) -> Result<String, ContainersError> {
        let req: ExecRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))?;
        if req.cmd.is_empty() {
            return Err(bad("Cmd: no command given"));
        }
        if req.tty {
            return Err(ContainersError::TtyUnsupported);
        }
        if req.privileged {
            return Err(bad("Privileged: a privileged exec is refused by policy"));
        }
        let rec = self.get(name)?;
        if !rec.running() {
            return Err(ContainersError::NotRunning(rec.id));
        }
        if rec.paused() {
            return Err(ContainersError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                rec.id
            )));
        }
        let path = self.exec_dir(&rec.id).join("config.json");
        let spec: Value = std::fs::read(&path)
            .map_err(io_err("reading", &path))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| bad(e.to_string())))?;
        let mut process = spec.get("process").cloned().unwrap_or_else(|| json!({}));
        process["args"] = json!(req.cmd);
        process["terminal"] = json!(false);
        if let Some(extra) = req.env {
            let mut env: Vec<String> = process["env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            for e in extra {
                let key = e.split('=').next().unwrap_or("").to_string();
                env.retain(|x| x.split('=').next() != Some(key.as_str()));
                env.push(e);
            }
            process["env"] = json!(env);
        }
        if !req.working_dir.is_empty() {
            if !req.working_dir.starts_with('/') {
                return Err(bad("WorkingDir: not an absolute path"));
            }
            process["cwd"] = json!(req.working_dir);
        }
        if !req.user.is_empty() {
            let (uid, gid) = numeric_user(&req.user)?;
            process["user"] = json!({ "uid": uid, "gid": gid });
        }
        let id = super::create::new_id()?;
        self.table().execs.insert(
            id.clone(),
            ExecRecord {
                id: id.clone(),
                container: rec.id,
                process,
                running: false,
                exit_code: None,
                pid: 0,
            },
        );
        Ok(id)
    }

    pub fn exec_get(&self, id: &str) -> Result<ExecRecord, ContainersError> {
        self.table()
            .execs
            .get(id)
            .cloned()
            .ok_or_else(|| ContainersError::NoSuchExec(id.to_string()))
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value, ContainersError> {
        let e = self.exec_get(id)?;
        let args: Vec<String> =
            serde_json::from_value(e.process["args"].clone()).unwrap_or_default();
        Ok(json!({
            "ID": e.id,
            "ContainerID": e.container,
            "Running": e.running,
            "ExitCode": e.exit_code,
            "Pid": e.pid,
            "OpenStdin": false,
            "OpenStdout": true,
            "OpenStderr": true,
            "CanRemove": false,
            "ProcessConfig": {
                "tty": false,
                "entrypoint": args.first(),
                "arguments": args.get(1..).unwrap_or_default(),
                "privileged": false,
                "user": "",
            },
        }))
    }

    /// Starts an exec instance; its output frames come on the returned channel, which ends
    /// after the exit code is recorded.
    pub fn exec_start(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<mpsc::Receiver<Bytes>, ContainersError> {
        let e = {
            let mut t = self.table();
            let e = t
                .execs
                .get_mut(id)
                .ok_or_else(|| ContainersError::NoSuchExec(id.to_string()))?;
            if e.running || e.exit_code.is_some() {
                return Err(ContainersError::ExecRequest(format!(
                    "exec {id} has already been started"
                )));
            }
            e.running = true;
            e.clone()
        };
        let file = self.exec_dir(&e.container).join(format!("exec-{id}.json"));
        let cfg = json!({
            "id": e.container,
            "runtime_root": self.paths.runtime_root,
            "process": e.process,
        });
        let mut result = hull_runtime::state::write_atomic(&file, cfg.to_string().as_bytes())
            .map_err(io_err("writing", &file));
        let child = result.as_mut().ok().map(|_| {
            Command::new(&self.shim.program)
                .args(&self.shim.args)
                .arg("exec")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|source| ContainersError::SpawnShim {
                    path: self.shim.program.clone(),
                    source,
                })
        });
        let mut child = match (result, child) {
            (Ok(()), Some(Ok(c))) => c,
            (Err(err), _) | (Ok(()), Some(Err(err))) => {
                self.exec_done(id, 126);
                let _ = std::fs::remove_file(&file);
                return Err(err);
            }
            (Ok(()), None) => unreachable!("a child is spawned when the file was written"),
        };
        if let Some(x) = self.table().execs.get_mut(id) {
            x.pid = child.id() as i32;
        }
        let (tx, rx) = mpsc::channel::<Bytes>(64);
        let mut pumps = Vec::new();
        let outs: [(Option<Box<dyn Read + Send>>, u8); 2] = [
            (
                child
                    .stdout
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>),
                1,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|o| Box::new(o) as Box<dyn Read + Send>),
                2,
            ),
        ];
        for (out, stream) in outs {
            let (Some(mut out), tx) = (out, tx.clone()) else {
                continue;
            };
            pumps.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = out.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    // A client gone does not stop the reading: the process must not block.
                    let _ = tx.blocking_send(Bytes::from(frame(stream, &buf[..n])));
                }
            }));
        }
        let svc = self.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            for p in pumps {
                let _ = p.join();
            }
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
            svc.exec_done(&id, code);
            let _ = std::fs::remove_file(&file);
            drop(tx);
        });
        Ok(rx)
    }

    fn exec_done(&self, id: &str, code: i32) {
        if let Some(e) = self.table().execs.get_mut(id) {
            e.running = false;
            e.exit_code = Some(code);
            e.pid = 0;
        }
        self.exec_event("exec_die", id, Some(code));
    }
}
