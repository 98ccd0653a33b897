//! Volumes: Docker's `local` driver over hull's state store.
//!
//! ```text
//! <data-root>/volumes/            0700: only hulld walks here
//! <data-root>/volumes/<name>/_data the volume's content (or the mount of a tmpfs / host dir)
//! ```
//!
//! A volume's metadata is a JSON blob in the store (`record::Store`, table `volumes`).
//! Content is stored with the ids the container sees (root is 0 on disk) and reaches each
//! container through an **id-mapped** bind (`<exec-root>/containers/<id>/volumes/<n>`) that
//! maps those ids onto the container's own slice of host ids. Every container gets its own
//! slice (userns.rs), so chowning a volume to one container's root would lock out the next
//! container that mounts it; an id-mapped mount serves them all and costs one
//! `open_tree`+`mount_setattr` per mount. Volumes that bind a host directory
//! (`o=bind,device=/path`) are mounted as they are, like `-v /path:...`: host files keep
//! their host owners (a container's root must not write files owned by host root).
//!
//! A new (empty) volume is filled from the image's content at its target the first time it
//! is mounted, unless the mount asks for `nocopy`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hull_image::snapshot::{mount_to, unmount, IdMap, Mount};
use serde::{Deserialize, Serialize};

use crate::containers::record::{Store, StoreError};
use crate::containers::ContainerService;

