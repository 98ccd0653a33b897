//! Image records and names on top of the content store. (Interface stub: the archive/metadata
//! work fills in the bodies; signatures are what the registry and snapshot code call.)

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{ContentStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such image: {0}")]
    NotFound(String),
}

/// An image as the store knows it. The image ID is the config digest, as in Docker.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
}

/// The image store: a content store plus names.
#[derive(Debug, Clone)]
pub struct ImageStore {
    pub content: ContentStore,
    root: PathBuf,
}

impl ImageStore {
    /// Opens (creating) a store under `root` (content in `root/content`).
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        let content = ContentStore::open(root.join("content"))?;
        Ok(ImageStore {
            content,
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Records an image whose manifest, config and layers are already in the content store,
    /// and names it `reference` (a tag moves from any image that had it). Returns the record.
    pub fn register(
        &self,
        _manifest: &Digest,
        _reference: Option<&Reference>,
    ) -> Result<ImageRecord, ImageError> {
        todo!("image metadata")
    }

    /// Finds an image by name ("busybox", "busybox:1"), digest reference, full or short ID.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord, ImageError> {
        Err(ImageError::NotFound(name_or_id.to_string()))
    }
}
