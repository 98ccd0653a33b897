//! `POST /containers/create`: parse, name, policy, image, user-namespace slice, rootfs, spec,
//! bundle, record, in that order; a failure undoes what the earlier steps made.

use std::path::Path;

use hull_engine::policy::HostFs;
use hull_engine::{BuildContext, ContainerConfig, HostConfig, ImageConfigSubset};
use hull_image::snapshot::{mount_to, unmount, IdMap, IdmapMode, Layer};

use super::host::Host;
use super::record::{Record, RunState};
use super::{io_err, ContainerService, ContainersError};

/// A new 64-hex-digit id (from the kernel's random uuids).
pub(crate) fn new_id() -> Result<String, ContainersError> {
    let mut id = String::new();
    for _ in 0..2 {
        let u = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map_err(io_err("reading", "/proc/sys/kernel/random/uuid"))?;
        id.extend(u.trim().chars().filter(|c| *c != '-'));
    }
    Ok(id)
}

/// Docker-style `adjective_name` from the id.
fn generated_name(id: &str) -> String {
    const LEFT: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid", "modest",
        "nifty", "quirky", "serene", "tender", "vibrant", "witty",
    ];
    const RIGHT: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "lovelace",
        "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wright",
    ];
    let n = |i: usize| usize::from_str_radix(&id[i..i + 1], 16).unwrap_or(0);
    format!("{}_{}{}", LEFT[n(0)], RIGHT[n(1)], &id[2..4])
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// What a failed create leaves to undo.
struct Undo<'a> {
    svc: &'a ContainerService,
    id: String,
    layer: bool,
    wired: bool,
    mounted: Option<std::path::PathBuf>,
    armed: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(m) = &self.mounted {
            let _ = unmount(m);
        }
        // Volume mounts first: never delete below a mount that is still there.
        if let Err(e) = crate::volumes::unmount_all(&self.svc.exec_dir(&self.id)) {
            tracing::error!("container {}: {e}; leaving its directory", self.id);
            return;
        }
        if self.layer {
            let _ = self.svc.snapshots.remove_container_layer(&self.id);
        }
        if self.wired {
            self.svc.unwire(&self.id, &self.svc.exec_dir(&self.id));
        }
        let _ = std::fs::remove_dir_all(self.svc.exec_dir(&self.id));
        let _ = std::fs::remove_dir_all(self.svc.data_dir(&self.id));
    }
}

impl ContainerService {
    /// Creates a container from a Docker create request body; its id.
    pub fn create(&self, name: Option<&str>, body: &[u8]) -> Result<String, ContainersError> {
        let (cfg, host) = hull_engine::parse_create_body(body)?;
        let mut raw: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let raw_host = raw.get("HostConfig").cloned().unwrap_or_default();
        let log_config = super::interactive::effective_log_config(&raw_host, &self.log_defaults())?;
        super::interactive::check_restart_policy(&raw_host, host.auto_remove)?;
        if let Some(n) = name {
            if !valid_name(n.strip_prefix('/').unwrap_or(n)) {
                return Err(ContainersError::BadName(n.to_string()));
            }
        }
        let host = self.volumes_from(host)?;
        hull_engine::policy::check(&cfg, &host, &self.policy, &HostFs)?;
        bind_sources(&host)?;
        let image = self
            .images
            .resolve(&cfg.image)
            .map_err(|source| match source.kind() {
                hull_image::images::ErrorKind::NotFound => {
                    ContainersError::NoSuchImage(cfg.image.clone())
                }
                _ => ContainersError::Image {
                    image: cfg.image.clone(),
                    source,
                },
            })?;
        let image_cfg = self.image_config(&cfg.image, &image.id)?;
        // The image's check merged in once: the record's Config shows it, as Docker's does.
        super::health::merge_image_check(&mut raw, image_cfg.healthcheck.as_ref());
        super::health::check_of(&raw).map_err(ContainersError::Invalid)?;
        let id = new_id()?;
        let name = name
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_string())
            .unwrap_or_else(|| generated_name(&id));