/// The label Docker puts on anonymous volumes (`docker volume prune` removes only those
/// unless asked for all).
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("remove {name}: volume is in use - [{containers}]")]
    InUse { name: String, containers: String },
    #[error("volume name {0:?} is not valid: use [a-zA-Z0-9][a-zA-Z0-9_.-] (at least 2 characters), or a host path starting with /")]
    BadName(String),
    #[error("volume driver {0:?} is not supported; hulld has the \"local\" driver")]
    Driver(String),
    #[error("DriverOpts: {0}")]
    Options(String),
    #[error("invalid volume request: {0}")]
    Request(String),
    #[error("volume {name}: {step} {path}: {source}", path = .path.display())]
    Io {
        name: String,
        step: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("volume {name}: mounting it on {path}: {reason}", path = .path.display())]
    Mount {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Policy(#[from] hull_engine::PolicyViolation),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VolumeError {
    pub fn status(&self) -> hyper::StatusCode {
        use hyper::StatusCode as S;
        match self {
            VolumeError::NotFound(_) => S::NOT_FOUND,
            VolumeError::InUse { .. } => S::CONFLICT,
            VolumeError::BadName(_)
            | VolumeError::Driver(_)
            | VolumeError::Options(_)
            | VolumeError::Request(_) => S::BAD_REQUEST,
            VolumeError::Policy(_) => S::FORBIDDEN,
            _ => S::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A volume as `GET /volumes/{name}` shows it (and as the store keeps it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// What its DriverOpts make of it.
    fn kind(&self) -> Kind {
        let typ = self.options.get("type").map(String::as_str).unwrap_or("");
        let o = self.options.get("o").cloned().unwrap_or_default();
        match typ {
            "tmpfs" => Kind::Tmpfs(o),
            "" if o.is_empty() => Kind::Plain,
            _ => Kind::Bind(PathBuf::from(
                self.options.get("device").cloned().unwrap_or_default(),
            )),
        }
    }
}

enum Kind {
    Plain,
    Tmpfs(String),
    Bind(PathBuf),
}

/// `POST /volumes/create`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// The volumes of one daemon.
pub struct Volumes {
    root: PathBuf,
    store: Arc<Store>,
    /// Held while a volume is created, looked up for a mount, or removed.
    lock: Mutex<()>,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() >= 2
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn io(name: &str, step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> VolumeError {
    let (name, path) = (name.to_string(), path.to_path_buf());
    move |source| VolumeError::Io {
        name,
        step,
        path,
        source,
    }
}

pub(crate) fn is_mountpoint(p: &Path) -> bool {
    let target = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

/// Bytes used by the files under `dir` (not following links, not crossing into mounts).
fn disk_usage(dir: &Path) -> u64 {
    let Ok(root) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                if m.dev() == root.dev() {
                    stack.push(e.path());
                }
            } else {
                total += m.len();
            }
        }
    }
    total
}

impl Volumes {
    pub fn open(data_root: &Path, store: Arc<Store>) -> Result<Volumes, VolumeError> {
        let root = data_root.join("volumes");
        std::fs::create_dir_all(&root).map_err(io("(all)", "creating", &root))?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(io(
            "(all)",
            "setting the mode of",
            &root,
        ))?;
        Ok(Volumes {
            root,
            store,
            lock: Mutex::new(()),
        })
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        Ok(self.store.volumes()?)
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.list()?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    /// Creates a volume (`Ok(existing)` when one of that name exists, as Docker does); the
    /// volume and whether it is new.
    fn create_locked(
        &self,
        req: CreateRequest,
        policy: &hull_engine::Policy,
    ) -> Result<(Volume, bool), VolumeError> {
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or("local".into());
        if driver != "local" {
            return Err(VolumeError::Driver(driver));
        }
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => crate::containers::new_id()
                .map_err(|e| VolumeError::Request(format!("generating a name: {e}")))?,
        };
        if !valid_name(&name) {
            return Err(VolumeError::BadName(name));
        }
        if let Ok(v) = self.get(&name) {
            return Ok((v, false));
        }
        let options = req.driver_opts.unwrap_or_default();
        check_options(&options, policy)?;
        let data = self.data(&name);
        let vol = Volume {
            name: name.clone(),
            driver,
            mountpoint: data.display().to_string(),
            created_at: hull_runtime::state::now_rfc3339(),
            labels: req.labels.unwrap_or_default(),
            scope: "local".into(),
            options,
        };
        std::fs::create_dir_all(&data).map_err(io(&name, "creating", &data))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).map_err(io(
            &name,
            "setting the mode of",
            &data,
        ))?;
        if let Err(e) = self.ensure_mounted(&vol) {
            let _ = std::fs::remove_dir_all(self.root.join(&name));
            return Err(e);
        }
        if !self.store.insert_volume(&name, &vol)? {
            // Taken meanwhile by another daemon thread: theirs stands.
            return Ok((self.get(&name)?, false));
        }
        Ok((vol, true))
    }

    /// A tmpfs or host-directory volume's mount on its `_data` (again after a reboot).
    fn ensure_mounted(&self, vol: &Volume) -> Result<(), VolumeError> {
        use nix::mount::{mount, MsFlags};
        let data = self.data(&vol.name);
        let merr = |e: nix::Error| VolumeError::Mount {
            name: vol.name.clone(),
            path: data.clone(),
            reason: e.to_string(),
        };
        match vol.kind() {
            Kind::Plain => Ok(()),
            _ if is_mountpoint(&data) => Ok(()),
            Kind::Tmpfs(o) => mount(
                Some("tmpfs"),
                &data,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(o.as_str()).filter(|o| !o.is_empty()),
            )
            .map_err(merr),
            Kind::Bind(dev) => {
                let rec = vol
                    .options
                    .get("o")
                    .is_some_and(|o| o.split(',').any(|x| x == "rbind"));
                let mut flags = MsFlags::MS_BIND;
                if rec {
                    flags |= MsFlags::MS_REC;
                }
                mount(Some(&dev), &data, None::<&str>, flags, None::<&str>).map_err(merr)
            }
        }
    }

    /// Removes a volume's content and record (the caller checked it is unused).
    fn destroy(&self, vol: &Volume) -> Result<u64, VolumeError> {
        let data = self.data(&vol.name);
        let mounted = !matches!(vol.kind(), Kind::Plain) && is_mountpoint(&data);
        if mounted {
            unmount(&data).map_err(|e| VolumeError::Mount {
                name: vol.name.clone(),
                path: data.clone(),
                reason: e.to_string(),
            })?;
        }
        // Never delete through a mount (a host directory's content).
        if is_mountpoint(&data) {
            return Err(VolumeError::Mount {
                name: vol.name.clone(),
                path: data,
                reason: "still mounted after unmounting; not removing its content".into(),
            });
        }
        let size = disk_usage(&data);
        self.store.remove_volume(&vol.name)?;
        let dir = self.root.join(&vol.name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("volume {}: removing {}: {e}", vol.name, dir.display());
        }
        Ok(size)
    }
}

/// The `local` driver's options: none, `type=tmpfs` (with `o=` tmpfs options), or
/// `type=none,o=bind,device=/host/path` (the path checked as a bind source by the policy).
fn check_options(
    opts: &BTreeMap<String, String>,
    policy: &hull_engine::Policy,
) -> Result<(), VolumeError> {
    if let Some(k) = opts
        .keys()
        .find(|k| !["type", "o", "device"].contains(&k.as_str()))
    {
        return Err(VolumeError::Options(format!(
            "unknown option {k:?} (the local driver takes type, o and device)"
        )));
    }
    let typ = opts.get("type").map(String::as_str).unwrap_or("");
    let o = opts.get("o").map(String::as_str).unwrap_or("");
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    match typ {
        "" if o.is_empty() && device.is_empty() => Ok(()),
        "tmpfs" => {
            for opt in o.split(',').filter(|x| !x.is_empty()) {
                let key = opt.split('=').next().unwrap_or("");
                if !["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"].contains(&key) {
                    return Err(VolumeError::Options(format!(
                        "o={o:?}: {opt:?} is not a tmpfs option hulld accepts (size, mode, uid, gid, nr_inodes, nr_blocks)"
                    )));
                }
            }
            Ok(())
        }
        "none" | "" if o.split(',').any(|x| x == "bind" || x == "rbind") => {
            if !device.starts_with('/') {
                return Err(VolumeError::Options(format!(
                    "device={device:?}: a bind volume needs an absolute host path"
                )));
            }
            if !Path::new(device).is_dir() {
                return Err(VolumeError::Options(format!(
                    "device={device:?}: no such directory on the host"
                )));
            }
            let host = hull_engine::HostConfig {
                binds: vec![format!("{device}:/volume")],
                ..Default::default()
            };
            hull_engine::policy::check(
                &hull_engine::ContainerConfig::default(),
                &host,
                policy,
                &hull_engine::policy::HostFs,
            )?;
            Ok(())
        }
        other => Err(VolumeError::Options(format!(
            "type={other:?}, o={o:?}: hulld's local driver mounts type=tmpfs, or type=none with o=bind and device=/host/dir"
        ))),
    }
}

/// One mount of a volume into a container being created.
#[derive(Debug, Clone)]
pub(crate) struct VolumeUse {
    pub name: String,
    pub target: String,
    /// What the spec binds (the id-mapped mount, or the volume's `_data`).
    pub source: PathBuf,
    /// The id-mapped mount hulld made (to unmount with the container).
    pub mounted: Option<PathBuf>,
    /// Created for this container (removed again when the create fails).
    pub created: bool,
}

/// Answers the spec builder's `volume_path` during one create: finds or creates each
/// volume, mounts it id-mapped under the container's exec directory, fills a new one from
/// the image. What it did is kept for the record and for undoing.
pub(crate) struct VolumeMounter<'a> {
    pub svc: &'a ContainerService,
    /// The container being created (its placeholder record lists the volumes as they are
    /// mounted, so that a concurrent `volume rm` sees them in use).
    pub id: String,
    pub exec_dir: PathBuf,
    pub rootfs: PathBuf,
    pub map: IdMap,
    /// Targets whose mounts asked for `nocopy`.
    pub nocopy: HashSet<String>,
    pub uses: RefCell<Vec<VolumeUse>>,
    pub error: RefCell<Option<VolumeError>>,
}

impl VolumeMounter<'_> {
    pub fn new<'a>(
        svc: &'a ContainerService,
        id: &str,
        exec_dir: &Path,
        rootfs: &Path,
        map: IdMap,
        host: &hull_engine::HostConfig,
    ) -> VolumeMounter<'a> {
        let mut nocopy = HashSet::new();
        for b in &host.binds {
            let parts: Vec<&str> = b.split(':').collect();
            if parts.len() == 3 && parts[2].split(',').any(|o| o == "nocopy") {
                nocopy.insert(parts[1].to_string());
            }
        }
        for m in &host.mounts {
            let no_copy = m
                .volume_options
                .as_ref()
                .and_then(|v| v.get("NoCopy"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if no_copy {
                nocopy.insert(m.target.clone());
            }
        }
        VolumeMounter {
            svc,
            id: id.to_string(),
            exec_dir: exec_dir.to_path_buf(),
            rootfs: rootfs.to_path_buf(),
            map,
            nocopy,
            uses: RefCell::new(Vec::new()),
            error: RefCell::new(None),
        }
    }

    /// The path the spec binds for volume `name` (`""`: a new anonymous one) at `target`.
    pub fn path(&self, name: &str, target: &str) -> Option<PathBuf> {
        match self.try_path(name, target) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::debug!("volume {name:?} for {target}: {e}");
                self.error.borrow_mut().get_or_insert(e);
                None
            }
        }
    }

    fn try_path(&self, name: &str, target: &str) -> Result<PathBuf, VolumeError> {
        let vols = &self.svc.volumes;
        let _g = vols.guard();
        let req = CreateRequest {
            name: Some(name.to_string()).filter(|n| !n.is_empty()),
            labels: name
                .is_empty()
                .then(|| BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())])),
            ..Default::default()
        };
        if !name.is_empty() && !valid_name(name) {
            return Err(VolumeError::BadName(name.to_string()));
        }
        let (vol, created) = vols.create_locked(req, &self.svc.policy)?;
        if let Some(r) = self.svc.table().records.get_mut(&self.id) {
            r.mounts.push(MountPoint {
                typ: "volume".into(),
                name: vol.name.clone(),
                destination: target.to_string(),
                ..Default::default()
            });
        }
        vols.ensure_mounted(&vol)?;
        let data = vols.data(&vol.name);
        let mut uses = self.uses.borrow_mut();
        let index = uses.len();
        let mut used = VolumeUse {
            name: vol.name.clone(),
            target: target.to_string(),
            source: data.clone(),
            mounted: None,
            created,
        };
        if let Kind::Bind(dev) = vol.kind() {
            // The host directory itself, as `-v /dir:...` would bind it, checked again by
            // today's policy.
            check_options(&vol.options, &self.svc.policy)?;
            used.source = dev.clone();
            uses.push(used.clone());
            return Ok(dev);
        }
        let dir = self.exec_dir.join("volumes");
        let mnt = dir.join(index.to_string());
        let setup =
            || -> Result<(), VolumeError> {
                std::fs::create_dir_all(&mnt).map_err(io(&vol.name, "creating", &mnt))?;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
                    .map_err(io(&vol.name, "setting the mode of", &dir))?;
                let m = Mount {
                    kind: "bind".into(),
                    source: data.display().to_string(),
                    options: vec![
                        format!("uidmap={}", self.map),
                        format!("gidmap={}", self.map),
                    ],
                };
                mount_to(&m, &mnt).map_err(|e| VolumeError::Mount {
                    name: vol.name.clone(),
                    path: mnt.clone(),
                    reason: format!(
                        "{e} (hulld needs id-mapped mounts on the filesystem of its data root)"
                    ),
                })
            };
        if created {
            used.mounted = None;
        }
        if let Err(e) = setup() {
            if created {
                let _ = vols.destroy(&vol);
            }
            return Err(e);
        }
        used.source = mnt.clone();
        used.mounted = Some(mnt.clone());
        uses.push(used);
        let empty = std::fs::read_dir(&data)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if empty && !self.nocopy.contains(target) {
            if let Some(src) = self.image_dir(target) {
                copy_up(&src, &data, &self.map).map_err(io(
                    &vol.name,
                    "copying the image's content into",
                    &data,
                ))?;
            }
        }
        Ok(mnt)
    }

    /// `rootfs/target` when no component on the way is a symlink (the image must not make
    /// hulld copy a host directory) and it is a directory.
    fn image_dir(&self, target: &str) -> Option<PathBuf> {
        let mut p = self.rootfs.clone();
        for c in Path::new(target.trim_start_matches('/')).components() {
            match c {
                std::path::Component::Normal(n) => p.push(n),
                _ => return None,
            }
            let m = std::fs::symlink_metadata(&p).ok()?;
            if m.file_type().is_symlink() {
                return None;
            }
        }
        std::fs::symlink_metadata(&p).ok()?.is_dir().then_some(p)
    }

    /// Undoes a failed create: unmounts, removes volumes created for it.
    pub fn undo(&self) {
        for u in self.uses.borrow().iter() {
            if let Some(m) = &u.mounted {
                let _ = unmount(m);
            }
            if u.created {
                let _g = self.svc.volumes.guard();
                if let Ok(v) = self.svc.volumes.get(&u.name) {
                    let _ = self.svc.volumes.destroy(&v);
                }
            }
        }
    }
}

