//! Container state on disk: `<root>/<id>/state.json` (written atomically) plus a copy of the
//! config, and the liveness rules that turn a record into an OCI status.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container id {id:?} is not valid: use letters, digits, '_', '+', '-' and '.', not starting with '.'")]
    BadId { id: String },
    #[error("container {id:?} already exists (state in {path})")]
    Exists { id: String, path: PathBuf },
    #[error("container {id:?} does not exist (no state in {path})")]
    NotFound { id: String, path: PathBuf },
    #[error("container {id:?}: {what} {path}: {source}")]
    Io {
        id: String,
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("container {id:?}: state file {path} is corrupt: {source}")]
    Corrupt {
        id: String,
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What the runtime remembers about a container between invocations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), to tell it from a reused pid.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    /// "created" until `start`, then "running"; liveness is checked on every read.
    pub started: bool,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    pub cgroups_path: Option<String>,
    #[serde(default)]
    pub owner: String,
    /// The spec's hooks: poststart and poststop run after the bundle may be gone.
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
}

/// OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        };
        f.write_str(s)
    }
}

/// The directory that holds every container's state.
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub root: PathBuf,
}

pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'))
}

impl StateRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    pub fn dir(&self, id: &str) -> Result<PathBuf, StateError> {
        if !valid_id(id) {
            return Err(StateError::BadId { id: id.to_string() });
        }
        Ok(self.root.join(id))
    }

    /// Creates the container's state dir; fails if it exists.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf, StateError> {
        let dir = self.dir(id)?;
        let io_err = |what, path: &Path, source| StateError::Io {
            id: id.into(),
            what,
            path: path.into(),
            source,
        };
        std::fs::create_dir_all(&self.root)
            .map_err(|e| io_err("creating the state root", &self.root, e))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700));
        match std::fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StateError::Exists {
                id: id.into(),
                path: dir,
            }),
            Err(e) => Err(io_err("creating the state dir", &dir, e)),
        }
    }

    pub fn save(&self, rec: &Record) -> Result<(), StateError> {
        let dir = self.dir(&rec.id)?;
        let path = dir.join("state.json");
        let body = serde_json::to_vec(rec).expect("state record serialises");
        write_atomic(&path, &body).map_err(|source| StateError::Io {
            id: rec.id.clone(),
            what: "writing",
            path: path.clone(),
            source,
        })
    }

    pub fn load(&self, id: &str) -> Result<Record, StateError> {
        let dir = self.dir(id)?;
        let path = dir.join("state.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StateError::NotFound {
                    id: id.into(),
                    path: dir,
                })
            }
            Err(source) => {
                return Err(StateError::Io {
                    id: id.into(),
                    what: "reading",
                    path,
                    source,
                })
            }
        };
        serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt {
            id: id.into(),
            path,
            source,
        })
    }

    pub fn remove(&self, id: &str) -> Result<(), StateError> {
        let dir = self.dir(id)?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io {
                id: id.into(),
                what: "removing",
                path: dir,
                source,
            }),
        }
    }

    /// Every container id with a state dir.
    pub fn list(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| valid_id(n))
            .collect();
        ids.sort();
        ids
    }
}

/// Writes `body` to `path` through a temp file and rename, so readers never see half a file.
pub fn write_atomic(path: &Path, body: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(body)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The start time of `pid` (field 22 of /proc/<pid>/stat) and whether it is a zombie/dead.
pub fn proc_start_time(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); field 22 is rest[19].
    let dead = matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, dead))
}

/// True when the record's init process still exists (and is not a zombie).
pub fn init_alive(rec: &Record) -> bool {
    match proc_start_time(rec.pid) {
        Some((start, dead)) => start == rec.pid_start && !dead,
        None => false,
    }
}

/// RFC 3339 UTC timestamp with nanoseconds, as runc prints "created".
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(valid_id("abc-1.2_x+y"));
        assert!(!valid_id("../x"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id(".hidden"));
        assert!(!valid_id(""));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(1_795_000_000, 0), "2026-11-18T11:06:40.000000000Z");
    }

    #[test]
    fn save_load_remove() {
        let t = tempfile::tempdir().unwrap();
        let sr = StateRoot::new(t.path().join("root"));
        sr.create_dir("c1").unwrap();
        assert!(matches!(
            sr.create_dir("c1"),
            Err(StateError::Exists { .. })
        ));
        let rec = Record {
            id: "c1".into(),
            pid: 42,
            pid_start: 7,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            started: false,
            annotations: HashMap::new(),
            cgroups_path: None,
            owner: String::new(),
            hooks: None,
        };
        sr.save(&rec).unwrap();
        assert_eq!(sr.load("c1").unwrap().pid, 42);
        assert_eq!(sr.list(), vec!["c1".to_string()]);
        sr.remove("c1").unwrap();
        assert!(matches!(sr.load("c1"), Err(StateError::NotFound { .. })));
    }
}
