//! Manifests and indexes as the registry serves them (OCI and Docker media types), and
//! platform selection from an index or manifest list.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// What a pull accepts, best first.
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// A platform: `linux/amd64`, `linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// This machine's platform, named as Go names it.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "x86" => "386",
            a => a,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    fn matches(&self, p: &IndexPlatform) -> bool {
        p.os == self.os
            && p.architecture == self.architecture
            && match (&self.variant, &p.variant) {
                (Some(want), Some(have)) => want == have,
                (Some(want), None) => self.architecture == "arm64" && want == "v8",
                (None, _) => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("platform {0:?} is not of the form os/arch[/variant]")]
pub struct PlatformError(String);

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) || !(2..=3).contains(&parts.len()) {
            return Err(PlatformError(s.to_string()));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

/// A content descriptor.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<IndexPlatform>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct IndexPlatform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl fmt::Display for IndexPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// An OCI index or Docker manifest list.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

/// A single-platform image manifest (OCI or Docker schema 2).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The kind of a manifest document, from its `mediaType` field or, failing that, the HTTP
/// `Content-Type` (or the presence of `manifests`).
pub fn media_type_of(body: &[u8], content_type: Option<&str>) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let probe: Option<Probe> = serde_json::from_slice(body).ok();
    if let Some(mt) = probe.as_ref().and_then(|p| p.media_type.clone()) {
        return mt;
    }
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .filter(|c| !c.is_empty() && c != "application/json");
    match (ct, probe.is_some_and(|p| p.manifests.is_some())) {
        (Some(ct), _) => ct,
        (None, true) => OCI_INDEX.into(),
        (None, false) => OCI_MANIFEST.into(),
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The manifest for `want`, or the list of platforms the index has.
pub fn select_platform<'a>(
    index: &'a Index,
    want: &Platform,
) -> Result<&'a Descriptor, Vec<String>> {
    index
        .manifests
        .iter()
        .filter(|d| is_manifest(&d.media_type) || d.media_type.is_empty())
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| {
            index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| p.to_string())
                .collect()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(arch: &str, variant: Option<&str>, n: u8) -> String {
        format!(
            r#"{{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"{arch}","os":"linux"{}}}}}"#,
            Digest::of(&[n]),
            variant
                .map(|v| format!(r#","variant":"{v}""#))
                .unwrap_or_default()
        )
    }

    #[test]
    fn selects_platform() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{},{},{},{}]}}"#,
            desc("arm", Some("v7"), 1),
            desc("arm64", Some("v8"), 2),
            desc("amd64", None, 3),
            r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"platform":{"architecture":"unknown","os":"unknown"}}"#,
        );
        assert_eq!(media_type_of(json.as_bytes(), None), DOCKER_LIST);
        let idx: Index = serde_json::from_str(&json).unwrap();
        let amd: Platform = "linux/amd64".parse().unwrap();
        assert_eq!(
            select_platform(&idx, &amd).unwrap().digest,
            Digest::of(&[3])
        );
        let arm64: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(
            select_platform(&idx, &arm64).unwrap().digest,
            Digest::of(&[2])
        );
        let arm64: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(
            select_platform(&idx, &arm64).unwrap().digest,
            Digest::of(&[2])
        );
        let armv6: Platform = "linux/arm/v6".parse().unwrap();
        let have = select_platform(&idx, &armv6).unwrap_err();
        assert_eq!(
            have,
            [
                "linux/arm/v7",
                "linux/arm64/v8",
                "linux/amd64",
                "unknown/unknown"
            ]
        );
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//x".parse::<Platform>().is_err());
    }

    #[test]
    fn media_type_fallbacks() {
        assert_eq!(
            media_type_of(b"{}", Some("application/vnd.oci.image.manifest.v1+json; x")),
            OCI_MANIFEST
        );
        assert_eq!(
            media_type_of(br#"{"manifests":[]}"#, Some("application/json")),
            OCI_INDEX
        );
        assert_eq!(media_type_of(br#"{"layers":[]}"#, None), OCI_MANIFEST);
    }
}