        // The name and the uid slice are claimed under the table lock, with a placeholder
        // record, so that concurrent creates cannot take the same.
        let (uid_index, plan) = {
            let mut t = self.table();
            if let Some(other) = t.records.values().find(|r| r.name == name) {
                return Err(ContainersError::NameInUse {
                    name,
                    id: other.id.clone(),
                });
            }
            let taken: Vec<u32> = t.records.values().map(|r| r.uid_index).collect();
            let index = self.subids.first_free(&taken)?;
            let plan = self.subids.plan(index)?;
            let placeholder = Record {
                id: id.clone(),
                name: name.clone(),
                created: hull_runtime::state::now_rfc3339(),
                image: cfg.image.clone(),
                image_id: image.id.to_string(),
                path: String::new(),
                args: Vec::new(),
                config: raw.clone(),
                host_config: raw.get("HostConfig").cloned().unwrap_or_default(),
                auto_remove: host.auto_remove,
                uid_index: index,
                uid_start: plan.host_uid_start,
                network_mode: host.network_mode.clone(),
                state: RunState::default(),
                mounts: Vec::new(),
            };
            let mut placeholder = placeholder;
            placeholder.host_config["LogConfig"] = log_config;
            t.records.insert(id.clone(), placeholder);
            (index, plan)
        };
        let result = self.create_steps(&id, &cfg, &host, &image_cfg, &image, plan, (&name, &raw));
        let mut t = self.table();
        match result {
            Ok((path, args, mounts)) => {
                let mut rec = t.records.remove(&id).expect("placeholder");
                rec.path = path;
                rec.args = args;
                rec.mounts = mounts;
                let mut config = raw;
                if let Some(o) = config.as_object_mut() {
                    o.remove("HostConfig");
                    o.remove("NetworkingConfig");
                }
                rec.config = config;
                debug_assert_eq!(rec.uid_index, uid_index);
                self.put(&mut t, rec);
                Ok(id)
            }
            Err(e) => {
                t.records.remove(&id);
                Err(e)
            }
        }
    }

    fn image_config(
        &self,
        name: &str,
        id: &hull_image::Digest,
    ) -> Result<ImageConfigSubset, ContainersError> {
        let bad = |reason: String| ContainersError::ImageConfig {
            image: name.to_string(),
            reason,
        };
        let blob = self
            .images
            .content
            .read(id)
            .map_err(|e| bad(e.to_string()))?;
        let v: serde_json::Value = serde_json::from_slice(&blob).map_err(|e| bad(e.to_string()))?;
        let config = v.get("config").cloned().unwrap_or_default();
        if config.is_null() {
            return Ok(ImageConfigSubset::default());
        }
        let text = serde_json::to_vec(&config).unwrap_or_default();
        hull_engine::docker_types::parse_image_config(&text).map_err(|e| bad(e.to_string()))
    }

    /// Rootfs, spec, bundle and log file; the process's path and args.
    #[allow(clippy::too_many_arguments)]
    fn create_steps(
        &self,
        id: &str,
        cfg: &ContainerConfig,
        host: &HostConfig,
        image_cfg: &ImageConfigSubset,
        image: &hull_image::ImageRecord,
        plan: hull_engine::UserNamespacePlan,
        (name, raw): (&str, &serde_json::Value),
    ) -> Result<(String, Vec<String>, Vec<crate::volumes::MountPoint>), ContainersError> {
        let mut undo = Undo {
            svc: self,
            id: id.to_string(),
            layer: false,
            wired: false,
            mounted: None,
            armed: true,
        };
        let (exec_dir, data_dir) = (self.exec_dir(id), self.data_dir(id));
        let rootfs = exec_dir.join("rootfs");
        for d in [&rootfs, &data_dir] {
            std::fs::create_dir_all(d).map_err(io_err("creating", d.as_path()))?;
        }
        // The container's root is an unprivileged host user: it must be able to walk to its
        // rootfs (search permission only; nothing here is listable).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exec_dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io_err("setting the mode of", exec_dir.as_path()))?;
        reachable(&exec_dir, plan.host_uid_start)?;
        let layers: Vec<Layer> = image
            .layers
            .iter()
            .zip(&image.diff_ids)
            .map(|(blob, diff_id)| Layer {
                blob: blob.clone(),
                diff_id: diff_id.clone(),
            })
            .collect();
        let map = IdMap {
            container: 0,
            host: plan.host_uid_start,
            size: plan.size,
        };
        let mounts = self
            .snapshots
            .prepare(id, &layers, Some(map), IdmapMode::Auto)?;
        undo.layer = true;
        for m in &mounts {
            mount_to(m, &rootfs).map_err(|source| ContainersError::Mount {
                path: rootfs.clone(),
                source,
            })?;
            undo.mounted = Some(rootfs.clone());
        }

        // Networking (network.rs): the namespace, endpoint and files for the mode asked.
        let mut host = host.clone();
        undo.wired = true;
        let gids = (plan.host_uid_start, plan.host_uid_start + (plan.size - 1));
        let wired = self.wire_request(id, name, &exec_dir, cfg, &mut host, image_cfg, raw, gids)?;
        let file = |name: &str| wired.as_ref().map(|w| w.dir.join(name));
        let vm = crate::volumes::VolumeMounter::new(self, id, &exec_dir, &rootfs, map, &host);
        let lookup = Host {
            rootfs: &rootfs,
            volumes: Some(&vm),
        };
        let ctx = BuildContext {
            rootfs: rootfs.clone(),
            userns: Some(plan),
            userns_for_privileged: false,
            resolv_conf: file("resolv.conf"),
            hosts: file("hosts"),
            hostname_file: file("hostname"),
            netns_path: wired.as_ref().map(|w| w.netns.clone()),
            ngroups_max: 65536,
            host: &lookup,
        };
        let mut spec = match hull_engine::build_spec(id, cfg, &host, image_cfg, &ctx) {
            Ok(s) => s,
            Err(e) => {
                vm.undo();
                return Err(match vm.error.take() {
                    Some(v) => v.into(),
                    None => e.into(),
                });
            }
        };
        let mounts = crate::volumes::mount_points(&spec, &host, &vm.uses.borrow(), self);
        if wired.is_some() {
            if let Some(linux) = spec.linux_mut() {
                if let Some(s) = linux.sysctl_mut() {
                    // hulld writes these in the namespace it made (network.rs)
                    s.retain(|k, _| !k.starts_with("net."));
                }
            }
        }
        let args = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let config = exec_dir.join("config.json");
        let body = serde_json::to_vec_pretty(&spec).unwrap_or_default();
        let log = self.log_path(id);
        if let Err(e) = write_file(&config, &body).and_then(|_| write_file(&log, b"")) {
            vm.undo();
            return Err(e);
        }
        undo.armed = false;
        let mut it = args.into_iter();
        Ok((it.next().unwrap_or_default(), it.collect(), mounts))
    }
}

