//! The registry client (OCI distribution spec): pull and push over HTTP(S) with anonymous,
//! Basic and Bearer-token authentication.
//!
//! - [`client`]: transport (rustls, optional CA per registry, plain HTTP only for loopback and
//!   registries marked insecure, connect and stall timeouts), auth retry, error mapping.
//! - [`auth`]: `WWW-Authenticate` parsing, Docker `config.json` credentials.
//! - [`manifest`]: media types, manifests, indexes, platform selection.
//! - [`pull`], [`push`]: the two operations; progress is reported as Docker's JSON messages.
//!
//! Built on `ureq` (blocking HTTP, rustls with ring) rather than `oci-client`: pulls need
//! Range-resumed downloads written straight into the content store's verifying writer, which
//! `oci-client` does not offer, and a blocking client with a few threads keeps the build
//! free of an async runtime.

pub mod auth;
pub mod client;
mod error;
pub mod login;
pub mod manifest;
pub mod pull;
pub mod pull_image;
pub mod push;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

pub use auth::{Credentials, CredentialsError};
pub use client::RegistryOptions;
pub use error::RegistryError;
pub use login::login;
pub use manifest::{Platform, PlatformError};
pub use pull::{pull, Pulled};
pub use pull_image::{pull_image, PullImageError, PullOutcome};
pub use push::{push, Pushed};

use crate::images::{ImageError, ImageRecord, ImageStore};
use crate::reference::Reference;

/// One progress message, as Docker's `/images/create` and `/images/{name}/push` stream them:
/// `{"status":"Downloading","progressDetail":{"current":N,"total":M},"id":"<short id>"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub status: String,
    #[serde(rename = "progressDetail", skip_serializing_if = "Option::is_none")]
    pub progress_detail: Option<ProgressDetail>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProgressDetail {
    pub current: u64,
    pub total: u64,
}

impl Progress {
    pub fn status(status: impl Into<String>) -> Progress {
        Progress {
            status: status.into(),
            progress_detail: None,
            id: None,
        }
    }
    pub fn id(status: impl Into<String>, id: impl Into<String>) -> Progress {
        Progress {
            status: status.into(),
            progress_detail: None,
            id: Some(id.into()),
        }
    }
    fn detail(status: &str, id: &str, current: u64, total: u64) -> Progress {
        Progress {
            status: status.into(),
            progress_detail: Some(ProgressDetail { current, total }),
            id: Some(id.into()),
        }
    }
    pub fn download(id: &str, current: u64, total: u64) -> Progress {
        Self::detail("Downloading", id, current, total)
    }
    pub fn push(id: &str, current: u64, total: u64) -> Progress {
        Self::detail("Pushing", id, current, total)
    }
}

/// Runs `f` over `items` on up to `n` threads; stops handing out work (and sets `cancel`) at
/// the first error, which is returned.
pub(crate) fn parallel<T: Sync>(
    items: &[T],
    n: usize,
    cancel: &AtomicBool,
    f: impl Fn(&T) -> Result<(), RegistryError> + Sync,
) -> Result<(), RegistryError> {
    let next = AtomicUsize::new(0);
    let first_err = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                while !cancel.load(Ordering::Relaxed) {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    if let Err(e) = f(item) {
                        cancel.store(true, Ordering::Relaxed);
                        first_err
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                    }
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Records a pulled image as `repo:tag` (when the reference has a tag) and as
/// `repo@sha256:...` (the digest the reference resolved to).
pub fn register_pulled(
    images: &ImageStore,
    reference: &Reference,
    pulled: &Pulled,
) -> Result<ImageRecord, ImageError> {
    let mut by_digest = reference.clone();
    by_digest.tag = None;
    by_digest.digest = Some(pulled.resolved().clone());
    let mut record = images.register(&pulled.manifest, Some(&by_digest))?;
    if reference.tag.is_some() {
        let mut tagged = reference.clone();
        tagged.digest = None;
        record = images.register(&pulled.manifest, Some(&tagged))?;
    }
    Ok(record)
}
