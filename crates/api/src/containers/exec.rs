//! `docker exec`: an exec instance is the container's process spec with the request's
//! command, env, user, working directory and terminal; starting it runs `hull-shim exec
//! FILE` (the runtime's exec forks, so it runs in that single-threaded helper) with one end
//! of a socket pair as its stdin: the helper speaks the shim's attach protocol on it
//! (output frames, stdin, resizes; see hull_shim::io::proto), which the route bridges to
//! the hijacked connection (containers/bridge.rs). The exit code is recorded before the
//! client's stream ends, so a client that inspects the exec after EOF sees it.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::{io_err, ContainerService, ContainersError};

/// A started exec's ends for the route: the helper's socket, and `done` (the exit code is
/// recorded).
pub struct ExecIo {
    pub socket: UnixStream,
    pub done: oneshot::Receiver<()>,
    pub tty: bool,
    pub stdin: bool,
    /// Frames for the helper (resizes), to give to the bridge.
    pub extra: mpsc::Receiver<Vec<u8>>,
    /// The create request's DetachKeys (Docker's format, parsed).
    pub detach_keys: Vec<u8>,
}

/// Where `POST /exec/{id}/resize` sends to, while the exec runs.
fn resizers() -> &'static Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>> {
    static R: OnceLock<Mutex<HashMap<String, mpsc::Sender<Vec<u8>>>>> = OnceLock::new();
    R.get_or_init(Default::default)
}

#[derive(Debug, Clone)]
pub struct ExecRecord {
    pub id: String,
    pub container: String,
    /// The OCI process to run.
    pub process: Value,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    pub tty: bool,
    pub attach_stdin: bool,
    pub detach_keys: Vec<u8>,
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
    attach_stdin: bool,
    privileged: bool,
    detach_keys: String,
}

fn bad(reason: impl Into<String>) -> ContainersError {
    ContainersError::ExecRequest(reason.into())
}

impl ContainerService {
    /// The container's own process from its spec: what an exec (or a health check)
    /// starts from (user, env, cwd, capabilities, rlimits, seccomp...).
    pub(crate) fn exec_process_template(&self, id: &str) -> Result<Value, ContainersError> {
        let path = self.exec_dir(id).join("config.json");
        let spec: Value = std::fs::read(&path)
            .map_err(io_err("reading", &path))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| bad(e.to_string())))?;
        Ok(spec.get("process").cloned().unwrap_or_else(|| json!({})))
    }

    /// `POST /containers/{id}/exec`: the new exec instance's id.
    pub fn exec_create(&self, name: &str, body: &[u8]) -> Result<String, ContainersError> {
        let req: ExecRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))?;
        if req.cmd.is_empty() {
            return Err(bad("Cmd: no command given"));
        }
        let detach_keys = super::bridge::parse_detach_keys(&req.detach_keys)
            .map_err(|e| bad(format!("DetachKeys: {e}")))?;
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
        let mut process = self.exec_process_template(&rec.id)?;
        process["args"] = json!(req.cmd);
        process["terminal"] = json!(req.tty);
        if req.tty {
            // The size comes with the first resize.
            if let Some(o) = process.as_object_mut() {
                o.remove("consoleSize");
            }
        }
        let exec_sets_home = req.env.iter().flatten().any(|e| e.starts_with("HOME="));
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
            // As Docker: names and groups from the container's own /etc/passwd and
            // /etc/group (read without following symlinks), numbers without them.
            let rootfs = self.exec_dir(&rec.id).join("rootfs");
            let files = super::host::Host {
                rootfs: &rootfs,
                volumes: None,
            };
            use hull_engine::HostLookup;
            let passwd = files.rootfs_file("/etc/passwd");
            let group = files.rootfs_file("/etc/group");
            let (uid, gid, additional, home) =
                hull_engine::resolve_exec_user(&req.user, passwd.as_deref(), group.as_deref())
                    .map_err(|e| bad(e.to_string()))?;
            process["user"] = json!({ "uid": uid, "gid": gid, "additionalGids": additional });
            if let (Some(home), Some(env)) = (home, process["env"].as_array_mut()) {
                // the container's HOME was its own user's; an exec as another user gets
                // that user's, unless the exec sets one
                if !exec_sets_home {
                    env.retain(|v| !v.as_str().is_some_and(|s| s.starts_with("HOME=")));
                    env.push(json!(format!("HOME={home}")));
                }
            }
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
                tty: req.tty,
                attach_stdin: req.attach_stdin,
                detach_keys,
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
            "OpenStdin": e.attach_stdin,
            "OpenStdout": true,
            "OpenStderr": true,
            "CanRemove": false,
            "ProcessConfig": {
                "tty": e.tty,
                "entrypoint": args.first(),
                "arguments": args.get(1..).unwrap_or_default(),
                "privileged": false,
                "user": "",
            },
        }))
    }

    /// Starts an exec instance: the helper's socket for the route's bridge.
    pub fn exec_start(self: &Arc<Self>, id: &str) -> Result<ExecIo, ContainersError> {
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
            "io": true,
            "tty": e.tty,
            "stdin": e.attach_stdin,
        });
        let spawn = || -> Result<(std::process::Child, UnixStream), ContainersError> {
            hull_runtime::state::write_atomic(&file, cfg.to_string().as_bytes())
                .map_err(io_err("writing", &file))?;
            let (ours, theirs) =
                UnixStream::pair().map_err(io_err("making a socket pair for", &file))?;
            let child = Command::new(&self.shim.program)
                .args(&self.shim.args)
                .arg("exec")
                .arg(&file)
                .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs)))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|source| ContainersError::SpawnShim {
                    path: self.shim.program.clone(),
                    source,
                })?;
            Ok((child, ours))
        };
        let (mut child, socket) = match spawn() {
            Ok(x) => x,
            Err(err) => {
                self.exec_done(id, 126);
                let _ = std::fs::remove_file(&file);
                return Err(err);
            }
        };
        if let Some(x) = self.table().execs.get_mut(id) {
            x.pid = child.id() as i32;
        }
        let (rtx, extra) = mpsc::channel(8);
        resizers()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), rtx);
        let (done_tx, done) = oneshot::channel();
        let svc = self.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(126);
            resizers()
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            svc.exec_done(&id, code);
            let _ = std::fs::remove_file(&file);
            let _ = done_tx.send(());
        });
        Ok(ExecIo {
            socket,
            done,
            tty: e.tty,
            stdin: e.attach_stdin,
            extra,
            detach_keys: e.detach_keys.clone(),
        })
    }

    /// `POST /exec/{id}/resize`: the exec's pty size (nothing without a tty).
    pub fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ContainersError> {
        let e = self.exec_get(id)?;
        if !e.tty {
            return Ok(());
        }
        if let Some(tx) = resizers().lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            let _ = tx.try_send(hull_shim::io::proto::resize(height, width));
        }
        Ok(())
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
