//! Performing the mounts a snapshotter returns (for the runtime, tests and the CLI), with the
//! new mount API, and id-mapped layers through a user namespace that carries the mapping.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hull_sys::mount as sys;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("creating a user namespace for the id mapping {map}: {step}: {source}")]
    Userns {
        map: IdMap,
        step: &'static str,
        source: io::Error,
    },
    #[error("opening {path} to mount it: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cloning the mount at {path} (open_tree): {source}")]
    OpenTree { path: PathBuf, source: io::Error },
    #[error("id-mapping the mount of {path} (mount_setattr MOUNT_ATTR_IDMAP): {source}")]
    Idmap { path: PathBuf, source: io::Error },
    #[error("setting mount attributes on {path} (mount_setattr): {source}")]
    Setattr { path: PathBuf, source: io::Error },
    #[error("configuring the {fstype} mount, option {option:?}: {source}")]
    Fsconfig {
        fstype: String,
        option: String,
        source: io::Error,
    },
    #[error("creating the {fstype} mount: {source}")]
    Create { fstype: String, source: io::Error },
    #[error("attaching the mount at {target} (move_mount): {source}")]
    Attach { target: PathBuf, source: io::Error },
    #[error("unmounting {target}: {source}")]
    Unmount { target: PathBuf, source: io::Error },
    #[error("mount type {kind:?} is not supported here (overlay and bind are)")]
    Unsupported { kind: String },
    #[error("uidmap={uidmap:?} and gidmap={gidmap:?} differ; one range for both is supported")]
    SplitIdMap { uidmap: String, gidmap: String },
    #[error("id mapping {text:?} is not of the form CONTAINER:HOST:SIZE")]
    BadIdMap { text: String },
}

/// A mount to make, containerd style: type, source and fstab-like options. `uidmap=` and
/// `gidmap=` options (containerd's syntax, `CONTAINER:HOST:SIZE`) ask for id-mapped layers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// One id range: container ids `container..container+size` are host ids `host..host+size`.
/// Used for both uids and gids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl IdMap {
    /// The host id of container id `id`; ids outside the range become the host id of the
    /// overflow id 65534 (what an id-mapped mount shows for them), or the range's first id.
    pub fn to_host(&self, id: u32) -> u32 {
        let inside = |i: u32| i >= self.container && i - self.container < self.size;
        if inside(id) {
            self.host + (id - self.container)
        } else if inside(65534) {
            self.host + (65534 - self.container)
        } else {
            self.host
        }
    }

    /// A file name for this mapping.
    pub fn key(&self) -> String {
        format!("{}-{}-{}", self.container, self.host, self.size)
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.container, self.host, self.size)
    }
}

