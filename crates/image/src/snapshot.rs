//! Snapshots: one unpacked directory per layer chain, and container root filesystems made of
//! them (containerd style: the snapshotter returns the mounts to make and never mounts).
//!
//! ```text
//! <root>/snapshots/<chain-hex>/{fs,meta.json}   a layer in overlay lower-dir form, once
//! <root>/shifted/<map>/<chain-hex>/fs           owners shifted for a user-namespace mapping
//! <root>/containers/<id>/{upper,work,meta.json} a container's private writable layer
//! <root>/staging/                               unpacks and copies in progress
//! ```
//!
//! Snapshots and shifted copies are built in `staging/` and renamed into place, so a reader
//! never sees a partial one and concurrent builders of the same chain are safe (one rename
//! wins, the others discard theirs). Bookkeeping (container records, removal, gc) runs under
//! an exclusive lock on `<root>/lock`.

mod mount;
mod shift;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::{Flock, FlockArg};

use crate::digest::Digest;
use crate::store::{ContentStore, StoreError};
use crate::unpack::{self, chain_ids, UnpackError, UnpackOptions, UnpackReport};
pub use mount::{
    idmapped_lowers_supported, make_detached, mount_to, unmount, IdMap, Mount, MountError, Userns,
};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot store {path}: {step}: {source}")]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Blob(#[from] StoreError),
    #[error("unpacking layer {blob} (chain {chain}): {source}")]
    Unpack {
        blob: Digest,
        chain: Digest,
        source: UnpackError,
    },
    #[error("unpacking the layer of chain {chain}: {source}")]
    UnpackStream { chain: Digest, source: UnpackError },
    #[error("the layer of chain {chain} was unpacked but its blob was never verified; not publishing it")]
    Unverified { chain: Digest },
    #[error("snapshot {chain} does not exist")]
    NotFound { chain: Digest },
    #[error("snapshot {chain} is in use by container {container}")]
    UsedByContainer { chain: Digest, container: String },
    #[error("snapshot {chain} is the parent of snapshot {child}")]
    HasChild { chain: Digest, child: Digest },
    #[error("container id {id:?} is not valid (letters, digits, '_', '.', '-'; at most 128)")]
    BadContainerId { id: String },
    #[error("container {id} already has a writable layer")]
    ContainerExists { id: String },
    #[error("container {id}'s root filesystem is still mounted; unmount it first")]
    StillMounted { id: String },
    #[error("container {id} has no writable layer")]
    NoContainer { id: String },
    #[error("making the owner-shifted copy of {chain} for {map}: {path}: {source}")]
    Shift {
        chain: Digest,
        map: IdMap,
        path: PathBuf,
        source: io::Error,
    },
}

/// One layer of an image: its blob (as in the manifest) and its diff ID (from the config).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub blob: Digest,
    pub diff_id: Digest,
}

/// How far the unpack of one layer has read its blob (compressed bytes, as Docker shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackProgress {
    /// Index of the layer in the list given to [`Snapshotter::ensure_with`], bottom first.
    pub layer: usize,
    pub current: u64,
    pub total: u64,
    /// The layer's snapshot is in place (the last report for it).
    pub done: bool,
}

/// Counts the bytes read from a blob and reports them every 512 KiB and at the end.
struct Counting<'a, R> {
    inner: R,
    read: u64,
    shown: u64,
    total: u64,
    progress: &'a dyn Fn(u64, u64),
}

impl<R: io::Read> io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.shown >= 512 << 10 || (n == 0 && self.read != self.shown) {
            self.shown = self.read;
            (self.progress)(self.read, self.total.max(self.read));
        }
        Ok(n)
    }
}

/// A snapshot's metadata (`meta.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotInfo {
    pub chain_id: Digest,
    pub parent: Option<Digest>,
    pub blob: Digest,
    pub diff_id: Digest,
    pub report: UnpackReport,
}