/// Every directory above `dir` must let others search it.
fn reachable(dir: &Path, uid: u32) -> Result<(), ContainersError> {
    use std::os::unix::fs::MetadataExt;
    for d in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(d).map_err(io_err("reading", d))?.mode();
        if mode & 0o001 == 0 {
            return Err(ContainersError::Unreachable {
                dir: d.to_path_buf(),
                uid,
            });
        }
    }
    Ok(())
}

fn write_file(path: &Path, body: &[u8]) -> Result<(), ContainersError> {
    hull_runtime::state::write_atomic(path, body).map_err(io_err("writing", path))
}

/// Removes what create made (the caller has stopped the container and holds no lock).
pub(crate) fn destroy(svc: &ContainerService, id: &str) -> Vec<String> {
    let mut problems = Vec::new();
    svc.unwire(id, &svc.exec_dir(id));
    let rootfs = svc.exec_dir(id).join("rootfs");
    if is_mountpoint(&rootfs) {
        if let Err(e) = unmount(&rootfs) {
            problems.push(e.to_string());
        }
    }
    if let Err(e) = svc.snapshots.remove_container_layer(id) {
        problems.push(e.to_string());
    }
    if let Err(e) = crate::volumes::unmount_all(&svc.exec_dir(id)) {
        problems.push(format!("{e}; leaving {}", svc.exec_dir(id).display()));
        return problems;
    }
    for d in [svc.exec_dir(id), svc.data_dir(id)] {
        if let Err(e) = std::fs::remove_dir_all(&d) {
            if e.kind() != std::io::ErrorKind::NotFound {
                problems.push(format!("removing {}: {e}", d.display()));
            }
        }
    }
    problems
}

