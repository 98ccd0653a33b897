//! What can go wrong talking to a registry, named after the failing step, with the image and
//! registry in every message so that a person knows what to fix.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::StoreError;

use super::auth::CredentialsError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: reading the CA file {path}: {cause}")]
    CaFile {
        registry: String,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("registry {registry}: the CA file {path} holds no usable PEM certificate")]
    CaFileEmpty { registry: String, path: PathBuf },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("{image}: connecting to registry {registry} ({url}) timed out or stalled; check that the registry is up and reachable")]
    Timeout {
        image: String,
        registry: String,
        url: String,
    },
    #[error("{image}: TLS with registry {registry} failed ({url}): {detail}; give its CA with --ca-file, or mark it insecure only if it serves plain HTTP on a trusted network")]
    Tls {
        image: String,
        registry: String,
        url: String,
        /// The innermost cause, e.g. "invalid peer certificate: UnknownIssuer".
        detail: String,
    },
    #[error("{image}: cannot reach registry {registry} ({url}): {detail}")]
    Connect {
        image: String,
        registry: String,
        url: String,
        /// The innermost cause, e.g. "Connection refused (os error 111)".
        detail: String,
    },
    #[error("{image}: registry {registry} refused access (401 unauthorized{}){}",
        if *credentials_sent { ", credentials were sent and rejected" } else { ", no credentials were sent: log in or give a config.json with credentials for it" },
        registry_message(message))]
    Unauthorized {
        image: String,
        registry: String,
        credentials_sent: bool,
        message: String,
    },
    #[error(
        "{image}: registry {registry} denied access (403 forbidden){}",
        registry_message(message)
    )]
    Forbidden {
        image: String,
        registry: String,
        message: String,
    },
    #[error(
        "{image}: manifest unknown: registry {registry} has no manifest {reference:?} in this repository"
    )]
    ManifestUnknown {
        image: String,
        registry: String,
        reference: String,
    },
    #[error("{image}: blob unknown: registry {registry} has no blob {digest}")]
    BlobUnknown {
        image: String,
        registry: String,
        digest: Digest,
    },
    #[error(
        "{image}: registry {registry} answered {status} to {method} {url}{}",
        registry_message(message)
    )]
    Status {
        image: String,
        registry: String,
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    #[error("{image}: fetching a token from {realm} for registry {registry} failed: {reason}")]
    Token {
        image: String,
        registry: String,
        realm: String,
        reason: String,
    },
    #[error("{image}: registry {registry} sent an unusable challenge {challenge:?}")]
    Challenge {
        image: String,
        registry: String,
        challenge: String,
    },
    #[error("{image}: reading {what} from registry {registry}: {cause}")]
    Body {
        image: String,
        registry: String,
        what: String,
        cause: io::Error,
    },
    #[error("{image}: manifest {digest} from registry {registry} is not valid JSON of its kind: {cause}")]
    ManifestParse {
        image: String,
        registry: String,
        digest: Digest,
        cause: serde_json::Error,
    },
    #[error(
        "{image}: manifest from registry {registry} has unsupported media type {media_type:?}"
    )]
    MediaType {
        image: String,
        registry: String,
        media_type: String,
    },
    #[error("{image}: manifest from registry {registry} is larger than {limit} bytes; refused")]
    ManifestTooLarge {
        image: String,
        registry: String,
        limit: u64,
    },
    #[error("{image}: registry {registry} returned manifest {actual}, but {expected} was asked for; refused")]
    ManifestDigest {
        image: String,
        registry: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{image}: no manifest for platform {wanted} in the image index (it has: {})", if available.is_empty() { "no platforms listed".to_string() } else { available.join(", ") })]
    NoPlatform {
        image: String,
        wanted: String,
        available: Vec<String>,
    },
    #[error("{image}: blob {digest} from registry {registry} failed verification: {cause}")]
    Verify {
        image: String,
        registry: String,
        digest: Digest,
        cause: Box<StoreError>,
    },
    #[error("{image}: content store: {cause}")]
    Store {
        image: String,
        cause: Box<StoreError>,
    },
    #[error("{image}: reading blob {digest} from the content store: {cause}")]
    ReadBlob {
        image: String,
        digest: Digest,
        cause: io::Error,
    },
    #[error("{image}: registry {registry} gave no usable upload location for blob {digest}")]
    UploadLocation {
        image: String,
        registry: String,
        digest: Digest,
    },
}

fn registry_message(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
