//! A container's record: what hulld knows about it, kept in hulld's state store
//! ([`Store`], `<data-root>/hull.db`, SQLite in WAL mode with `synchronous=FULL`): records
//! and volume metadata as JSON blobs keyed by id or name, and container names in a table of
//! their own whose UNIQUE constraint makes a name reservation atomic. Every change is one
//! transaction, so a crash leaves the old state or the new one, never half a record.
//!
//! Records of earlier versions (`<data-root>/containers/<id>/container.json`) are imported
//! on the first open ([`Store::import_files`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Docker's "zero" time, for times not reached yet.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    /// Running, its processes frozen (`POST /containers/{id}/pause`).
    Paused,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub status: Status,
    /// The container's init, as the host sees it (0 when not running).
    pub pid: i32,
    /// The hull-shim watching it (0 when none).
    pub shim_pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    /// How many times it has exited (waiters for the next exit compare it).
    pub exits: u64,
    /// Restarts by the shim's restart policy since the last `docker start`.
    #[serde(default)]
    pub restart_count: u64,
    /// Waiting out the restart back-off.
    #[serde(default)]
    pub restarting: bool,
    /// Stopped by the user (stop, kill, rm -f): `unless-stopped` is not restarted at boot.
    #[serde(default)]
    pub stopped_by_user: bool,
    /// The last run ended with the OOM killer killing one of its processes.
    #[serde(default)]
    pub oom_killed: bool,
    /// `State.Health` of a container with a health check (health.rs).
    #[serde(default)]
    pub health: Option<super::health::Health>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            status: Status::Created,
            pid: 0,
            shim_pid: 0,
            exit_code: 0,
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            error: String::new(),
            exits: 0,
            restart_count: 0,
            restarting: false,
            stopped_by_user: false,
            oom_killed: false,
            health: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading '/'.
    pub name: String,
    pub created: String,
    /// The image as the request named it, and its ID.
    pub image: String,
    pub image_id: String,
    /// The program and its arguments (the spec's process args).
    pub path: String,
    pub args: Vec<String>,
    /// The request's Config and HostConfig, as sent (for inspect).
    pub config: serde_json::Value,
    pub host_config: serde_json::Value,
    pub auto_remove: bool,
    /// The user-namespace slice: its index (allocation) and first host id.
    pub uid_index: u32,
    pub uid_start: u32,
    /// The network mode asked for, and the one applied (see `create.rs`).
    pub network_mode: String,
    pub state: RunState,
    /// Volumes, binds and tmpfs mounts (inspect's `Mounts`; volumes in use).
    #[serde(default)]
    pub mounts: Vec<crate::volumes::MountPoint>,
}

impl Record {
    /// Running or paused: its processes exist (Docker's State.Running is true for both).
    pub fn running(&self) -> bool {
        matches!(self.state.status, Status::Running | Status::Paused)
    }

    pub fn paused(&self) -> bool {
        self.state.status == Status::Paused
    }
}

/// `dir/container.json` (the file store of earlier versions).
pub fn path(dir: &Path) -> PathBuf {
    dir.join("container.json")
}

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store {path}: {step}: {source}", path = .path.display())]
    Sql {
        path: PathBuf,
        step: &'static str,
        source: rusqlite::Error,
    },
    #[error("the name {name:?} is already in use by {id}")]
    NameTaken { name: String, id: String },
    #[error("state store: encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// hulld's state store: one SQLite database, one connection behind a mutex (writes are