/// Copies the tree `src` (the container's rootfs, seen from the host: ids shifted by `map`)
/// into `dst` (the volume's content on disk: the container's own ids), keeping modes and
/// owners; symlinks are copied as links, special files skipped. Written straight to disk:
/// hulld (host root) cannot create files through an id-mapped mount that does not map it.
fn copy_up(src: &Path, dst: &Path, map: &IdMap) -> std::io::Result<()> {
    use std::os::unix::fs::{lchown, symlink};
    let unshift = |id: u32| {
        if id >= map.host && id - map.host < map.size {
            id - map.host + map.container
        } else {
            65534
        }
    };
    let own = |to: &Path, m: &std::fs::Metadata| {
        lchown(to, Some(unshift(m.uid())), Some(unshift(m.gid())))
    };
    let m = std::fs::symlink_metadata(src)?;
    own(dst, &m)?;
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
    for e in std::fs::read_dir(src)? {
        let e = e?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let m = std::fs::symlink_metadata(&from)?;
        let ft = m.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&to)?;
            copy_up(&from, &to, map)?;
            continue;
        } else if ft.is_symlink() {
            symlink(std::fs::read_link(&from)?, &to)?;
        } else if ft.is_file() {
            std::fs::copy(&from, &to)?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(m.mode() & 0o7777))?;
        } else {
            continue;
        }
        own(&to, &m)?;
    }
    Ok(())
}