/// How a container with a user-namespace mapping gets its owners shifted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdmapMode {
    /// Id-mapped lower layers where the kernel and filesystem allow them, else copies.
    #[default]
    Auto,
    Idmapped,
    Copy,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct ContainerRecord {
    id: String,
    /// The chains this container's rootfs uses, bottom first.
    chains: Vec<Digest>,
    idmap: Option<IdMap>,
    mounts: Vec<Mount>,
}

pub struct Snapshotter {
    root: PathBuf,
    content: ContentStore,
    unpack: UnpackOptions,
    idmapped_lowers: OnceLock<bool>,
}

fn io_err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        path: path.to_path_buf(),
        step,
        source,
    }
}

fn staging_name(hex: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{hex}-{}-{nanos}", std::process::id())
}

/// Removes a staging directory when dropped (unless disarmed after its rename).
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

/// A layer unpacked by [`Snapshotter::stage_stream`], not yet visible.
pub struct PendingSnapshot {
    guard: Staging,
    stage: PathBuf,
    chain: Digest,
    parent: Option<Digest>,
    report: UnpackReport,
    dest: PathBuf,
    /// The blob digest and diff ID, once the caller has verified them.
    verified: Option<(Digest, Digest)>,
}

impl PendingSnapshot {
    /// The diff ID the unpack computed (None for an uncompressed blob: its blob digest).
    pub fn diff_id(&self) -> Option<&Digest> {
        self.report.diff_id.as_ref()
    }

    /// Records that the bytes unpacked are the blob `blob`, with diff ID `diff_id`.
    pub fn verified(mut self, blob: Digest, diff_id: Digest) -> PendingSnapshot {
        self.verified = Some((blob, diff_id));
        self
    }

    /// Makes the snapshot visible (if another builder got there first, theirs is kept).
    pub fn publish(mut self) -> Result<(), SnapshotError> {
        let Some((blob, diff_id)) = self.verified.take() else {
            return Err(SnapshotError::Unverified { chain: self.chain });
        };
        let mut report = std::mem::take(&mut self.report);
        report.diff_id = Some(diff_id.clone());
        let info = SnapshotInfo {
            chain_id: self.chain.clone(),
            parent: self.parent.clone(),
            blob,
            diff_id,
            report,
        };
        let meta = self.stage.join("meta.json");
        let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
        fs::write(&meta, json).map_err(io_err(&meta, "writing"))?;
        publish(&mut self.guard, &self.dest)
    }
}

/// Renames a finished staging directory to `dest`; if another builder got there first, its
/// copy is kept and ours discarded.
fn publish(staging: &mut Staging, dest: &Path) -> Result<(), SnapshotError> {
    let from = staging.0.clone().unwrap_or_default();
    match fs::rename(&from, dest) {
        Ok(()) => {
            staging.0 = None;
            Ok(())
        }
        Err(e) if dest.join("meta.json").exists() || dest.join("fs").exists() => {
            tracing::debug!(
                "{} was built concurrently ({e}); keeping that one",
                dest.display()
            );
            Ok(())
        }
        Err(e) => Err(io_err(dest, "publishing")(e)),
    }
}

impl Snapshotter {
    /// Opens (creating) a snapshot store at `root`, reading layer blobs from `content`.
    pub fn open(
        root: impl Into<PathBuf>,
        content: ContentStore,
        unpack: UnpackOptions,
    ) -> Result<Snapshotter, SnapshotError> {
        let root = root.into();
        for d in ["snapshots", "shifted", "containers", "staging"] {
            let p = root.join(d);
            fs::create_dir_all(&p).map_err(io_err(&p, "creating"))?;
        }
        // Snapshots hold images' setuid binaries and device-less but otherwise arbitrary
        // files: no host user may reach them (overlayfs reads layers with the mounter's
        // credentials, so containers are unaffected).
        fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(io_err(&root, "restricting access"))?;
        Ok(Snapshotter {
            root,
            content,
            unpack,
            idmapped_lowers: OnceLock::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> Result<Flock<File>, SnapshotError> {
        let p = self.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p, "opening the lock"))?;
        Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io_err(&p, "locking")(e.into()))
    }

