//! Containers: create, start, stop, kill, remove, list, inspect, logs, over hull's engine
//! (spec and policy), image store and snapshotter, with one `hull-shim` per running container.
//!
//! ```text
//! <data-root>/hull.db                         records, names, volumes (record.rs: SQLite)
//! <data-root>/containers/<id>/<id>-json.log    the json-file log the shim writes
//! <exec-root>/containers/<id>/config.json      the OCI bundle; rootfs/ is the overlay mount
//! <exec-root>/containers/<id>/shim.json        what the shim runs; exit.json its end
//! <exec-root>/runtime/                         the runtime library's state
//! ```
//!
//! hulld is multi-threaded and the runtime forks, so hulld never runs the runtime's create
//! itself: `start` spawns a `hull-shim` (its own session, so it outlives hulld) and reads its
//! one-line report; a thread waits for the shim and records the exit (`lifecycle.rs`).

pub mod archive;
pub mod bridge;
pub mod commit;
mod create;
pub mod exec;
mod fs;
pub mod health;
pub mod host;
pub mod interactive;
mod lifecycle;
pub mod logs;
mod network;
pub mod ops;
pub mod record;
pub mod stats;
mod view;

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use hull_engine::userns::SubidRanges;
use hull_engine::Policy;
use hull_image::snapshot::Snapshotter;
use hull_image::ImageStore;

pub(crate) use create::new_id;
pub use lifecycle::{parse_signal, Outcome, WaitCondition};
pub use network::manager_status as network_status;
pub use record::{Record, Status};

