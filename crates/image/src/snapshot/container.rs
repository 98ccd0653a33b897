//! Container layers on top of snapshots, and removal with reference checks.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::Path;

use super::{io_err, ContainerRecord, IdMap, IdmapMode, Layer, Mount, SnapshotError, Snapshotter};
use crate::digest::Digest;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

impl Snapshotter {
    /// Makes container `id`'s writable layer over the image `layers` (unpacking missing
    /// snapshots) and returns the mounts that make its root filesystem: an overlay with the
    /// image's layers top first as lower dirs and a private upper dir.
    ///
    /// With `idmap`, container root is `idmap.host` on the host: the upper dir's root belongs
    /// to it, and the lower layers are either id-mapped at mount time (`uidmap=`/`gidmap=`
    /// options, no copy) or owner-shifted copies shared by every container with that mapping.
    pub fn prepare(
        &self,
        id: &str,
        layers: &[Layer],
        idmap: Option<IdMap>,
        mode: IdmapMode,
    ) -> Result<Vec<Mount>, SnapshotError> {
        if !valid_id(id) {
            return Err(SnapshotError::BadContainerId { id: id.to_string() });
        }
        let chains = self.ensure(layers)?;
        let use_idmapped = match (idmap, mode) {
            (None, _) => false,
            (Some(_), IdmapMode::Idmapped) => true,
            (Some(_), IdmapMode::Copy) => false,
            (Some(_), IdmapMode::Auto) => self.idmapped_lowers(),
        };
        let mut lowers = Vec::new();
        for chain in chains.iter().rev() {
            let dir = match idmap {
                Some(map) if !use_idmapped => self.shifted(chain, &map)?,
                _ => self.snapshot_dir(chain).join("fs"),
            };
            lowers.push(dir.display().to_string());
        }
        let _lock = self.lock()?;
        let dir = self.root.join("containers").join(id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(SnapshotError::ContainerExists { id: id.to_string() })
            }
            Err(e) => return Err(io_err(&dir, "creating")(e)),
        }
        let result = self.record_container(id, &dir, &chains, idmap, use_idmapped, lowers);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    fn record_container(
        &self,
        id: &str,
        dir: &Path,
        chains: &[Digest],
        idmap: Option<IdMap>,
        use_idmapped: bool,
        lowers: Vec<String>,
    ) -> Result<Vec<Mount>, SnapshotError> {
        // A gc between ensure() and the lock may have removed a snapshot.
        for c in chains {
            if !self.snapshot_dir(c).join("meta.json").exists() {
                return Err(SnapshotError::NotFound { chain: c.clone() });
            }
        }
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        for d in [&upper, &work] {
            fs::create_dir(d).map_err(io_err(d, "creating"))?;
        }
        if let Some(map) = idmap {
            let root = Some(map.to_host(0));
            std::os::unix::fs::chown(&upper, root, root).map_err(io_err(&upper, "chown"))?;
        }
        let mounts = if lowers.is_empty() {
            vec![Mount {
                kind: "bind".into(),
                source: upper.display().to_string(),
                options: vec!["rbind".into(), "rw".into()],
            }]
        } else {
            let mut options = vec![
                format!("lowerdir={}", lowers.join(":")),
                format!("upperdir={}", upper.display()),
                format!("workdir={}", work.display()),
            ];
            if let (Some(map), true) = (idmap, use_idmapped) {
                options.push(format!("uidmap={map}"));
                options.push(format!("gidmap={map}"));
            }
            vec![Mount {
                kind: "overlay".into(),
                source: "overlay".into(),
                options,
            }]
        };
        let rec = ContainerRecord {
            id: id.to_string(),
            chains: chains.to_vec(),
            idmap,
            mounts: mounts.clone(),
        };
        let meta = dir.join("meta.json");
        let json = serde_json::to_vec_pretty(&rec).unwrap_or_default();
        fs::write(&meta, json).map_err(io_err(&meta, "writing"))?;
        Ok(mounts)
    }