    /// The directory of a snapshot (`.../fs` is the layer's lower dir).
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex())
    }

    /// Makes sure each layer's snapshot exists, unpacking the missing ones bottom first.
    /// Returns the chain IDs, bottom first.
    pub fn ensure(&self, layers: &[Layer]) -> Result<Vec<Digest>, SnapshotError> {
        self.ensure_with(layers, &|_| {})
    }

    /// [`Snapshotter::ensure`], telling `progress` how far each unpack has read its blob and
    /// when it is done. Missing layers are unpacked in parallel (one per CPU): each writes
    /// only its own snapshot, in lower-dir form, so none depends on another's files.
    pub fn ensure_with(
        &self,
        layers: &[Layer],
        progress: &(dyn Fn(UnpackProgress) + Sync),
    ) -> Result<Vec<Digest>, SnapshotError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let missing: Vec<usize> = (0..layers.len())
            .filter(|&i| !self.snapshot_dir(&chains[i]).join("meta.json").exists())
            .collect();
        let one = |i: usize| -> Result<(), SnapshotError> {
            let parent = i.checked_sub(1).map(|p| chains[p].clone());
            let dest = self.snapshot_dir(&chains[i]);
            let report = |current, total, done| {
                progress(UnpackProgress {
                    layer: i,
                    current,
                    total,
                    done,
                })
            };
            self.unpack_one(&layers[i], &chains[i], parent, &dest, &|c, t| {
                report(c, t, false)
            })?;
            let total = self.content.size(&layers[i].blob).unwrap_or(0);
            report(total, total, true);
            Ok(())
        };
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(missing.len());
        if workers <= 1 {
            for &i in &missing {
                one(i)?;
            }
            return Ok(chains);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failed = std::sync::Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = missing.get(k) else { break };
                    if let Err(e) = one(i) {
                        let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
                        f.get_or_insert(e);
                        next.store(missing.len(), std::sync::atomic::Ordering::Relaxed);
                        break;
                    }
                });
            }
        });
        match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(chains),
        }
    }

    fn unpack_one(
        &self,
        layer: &Layer,
        chain: &Digest,
        parent: Option<Digest>,
        dest: &Path,
        progress: &dyn Fn(u64, u64),
    ) -> Result<(), SnapshotError> {
        let stage = self.root.join("staging").join(staging_name(chain.hex()));
        let mut guard = Staging(Some(stage.clone()));
        let fs_dir = stage.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err(&fs_dir, "creating"))?;
        let blob = self.content.open_blob(&layer.blob)?;
        let total = blob.metadata().map_or(0, |m| m.len());
        progress(0, total);
        let blob = Counting {
            inner: blob,
            read: 0,
            shown: 0,
            total,
            progress,
        };
        let opts = UnpackOptions {
            expected_diff_id: Some(layer.diff_id.clone()),
            expected_blob: Some(layer.blob.clone()),
            ..self.unpack.clone()
        };
        let report = unpack::unpack(io::BufReader::with_capacity(1 << 16, blob), &fs_dir, &opts)
            .map_err(|source| SnapshotError::Unpack {
                blob: layer.blob.clone(),
                chain: chain.clone(),
                source,
            })?;
        let info = SnapshotInfo {
            chain_id: chain.clone(),
            parent,
            blob: layer.blob.clone(),
            diff_id: layer.diff_id.clone(),
            report,
        };
        let meta = stage.join("meta.json");
        let json = serde_json::to_vec_pretty(&info).unwrap_or_default();
        fs::write(&meta, json).map_err(io_err(&meta, "writing"))?;
        publish(&mut guard, dest)
    }

    /// Whether the snapshot of `chain` exists.
    pub fn has(&self, chain: &Digest) -> bool {
        self.snapshot_dir(chain).join("meta.json").exists()
    }

    /// Unpacks a layer from a stream its caller is storing and hashing at the same time (a
    /// load tees each layer into the content store and here), into a staging directory.
    /// The result is published with [`PendingSnapshot::publish`] once the caller has
    /// verified the blob, and discarded if dropped before.
    pub fn stage_stream(
        &self,
        blob: impl io::Read,
        chain: &Digest,
        parent: Option<Digest>,
    ) -> Result<PendingSnapshot, SnapshotError> {
        let stage = self.root.join("staging").join(staging_name(chain.hex()));
        let guard = Staging(Some(stage.clone()));
        let fs_dir = stage.join("fs");
        fs::create_dir_all(&fs_dir).map_err(io_err(&fs_dir, "creating"))?;
        let opts = UnpackOptions {
            caller_hashes_blob: true,
            expected_blob: None,
            expected_diff_id: None,
            ..self.unpack.clone()
        };
        let report =
            unpack::unpack(blob, &fs_dir, &opts).map_err(|source| SnapshotError::UnpackStream {
                chain: chain.clone(),
                source,
            })?;
        Ok(PendingSnapshot {
            guard,
            stage,
            chain: chain.clone(),
            parent,
            report,
            dest: self.snapshot_dir(chain),
            verified: None,
        })
    }

    /// Reads a snapshot's metadata.
    pub fn info(&self, chain: &Digest) -> Result<SnapshotInfo, SnapshotError> {
        let p = self.snapshot_dir(chain).join("meta.json");
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SnapshotError::NotFound {
                    chain: chain.clone(),
                })
            }
            Err(e) => return Err(io_err(&p, "reading")(e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| io_err(&p, "parsing")(e.into()))
    }

    /// Every snapshot, in no particular order.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let dir = self.root.join("snapshots");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let e = e.map_err(io_err(&dir, "listing"))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|h| Digest::from_hex(h).ok())
            {
                out.push(self.info(&d)?);
            }
        }
        Ok(out)
    }

    fn containers(&self) -> Result<Vec<ContainerRecord>, SnapshotError> {
        let dir = self.root.join("containers");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let p = e.map_err(io_err(&dir, "listing"))?.path().join("meta.json");
            if let Ok(bytes) = fs::read(&p) {
                out.push(
                    serde_json::from_slice(&bytes).map_err(|e| io_err(&p, "parsing")(e.into()))?,
                );
            }
        }
        Ok(out)
    }

    /// Whether overlayfs takes id-mapped lower layers here. Probed once per kernel (a probe
    /// costs tens of milliseconds, mostly the teardown of its detached mount) and remembered
    /// in `<root>/idmap-probe`.
    pub fn idmapped_lowers(&self) -> bool {
        *self.idmapped_lowers.get_or_init(|| {
            let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
            let kernel = kernel.trim();
            let cache = self.root.join("idmap-probe");
            if let Ok(text) = fs::read_to_string(&cache) {
                if let Some((k, v)) = text.trim().rsplit_once(' ') {
                    if k == kernel {
                        return v == "yes";
                    }
                }
            }
            let ok = idmapped_lowers_supported(&self.root.join("staging"));
            let _ = fs::write(
                &cache,
                format!("{kernel} {}\n", if ok { "yes" } else { "no" }),
            );
            ok
        })
    }

    /// The lower dir of `chain` for `map`: the snapshot itself, or its owner-shifted copy
    /// (made now if missing).
    fn shifted(&self, chain: &Digest, map: &IdMap) -> Result<PathBuf, SnapshotError> {
        let dest = self.root.join("shifted").join(map.key()).join(chain.hex());
        if dest.join("fs").exists() {
            return Ok(dest.join("fs"));
        }
        let parent = self.root.join("shifted").join(map.key());
        fs::create_dir_all(&parent).map_err(io_err(&parent, "creating"))?;
        let stage = self.root.join("staging").join(staging_name(chain.hex()));
        let mut guard = Staging(Some(stage.clone()));
        fs::create_dir(&stage).map_err(io_err(&stage, "creating"))?;
        shift::shifted_copy(&self.snapshot_dir(chain).join("fs"), &stage.join("fs"), map).map_err(
            |(path, source)| SnapshotError::Shift {
                chain: chain.clone(),
                map: *map,
                path,
                source,
            },
        )?;
        publish(&mut guard, &dest)?;
        Ok(dest.join("fs"))
    }
}

mod container;

#[cfg(test)]
mod tests;