/// How hulld starts a shim: `program args... CONTAINER-DIR`.
#[derive(Debug, Clone)]
pub struct ShimCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// Where container state lives.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<data-root>/containers`.
    pub data: PathBuf,
    /// `<exec-root>/containers`.
    pub exec: PathBuf,
    /// `<exec-root>/runtime`.
    pub runtime_root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ContainersError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error(transparent)]
    Request(#[from] hull_engine::docker_types::DockerTypesError),
    #[error(transparent)]
    Policy(#[from] hull_engine::PolicyViolation),
    #[error(transparent)]
    Spec(#[from] hull_engine::SpecBuildError),
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {path} (HostConfig.Mounts[{index}].Source)")]
    BindSourceMissing { index: usize, path: String },
    #[error("VolumesFrom[{index}]: {value:?} is not CONTAINER[:ro|:rw]")]
    BadVolumesFrom { index: usize, value: String },
    #[error("Tty: a terminal (docker run -t) is not supported by hulld yet; run without -t")]
    TtyUnsupported,
    #[error("{0}")]
    BadOption(String),
    #[error(
        "configured logging driver does not support reading (container {0} has log driver none)"
    )]
    LogsUnsupported(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    RemoveRunning(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    #[error("exec: {0}")]
    ExecRequest(String),
    #[error("invalid signal: {0:?}")]
    BadSignal(String),
    #[error("reading image {image}: {source}")]
    Image {
        image: String,
        source: hull_image::ImageError,
    },
    #[error("reading the config of image {image}: {reason}")]
    ImageConfig { image: String, reason: String },
    #[error("allocating a user-namespace range: {0}")]
    Subid(#[from] hull_engine::userns::SubidError),
    #[error("preparing the root filesystem: {0}")]
    Snapshot(#[from] hull_image::snapshot::SnapshotError),
    #[error("mounting the root filesystem on {path}: {source}")]
    Mount {
        path: PathBuf,
        source: hull_image::snapshot::MountError,
    },
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{dir} is not searchable by others (mode o+x): container root (host uid {uid}) could not reach its rootfs below it; chmod o+x it or choose another --exec-root", dir = .dir.display())]
    Unreachable { dir: PathBuf, uid: u32 },
    #[error("{message}")]
    NetworkRequest { status: u16, message: String },
    #[error(transparent)]
    Store(Box<record::StoreError>),
    #[error(transparent)]
    Volume(Box<crate::volumes::VolumeError>),
    #[error("network: {step}: {message}")]
    Network { step: &'static str, message: String },
    #[error("starting hull-shim {path}: {source}")]
    SpawnShim {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting container {id}: {message}")]
    Start { id: String, message: String },
    #[error("signalling container {id}: {source}")]
    Signal {
        id: String,
        // Boxed: the runtime's error is large (clippy::result_large_err).
        source: Box<hull_runtime::Error>,
    },
    /// The container's state does not allow the operation (409), e.g. pausing a paused one.
    #[error("{0}")]
    Conflict(String),
    /// A path in a container that is not there (404, `docker cp`).
    #[error("Could not find the file {0} in container")]
    PathNotFound(String),
    /// Refused as the container is (403), e.g. a copy into a read-only rootfs.
    #[error("{0}")]
    Forbidden(String),
    /// A bad parameter (400), the message naming it.
    #[error("{0}")]
    Invalid(String),
    #[error("{step} container {id}: {source}")]
    Runtime {
        step: &'static str,
        id: String,
        source: Box<hull_runtime::Error>,
    },
    #[error("{step} container {id}: {message}")]
    Failed {
        step: &'static str,
        id: String,
        message: String,
    },
}

impl From<record::StoreError> for ContainersError {
    fn from(e: record::StoreError) -> Self {
        ContainersError::Store(Box::new(e))
    }
}

impl From<crate::volumes::VolumeError> for ContainersError {
    fn from(e: crate::volumes::VolumeError) -> Self {
        ContainersError::Volume(Box::new(e))
    }
}

pub(crate) fn io_err(
    step: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ContainersError {
    let path = path.into();
    move |source| ContainersError::Io { step, path, source }
}

#[derive(Default)]
pub(crate) struct Table {
    pub records: HashMap<String, Record>,
    /// Exit codes of removed containers, for `wait?condition=removed` (the last 256).
    pub removed: Vec<(String, i32)>,
    /// Exec instances (in memory only, as in Docker they do not survive the daemon).
    pub execs: HashMap<String, exec::ExecRecord>,
    /// Attach requests waiting for a container's next start (interactive.rs).
    pub pending_attach: HashMap<String, u32>,
    /// daemon.json's `log-driver` (key "log-driver") and `log-opts`.
    pub log_defaults: std::collections::BTreeMap<String, String>,
    /// Containers whose health monitor runs (health.rs).
    pub health_monitors: std::collections::HashSet<String>,
}

/// The container service hulld's routes call (always on a blocking thread).
pub struct ContainerService {
    pub(crate) paths: ContainerPaths,
    pub(crate) images: ImageStore,
    pub(crate) snapshots: Snapshotter,
    pub(crate) policy: Policy,
    pub(crate) subids: SubidRanges,
    pub(crate) shim: ShimCommand,
    /// The bridge network; None: containers of the default network get an empty namespace.
    pub(crate) network: Option<hull_network::Manager>,
    pub(crate) table: Mutex<Table>,
    /// Where container events go (`set_events`; none until then).
    pub(crate) events: std::sync::OnceLock<Arc<crate::events::Events>>,
    /// The state store (records, names, volumes).
    pub(crate) store: Arc<record::Store>,
    /// Named and anonymous volumes (`crate::volumes`).
    pub(crate) volumes: crate::volumes::Volumes,
}

impl ContainerService {
    /// Opens the service; records of earlier runs are read back (`lifecycle::restore`).
    pub fn open(
        paths: ContainerPaths,
        images: ImageStore,
        policy: Policy,
        subids: SubidRanges,
        shim: ShimCommand,
        network: Option<hull_network::Manager>,
    ) -> Result<Arc<ContainerService>, ContainersError> {
        for d in [&paths.data, &paths.exec, &paths.runtime_root] {
            std::fs::create_dir_all(d).map_err(io_err("creating", d.clone()))?;
        }
        // Containers' root users walk through the exec root to their rootfs: search only.
        use std::os::unix::fs::PermissionsExt;
        for d in [paths.exec.parent(), Some(paths.exec.as_path())]
            .into_iter()
            .flatten()
        {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711))
                .map_err(io_err("setting the mode of", d))?;
        }
        let snapshots = Snapshotter::open(
            images.root().join("snapshotter"),
            images.content.clone(),
            hull_image::unpack::UnpackOptions {
                devices: hull_image::unpack::DevicePolicy::Skip,
                ..Default::default()
            },
        )?;
        let data_root = paths.data.parent().unwrap_or(&paths.data).to_path_buf();
        let store = Arc::new(record::Store::open(&data_root.join("hull.db"))?);
        let volumes = crate::volumes::Volumes::open(&data_root, store.clone())?;
        let svc = Arc::new(ContainerService {
            paths,
            images,
            snapshots,
            policy,
            subids,
            shim,
            network,
            table: Mutex::new(Table::default()),
            events: std::sync::OnceLock::new(),
            store,
            volumes,
        });
        svc.restore();
        svc.restore_network();
        Ok(svc)
    }

    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn data_dir(&self, id: &str) -> PathBuf {
        self.paths.data.join(id)
    }

    pub(crate) fn exec_dir(&self, id: &str) -> PathBuf {
        self.paths.exec.join(id)
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.data_dir(id).join(format!("{id}-json.log"))
    }

    /// The full id of a container named by id, name (with or without '/') or unique id prefix.
    pub fn resolve(&self, name_or_id: &str) -> Result<String, ContainersError> {
        let t = self.table();
        resolve_in(&t, name_or_id)
    }

    /// A copy of the record.
    pub fn get(&self, name_or_id: &str) -> Result<Record, ContainersError> {
        let t = self.table();
        let id = resolve_in(&t, name_or_id)?;
        Ok(t.records[&id].clone())
    }

    /// Saves a changed record (in the table and on disk).
    pub(crate) fn put(&self, t: &mut Table, rec: Record) {
        if let Err(e) = self.store.save_container(&rec) {
            tracing::error!("container {}: saving its record: {e}", rec.id);
        }
        t.records.insert(rec.id.clone(), rec);
        logs::changed();
    }
}

pub(crate) fn resolve_in(t: &Table, name_or_id: &str) -> Result<String, ContainersError> {
    if t.records.contains_key(name_or_id) {
        return Ok(name_or_id.to_string());
    }
    let name = name_or_id.strip_prefix('/').unwrap_or(name_or_id);
    if let Some(r) = t.records.values().find(|r| r.name == name) {
        return Ok(r.id.clone());
    }
    let matches: Vec<&String> = t
        .records
        .keys()
        .filter(|id| !name_or_id.is_empty() && id.starts_with(name_or_id))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(ContainersError::NotFound(name_or_id.to_string())),
    }
}
