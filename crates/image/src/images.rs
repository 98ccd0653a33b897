//! Image records and names on top of the content store.
//!
//! An image is identified by its config digest (the image ID, as in Docker). Names are tags
//! (`busybox:latest`) and digest references (`busybox@sha256:...`), stored normalised
//! (`docker.io/library/busybox:latest`) in the index ([`crate::index`]) and shown familiar.
//! Removal and garbage collection are in [`crate::remove`]; inspect and history data in
//! [`crate::inspect`].

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::index::{self, Index, IndexError, Lock};
use crate::media;
use crate::reference::{Reference, ReferenceError};
use crate::store::{ContentStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error("no such image: {0}")]
    NotFound(String),
    #[error(
        "image ID prefix {prefix:?} is ambiguous ({matches} images match); give more characters"
    )]
    Ambiguous { prefix: String, matches: usize },
    #[error(transparent)]
    BadReference(#[from] ReferenceError),
    #[error("cannot tag with a digest reference {0:?}; tags are repo:tag")]
    TagIsDigest(String),
    #[error("manifest {manifest} is not valid JSON of its kind: {source}")]
    ParseManifest {
        manifest: Digest,
        source: serde_json::Error,
    },
    #[error("config {config} of image manifest {manifest} is not a valid image config: {source}")]
    ParseConfig {
        manifest: Digest,
        config: Digest,
        source: serde_json::Error,
    },
    #[error("manifest {manifest}: unknown media type {media_type:?} for its {what}; only OCI and Docker v2 image types are supported")]
    UnknownMediaType {
        manifest: Digest,
        what: &'static str,
        media_type: String,
    },
    #[error("manifest {manifest} names a digest hull cannot use: {value:?} (only sha256)")]
    BadDigest { manifest: Digest, value: String },
    #[error("index {index} has no manifest for platform {wanted}")]
    NoPlatform { index: Digest, wanted: String },
    #[error(
        "image {image}: the manifest lists {layers} layers but the config has {diff_ids} diff_ids"
    )]
    LayerCount {
        image: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("image {image}: blob {digest} is not in the content store (removed by a concurrent prune?); import the image again")]
    MissingBlob { image: Digest, digest: Digest },
    #[error("conflict: unable to {action} {target} (must force) - {reason}")]
    Conflict {
        action: &'static str,
        target: String,
        reason: String,
    },
}

/// Error classes, for the API's mapping to HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Internal,
}

impl ImageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) | ImageError::NoPlatform { .. } => ErrorKind::NotFound,
            ImageError::Conflict { .. } => ErrorKind::Conflict,
            ImageError::Ambiguous { .. }
            | ImageError::BadReference(_)
            | ImageError::TagIsDigest(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Internal,
        }
    }
}

/// An image as the store knows it. The image ID is the config digest, as in Docker.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    pub id: Digest,
    /// The manifest this image was recorded from (single-platform image manifest).
    pub manifest: Digest,
    /// Familiar "repo:tag" names.
    pub repo_tags: Vec<String>,
    /// Familiar "repo@sha256:..." names (for pulled/pushed images).
    pub repo_digests: Vec<String>,
    /// Layer blob digests (compressed, as in the manifest), bottom first.
    pub layers: Vec<Digest>,
    /// Uncompressed layer digests (config rootfs.diff_ids), bottom first.
    pub diff_ids: Vec<Digest>,
    /// Sum of the layer blob sizes.
    pub size: u64,
    /// The config's "created", RFC 3339.
    pub created: Option<String>,
    /// The multi-platform index the manifest was chosen from, if any (kept for GC and push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
    /// When a name was last given to this image (RFC 3339), Docker's Metadata.LastTagTime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tag_time: Option<String>,
}

/// An image to record, with its names (see [`ImageStore::register_many`]).
#[derive(Debug, Clone)]
pub struct Registration {
    /// An image manifest, or an index (the host platform's manifest is chosen).
    pub manifest: Digest,
    /// The index `manifest` was chosen from, kept for GC and push.
    pub index: Option<Digest>,
    pub names: Vec<Reference>,
}

/// The image store: a content store plus names.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub content: ContentStore,
    root: PathBuf,
}

/// "amd64", "arm64", ... for the running host, as in OCI platforms.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "x86" => "386",
        other => other,
    }
}

impl ImageStore {
    /// Opens (creating) a store under `root` (content in `root/content`).
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(root.join("content"))?;
        let s = ImageStore {
            content,
            root: root.to_path_buf(),
        };
        // Create the lock files now, so that later operations never add files.
        drop(s.gc_lock(false)?);
        drop(index::lock(&s.root.join("images.lock"), true)?);
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// Imports hold this shared; garbage collection and removal hold it exclusive, so blobs
    /// being imported are never collected before they are named.
    pub fn gc_lock(&self, exclusive: bool) -> Result<Lock, ImageError> {
        Ok(index::lock(&self.root.join("gc.lock"), exclusive)?)
    }

