//! Operations on existing containers beyond their lifecycle: pause and unpause (the cgroup
//! freezer, through the runtime library), rename, top (the host's `ps`, filtered to the
//! container's cgroup), prune, the filters of `GET /containers/json`, and the container
//! events every operation publishes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::Value;

use hull_image::time::parse_rfc3339;

use super::record::{Record, Status};
use super::{resolve_in, ContainerService, ContainersError};
use crate::events::{Event, Events};

/// Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub(crate) fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The image's labels and the container's, as event attributes (Docker adds both).
fn label_map(rec: &Record) -> BTreeMap<String, String> {
    rec.config
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// What `GET /containers/json` was asked for.
#[derive(Debug, Default, Clone)]
pub struct ListOptions {
    pub all: bool,
    /// At most this many, newest first (`limit`, or `last`).
    pub limit: Option<usize>,
    pub size: bool,
    pub filters: BTreeMap<String, Vec<String>>,
}

impl ContainerService {
    /// Where container events go; set once by hulld at start.
    pub fn set_events(&self, e: Arc<Events>) {
        let _ = self.events.set(e);
    }

    /// Publishes a container event: attributes are the labels, `name`, `image` and `extra`.
    pub(crate) fn emit(&self, action: &str, rec: &Record, extra: &[(&str, String)]) {
        let Some(ev) = self.events.get() else {
            return;
        };
        let mut attrs = label_map(rec);
        attrs.insert("name".into(), rec.name.clone());
        attrs.insert("image".into(), rec.image.clone());
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        ev.publish(Event::new("container", action, &rec.id, attrs));
    }

    /// [`Self::emit`] by id (nothing when the container is gone).
    pub(crate) fn emit_id(&self, action: &str, id: &str, extra: &[(&str, String)]) {
        if let Ok(rec) = self.get(id) {
            self.emit(action, &rec, extra);
        }
    }

    /// `exec_create: CMD...`-style events (Docker puts the command in the action).
    pub(crate) fn exec_event(&self, action: &str, exec_id: &str, code: Option<i32>) {
        let Some(e) = self.table().execs.get(exec_id).cloned() else {
            return;
        };
        let cmd: Vec<String> = e.process["args"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut extra = vec![("execID", e.id.clone())];
        if let Some(c) = code {
            extra.push(("exitCode", c.to_string()));
        }
        let action = if action == "exec_die" {
            action.to_string()
        } else {
            format!("{action}: {}", cmd.join(" "))
        };
        self.emit_id(&action, &e.container, &extra);
    }

    fn runtime_lib(&self) -> hull_runtime::Runtime {
        hull_runtime::Runtime::new(&self.paths.runtime_root)
    }

    /// Sets the status of a container that still has `from` (a concurrent exit wins).
    fn set_status(&self, id: &str, from: Status, to: Status) {
        let mut t = self.table();
        if let Some(mut r) = t.records.get(id).cloned() {
            if r.state.status == from {
                r.state.status = to;
                self.put(&mut t, r);
            }
        }
    }

    /// `POST /containers/{id}/pause`: freezes every process of the container.
    pub fn pause(&self, name: &str) -> Result<(), ContainersError> {
        let rec = self.get(name)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ContainersError::Conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            _ => return Err(ContainersError::NotRunning(rec.id)),
        }
        self.runtime_lib()
            .pause(&rec.id)
            .map_err(|source| ContainersError::Runtime {
                step: "pausing",
                id: rec.id.clone(),
                source: Box::new(source),
            })?;
        self.set_status(&rec.id, Status::Running, Status::Paused);
        self.emit("pause", &rec, &[]);
        Ok(())
    }

    /// `POST /containers/{id}/unpause`.
    pub fn unpause(&self, name: &str) -> Result<(), ContainersError> {
        let rec = self.get(name)?;
        if rec.state.status != Status::Paused {
            return Err(ContainersError::Conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        self.thaw(&rec)?;
        self.emit("unpause", &rec, &[]);
        Ok(())
    }

    /// Thaws a paused container and records it running again.
    pub(crate) fn thaw(&self, rec: &Record) -> Result<(), ContainersError> {
        self.runtime_lib()
            .resume(&rec.id)
            .map_err(|source| ContainersError::Runtime {
                step: "unpausing",
                id: rec.id.clone(),
                source: Box::new(source),
            })?;
        self.set_status(&rec.id, Status::Paused, Status::Running);
        Ok(())
    }

    /// After a signal to a paused container: thaw it so that the signal is acted on, as
    /// Docker does for stop and kill.
    pub(crate) fn thaw_if_paused(&self, id: &str) {
        if let Ok(rec) = self.get(id) {
            if rec.paused() {
                if let Err(e) = self.thaw(&rec) {
                    tracing::warn!("container {id}: thawing it after a signal: {e}");
                }
            }
        }
    }

    /// `POST /containers/{id}/rename?name=`.
    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), ContainersError> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if new_name.is_empty() {
            return Err(ContainersError::Invalid(
                "name: a new name is required (rename?name=NEW)".into(),
            ));
        }
        if !valid_name(new_name) {
            return Err(ContainersError::BadName(new_name.to_string()));
        }
        let (old, rec) = {
            let mut t = self.table();
            let id = resolve_in(&t, name)?;
            if let Some(other) = t.records.values().find(|r| r.name == new_name) {
                if other.id == id {
                    return Err(ContainersError::Conflict(format!(
                        "Renaming a container with the same name as its current name: {new_name}"
                    )));
                }
                return Err(ContainersError::NameInUse {
                    name: new_name.to_string(),
                    id: other.id.clone(),
                });
            }
            let mut rec = t.records[&id].clone();
            let old = std::mem::replace(&mut rec.name, new_name.to_string());
            self.put(&mut t, rec.clone());
            (old, rec)
        };
        self.emit("rename", &rec, &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` output (default `-ef`), only the
    /// rows of the container's processes.
    pub fn top(&self, name: &str, ps_args: &str) -> Result<Value, ContainersError> {
        let rec = self.get(name)?;
        if !rec.running() {
            return Err(ContainersError::NotRunning(rec.id));
        }
        let pids: HashSet<i32> = self
            .runtime_lib()
            .ps(&rec.id)
            .map_err(|source| ContainersError::Runtime {
                step: "listing the processes of",
                id: rec.id.clone(),
                source: Box::new(source),
            })?
            .into_iter()
            .collect();
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        // Only the container's processes (procps `-q PIDS`, as Docker does); without that
        // option, every process, filtered below.
        let mut list: Vec<String> = pids.iter().map(i32::to_string).collect();
        list.sort();
        let run = |extra: &[String]| {
            std::process::Command::new("ps")
                .args(&args)
                .args(extra)
                .output()
                .map_err(|e| ContainersError::Failed {
                    step: "running ps for",
                    id: rec.id.clone(),
                    message: e.to_string(),
                })
        };
        let mut out = run(&["-q".to_string(), list.join(",")])?;
        if !out.status.success() {
            out = run(&[])?;
        }
        if !out.status.success() {
            return Err(ContainersError::Invalid(format!(
                "ps_args {ps_args:?}: ps failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
            .map_err(|m| ContainersError::Invalid(format!("ps_args {ps_args:?}: {m}")))
    }

    /// `POST /containers/prune`: removes every container that is not running and matches the
    /// filters (`until`, `label`, `label!`).
    pub fn prune(&self, filters: &BTreeMap<String, Vec<String>>) -> Result<Value, ContainersError> {
        if let Some(k) = filters
            .keys()
            .find(|k| !["until", "label", "label!"].contains(&k.as_str()))
        {
            return Err(ContainersError::Invalid(format!("invalid filter '{k}'")));
        }
        let until = match filters.get("until").and_then(|v| v.first()) {
            None => None,
            Some(u) => Some(parse_until(u).ok_or_else(|| {
                ContainersError::Invalid(format!(
                    "until: {u:?} is neither a timestamp nor a duration like 24h"
                ))
            })?),
        };
        let victims: Vec<Record> = self
            .table()
            .records
            .values()
            .filter(|r| !r.running())
            .filter(|r| until.is_none_or(|u| parse_rfc3339(&r.created).unwrap_or(0) < u))
            .filter(|r| labels_match(r, filters))
            .cloned()
            .collect();
        let mut deleted = Vec::new();
        let mut space = 0u64;
        for r in victims {
            let size = self.rw_size(&r.id);
            match self.remove(&r.id, false) {
                Ok(()) => {
                    deleted.push(r.id.clone());
                    space += size;
                }
                Err(e) => tracing::warn!("prune: container {}: {e}", r.id),
            }
        }
        if let Some(ev) = self.events.get() {
            let attrs = [("reclaimed".to_string(), space.to_string())].into();
            ev.publish(Event::new("container", "prune", "", attrs));
        }
        Ok(serde_json::json!({ "ContainersDeleted": deleted, "SpaceReclaimed": space }))
    }

    /// Bytes in the container's writable layer.
    pub(crate) fn rw_size(&self, id: &str) -> u64 {
        dir_size(&self.upper_dir(id))
    }

    /// The overlay upper dir of a container.
    pub(crate) fn upper_dir(&self, id: &str) -> std::path::PathBuf {
        self.snapshots
            .root()
            .join("containers")
            .join(id)
            .join("upper")
    }

    /// `GET /containers/json` with Docker's filters, `limit`/`last` and `size`.
    pub fn list_with(&self, o: &ListOptions) -> Result<Value, ContainersError> {
        const KNOWN: [&str; 10] = [
            "status", "name", "id", "label", "ancestor", "exited", "before", "since", "label!",
            "health",
        ];
        if let Some(k) = o.filters.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ContainersError::Invalid(format!("invalid filter '{k}'")));
        }
        let f = |k: &str| o.filters.get(k).map(Vec::as_slice).unwrap_or(&[]);
        for h in f("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
                return Err(ContainersError::Invalid(format!(
                    "invalid filter 'health={h}'"
                )));
            }
        }
        for s in f("status") {
            const OK: [&str; 7] = [
                "created",
                "restarting",
                "running",
                "removing",
                "paused",
                "exited",
                "dead",
            ];
            if !OK.contains(&s.as_str()) {
                return Err(ContainersError::Invalid(format!(
                    "invalid filter 'status={s}'"
                )));
            }
        }
        let exited: Vec<i32> = f("exited")
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|_| ContainersError::Invalid(format!("invalid filter 'exited={s}'")))
            })
            .collect::<Result<_, _>>()?;
        let created_of =
            |name: &str| -> Result<String, ContainersError> { Ok(self.get(name)?.created) };
        let before = f("before").first().map(|n| created_of(n)).transpose()?;
        let since = f("since").first().map(|n| created_of(n)).transpose()?;
        let images: Vec<String> = f("ancestor")
            .iter()
            .map(|a| {
                self.images
                    .resolve(a)
                    .map(|i| i.id.to_string())
                    .unwrap_or_else(|_| a.clone())
            })
            .collect();
        // A status filter, `exited` or a count shows stopped containers too, as in Docker.
        let all = o.all || !f("status").is_empty() || !exited.is_empty() || o.limit.is_some();
        let mut recs: Vec<Record> = self
            .table()
            .records
            .values()
            .filter(|r| all || r.running())
            .filter(|r| {
                let h = super::health::filter_value(r);
                f("health").is_empty() || f("health").iter().any(|x| x == h)
            })
            .filter(|r| {
                let st = r.state.status.as_str();
                f("status").is_empty() || f("status").iter().any(|s| s == st)
            })
            .filter(|r| f("name").is_empty() || f("name").iter().any(|n| name_matches(&r.name, n)))
            .filter(|r| f("id").is_empty() || f("id").iter().any(|p| r.id.starts_with(p.as_str())))
            .filter(|r| labels_match(r, &o.filters))
            .filter(|r| {
                images.is_empty() || images.iter().any(|i| *i == r.image_id || *i == r.image)
            })
            .filter(|r| {
                exited.is_empty()
                    || (r.state.status == Status::Exited && exited.contains(&r.state.exit_code))
            })
            .filter(|r| before.as_ref().is_none_or(|b| r.created < *b))
            .filter(|r| since.as_ref().is_none_or(|s| r.created > *s))
            .cloned()
            .collect();
        recs.sort_by(|a, b| b.created.cmp(&a.created));
        if let Some(n) = o.limit {
            recs.truncate(n);
        }
        let mut out = Vec::new();
        for r in &recs {
            let mut v = self.summary(r);
            if o.size {
                let rw = self.rw_size(&r.id);
                let image = self
                    .images
                    .resolve(&r.image_id)
                    .ok()
                    .map(|i| i.size)
                    .unwrap_or(0);
                v["SizeRw"] = rw.into();
                v["SizeRootFs"] = (rw + image).into();
            }
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    /// `GET /system/df`: images (with how many containers use each), containers with their
    /// sizes, no volumes or build cache yet.
    pub fn system_df(&self) -> Result<Value, ContainersError> {
        let containers = self.list_with(&ListOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        let images = self
            .images
            .list()
            .map_err(|source| ContainersError::Image {
                image: "(all)".into(),
                source,
            })?;
        let used: Vec<String> = self
            .table()
            .records
            .values()
            .map(|r| r.image_id.clone())
            .collect();
        let mut layers = std::collections::BTreeMap::new();
        let summaries: Vec<Value> = images
            .iter()
            .map(|i| {
                for (d, s) in i.layers.iter().map(|d| (d, self.images.content.size(d))) {
                    layers.insert(d.to_string(), s.unwrap_or(0));
                }
                let id = i.id.to_string();
                serde_json::json!({
                    "Id": id,
                    "ParentId": "",
                    "RepoTags": i.repo_tags,
                    "RepoDigests": i.repo_digests,
                    "Created": i.created.as_deref().and_then(parse_rfc3339).unwrap_or(0),
                    "Size": i.size,
                    "SharedSize": -1,
                    "VirtualSize": i.size,
                    "Labels": {},
                    "Containers": used.iter().filter(|u| **u == id).count(),
                })
            })
            .collect();
        Ok(serde_json::json!({
            "LayersSize": layers.values().sum::<u64>(),
            "Images": summaries,
            "Containers": containers,
            "Volumes": [],
            "BuildCache": [],
        }))
    }
}

/// Docker's name filter is a regular expression on the name; hull matches a substring, and
/// `^`/`$` anchors.
fn name_matches(name: &str, pat: &str) -> bool {
    let pat = pat.strip_prefix('/').unwrap_or(pat);
    match (pat.strip_prefix('^'), pat.strip_suffix('$')) {
        (Some(p), _) if p.ends_with('$') => name == &p[..p.len() - 1],
        (Some(p), None) => name.starts_with(p),
        (None, Some(p)) => name.ends_with(p),
        _ => name.contains(pat),
    }
}

/// `label` (`key` or `key=value`, all must hold) and `label!` (none may hold).
fn labels_match(r: &Record, filters: &BTreeMap<String, Vec<String>>) -> bool {
    let labels = label_map(r);
    let has = |want: &str| match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    };
    filters
        .get("label")
        .is_none_or(|l| l.iter().all(|w| has(w)))
        && filters
            .get("label!")
            .is_none_or(|l| !l.iter().any(|w| has(w)))
}

/// `until`: a unix timestamp (maybe fractional), an RFC 3339 time, or a duration before now
/// (`10m`, `24h`, `1h30m`, `90s`).
pub(crate) fn parse_until(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<f64>() {
        return Some(t as i64);
    }
    if let Some(t) = parse_rfc3339(s) {
        return Some(t);
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(now_secs() - total as i64)
}

/// Bytes of the regular files below `dir` (symlinks not followed).
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            n += dir_size(&e.path());
        } else if m.is_file() {
            n += m.len();
        }
    }
    n
}

/// Splits `ps` output into Docker's `{Titles, Processes}`, keeping the rows whose PID is in
/// `pids`; the last column (the command) keeps its spaces.
pub(crate) fn parse_ps(text: &str, pids: &HashSet<i32>) -> Result<Value, String> {
    let mut lines = text.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let titles: Vec<&str> = header.split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or("ps printed no PID column")?;
    let mut procs = Vec::new();
    for line in lines {
        let fields = split_n(line, titles.len());
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pids.contains(&pid) {
            procs.push(fields);
        }
    }
    Ok(serde_json::json!({ "Titles": titles, "Processes": procs }))
}

/// The first n-1 whitespace-separated fields, then the rest of the line.
fn split_n(line: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_start();
    while out.len() + 1 < n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    if !rest.is_empty() || out.len() + 1 == n {
        out.push(rest.trim_end().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container_only() {
        let text = "UID        PID  PPID  C STIME TTY          TIME CMD\n\
                    root         1     0  0 10:00 ?        00:00:01 /sbin/init splash\n\
                    1000000    42     7  0 10:01 ?        00:00:00 sleep 1000\n";
        let v = parse_ps(text, &[42].into_iter().collect()).unwrap();
        assert_eq!(v["Titles"].as_array().unwrap().len(), 8);
        assert_eq!(v["Processes"].as_array().unwrap().len(), 1);
        assert_eq!(v["Processes"][0][7], "sleep 1000");
        assert_eq!(v["Processes"][0][1], "42");
    }

    #[test]
    fn until_takes_durations_and_timestamps() {
        assert_eq!(parse_until("1700000000"), Some(1700000000));
        let t = parse_until("1h30m").unwrap();
        assert!((now_secs() - t - 5400).abs() < 5);
        assert_eq!(parse_until("3x"), None);
    }

    #[test]
    fn name_filter() {
        assert!(name_matches("web_1", "web"));
        assert!(name_matches("web_1", "^web_1$"));
        assert!(!name_matches("web_1", "^eb"));
        assert!(valid_name("a.b-c_1") && !valid_name("-a") && !valid_name("a b"));
    }
}