/// Unmounts the id-mapped volume mounts under a container's exec directory; Err when one
/// stays (then nothing below it may be deleted).
pub(crate) fn unmount_all(exec_dir: &Path) -> Result<(), String> {
    let dir = exec_dir.join("volumes");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if is_mountpoint(&p) {
            unmount(&p).map_err(|e| e.to_string())?;
        }
        if is_mountpoint(&p) {
            return Err(format!("{} is still mounted", p.display()));
        }
    }
    Ok(())
}

/// `Mounts` of a container's inspect (Docker's MountPoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountPoint {
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub source: String,
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
}

/// The container's Mounts: its volumes, binds of host paths and tmpfs mounts, from the spec.
pub(crate) fn mount_points(
    spec: &oci_spec::runtime::Spec,
    host: &hull_engine::HostConfig,
    uses: &[VolumeUse],
    svc: &ContainerService,
) -> Vec<MountPoint> {
    let mut out = Vec::new();
    let bind_targets: HashSet<String> = host
        .binds
        .iter()
        .filter_map(|b| b.split(':').nth(1).map(String::from))
        .chain(host.mounts.iter().map(|m| m.target.clone()))
        .chain(host.tmpfs.keys().cloned())
        .collect();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let dest = m.destination().display().to_string();
        let opts = m.options().clone().unwrap_or_default();
        let rw = !opts.iter().any(|o| o == "ro");
        let source = m
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        if let Some(u) = uses.iter().find(|u| u.target == dest) {
            out.push(MountPoint {
                typ: "volume".into(),
                name: u.name.clone(),
                source: svc.volumes.data(&u.name).display().to_string(),
                destination: dest,
                driver: "local".into(),
                mode: if rw { "z".into() } else { "ro".into() },
                rw,
                propagation: String::new(),
            });
        } else if bind_targets.contains(&dest) {
            let typ = m.typ().clone().unwrap_or_default();
            let bind = typ == "bind";
            out.push(MountPoint {
                typ: if bind { "bind" } else { "tmpfs" }.into(),
                source: if bind { source } else { String::new() },
                destination: dest,
                mode: String::new(),
                rw,
                propagation: if bind {
                    opts.iter()
                        .find(|o| {
                            o.contains("private") || o.contains("shared") || o.contains("slave")
                        })
                        .cloned()
                        .unwrap_or_default()
                } else {
                    String::new()
                },
                ..Default::default()
            });
        }
    }
    out
}

