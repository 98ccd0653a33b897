//! Image removal with Docker's semantics, and garbage collection of unreferenced blobs.
//!
//! Removing by name untags that name (and digest references left alone in its repository);
//! the image goes when its last name does. Removing by ID removes all names if they are one
//! tag (plus digests of that repository), else needs `force`. An image used by a container
//! is kept unless `force` (Docker's 409 conflict).

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::images::{find, is_id_form, ImageError, ImageStore};
use crate::index::Index;
use crate::media;
use crate::reference::Reference;

/// One line of Docker's image delete response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum DeleteItem {
    Untagged(String),
    Deleted(Digest),
}

/// What a garbage collection freed, and what it kept for the snapshotter.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Blobs removed, with their sizes.
    pub freed: Vec<(Digest, u64)>,
    pub freed_bytes: u64,
    /// Each image's layer diff_ids, bottom first: the snapshot chains still needed.
    pub live_chains: Vec<Vec<Digest>>,
    /// Ingest files left by processes that died mid-write (removed). Resumable
    /// `<digest>.partial` downloads are kept.
    pub stale_ingest: Vec<std::path::PathBuf>,
}

/// The writer's pid in an ingest file name (`<pid>-....tmp`, `load-<pid>-....tar`).
fn ingest_pid(name: &str) -> Option<u32> {
    if !(name.ends_with(".tmp") || name.ends_with(".tar")) {
        return None;
    }
    name.strip_prefix("load-")
        .unwrap_or(name)
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn refs_of(idx: &Index, id: &Digest) -> Vec<Reference> {
    idx.names
        .iter()
        .filter(|(_, v)| *v == id)
        .filter_map(|(k, _)| Reference::parse(k).ok())
        .collect()
}

/// Docker's isSingleReference: at most one tag, and any digest references in its repository.
fn single_reference(refs: &[Reference]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&Reference> = refs.iter().filter(|r| r.digest.is_none()).collect();
    if tags.len() > 1 {
        return false;
    }
    let repo = tags.first().copied().unwrap_or(&refs[0]).repository();
    refs.iter().all(|r| r.repository() == repo)
}

impl ImageStore {
    /// Removes a name or an image (`docker rmi`). `in_use` tells whether a container uses an
    /// image ID. Blobs that only the removed image used are freed.
    pub fn remove(
        &self,
        name_or_id: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<DeleteItem>, ImageError> {
        let _gc = self.gc_lock(true)?;
        let (items, deleted) = self.update(|idx| {
            let id = find(idx, name_or_id)?;
            let refs = refs_of(idx, &id);
            let used = in_use(&id);
            let mut items = Vec::new();
            let conflict = |action, target: &str, reason: &str| ImageError::Conflict {
                action,
                target: target.to_string(),
                reason: reason.to_string(),
            };
            if !is_id_form(name_or_id, &id) {
                let mut r = Reference::parse(name_or_id)?;
                if r.digest.is_some() {
                    r.tag = None;
                }
                if !force && used && single_reference(&refs) {
                    return Err(conflict(
                        "remove repository reference",
                        name_or_id,
                        &format!("a container is using its referenced image {}", id.short()),
                    ));
                }
                idx.names.remove(&r.to_string());
                items.push(DeleteItem::Untagged(r.familiar()));
                let rest = refs_of(idx, &id);
                let same_repo: Vec<&Reference> = rest
                    .iter()
                    .filter(|x| x.repository() == r.repository())
                    .collect();
                if r.digest.is_none() && same_repo.iter().all(|x| x.digest.is_some()) {
                    for x in same_repo {
                        idx.names.remove(&x.to_string());
                        items.push(DeleteItem::Untagged(x.familiar()));
                    }
                }
                if !refs_of(idx, &id).is_empty() || (used && !force) {
                    idx.fill_names();
                    return Ok((items, None));
                }
            } else {
                if !force && !refs.is_empty() && !single_reference(&refs) {
                    return Err(conflict(
                        "delete",
                        id.short(),
                        "image is referenced in multiple repositories",
                    ));
                }
                if !force && used {
                    return Err(conflict(
                        "delete",
                        id.short(),
                        "image is being used by a container",
                    ));
                }
                for r in refs {
                    idx.names.remove(&r.to_string());
                    items.push(DeleteItem::Untagged(r.familiar()));
                }
            }
            let rec = idx.images.remove(id.hex()).expect("found above");
            items.push(DeleteItem::Deleted(id));
            idx.fill_names();
            Ok((items, Some(rec)))
        })?;
        if let Some(rec) = deleted {
            let live = self.live_blobs(&self.read_index()?)?;
            let mut mine: Vec<Digest> = rec.layers.clone();
            mine.extend([rec.id.clone(), rec.manifest.clone()]);
            mine.extend(rec.index.clone());
            for d in mine {
                if !live.contains(&d) {
                    self.content.delete(&d)?;
                }
            }
        }
        Ok(items)
    }

    /// Every blob reachable from a recorded image: index -> manifests -> config and layers.
    pub(crate) fn live_blobs(&self, idx: &Index) -> Result<BTreeSet<Digest>, ImageError> {
        let mut live = BTreeSet::new();
        let mut todo: Vec<Digest> = Vec::new();
        for r in idx.images.values() {
            live.insert(r.id.clone());
            live.extend(r.layers.iter().cloned());
            todo.push(r.manifest.clone());
            todo.extend(r.index.clone());
        }
        while let Some(d) = todo.pop() {
            if !live.insert(d.clone()) || !self.content.exists(&d) {
                continue;
            }
            let Ok(bytes) = self.content.read(&d) else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                continue;
            };
            let digests = |key: &str| -> Vec<Digest> {
                v.get(key)
                    .and_then(|x| x.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.get("digest")?.as_str()?.parse().ok())
                    .collect()
            };
            let p: media::Probe = serde_json::from_value(v.clone()).unwrap_or(media::Probe {
                media_type: None,
                manifests: None,
                config: None,
            });
            if p.is_index() {
                todo.extend(digests("manifests"));
            } else {
                live.extend(digests("layers"));
                if let Some(c) = v.pointer("/config/digest").and_then(|x| x.as_str()) {
                    live.extend(c.parse::<Digest>().ok());
                }
            }
        }
        Ok(live)
    }

    /// Removes every blob no image reaches; waits for running imports to finish first.
    /// Snapshots are not touched: [`crate::gc::gc_all`] collects both.
    pub fn gc(&self) -> Result<GcReport, ImageError> {
        let _gc = self.gc_lock(true)?;
        self.gc_locked()
    }

    /// [`ImageStore::gc`] for a caller that holds the exclusive gc lock.
    pub(crate) fn gc_locked(&self) -> Result<GcReport, ImageError> {
        let idx = self.read_index()?;
        let live = self.live_blobs(&idx)?;
        let mut report = GcReport {
            live_chains: idx.images.values().map(|r| r.diff_ids.clone()).collect(),
            ..GcReport::default()
        };
        let ingest = self.content.root().join("ingest");
        for e in std::fs::read_dir(&ingest).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = ingest_pid(&name) {
                if !std::path::Path::new(&format!("/proc/{pid}")).exists()
                    && std::fs::remove_file(e.path()).is_ok()
                {
                    report.stale_ingest.push(e.path());
                }
            }
        }
        for d in self.content.list()? {
            if live.contains(&d) {
                continue;
            }
            let size = self.content.size(&d).unwrap_or(0);
            self.content.delete(&d)?;
            report.freed_bytes += size;
            report.freed.push((d, size));
        }
        Ok(report)
    }
}
