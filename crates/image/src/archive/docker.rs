//! `docker save` archives: `manifest.json` lists each image's config file, tags and layer
//! files, either `<id>/layer.tar` (classic) or `blobs/sha256/<hex>` (docker 25+). An image's
//! manifest is made here (OCI), its config and layers stored as they are in the archive.

use std::collections::BTreeMap;

use super::layer::{self, put_small};
use super::load::{check_config, diff_ids, LoadOptions};
use super::staging::{Registration, Staging};
use super::tarindex::TarIndex;
use super::ArchiveError;
use crate::digest::Digest;
use crate::media;
use crate::progress::Progress;
use crate::reference::Reference;

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The digest a path names, for `blobs/sha256/<hex>` and `<hex>.json`.
pub(super) fn digest_in_path(p: &str) -> Option<Digest> {
    if let Some(hex) = p.strip_prefix("blobs/sha256/") {
        return Digest::from_hex(hex).ok();
    }
    p.strip_suffix(".json")
        .and_then(|h| Digest::from_hex(h).ok())
}

fn json_err(image: &str, file: &str) -> impl FnOnce(serde_json::Error) -> ArchiveError {
    let (image, file) = (image.to_string(), file.to_string());
    move |source| ArchiveError::Json {
        image,
        file,
        source,
    }
}

pub(super) fn read_small(
    tar: &TarIndex,
    file: &str,
    image: &str,
    by: &'static str,
) -> Result<Vec<u8>, ArchiveError> {
    tar.read_small(file)
        .ok_or_else(|| ArchiveError::Missing {
            image: image.to_string(),
            file: file.to_string(),
            by,
        })?
        .map_err(|source| ArchiveError::ReadLayer {
            image: image.to_string(),
            layer: file.to_string(),
            source,
        })
}

/// Stores every image of the archive; returns what to name.
pub fn read(
    tar: &TarIndex,
    staging: &mut Staging,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Vec<Registration>, ArchiveError> {
    let archive = tar.path().display().to_string();
    let bytes = read_small(tar, "manifest.json", &archive, "the archive")?;
    let entries: Vec<Entry> =
        serde_json::from_slice(&bytes).map_err(json_err(&archive, "manifest.json"))?;
    // Old archives name images only in `repositories`: {repo: {tag: top layer id}}.
    let repositories: BTreeMap<String, BTreeMap<String, String>> =
        match tar.read_small("repositories") {
            Some(Ok(b)) => serde_json::from_slice(&b).unwrap_or_default(),
            _ => BTreeMap::new(),
        };
    let originals = original_manifests(tar);
    let mut regs = Vec::new();
    for e in entries {
        let image = e
            .repo_tags
            .as_ref()
            .and_then(|t| t.first().cloned())
            .unwrap_or_else(|| e.config.clone());
        let cbytes = read_small(tar, &e.config, &image, "manifest.json")?;
        let config_digest = Digest::of(&cbytes);
        if let Some(named) = digest_in_path(&e.config) {
            if named != config_digest {
                return Err(ArchiveError::BlobDigest {
                    image,
                    file: e.config.clone(),
                    source: crate::StoreError::DigestMismatch {
                        expected: named,
                        actual: config_digest,
                        size: cbytes.len() as u64,
                    },
                });
            }
        }
        let config = check_config(&cbytes, &image, &e.config, opts)?;
        let want = diff_ids(&config, e.layers.len(), &image)?;
        let mut jobs = Vec::with_capacity(e.layers.len());
        for (path, diff_id) in e.layers.iter().zip(&want) {
            let size = tar.size(path).ok_or_else(|| ArchiveError::Missing {
                image: image.clone(),
                file: path.clone(),
                by: "manifest.json",
            })?;
            jobs.push(layer::Job {
                path: path.clone(),
                expected: path
                    .starts_with("blobs/")
                    .then(|| digest_in_path(path))
                    .flatten(),
                size,
                diff_id: diff_id.clone(),
            });
        }
        let outs = layer::ingest_all(staging, tar, &image, &jobs, opts.unpack(), progress)?;
        let descs: Vec<serde_json::Value> = outs
            .iter()
            .map(|out| {
                serde_json::json!({
                    "mediaType": out.compression.media_type(),
                    "digest": out.blob.to_string(),
                    "size": out.size,
                })
            })
            .collect();
        put_small(staging, &cbytes, Some(&config_digest), &image, &e.config)?;
        let blobs: Vec<&serde_json::Value> = descs.iter().map(|d| &d["digest"]).collect();
        let original = originals.iter().find(|(_, v)| {
            v.pointer("/config/digest").and_then(|d| d.as_str()) == Some(&config_digest.to_string())
                && v["layers"]
                    .as_array()
                    .map(|l| l.iter().map(|x| &x["digest"]).collect::<Vec<_>>())
                    .as_ref()
                    == Some(&blobs)
        });
        if let Some((bytes, _)) = original {
            // docker 25+: keep docker's own manifest (and so its digest)
            let manifest = put_small(staging, bytes, None, &image, "manifest")?;
            regs.push(Registration {
                manifest,
                index: None,
                names: names_of(&e, &image, &repositories)?,
            });
            continue;
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {
                "mediaType": media::OCI_CONFIG,
                "digest": config_digest.to_string(),
                "size": cbytes.len(),
            },
            "layers": descs,
        });
        let mbytes = serde_json::to_vec(&manifest).expect("manifest serialises");
        let manifest = put_small(staging, &mbytes, None, &image, "manifest")?;
        regs.push(Registration {
            manifest,
            index: None,
            names: names_of(&e, &image, &repositories)?,
        });
    }
    Ok(regs)
}

