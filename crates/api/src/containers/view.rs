//! Containers as Docker shows them: `GET /containers/json` entries and `GET
//! /containers/{id}/json` (inspect).

use serde_json::{json, Value};

use hull_image::time::parse_rfc3339;

use super::record::{Record, Status};
use super::ContainerService;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's "About a minute", "3 seconds", ... (go-units HumanDuration).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 * 2 - 60 * 14 => format!("{} minutes", s / 60),
        _ if s < 3600 * 2 => "About an hour".into(),
        _ if s < 3600 * 48 => format!("{} hours", s / 3600),
        _ if s < 86400 * 14 => format!("{} days", s / 86400),
        _ => format!("{} weeks", s / (86400 * 7)),
    }
}

/// "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
pub fn status_text(r: &Record) -> String {
    let since = |t: &str| human_duration(now() - parse_rfc3339(t).unwrap_or_else(now));
    if r.state.restarting {
        // Docker's words for a container waiting out its restart back-off.
        return format!(
            "Restarting ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        );
    }
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!(
            "Up {}{}",
            since(&r.state.started_at),
            super::health::status_suffix(r)
        ),
        Status::Paused => format!("Up {} (Paused)", since(&r.state.started_at)),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            r.state.exit_code,
            since(&r.state.finished_at)
        ),
    }
}

fn command(r: &Record) -> String {
    std::iter::once(r.path.as_str())
        .chain(r.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn labels(r: &Record) -> Value {
    r.config
        .get("Labels")
        .cloned()
        .filter(|v| v.is_object())
        .unwrap_or(json!({}))
}

/// `GET /containers/json`'s Mounts: inspect's.
fn mounts_brief(r: &Record) -> Value {
    json!(r.mounts)
}

/// One `GET /containers/json` entry.
impl ContainerService {
    /// One container as `GET /containers/json` lists it.
    pub(crate) fn summary(&self, r: &Record) -> Value {
        json!({
            "Id": r.id,
            "Names": [format!("/{}", r.name)],
            "Image": r.image,
            "ImageID": r.image_id,
            "Command": command(r),
            "Created": parse_rfc3339(&r.created).unwrap_or(0),
            "Ports": self.port_list(r),
            "Labels": labels(r),
            "State": r.state.status.as_str(),
            "Status": status_text(r),
            "HostConfig": { "NetworkMode": r.network_mode_shown() },
            "NetworkSettings": { "Networks": self.network_settings(r)["Networks"].clone() },
            "Mounts": mounts_brief(r),
        })
    }
}

impl ContainerService {
    /// `GET /containers/json`: running containers, or all with `all`; newest first.
    pub fn list(&self, all: bool) -> Value {
        let mut recs: Vec<Record> = self
            .table()
            .records
            .values()
            .filter(|r| all || r.running())
            .cloned()
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        Value::Array(recs.iter().map(|r| self.summary(r)).collect())
    }

    /// `GET /containers/{id}/json`.
    pub fn inspect(&self, r: &Record) -> Value {
        let mut config = r.config.clone();
        if let Some(o) = config.as_object_mut() {
            o.entry("Image").or_insert(json!(r.image));
            o.insert(
                "Hostname".into(),
                json!(hull_engine::defaults::hostname(&r.id)),
            );
            if o.get("Cmd").is_none_or(Value::is_null) {
                o.insert(
                    "Cmd".into(),
                    json!(std::iter::once(&r.path).chain(&r.args).collect::<Vec<_>>()),
                );
            }
        }
        let mut host_config = r.host_config.clone();
        if !host_config.is_object() {
            host_config = json!({});
        }
        if let Some(o) = host_config.as_object_mut() {
            // SDKs read these (docker-py's run() checks the log driver).
            o.entry("LogConfig")
                .or_insert(json!({ "Type": "json-file", "Config": {} }));
            o.insert("NetworkMode".into(), json!(r.network_mode_shown()));
            o.insert("AutoRemove".into(), json!(r.auto_remove));
            o.entry("RestartPolicy")
                .or_insert(json!({ "Name": "no", "MaximumRetryCount": 0 }));
        }
        let running = r.running();
        let mut out = json!({
            "Id": r.id,
            "Name": format!("/{}", r.name),
            "Created": r.created,
            "Path": r.path,
            "Args": r.args,
            "State": {
                "Status": if r.state.restarting { "restarting" } else { r.state.status.as_str() },
                "Running": running,
                "Paused": r.paused(),
                "Restarting": r.state.restarting,
                "OOMKilled": r.state.oom_killed,
                "Dead": false,
                "Pid": if running { r.state.pid } else { 0 },
                "ExitCode": r.state.exit_code,
                "Error": r.state.error,
                "StartedAt": r.state.started_at,
                "FinishedAt": r.state.finished_at,
            },
            "Image": r.image_id,
            "LogPath": self.log_path(&r.id).display().to_string(),
            "Driver": "hull-overlay",
            "Platform": "linux",
            "RestartCount": r.state.restart_count,
            "Config": config,
            "HostConfig": host_config,
            "Mounts": r.mounts,
            "NetworkSettings": self.network_settings(r),
            "HullUserNamespace": { "HostUidStart": r.uid_start, "Size": hull_engine::userns::RANGE_SIZE },
        });
        if let Some(h) = &r.state.health {
            out["State"]["Health"] = json!(h);
        }
        out
    }
}

impl Record {
    fn network_mode_shown(&self) -> &str {
        if self.network_mode.is_empty() {
            "default"
        } else {
            &self.network_mode
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(7200), "2 hours");
    }
}