    /// The mounts of an existing container layer.
    pub fn mounts(&self, id: &str) -> Result<Vec<Mount>, SnapshotError> {
        self.containers()?
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| c.mounts)
            .ok_or_else(|| SnapshotError::NoContainer { id: id.to_string() })
    }

    /// Removes container `id`'s writable layer (its rootfs must be unmounted).
    pub fn remove_container_layer(&self, id: &str) -> Result<(), SnapshotError> {
        if !valid_id(id) {
            return Err(SnapshotError::BadContainerId { id: id.to_string() });
        }
        let _lock = self.lock()?;
        let dir = self.root.join("containers").join(id);
        if !dir.exists() {
            return Err(SnapshotError::NoContainer { id: id.to_string() });
        }
        // Removing the upper dir under a live overlay would corrupt that mount.
        let upper = format!("upperdir={}", dir.join("upper").display());
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        if mountinfo
            .lines()
            .any(|l| l.split([' ', ',']).any(|o| o == upper))
        {
            return Err(SnapshotError::StillMounted { id: id.to_string() });
        }
        // The record goes first, so a half-removed layer is never taken as live.
        let _ = fs::remove_file(dir.join("meta.json"));
        fs::remove_dir_all(&dir).map_err(io_err(&dir, "removing"))
    }

    /// Removes one snapshot (and its owner-shifted copies), refusing while a container or a
    /// child snapshot uses it.
    pub fn remove(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let _lock = self.lock()?;
        self.info(chain)?;
        if let Some(c) = self
            .containers()?
            .into_iter()
            .find(|c| c.chains.contains(chain))
        {
            return Err(SnapshotError::UsedByContainer {
                chain: chain.clone(),
                container: c.id,
            });
        }
        if let Some(child) = self
            .list()?
            .into_iter()
            .find(|s| s.parent.as_ref() == Some(chain))
        {
            return Err(SnapshotError::HasChild {
                chain: chain.clone(),
                child: child.chain_id,
            });
        }
        self.delete(chain)
    }

    fn delete(&self, chain: &Digest) -> Result<(), SnapshotError> {
        let dir = self.snapshot_dir(chain);
        // meta.json first: a snapshot without it counts as absent and is rebuilt.
        let _ = fs::remove_file(dir.join("meta.json"));
        fs::remove_dir_all(&dir).map_err(io_err(&dir, "removing"))?;
        let shifted = self.root.join("shifted");
        for e in fs::read_dir(&shifted)
            .map_err(io_err(&shifted, "listing"))?
            .flatten()
        {
            let copy = e.path().join(chain.hex());
            if copy.exists() {
                fs::remove_dir_all(&copy).map_err(io_err(&copy, "removing"))?;
            }
        }
        Ok(())
    }

    /// Removes every snapshot that neither `live` chains nor a container layer need (their
    /// ancestors are kept too). Returns what was removed.
    pub fn gc(&self, live: &[Digest]) -> Result<Vec<Digest>, SnapshotError> {
        let _lock = self.lock()?;
        let all = self.list()?;
        let mut keep: HashSet<Digest> = live.iter().cloned().collect();
        for c in self.containers()? {
            keep.extend(c.chains);
        }
        // Ancestors of kept snapshots.
        let mut frontier: Vec<Digest> = keep.iter().cloned().collect();
        while let Some(c) = frontier.pop() {
            if let Some(p) = all
                .iter()
                .find(|s| s.chain_id == c)
                .and_then(|s| s.parent.clone())
            {
                if keep.insert(p.clone()) {
                    frontier.push(p);
                }
            }
        }
        self.clean_staging();
        let mut removed = Vec::new();
        for s in all {
            if !keep.contains(&s.chain_id) {
                self.delete(&s.chain_id)?;
                removed.push(s.chain_id);
            }
        }
        Ok(removed)
    }

    /// Removes staging directories left by processes that died mid-unpack or mid-copy
    /// (named `<hex>-<pid>-<nanos>`).
    fn clean_staging(&self) {
        let staging = self.root.join("staging");
        let Ok(entries) = fs::read_dir(&staging) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                tracing::info!("removing leftover staging directory {name}");
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}