/// The image's names: manifest.json's RepoTags, else what `repositories` gives its top layer.
fn names_of(
    e: &Entry,
    image: &str,
    repositories: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<Vec<Reference>, ArchiveError> {
    let mut tag_list = e.repo_tags.clone().unwrap_or_default();
    if tag_list.is_empty() {
        let top = e
            .layers
            .last()
            .and_then(|l| l.split('/').next())
            .unwrap_or("");
        for (repo, ts) in repositories {
            for (t, id) in ts {
                if id == top {
                    tag_list.push(format!("{repo}:{t}"));
                }
            }
        }
    }
    tag_list
        .iter()
        .map(|t| {
            Reference::parse(t).map_err(|source| ArchiveError::Name {
                image: image.to_string(),
                name: t.clone(),
                source,
            })
        })
        .collect()
}

/// Image manifests that a docker 25+ archive's `index.json` names (bytes checked against
/// their digests), so a load keeps docker's manifest digests. Anything unreadable is skipped:
/// manifest.json is what the load follows.
fn original_manifests(tar: &TarIndex) -> Vec<(Vec<u8>, serde_json::Value)> {
    let Some(Ok(index)) = tar.read_small("index.json") else {
        return vec![];
    };
    let Ok(index) = serde_json::from_slice::<serde_json::Value>(&index) else {
        return vec![];
    };
    let mut out = Vec::new();
    for m in index["manifests"].as_array().into_iter().flatten() {
        if !m["mediaType"].as_str().is_some_and(media::is_manifest_type) {
            continue;
        }
        let Some(d) = m["digest"].as_str().and_then(|d| d.parse::<Digest>().ok()) else {
            continue;
        };
        let Some(Ok(bytes)) = tar.read_small(&format!("blobs/sha256/{}", d.hex())) else {
            continue;
        };
        if Digest::of(&bytes) != d {
            continue;
        }
        let known = serde_json::from_slice::<oci_spec::image::ImageManifest>(&bytes)
            .is_ok_and(|m| media::check_manifest(&m).is_ok());
        if let (true, Ok(v)) = (known, serde_json::from_slice(&bytes)) {
            out.push((bytes, v));
        }
    }
    out
}