/// small; readers are the daemon's own tables in memory).
pub struct Store {
    path: PathBuf,
    conn: Mutex<rusqlite::Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS containers (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS names (name TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS volumes (name TEXT PRIMARY KEY, body TEXT NOT NULL);
";

impl Store {
    /// Opens (creating) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let err = |step| {
            let path = path.to_path_buf();
            move |source| StoreError::Sql { path, step, source }
        };
        let conn = rusqlite::Connection::open(path).map_err(err("opening"))?;
        // Records hold the requests' environments: hulld's alone (SQLite gives the -wal
        // and -shm files the database's mode).
        {
            use std::os::unix::fs::PermissionsExt;
            if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
                tracing::warn!("{}: setting mode 0600: {e}", path.display());
            }
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err("setting the busy timeout"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(err("switching to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("{}: journal mode is {mode}, not wal", path.display());
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(err("setting synchronous=FULL"))?;
        conn.execute_batch(SCHEMA)
            .map_err(err("creating the tables"))?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn err(&self, step: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        let path = self.path.clone();
        move |source| StoreError::Sql { path, step, source }
    }

    /// Saves a record and its name in one transaction; a name another container holds is
    /// [`StoreError::NameTaken`] and changes nothing.
    pub fn save_container(&self, rec: &Record) -> Result<(), StoreError> {
        let body = serde_json::to_string(rec)?;
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.err("beginning a transaction"))?;
        let holder: Option<String> = tx
            .query_row("SELECT id FROM names WHERE name = ?1", [&rec.name], |r| {
                r.get(0)
            })
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })
            .map_err(self.err("looking up a name"))?;
        if let Some(id) = holder.filter(|id| *id != rec.id) {
            return Err(StoreError::NameTaken {
                name: rec.name.clone(),
                id,
            });
        }
        tx.execute("DELETE FROM names WHERE id = ?1", [&rec.id])
            .map_err(self.err("releasing the old name"))?;
        tx.execute(
            "INSERT INTO names (name, id) VALUES (?1, ?2)",
            [&rec.name, &rec.id],
        )
        .map_err(self.err("reserving the name"))?;
        tx.execute(
            "INSERT INTO containers (id, body) VALUES (?1, ?2)
             ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            [&rec.id, &body],
        )
        .map_err(self.err("saving the record"))?;
        tx.commit().map_err(self.err("committing"))
    }

    /// Removes a record and frees its name.
    pub fn remove_container(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(self.err("beginning a transaction"))?;
        tx.execute("DELETE FROM names WHERE id = ?1", [id])
            .map_err(self.err("freeing the name"))?;
        tx.execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(self.err("removing the record"))?;
        tx.commit().map_err(self.err("committing"))
    }

    /// Every container record; undecodable ones are skipped with a warning.
    pub fn containers(&self) -> Result<Vec<Record>, StoreError> {
        self.blobs("SELECT id, body FROM containers")
    }

    /// The ids of every container row, readable or not.
    pub fn container_ids(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id FROM containers")
            .map_err(self.err("reading"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.err("reading"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("reading a row"))
    }

    /// Saves a named JSON blob in the volumes table.
    pub fn save_volume<T: Serialize>(&self, name: &str, v: &T) -> Result<(), StoreError> {
        let body = serde_json::to_string(v)?;
        self.conn()
            .execute(
                "INSERT INTO volumes (name, body) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET body = excluded.body",
                [name, &body],
            )
            .map_err(self.err("saving a volume"))?;
        Ok(())
    }

    /// Inserts a volume only when the name is free; whether it was inserted.
    pub fn insert_volume<T: Serialize>(&self, name: &str, v: &T) -> Result<bool, StoreError> {
        let body = serde_json::to_string(v)?;
        let n = self
            .conn()
            .execute(
                "INSERT INTO volumes (name, body) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                [name, &body],
            )
            .map_err(self.err("creating a volume"))?;
        Ok(n == 1)
    }

    pub fn remove_volume(&self, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM volumes WHERE name = ?1", [name])
            .map_err(self.err("removing a volume"))?;
        Ok(())
    }

    pub fn volumes<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>, StoreError> {
        self.blobs("SELECT name, body FROM volumes")
    }

    fn blobs<T: serde::de::DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(sql).map_err(self.err("reading"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(self.err("reading"))?;
        let mut out = Vec::new();
        for row in rows {
            let (key, body) = row.map_err(self.err("reading a row"))?;
            match serde_json::from_str(&body) {
                Ok(v) => out.push(v),
                Err(e) => tracing::warn!("{}: {key}: not readable: {e}", self.path.display()),
            }
        }
        Ok(out)
    }

    /// Imports the `container.json` files under `root`; each imported file is renamed
    /// `container.json.imported`, so it is read once. Records whose name is taken
    /// are skipped with a warning.
    pub fn import_files(&self, root: &Path) -> usize {
        let mut n = 0;
        for rec in load_all(root) {
            match self.save_container(&rec) {
                Ok(()) => {
                    n += 1;
                    let p = path(&root.join(&rec.id));
                    let _ = std::fs::rename(&p, p.with_extension("json.imported"));
                }
                Err(e) => tracing::warn!("container {}: importing its record: {e}", rec.id),
            }
        }
        n
    }
}

/// Every record under `root` (one directory per container, the file store of earlier
/// versions); unreadable ones are skipped with a warning.
pub fn load_all(root: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = path(&e.path());
        match std::fs::read(&p).map(|b| serde_json::from_slice::<Record>(&b)) {
            Ok(Ok(r)) => out.push(r),
            Ok(Err(err)) => tracing::warn!("{}: not a container record: {err}", p.display()),
            // Directories of containers of the SQLite store have no record file (and
            // imported ones keep theirs as container.json.imported): nothing to say.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!("{}: {err}", p.display()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            created: ZERO_TIME.into(),
            image: "busybox".into(),
            image_id: "sha256:00".into(),
            path: "sh".into(),
            args: vec![],
            config: serde_json::json!({}),
            host_config: serde_json::json!({}),
            auto_remove: false,
            uid_index: 1,
            uid_start: 100000,
            network_mode: "none".into(),
            state: RunState::default(),
            mounts: Vec::new(),
        }
    }

    #[test]
    fn names_are_unique_and_freed_on_remove() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("hull.db")).unwrap();
        s.save_container(&rec("a", "web")).unwrap();
        match s.save_container(&rec("b", "web")) {
            Err(StoreError::NameTaken { id, .. }) => assert_eq!(id, "a"),
            other => panic!("expected NameTaken, got {other:?}"),
        }
        assert_eq!(s.containers().unwrap().len(), 1);
        // Renaming frees the old name.
        s.save_container(&rec("a", "web2")).unwrap();
        s.save_container(&rec("b", "web")).unwrap();
        s.remove_container("a").unwrap();
        s.save_container(&rec("c", "web2")).unwrap();
        let mut ids: Vec<String> = s.containers().unwrap().into_iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, ["b", "c"]);
    }

    #[test]
    fn reopens_and_imports_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("containers");
        std::fs::create_dir_all(root.join("old")).unwrap();
        let body = serde_json::to_vec(&rec("old", "legacy")).unwrap();
        std::fs::write(path(&root.join("old")), body).unwrap();
        let db = dir.path().join("hull.db");
        {
            let s = Store::open(&db).unwrap();
            assert_eq!(s.import_files(&root), 1);
            assert!(s
                .insert_volume("v", &serde_json::json!({"Name": "v"}))
                .unwrap());
            assert!(!s
                .insert_volume("v", &serde_json::json!({"Name": "v"}))
                .unwrap());
        }
        let s = Store::open(&db).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            s.import_files(&root),
            0,
            "imported files are not read twice"
        );
        let recs = s.containers().unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].name, "legacy");
        let vols: Vec<serde_json::Value> = s.volumes().unwrap();
        assert_eq!(vols.len(), 1);
    }
}