/// Host paths of binds, as Docker treats them: a missing `-v /path` source is made (a
/// directory, 0755; the policy has allowed the path), a missing `--mount type=bind` source
/// is the caller's error.
fn bind_sources(host: &HostConfig) -> Result<(), ContainersError> {
    for b in &host.binds {
        let source = b.split(':').next().unwrap_or("");
        if source.starts_with('/') && std::fs::symlink_metadata(source).is_err() {
            std::fs::create_dir_all(source).map_err(io_err("creating the bind source", source))?;
        }
    }
    for (i, m) in host.mounts.iter().enumerate() {
        if m.r#type == "bind" && std::fs::metadata(&m.source).is_err() {
            return Err(ContainersError::BindSourceMissing {
                index: i,
                path: m.source.clone(),
            });
        }
    }
    Ok(())
}

/// Removes what a create interrupted by a crash of hulld left: container directories (and
/// their mounts and writable layers) that no record names. Runs before hulld serves.
pub(crate) fn sweep_orphans(svc: &ContainerService) {
    // Every row counts, even one this version cannot read: its directories stay.
    let Ok(stored) = svc.store.container_ids() else {
        return;
    };
    let mut known: std::collections::HashSet<String> = stored.into_iter().collect();
    known.extend(svc.table().records.keys().cloned());
    let mut orphans: Vec<String> = Vec::new();
    for dir in [&svc.paths.exec, &svc.paths.data] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let is_id = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
            if is_id && !known.contains(&id) && !orphans.contains(&id) {
                orphans.push(id);
            }
        }
    }
    for id in orphans {
        tracing::warn!("container {id}: left by an interrupted create (no record); removing it");
        for p in destroy(svc, &id) {
            tracing::warn!("container {id}: cleaning up: {p}");
        }
    }
}

impl ContainerService {
    /// `VolumesFrom`: the volumes and binds of other containers (`NAME[:ro|:rw]`), added to
    /// `Binds` (then checked by the policy like the request's own).
    fn volumes_from(&self, mut host: HostConfig) -> Result<HostConfig, ContainersError> {
        for (i, from) in std::mem::take(&mut host.volumes_from).iter().enumerate() {
            let (name, mode) = match from.rsplit_once(':') {
                Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
                _ => (from.as_str(), None),
            };
            if name.is_empty() {
                return Err(ContainersError::BadVolumesFrom {
                    index: i,
                    value: from.clone(),
                });
            }
            let other = self.get(name)?;
            for m in &other.mounts {
                let source = match m.typ.as_str() {
                    "volume" => &m.name,
                    "bind" => &m.source,
                    _ => continue,
                };
                let ro = match mode {
                    Some(m) => m == "ro",
                    None => !m.rw,
                };
                let opts = if ro { ":ro" } else { "" };
                host.binds.push(format!("{source}:{}{opts}", m.destination));
            }
        }
        Ok(host)
    }
}

fn is_mountpoint(p: &Path) -> bool {
    let target = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}
