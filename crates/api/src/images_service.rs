//! [`Images`] over hull's image store (`hull_image`): names, archives and pruning here,
//! registries in [`crate::registry_service`].

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use hull_image::archive::{self, ArchiveError, ImportOptions, LoadOptions};
use hull_image::images::ErrorKind;
use hull_image::inspect::{HistoryItem, InspectData};
use hull_image::progress::Message;
use hull_image::reference::ReferenceError;
use hull_image::registry::{Credentials, PlatformError, RegistryError};
use hull_image::remove::DeleteItem;
use hull_image::{ImageError, ImageRecord, ImageStore, Reference};

use crate::events::Events;
use crate::images_api::{
    Emit, ImageSummary, Images, ImportRequest, ListFilter, PruneReport, PullRequest, PushRequest,
};
use crate::query::glob;

#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error("writing the registry credentials to {path}: {source}")]
    WriteCredentials {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("An image does not exist locally with the tag: {0}")]
    NothingToPush(String),
    #[error("reading the content store for the prune report: {0}")]
    MeasureStore(hull_image::StoreError),
}

impl ImagesError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImagesError::Image(e) => e.kind(),
            ImagesError::Archive(ArchiveError::Image(e)) => e.kind(),
            ImagesError::Archive(
                ArchiveError::Io { .. } | ArchiveError::Write { .. } | ArchiveError::Store(_),
            ) => ErrorKind::Internal,
            ImagesError::Archive(_) => ErrorKind::InvalidArgument,
            ImagesError::Registry(
                RegistryError::ManifestUnknown { .. }
                | RegistryError::BlobUnknown { .. }
                | RegistryError::NoPlatform { .. },
            ) => ErrorKind::NotFound,
            ImagesError::Registry(_) => ErrorKind::Internal,
            ImagesError::Reference(_) | ImagesError::Platform(_) => ErrorKind::InvalidArgument,
            ImagesError::NothingToPush(_) => ErrorKind::NotFound,
            ImagesError::WriteCredentials { .. } | ImagesError::MeasureStore(_) => {
                ErrorKind::Internal
            }
        }
    }
}

/// What registries the daemon may reach over plain HTTP, and where per-request credentials
/// are written (a private directory under the exec root).
#[derive(Debug, Clone, Default)]
pub struct RegistrySettings {
    pub insecure: Vec<String>,
    pub auth_dir: PathBuf,
}

pub struct ImageService {
    pub(crate) store: ImageStore,
    pub(crate) registry: RegistrySettings,
    pub(crate) events: Arc<Events>,
}

impl ImageService {
    pub fn new(store: ImageStore, registry: RegistrySettings, events: Arc<Events>) -> ImageService {
        ImageService {
            store,
            registry,
            events,
        }
    }

    fn summary(&self, r: &ImageRecord) -> ImageSummary {
        // Labels live in the config; a config that cannot be read shows none (inspect says why).
        let labels = self
            .store
            .inspect(&r.id.to_string())
            .ok()
            .and_then(|i| i.config.get("Labels").cloned())
            .and_then(|l| serde_json::from_value::<BTreeMap<String, String>>(l).ok())
            .unwrap_or_default();
        ImageSummary {
            id: r.id.to_string(),
            parent_id: String::new(),
            repo_tags: r.repo_tags.clone(),
            repo_digests: r.repo_digests.clone(),
            created: r
                .created
                .as_deref()
                .and_then(hull_image::time::parse_rfc3339)
                .unwrap_or(0),
            size: r.size,
            shared_size: -1,
            virtual_size: r.size,
            labels,
            containers: -1,
        }
    }

    /// Publishes the events of a removal.
    fn removed(&self, items: &[DeleteItem]) {
        for it in items {
            match it {
                DeleteItem::Untagged(n) => self.events.image("untag", n, n),
                DeleteItem::Deleted(d) => self.events.image("delete", &d.to_string(), ""),
            }
        }
    }

    fn blob_bytes(&self) -> Result<u64, ImagesError> {
        let c = &self.store.content;
        let mut total = 0;
        for d in c.list().map_err(ImagesError::MeasureStore)? {
            total += c.size(&d).unwrap_or(0);
        }
        Ok(total)
    }
}

/// Whether `pattern` matches the familiar name `n` or its repository (Docker's
/// FamiliarMatch).
fn name_matches(pattern: &str, n: &str) -> bool {
    let repo = Reference::parse(n)
        .map(|r| r.familiar_repository())
        .unwrap_or_default();
    glob(pattern, n) || glob(pattern, &repo)
}

/// Applies `filter`; with reference filters, only the matching names are kept (as Docker
/// does). None if the image does not pass.
fn filtered(filter: &ListFilter, mut s: ImageSummary) -> Option<ImageSummary> {
    if filter.dangling.is_some_and(|d| d != s.repo_tags.is_empty()) {
        return None;
    }
    if !filter.references.is_empty() {
        let keep = |n: &String| filter.references.iter().any(|p| name_matches(p, n));
        s.repo_tags.retain(keep);
        s.repo_digests.retain(keep);
        if s.repo_tags.is_empty() && s.repo_digests.is_empty() {
            return None;
        }
    }
    let labels_ok = filter.labels.iter().all(|l| match l.split_once('=') {
        Some((k, v)) => s.labels.get(k).is_some_and(|x| x == v),
        None => s.labels.contains_key(l),
    });
    labels_ok.then_some(s)
}

