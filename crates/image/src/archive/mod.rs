//! Image archives in and out of the store.
//!
//! - [`load`]: `docker save` archives (the classic `<id>/layer.tar` layout and the OCI-style
//!   `blobs/sha256/` layout of docker 25+, with `manifest.json` and `repositories`) and OCI
//!   image-layout archives (`oci-layout`, `index.json`, `blobs/`), plain or gzip/zstd.
//! - [`save`]: writes Docker's `manifest.json` layout with OCI blobs (what docker 25+ writes;
//!   older `docker load` reads it through `manifest.json`).
//! - [`import`]: a plain rootfs tarball as a one-layer image, with Docker `--change`s.
//!
//! Every blob is streamed and verified against its digest on its way into the content store;
//! an image's names are registered only after every blob of every image in the archive is
//! committed, and a failed load removes the blobs it added, so the store is left as it was.

mod changes;
mod docker;
pub mod import;
mod layer;
pub mod load;
mod oci;
pub mod save;
mod staging;
mod tarindex;

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::images::ImageError;
use crate::reference::ReferenceError;
use crate::store::StoreError;

pub use changes::apply_changes;
pub use import::{import, ImportOptions};
pub use load::{load, load_file, LoadOptions};
pub use save::save;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("archive {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("archive {path} is not a readable tar archive (corrupt or truncated?): {source}")]
    ReadTar { path: PathBuf, source: io::Error },
    #[error("archive {path} is truncated: entry {entry} ends at byte {end} but the archive has {size}; copy it again")]
    Truncated {
        path: PathBuf,
        entry: String,
        end: u64,
        size: u64,
    },
    #[error("archive {path} has neither manifest.json (docker save) nor index.json (OCI layout)")]
    NoManifest { path: PathBuf },
    #[error("image {image}: the archive has no file {file} (named by {by})")]
    Missing {
        image: String,
        file: String,
        by: &'static str,
    },
    #[error("image {image}: {file} is not valid JSON of its kind: {source}")]
    Json {
        image: String,
        file: String,
        source: serde_json::Error,
    },
    #[error("image {image}: {file} names a bad digest {value:?}")]
    BadDigest {
        image: String,
        file: String,
        value: String,
    },
    #[error("image {image}: {file} does not match its digest (the archive is corrupt): {source}")]
    BlobDigest {
        image: String,
        file: String,
        source: StoreError,
    },
    #[error("image {image}: {layers} layers but the config has {diff_ids} diff_ids")]
    LayerCount {
        image: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("image {image}: layer {layer} uncompresses to {actual} but the config expects {expected} (the archive is corrupt)")]
    DiffId {
        image: String,
        layer: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("image {image}: unknown media type {media_type:?} for its {what}; only OCI and Docker v2 image types are supported")]
    MediaType {
        image: String,
        what: &'static str,
        media_type: String,
    },
    #[error(
        "image {image} is for platform {found}, not {wanted}; load an archive made for {wanted}"
    )]
    Platform {
        image: String,
        wanted: String,
        found: String,
    },
    #[error("image {image}: layer {layer} is {kind}-compressed; only gzip and zstd are supported")]
    Compression {
        image: String,
        layer: String,
        kind: &'static str,
    },
    #[error("image {image}: reading layer {layer} failed (truncated or corrupt?): {source}")]
    ReadLayer {
        image: String,
        layer: String,
        source: io::Error,
    },
    #[error("image {image}: unpacking layer {layer}: {source}")]
    Unpack {
        image: String,
        layer: String,
        source: Box<crate::snapshot::SnapshotError>,
    },
    #[error("image {image}: bad name {name:?}: {source}")]
    Name {
        image: String,
        name: String,
        source: ReferenceError,
    },
    #[error("--change {change:?}: {reason}")]
    Change { change: String, reason: String },
    #[error("writing the archive: {what}: {source}")]
    Write { what: String, source: io::Error },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] ImageError),
}