    /// A snapshot of the index.
    pub(crate) fn read_index(&self) -> Result<Index, ImageError> {
        Ok(Index::load(&self.index_path())?)
    }

    /// Changes the index under its lock and saves it if `f` succeeds.
    pub(crate) fn update<T>(
        &self,
        f: impl FnOnce(&mut Index) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _l = index::lock(&self.root.join("images.lock"), true)?;
        let mut idx = Index::load(&self.index_path())?;
        let out = f(&mut idx)?;
        idx.save(&self.index_path())?;
        Ok(out)
    }

    /// Records an image whose manifest, config and layers are already in the content store,
    /// and names it `reference` (a tag moves from any image that had it). Returns the record.
    pub fn register(
        &self,
        manifest: &Digest,
        reference: Option<&Reference>,
    ) -> Result<ImageRecord, ImageError> {
        let refs: Vec<Reference> = reference.into_iter().cloned().collect();
        self.register_named(manifest, &refs)
    }

    /// [`ImageStore::register`] with any number of names (tags and digest references), in one
    /// index update. `manifest` may be an image index: the host platform's manifest is chosen.
    pub fn register_named(
        &self,
        manifest: &Digest,
        refs: &[Reference],
    ) -> Result<ImageRecord, ImageError> {
        let reg = Registration {
            manifest: manifest.clone(),
            index: None,
            names: refs.to_vec(),
        };
        Ok(self.register_many(&[reg])?.remove(0))
    }

    /// Records several images and their names in one index update (all or none).
    pub fn register_many(&self, regs: &[Registration]) -> Result<Vec<ImageRecord>, ImageError> {
        let mut recs = Vec::new();
        for reg in regs {
            let mut rec = self.record_from(&reg.manifest)?;
            if reg.index.is_some() {
                rec.index = reg.index.clone();
            }
            for d in rec
                .layers
                .iter()
                .chain([&rec.id, &rec.manifest])
                .chain(&rec.index)
            {
                if !self.content.exists(d) {
                    return Err(ImageError::MissingBlob {
                        image: rec.id.clone(),
                        digest: d.clone(),
                    });
                }
            }
            recs.push(rec);
        }
        let now = crate::time::now_rfc3339();
        self.update(|idx| {
            for (mut rec, reg) in recs.into_iter().zip(regs) {
                if let Some(old) = idx.images.get(rec.id.hex()) {
                    rec.last_tag_time = old.last_tag_time.clone();
                }
                if !reg.names.is_empty() {
                    rec.last_tag_time = Some(now.clone());
                }
                for r in &reg.names {
                    // "repo:tag@digest" is two names: the tag and the digest reference
                    if r.tag.is_some() && r.digest.is_some() {
                        let (mut t, mut d) = (r.clone(), r.clone());
                        t.digest = None;
                        d.tag = None;
                        idx.names.insert(t.to_string(), rec.id.clone());
                        idx.names.insert(d.to_string(), rec.id.clone());
                    } else {
                        idx.names.insert(r.to_string(), rec.id.clone());
                    }
                }
                idx.images.insert(rec.id.hex().to_string(), rec);
            }
            idx.fill_names();
            Ok(regs
                .iter()
                .filter_map(|reg| {
                    let id = idx.images.values().find(|r| {
                        r.manifest == reg.manifest || r.index.as_ref() == Some(&reg.manifest)
                    })?;
                    Some(id.clone())
                })
                .collect())
        })
    }

