//! hull's image store.
//!
//! - [`digest`]: content digests (`sha256:<hex>`), parsed and checked.
//! - [`store`]: the content store: blobs under `blobs/sha256/<hex>`, written to an ingest area
//!   and committed only when their digest matches.

#![forbid(unsafe_code)]

pub mod digest;
pub mod images;
pub mod reference;
pub mod snapshot;
pub mod store;
pub mod unpack;

pub use digest::Digest;
pub use images::{ImageError, ImageRecord, ImageStore};
pub use reference::Reference;
pub use store::{BlobWriter, ContentStore, StoreError};
