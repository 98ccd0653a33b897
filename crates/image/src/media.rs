//! Media types the store understands (OCI and Docker v2), and platform choice in an index.

use oci_spec::image::{ImageIndex, ImageManifest};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

const LAYERS: &[&str] = &[
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    DOCKER_LAYER,
    DOCKER_LAYER_GZIP,
    DOCKER_FOREIGN_GZIP,
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// Enough of a manifest or index to tell which it is.
#[derive(serde::Deserialize)]
pub struct Probe {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<serde_json::Value>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl Probe {
    pub fn is_index(&self) -> bool {
        match self.media_type.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(_) => false,
            None => self.manifests.is_some() && self.config.is_none(),
        }
    }

    /// Ok for a known manifest or index type (or none given); the type otherwise.
    pub fn check(&self) -> Result<(), String> {
        match self.media_type.as_deref() {
            None | Some(OCI_INDEX | DOCKER_LIST | OCI_MANIFEST | DOCKER_MANIFEST) => Ok(()),
            Some(other) => Err(other.to_string()),
        }
    }
}

pub fn is_manifest_type(t: &str) -> bool {
    matches!(t, OCI_MANIFEST | DOCKER_MANIFEST)
}

pub fn is_index_type(t: &str) -> bool {
    matches!(t, OCI_INDEX | DOCKER_LIST)
}

pub fn is_layer_type(t: &str) -> bool {
    LAYERS.contains(&t)
}

pub fn is_config_type(t: &str) -> bool {
    matches!(t, OCI_CONFIG | DOCKER_CONFIG)
}

/// Checks a manifest's own, config and layer media types: `Err((what, type))` names the first
/// unknown one.
pub fn check_manifest(m: &ImageManifest) -> Result<(), (&'static str, String)> {
    if let Some(t) = m.media_type() {
        let t = t.to_string();
        if !is_manifest_type(&t) {
            return Err(("manifest", t));
        }
    }
    let t = m.config().media_type().to_string();
    if !is_config_type(&t) {
        return Err(("config", t));
    }
    for l in m.layers() {
        let t = l.media_type().to_string();
        if !is_layer_type(&t) {
            return Err(("layer", t));
        }
    }
    Ok(())
}

/// The digest of the manifest for `os/arch` in an index, if there is one.
pub fn pick_platform(index: &ImageIndex, arch: &str, os: &str) -> Option<crate::Digest> {
    index
        .manifests()
        .iter()
        .find(|d| {
            d.platform()
                .as_ref()
                .is_some_and(|p| p.architecture().to_string() == arch && p.os().to_string() == os)
        })
        .and_then(|d| d.digest().to_string().parse().ok())
}