    /// Builds a record from a manifest (or index) blob in the content store.
    fn record_from(&self, digest: &Digest) -> Result<ImageRecord, ImageError> {
        let bytes = self.content.read(digest)?;
        let parse = |source| ImageError::ParseManifest {
            manifest: digest.clone(),
            source,
        };
        let kind: media::Probe = serde_json::from_slice(&bytes).map_err(parse)?;
        if kind.is_index() {
            let index: ImageIndex = serde_json::from_slice(&bytes).map_err(parse)?;
            let chosen = media::pick_platform(&index, host_arch(), "linux").ok_or_else(|| {
                ImageError::NoPlatform {
                    index: digest.clone(),
                    wanted: format!("linux/{}", host_arch()),
                }
            })?;
            let mut rec = self.record_from(&chosen)?;
            rec.index = Some(digest.clone());
            return Ok(rec);
        }
        let m: ImageManifest = serde_json::from_slice(&bytes).map_err(parse)?;
        media::check_manifest(&m).map_err(|(what, media_type)| ImageError::UnknownMediaType {
            manifest: digest.clone(),
            what,
            media_type,
        })?;
        let config: Digest =
            m.config()
                .digest()
                .to_string()
                .parse()
                .map_err(|_| ImageError::BadDigest {
                    manifest: digest.clone(),
                    value: m.config().digest().to_string(),
                })?;
        let cbytes = self.content.read(&config)?;
        let c: ImageConfiguration =
            serde_json::from_slice(&cbytes).map_err(|source| ImageError::ParseConfig {
                manifest: digest.clone(),
                config: config.clone(),
                source,
            })?;
        let mut layers = Vec::new();
        for l in m.layers() {
            layers.push(
                l.digest()
                    .to_string()
                    .parse()
                    .map_err(|_| ImageError::BadDigest {
                        manifest: digest.clone(),
                        value: l.digest().to_string(),
                    })?,
            );
        }
        let diff_ids: Vec<Digest> = c
            .rootfs()
            .diff_ids()
            .iter()
            .filter_map(|d| d.parse().ok())
            .collect();
        if diff_ids.len() != layers.len() || diff_ids.len() != c.rootfs().diff_ids().len() {
            return Err(ImageError::LayerCount {
                image: config,
                layers: layers.len(),
                diff_ids: c.rootfs().diff_ids().len(),
            });
        }
        Ok(ImageRecord {
            id: config,
            manifest: digest.clone(),
            repo_tags: vec![],
            repo_digests: vec![],
            layers,
            diff_ids,
            size: m.layers().iter().map(|l| l.size()).sum(),
            created: c.created().clone(),
            index: None,
            last_tag_time: None,
        })
    }

    /// Finds an image by name ("busybox", "busybox:1"), digest reference, full or short ID.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, ImageError> {
        let idx = self.read_index()?;
        let id = find(&idx, name_or_id)?;
        Ok(idx.images[id.hex()].clone())
    }

    /// Every image, newest first.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut v: Vec<ImageRecord> = self.read_index()?.images.into_values().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    /// Names the image `source` also `target` (a tag moves from any image that had it).
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageRecord, ImageError> {
        let r = Reference::parse(target)?;
        if r.digest.is_some() {
            return Err(ImageError::TagIsDigest(target.to_string()));
        }
        let now = crate::time::now_rfc3339();
        self.update(|idx| {
            let id = find(idx, source)?;
            idx.names.insert(r.to_string(), id.clone());
            let rec = idx.images.get_mut(id.hex()).expect("found");
            rec.last_tag_time = Some(now);
            idx.fill_names();
            Ok(idx.images[id.hex()].clone())
        })
    }

    /// Removes one name (tag or digest reference); the image stays. Returns the familiar name.
    pub fn untag(&self, name: &str) -> Result<String, ImageError> {
        let r = Reference::parse(name)?;
        self.update(|idx| {
            idx.names
                .remove(&r.to_string())
                .map(|_| r.familiar())
                .ok_or_else(|| ImageError::NotFound(name.to_string()))
        })
    }
}

/// True if `s` names the image by its ID (full, `sha256:` form, or a hex prefix of it).
pub(crate) fn is_id_form(s: &str, id: &Digest) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    !hex.is_empty() && id.hex().starts_with(hex)
}

/// Docker's lookup order: a full ID, then a name, then a unique ID prefix.
pub(crate) fn find(idx: &Index, s: &str) -> Result<Digest, ImageError> {
    let not_found = || ImageError::NotFound(s.to_string());
    if let Some(hex) = s.strip_prefix("sha256:") {
        if let Ok(d) = Digest::from_hex(hex) {
            return idx
                .images
                .contains_key(d.hex())
                .then_some(d)
                .ok_or_else(not_found);
        }
        return by_prefix(idx, hex, s);
    }
    if let Ok(d) = Digest::from_hex(s) {
        if idx.images.contains_key(d.hex()) {
            return Ok(d);
        }
    }
    if let Ok(mut r) = Reference::parse(s) {
        if r.digest.is_some() {
            r.tag = None;
        }
        if let Some(id) = idx.names.get(&r.to_string()) {
            return Ok(id.clone());
        }
    }
    by_prefix(idx, s, s)
}

fn by_prefix(idx: &Index, hex: &str, input: &str) -> Result<Digest, ImageError> {
    if hex.is_empty()
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ImageError::NotFound(input.to_string()));
    }
    let matches: Vec<&ImageRecord> = idx
        .images
        .range(hex.to_string()..)
        .take_while(|(k, _)| k.starts_with(hex))
        .map(|(_, r)| r)
        .collect();
    match matches.len() {
        0 => Err(ImageError::NotFound(input.to_string())),
        1 => Ok(matches[0].id.clone()),
        n => Err(ImageError::Ambiguous {
            prefix: input.to_string(),
            matches: n,
        }),
    }
}