impl ContainerService {
    /// Names of the containers that mount volume `name`.
    fn volume_users(&self, name: &str) -> Vec<String> {
        self.table()
            .records
            .values()
            .filter(|r| r.mounts.iter().any(|m| m.typ == "volume" && m.name == name))
            .map(|r| r.name.clone())
            .collect()
    }

    pub fn volume_create(&self, req: CreateRequest) -> Result<Volume, VolumeError> {
        let _g = self.volumes.guard();
        Ok(self.volumes.create_locked(req, &self.policy)?.0)
    }

    pub fn volume_get(&self, name: &str) -> Result<Volume, VolumeError> {
        self.volumes.get(name)
    }

    /// `GET /volumes`: filters name (substring), label (`key` or `key=value`), dangling,
    /// driver.
    pub fn volume_list(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
    ) -> Result<Vec<Volume>, VolumeError> {
        let mut out = Vec::new();
        for v in self.volumes.list()? {
            let f = |k: &str| filters.get(k).map(Vec::as_slice).unwrap_or(&[]);
            if !f("name").is_empty() && !f("name").iter().any(|n| v.name.contains(n.as_str())) {
                continue;
            }
            if !f("driver").is_empty() && !f("driver").contains(&v.driver) {
                continue;
            }
            if !f("label").iter().all(|l| label_matches(&v.labels, l)) {
                continue;
            }
            if let Some(d) = f("dangling").first() {
                let dangling = self.volume_users(&v.name).is_empty();
                if matches!(d.as_str(), "true" | "1") != dangling {
                    continue;
                }
            }
            out.push(v);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `DELETE /volumes/{name}`: 409 while a container uses it; `force` ignores a missing one.
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let _g = self.volumes.guard();
        let vol = match self.volumes.get(name) {
            Ok(v) => v,
            Err(VolumeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
        };
        let users = self.volume_users(name);
        if !users.is_empty() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                containers: users.join(", "),
            });
        }
        self.volumes.destroy(&vol).map(|_| ())
    }

    /// `POST /volumes/prune`: unused anonymous volumes (all unused ones with `all`), filtered
    /// by `label`/`label!`; the names removed and the bytes freed.
    pub fn volume_prune(
        &self,
        filters: &BTreeMap<String, Vec<String>>,
        all: bool,
    ) -> Result<(Vec<String>, u64), VolumeError> {
        let _g = self.volumes.guard();
        let f = |k: &str| filters.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let (mut names, mut bytes) = (Vec::new(), 0);
        for v in self.volumes.list()? {
            if !all && !v.anonymous() {
                continue;
            }
            if !f("label").iter().all(|l| label_matches(&v.labels, l))
                || f("label!").iter().any(|l| label_matches(&v.labels, l))
            {
                continue;
            }
            if !self.volume_users(&v.name).is_empty() {
                continue;
            }
            match self.volumes.destroy(&v) {
                Ok(n) => {
                    bytes += n;
                    names.push(v.name);
                }
                Err(e) => tracing::warn!("prune: {e}"),
            }
        }
        Ok((names, bytes))
    }

    /// A container with AutoRemove whose start failed is removed with its anonymous
    /// volumes, as Docker does (`docker run --rm` waits for the removal).
    pub fn remove_after_failed_start(&self, name: &str) {
        let Ok(rec) = self.get(name) else { return };
        if !rec.auto_remove || rec.running() {
            return;
        }
        match self.remove(&rec.id, false) {
            Ok(()) => self.remove_anonymous_volumes(&rec.mounts),
            Err(e) => tracing::warn!(
                "container {}: removing it after a failed start (--rm): {e}",
                rec.id
            ),
        }
    }

    /// Removes the anonymous volumes of a removed container that no other container uses.
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            let _g = self.volumes.guard();
            let Ok(v) = self.volumes.get(&m.name) else {
                continue;
            };
            if v.anonymous() && self.volume_users(&v.name).is_empty() {
                if let Err(e) = self.volumes.destroy(&v) {
                    tracing::warn!("removing anonymous volume: {e}");
                }
            }
        }
    }
}

fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        assert!(valid_name("data"));
        assert!(valid_name("my-vol_1.x"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("a/b"));
        let l = BTreeMap::from([("k".to_string(), "v".to_string())]);
        assert!(label_matches(&l, "k"));
        assert!(label_matches(&l, "k=v"));
        assert!(!label_matches(&l, "k=w"));
        assert!(!label_matches(&l, "x"));
    }

    #[test]
    fn driver_options_are_checked() {
        let p = hull_engine::Policy::new(Path::new("/var/lib/hull"));
        let o = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(check_options(&o(&[]), &p).is_ok());
        assert!(check_options(&o(&[("type", "tmpfs"), ("o", "size=1m")]), &p).is_ok());
        assert!(check_options(&o(&[("type", "tmpfs"), ("o", "exec")]), &p).is_err());
        assert!(check_options(&o(&[("type", "nfs")]), &p).is_err());
        assert!(check_options(&o(&[("colour", "red")]), &p).is_err());
        let root = check_options(&o(&[("type", "none"), ("o", "bind"), ("device", "/")]), &p);
        assert!(matches!(root, Err(VolumeError::Policy(_))), "{root:?}");
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display().to_string();
        assert!(check_options(&o(&[("type", "none"), ("o", "bind"), ("device", &d)]), &p).is_ok());
    }
}