impl FromStr for IdMap {
    type Err = MountError;
    fn from_str(s: &str) -> Result<IdMap, MountError> {
        let bad = || MountError::BadIdMap {
            text: s.to_string(),
        };
        let mut it = s.split(':').map(|p| p.parse::<u32>());
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(container)), Some(Ok(host)), Some(Ok(size)), None) if size > 0 => {
                container.checked_add(size).ok_or_else(bad)?;
                host.checked_add(size).ok_or_else(bad)?;
                Ok(IdMap {
                    container,
                    host,
                    size,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// A user namespace holding `map` for uids and gids, kept by an fd of `/proc/PID/ns/user`.
pub struct Userns {
    fd: OwnedFd,
}

impl Userns {
    pub fn new(map: &IdMap) -> Result<Userns, MountError> {
        let err = |step| {
            move |source| MountError::Userns {
                map: *map,
                step,
                source,
            }
        };
        let child = sys::UsernsChild::spawn().map_err(err("cloning a child"))?;
        let line = format!("{} {} {}\n", map.container, map.host, map.size);
        std::fs::write(format!("/proc/{}/uid_map", child.pid), &line)
            .map_err(err("writing uid_map"))?;
        std::fs::write(format!("/proc/{}/gid_map", child.pid), &line)
            .map_err(err("writing gid_map"))?;
        let f = File::open(format!("/proc/{}/ns/user", child.pid))
            .map_err(err("opening the namespace"))?;
        drop(child);
        Ok(Userns { fd: f.into() })
    }
}

fn open_path(path: &Path) -> Result<OwnedFd, MountError> {
    open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| MountError::Open {
        path: path.to_path_buf(),
        source: e.into(),
    })
}

/// A detached clone of the directory `path`, id-mapped through `userns` when given.
fn clone_tree(
    path: &Path,
    recursive: bool,
    userns: Option<&Userns>,
) -> Result<OwnedFd, MountError> {
    let dir = open_path(path)?;
    let flags = sys::OPEN_TREE_CLONE
        | sys::OPEN_TREE_CLOEXEC
        | sys::AT_EMPTY_PATH
        | if recursive { sys::AT_RECURSIVE } else { 0 };
    let tree = sys::open_tree(dir.as_fd(), "", flags).map_err(|source| MountError::OpenTree {
        path: path.to_path_buf(),
        source,
    })?;
    if let Some(ns) = userns {
        sys::mount_setattr(
            tree.as_fd(),
            recursive,
            sys::MOUNT_ATTR_IDMAP,
            0,
            Some(ns.fd.as_fd()),
        )
        .map_err(|source| MountError::Idmap {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(tree)
}

fn idmap_option(m: &Mount) -> Result<Option<IdMap>, MountError> {
    // One range serves uids and gids; a gidmap that differs from uidmap is not supported.
    let find = |key: &str| m.options.iter().find_map(|o| o.strip_prefix(key));
    let (uid, gid) = (find("uidmap="), find("gidmap="));
    if gid.is_some() && gid != uid {
        return Err(MountError::SplitIdMap {
            uidmap: uid.unwrap_or_default().to_string(),
            gidmap: gid.unwrap_or_default().to_string(),
        });
    }
    uid.map(str::parse).transpose()
}

/// Makes the detached mount `m` describes (not attached anywhere yet).
pub fn make_detached(m: &Mount) -> Result<OwnedFd, MountError> {
    let userns = idmap_option(m)?.map(|map| Userns::new(&map)).transpose()?;
    match m.kind.as_str() {
        "bind" | "rbind" => {
            let tree = clone_tree(Path::new(&m.source), m.kind == "rbind", userns.as_ref())?;
            if m.options.iter().any(|o| o == "ro") {
                sys::mount_setattr(tree.as_fd(), true, sys::MOUNT_ATTR_RDONLY, 0, None).map_err(
                    |source| MountError::Setattr {
                        path: PathBuf::from(&m.source),
                        source,
                    },
                )?;
            }
            Ok(tree)
        }
        "overlay" => overlay(m, userns.as_ref()),
        other => Err(MountError::Unsupported {
            kind: other.to_string(),
        }),
    }
}

fn overlay(m: &Mount, userns: Option<&Userns>) -> Result<OwnedFd, MountError> {
    let fstype = "overlay".to_string();
    let fs = sys::fsopen("overlay").map_err(|source| MountError::Create {
        fstype: fstype.clone(),
        source,
    })?;
    let cfg = |option: &str| {
        let fstype = fstype.clone();
        let option = option.to_string();
        move |source| MountError::Fsconfig {
            fstype,
            option,
            source,
        }
    };
    // Kept open until the filesystem is created.
    let mut layer_fds: Vec<OwnedFd> = Vec::new();
    for opt in &m.options {
        if opt.starts_with("uidmap=") || opt.starts_with("gidmap=") {
            continue;
        }
        match opt.split_once('=') {
            Some(("lowerdir", dirs)) => {
                for dir in dirs.split(':') {
                    // Each layer on its own ("lowerdir+", kernel 6.8+): no page-size limit on
                    // the option string; id-mapped layers are passed by fd.
                    if let Some(ns) = userns {
                        let tree = clone_tree(Path::new(dir), false, Some(ns))?;
                        let by_fd = sys::fsconfig_set_fd(fs.as_fd(), "lowerdir+", tree.as_fd());
                        if by_fd.is_err() {
                            let p = format!("/proc/self/fd/{}", tree.as_raw_fd());
                            sys::fsconfig_set_string(fs.as_fd(), "lowerdir+", &p)
                                .map_err(cfg(opt))?;
                        }
                        layer_fds.push(tree);
                    } else {
                        sys::fsconfig_set_string(fs.as_fd(), "lowerdir+", dir).map_err(cfg(opt))?;
                    }
                }
            }
            Some((key, value)) => {
                sys::fsconfig_set_string(fs.as_fd(), key, value).map_err(cfg(opt))?
            }
            None if opt == "ro" || opt == "rw" => {}
            None => sys::fsconfig_set_flag(fs.as_fd(), opt).map_err(cfg(opt))?,
        }
    }
    let attrs = if m.options.iter().any(|o| o == "ro") {
        sys::MOUNT_ATTR_RDONLY
    } else {
        0
    };
    let mnt = sys::fs_create_and_mount(fs.as_fd(), attrs)
        .map_err(|source| MountError::Create { fstype, source })?;
    drop(layer_fds);
    Ok(mnt)
}

/// Makes the mount `m` on the directory `target`.
pub fn mount_to(m: &Mount, target: &Path) -> Result<(), MountError> {
    let mnt = make_detached(m)?;
    let to = open_path(target)?;
    sys::move_mount(mnt.as_fd(), to.as_fd()).map_err(|source| MountError::Attach {
        target: target.to_path_buf(),
        source,
    })
}

/// Detaches the mount on `target` (lazily: busy files keep it alive until closed).
pub fn unmount(target: &Path) -> Result<(), MountError> {
    nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| MountError::Unmount {
        target: target.to_path_buf(),
        source: e.into(),
    })
}

/// Whether overlayfs accepts id-mapped lower layers from the filesystem of `dir` (a scratch
/// directory the caller owns). Nothing is attached: the probe mount stays detached.
pub fn idmapped_lowers_supported(dir: &Path) -> bool {
    let lower = dir.join("probe-lower");
    let upper = dir.join("probe-upper");
    let work = dir.join("probe-work");
    let ok = (|| -> Result<(), Box<dyn std::error::Error>> {
        for d in [&lower, &upper, &work] {
            std::fs::create_dir_all(d)?;
        }
        let m = Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                format!("lowerdir={}", lower.display()),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
                "uidmap=0:100000:65536".into(),
            ],
        };
        make_detached(&m)?;
        Ok(())
    })();
    for d in [&lower, &upper, &work] {
        let _ = std::fs::remove_dir_all(d);
    }
    if let Err(e) = &ok {
        tracing::info!("id-mapped overlay lower layers unavailable ({e}); using chown'ed copies");
    }
    ok.is_ok()
}
