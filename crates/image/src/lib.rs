//! hull's image store.
//!
//! - [`digest`]: content digests (`sha256:<hex>`), parsed and checked.
//! - [`store`]: the content store: blobs under `blobs/sha256/<hex>`, written to an ingest area
//!   and committed only when their digest matches.
//! - [`images`]: image records and names ([`index`] persists them), [`remove`] (rmi, gc),
//!   [`inspect`] (inspect and history data).
//! - [`archive`]: `docker save` and OCI archives in and out, rootfs import; [`progress`].
//! - [`registry`]: the registry client (pull, push, auth) over the OCI distribution API.
//! - [`unpack`]: layer blobs (tar, gzip, zstd) into overlayfs lower dirs, confined to them.
//! - [`snapshot`]: one snapshot per layer chain; container root filesystems as mounts.
//! - [`layers`]: an image's layers unpacked into snapshots after a load, import or pull;
//!   [`gc`]: one garbage collection of blobs and snapshots.

#![forbid(unsafe_code)]

pub mod archive;
pub mod digest;
pub mod gc;
pub mod images;
pub mod index;
pub mod inspect;
pub mod layers;
pub mod media;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod remove;
pub mod snapshot;
pub mod store;
pub mod time;
pub mod unpack;

pub use digest::Digest;
pub use images::{ImageError, ImageRecord, ImageStore};
pub use reference::Reference;
pub use store::{BlobWriter, ContentStore, StoreError};
