//! Interactive containers and what the shim does on its own: `Tty`, `OpenStdin`,
//! `StdinOnce`, attach through the shim's socket (`io.sock`, [`hull_shim::io::proto`]),
//! resizes, restart policies and json-file log options (checked at create, with daemon.json's
//! `log-opts` as defaults, and handed to the shim at start).

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use hull_shim::io::proto;
use hull_shim::{RestartPolicy, Rotation, ShimConfig};
use serde_json::{json, Value};

use super::record::Record;
use super::{ContainerService, ContainersError};

fn bad(what: &str, why: impl std::fmt::Display) -> ContainersError {
    ContainersError::BadOption(format!("{what}: {why}"))
}

/// Docker's sizes for `max-size`: a number with an optional k, m or g (powers of 1024).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1u64 << 10),
        'm' => (&t[..t.len() - 1], 1 << 20),
        'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    Some((n * mult as f64) as u64)
}

/// The log configuration a container gets: its own `HostConfig.LogConfig`, else daemon.json's
/// `log-driver`/`log-opts`; checked (a bad value is a 400 naming it).
pub fn effective_log_config(
    host_config: &Value,
    defaults: &BTreeMap<String, String>,
) -> Result<Value, ContainersError> {
    let lc = host_config.get("LogConfig").cloned().unwrap_or(Value::Null);
    let mut typ = lc
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut opts: BTreeMap<String, String> = lc
        .get("Config")
        .and_then(|c| serde_json::from_value(c.clone()).ok())
        .unwrap_or_default();
    if typ.is_empty() {
        typ = defaults
            .get("log-driver")
            .cloned()
            .unwrap_or_else(|| "json-file".into());
        if opts.is_empty() {
            opts = defaults
                .iter()
                .filter(|(k, _)| k.as_str() != "log-driver")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
    }
    match typ.as_str() {
        "json-file" => {
            for (k, v) in &opts {
                match k.as_str() {
                    "max-size" => {
                        if v != "-1" && parse_size(v).is_none_or(|n| n == 0) {
                            return Err(bad(
                                "LogConfig max-size",
                                format!("{v:?} is not a size (e.g. 10m, 512k, 1g)"),
                            ));
                        }
                    }
                    "max-file" => {
                        if v.parse::<u32>().map_or(true, |n| n < 1) {
                            return Err(bad(
                                "LogConfig max-file",
                                format!("{v:?} is not a number of at least 1"),
                            ));
                        }
                    }
                    "mode" | "max-buffer-size" | "labels" | "env" | "compress" | "tag" => {}
                    other => {
                        return Err(bad(
                            "LogConfig",
                            format!("unknown log opt '{other}' for json-file log driver"),
                        ))
                    }
                }
            }
            if opts.contains_key("max-file") && !opts.contains_key("max-size") {
                return Err(bad(
                    "LogConfig max-file",
                    "max-file needs max-size (set both)",
                ));
            }
        }
        "none" => {}
        other => {
            return Err(bad(
                "LogConfig Type",
                format!("logging driver {other:?} is not supported by hull (json-file or none)"),
            ))
        }
    }
    Ok(json!({ "Type": typ, "Config": opts }))
}

/// Checks `HostConfig.RestartPolicy` as Docker does.
pub fn check_restart_policy(host_config: &Value, auto_remove: bool) -> Result<(), ContainersError> {
    let p = restart_policy(host_config);
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" => {
            if p.max_retry != 0 {
                return Err(bad(
                    "RestartPolicy",
                    format!(
                        "maximum retry count cannot be used with restart policy '{}'",
                        p.name
                    ),
                ));
            }
        }
        "on-failure" => {
            if p.max_retry < 0 {
                return Err(bad(
                    "RestartPolicy",
                    "maximum retry count cannot be negative",
                ));
            }
        }
        other => {
            return Err(bad(
                "RestartPolicy",
                format!(
                    "invalid restart policy {other:?} (no, always, unless-stopped, on-failure)"
                ),
            ))
        }
    }
    if auto_remove && !matches!(p.name.as_str(), "" | "no") {
        return Err(bad(
            "RestartPolicy",
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(())
}

pub fn restart_policy(host_config: &Value) -> RestartPolicy {
    let p = host_config.get("RestartPolicy");
    RestartPolicy {
        name: p
            .and_then(|p| p.get("Name"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        max_retry: p
            .and_then(|p| p.get("MaximumRetryCount"))
            .and_then(Value::as_i64)
            .unwrap_or(0),
    }
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

pub fn is_tty(rec: &Record) -> bool {
    flag(&rec.config, "Tty")
}

/// Log driver `none`.
pub fn no_log(rec: &Record) -> bool {
    rec.host_config
        .pointer("/LogConfig/Type")
        .and_then(Value::as_str)
        == Some("none")
}

/// The rotation from the record's (effective) LogConfig.
pub fn rotation(rec: &Record) -> Rotation {
    let opt = |k: &str| {
        rec.host_config
            .pointer(&format!("/LogConfig/Config/{k}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Rotation {
        max_size: opt("max-size").and_then(|s| parse_size(&s)).unwrap_or(0),
        max_file: opt("max-file").and_then(|s| s.parse().ok()).unwrap_or(1),
    }
}

impl ContainerService {
    /// daemon.json's `log-driver` and `log-opts`, the defaults of containers created later
    /// (checked as a container's LogConfig is).
    pub fn set_log_defaults(
        &self,
        driver: Option<String>,
        opts: BTreeMap<String, String>,
    ) -> Result<(), ContainersError> {
        let mut d = opts;
        if let Some(driver) = driver {
            d.insert("log-driver".into(), driver);
        }
        effective_log_config(&Value::Null, &d)?;
        self.table().log_defaults = d;
        Ok(())
    }

    pub(crate) fn log_defaults(&self) -> BTreeMap<String, String> {
        self.table().log_defaults.clone()
    }

    /// The interactive and restart parts of the shim's config.
    pub(crate) fn fill_shim_config(&self, rec: &Record, cfg: &mut ShimConfig) {
        cfg.tty = is_tty(rec);
        cfg.open_stdin = flag(&rec.config, "OpenStdin");
        cfg.stdin_once = flag(&rec.config, "StdinOnce");
        cfg.restart = restart_policy(&rec.host_config);
        cfg.no_log = no_log(rec);
        cfg.rotation = rotation(rec);
        cfg.wait_attach = self
            .table()
            .pending_attach
            .get(&rec.id)
            .is_some_and(|n| *n > 0);
    }

    fn io_socket(&self, id: &str) -> std::path::PathBuf {
        self.exec_dir(id).join(hull_shim::IO_SOCKET)
    }

    /// Announces an attach to the container's next start (before the client is told the
    /// attach is on, so that a start right after it waits for this client); undone by
    /// [`attach_connect`](Self::attach_connect) or [`attach_cancel`](Self::attach_cancel).
    pub fn attach_register(&self, id: &str) {
        *self
            .table()
            .pending_attach
            .entry(id.to_string())
            .or_default() += 1;
    }

    pub fn attach_cancel(&self, id: &str) {
        let mut t = self.table();
        if let Some(n) = t.pending_attach.get_mut(id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.pending_attach.remove(id);
            }
        }
    }

    /// Connects to the container's shim for an attach announced with
    /// [`attach_register`](Self::attach_register): at once when it runs, else when it is
    /// next started (the shim then waits for this client before the process starts).
    /// `run` is the `StartedAt` of the run the container was in when the attach was asked
    /// for: that run's end ends the attach (as in Docker), also when it ended before this
    /// connects; an attach to a stopped container (None) waits for the next start. None
    /// when `cancelled()`, that run is over, or the container is removed first.
    pub fn attach_connect(
        &self,
        id: &str,
        run: Option<&str>,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Option<UnixStream>, ContainersError> {
        let sock = self.io_socket(id);
        let result = loop {
            if let Ok(s) = connect(&sock) {
                break Ok(Some(s));
            }
            if cancelled() {
                break Ok(None);
            }
            match self.get(id) {
                Err(e) => break Err(e),
                // A client that attached to a running container and was answered
                // before the process exited must see the end, not wait for a start
                // nobody asks for (docker-compose's dockerpty hung there).
                Ok(rec) if run.is_some_and(|r| !rec.running() || rec.state.started_at != r) => {
                    break Ok(None)
                }
                Ok(_) => {}
            }
            // The shim binds io.sock when the start spawns it, and waits for this attach
            // before starting the container: the poll is on `docker run`'s path.
            std::thread::sleep(Duration::from_millis(1));
        };
        self.attach_cancel(id);
        result
    }

    /// `POST /containers/{id}/resize`: the pty's window size.
    pub fn resize(&self, name: &str, height: u16, width: u16) -> Result<(), ContainersError> {
        let rec = self.get(name)?;
        if !rec.running() {
            return Err(ContainersError::NotRunning(rec.id));
        }
        if !is_tty(&rec) {
            return Ok(());
        }
        tracing::debug!("container {}: window size {height}x{width}", rec.id);
        let sock = self.io_socket(&rec.id);
        let mut s = connect(&sock).map_err(super::io_err("connecting to the shim at", &sock))?;
        s.write_all(&proto::resize(height, width))
            .map_err(super::io_err("sending a resize to", &sock))?;
        Ok(())
    }
}

/// Connects to a shim's socket, also when its path is longer than a socket address takes.
fn connect(sock: &std::path::Path) -> std::io::Result<UnixStream> {
    let (Some(dir), Some(name)) = (sock.parent(), sock.file_name()) else {
        return UnixStream::connect(sock);
    };
    let (addr, _dir) = hull_shim::socket_path(dir, &name.to_string_lossy())?;
    UnixStream::connect(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("-1m"), None);
    }

    #[test]
    fn log_config_is_checked_and_defaults_apply() {
        let d: BTreeMap<String, String> = [("max-size".to_string(), "1m".to_string())].into();
        let v = effective_log_config(&json!({}), &d).unwrap();
        assert_eq!(
            v,
            json!({"Type": "json-file", "Config": {"max-size": "1m"}})
        );
        let e = effective_log_config(
            &json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "huge"}}}),
            &d,
        )
        .unwrap_err();
        assert!(e.to_string().contains("max-size"), "{e}");
        let e = effective_log_config(
            &json!({"LogConfig": {"Type": "json-file", "Config": {"max-size": "1k", "max-file": "0"}}}),
            &d,
        )
        .unwrap_err();
        assert!(e.to_string().contains("max-file"), "{e}");
        let v = effective_log_config(&json!({"LogConfig": {"Type": "none"}}), &d).unwrap();
        assert_eq!(v["Type"], "none");
        assert!(effective_log_config(&json!({"LogConfig": {"Type": "syslog"}}), &d).is_err());
    }

    #[test]
    fn restart_policies_are_checked() {
        let p = |n: &str, m: i64| json!({"RestartPolicy": {"Name": n, "MaximumRetryCount": m}});
        assert!(check_restart_policy(&p("on-failure", 2), false).is_ok());
        assert!(check_restart_policy(&p("always", 0), false).is_ok());
        assert!(check_restart_policy(&p("always", 3), false).is_err());
        assert!(check_restart_policy(&p("sometimes", 0), false).is_err());
        assert!(check_restart_policy(&p("always", 0), true).is_err());
        assert!(check_restart_policy(&json!({}), true).is_ok());
    }
}