impl Images for ImageService {
    fn count(&self) -> Result<usize, ImagesError> {
        Ok(self.store.list()?.len())
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<ImageSummary>, ImagesError> {
        Ok(self
            .store
            .list()?
            .iter()
            .filter_map(|r| filtered(filter, self.summary(r)))
            .collect())
    }

    fn inspect(&self, name: &str) -> Result<InspectData, ImagesError> {
        Ok(self.store.inspect(name)?)
    }

    fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImagesError> {
        Ok(self.store.history(name)?)
    }

    fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ImagesError> {
        let tag = if tag.is_empty() { "latest" } else { tag };
        let target = format!("{repo}:{tag}");
        let rec = self.store.tag(name, &target)?;
        let familiar = Reference::parse(&target).map_or(target, |r| r.familiar());
        self.events.image("tag", &rec.id.to_string(), &familiar);
        Ok(())
    }

    fn remove(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>, ImagesError> {
        // No containers yet: no image is in use.
        let items = self.store.remove(name, force, &|_| false)?;
        self.removed(&items);
        Ok(items)
    }

    fn load(&self, src: &mut dyn Read, quiet: bool, emit: Emit) -> Result<(), ImagesError> {
        let progress = |m: Message| {
            if !quiet || matches!(m, Message::Stream { .. }) {
                emit(m.to_json());
            }
        };
        // Unpack while loading, as docker load does (the bytes are read and hashed once); a
        // store whose snapshotter cannot be opened still loads, and containers unpack later.
        let mut opts = LoadOptions::default();
        match hull_image::layers::open_snapshotter(&self.store, Default::default()) {
            Ok(s) => opts.unpack = Some(Arc::new(s)),
            Err(e) => tracing::warn!("loading without unpacking: {e}"),
        }
        let recs = archive::load(&self.store, src, &opts, &progress)?;
        for r in recs {
            self.events.image(
                "load",
                &r.id.to_string(),
                r.repo_tags.first().map_or("", String::as_str),
            );
        }
        Ok(())
    }

    fn check_names(&self, names: &[String]) -> Result<(), ImagesError> {
        for n in names {
            self.store.resolve(n)?;
        }
        Ok(())
    }

    fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImagesError> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        archive::save(&self.store, &names, out)?;
        for n in names {
            self.events.image("save", n, n);
        }
        Ok(())
    }

    fn import(
        &self,
        src: &mut dyn Read,
        req: &ImportRequest,
        emit: Emit,
    ) -> Result<(), ImagesError> {
        let name = req.reference.as_deref().map(Reference::parse).transpose()?;
        let mut platform = LoadOptions::default();
        if let Some(p) = &req.platform {
            let p: hull_image::registry::Platform = p.parse()?;
            platform.os = p.os;
            platform.arch = p.architecture;
        }
        let opts = ImportOptions {
            changes: req.changes.clone(),
            message: req.message.clone(),
            platform,
        };
        let quiet = |_: Message| {};
        let rec = archive::import(&self.store, src, "-", name.as_ref(), &opts, &quiet)?;
        emit(serde_json::json!({ "status": rec.id.to_string() }).to_string());
        let name = name.map(|r| r.familiar()).unwrap_or_default();
        self.events.image("import", &rec.id.to_string(), &name);
        Ok(())
    }

    fn pull(&self, req: &PullRequest, emit: Emit) -> Result<(), ImagesError> {
        crate::registry_service::pull(self, req, emit)
    }

    fn push(&self, req: &PushRequest, emit: Emit) -> Result<(), ImagesError> {
        crate::registry_service::push(self, req, emit)
    }

    fn login(&self, server: &str, auth: &Credentials) -> Result<(), ImagesError> {
        crate::registry_service::login(self, server, auth)
    }

    fn prune(&self, dangling_only: bool) -> Result<PruneReport, ImagesError> {
        let before = self.blob_bytes()?;
        let mut report = PruneReport::default();
        for r in self.store.list()? {
            if dangling_only && !r.repo_tags.is_empty() {
                continue;
            }
            match self.store.remove(&r.id.to_string(), true, &|_| false) {
                Ok(items) => {
                    self.removed(&items);
                    report.images_deleted.extend(items)
                }
                // Removed meanwhile by another request: nothing to do.
                Err(ImageError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.store.gc()?;
        report.space_reclaimed = before.saturating_sub(self.blob_bytes()?);
        let attrs = [("reclaimed".to_string(), report.space_reclaimed.to_string())];
        self.events.publish(crate::events::Event::new(
            "image",
            "prune",
            "",
            attrs.into(),
        ));
        Ok(report)
    }
}
