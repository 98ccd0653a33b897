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
    let mut regs = Vec::new();
    for e in entries {
        let tags = e.repo_tags.clone().unwrap_or_default();
        let image = tags.first().cloned().unwrap_or_else(|| e.config.clone());
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
        let mut descs = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(&want) {
            let size = tar.size(path).ok_or_else(|| ArchiveError::Missing {
                image: image.clone(),
                file: path.clone(),
                by: "manifest.json",
            })?;
            let src = tar
                .open_entry(path)
                .expect("located above")
                .map_err(|source| ArchiveError::ReadLayer {
                    image: image.clone(),
                    layer: path.clone(),
                    source,
                })?;
            let expected = path
                .starts_with("blobs/")
                .then(|| digest_in_path(path))
                .flatten();
            let out = layer::ingest(
                staging,
                src,
                expected.as_ref(),
                size,
                &image,
                path,
                diff_id.short(),
                progress,
            )?;
            if &out.diff_id != diff_id {
                return Err(ArchiveError::DiffId {
                    image,
                    layer: path.clone(),
                    expected: diff_id.clone(),
                    actual: out.diff_id,
                });
            }
            descs.push(serde_json::json!({
                "mediaType": out.compression.media_type(),
                "digest": out.blob.to_string(),
                "size": out.size,
            }));
        }
        put_small(staging, &cbytes, Some(&config_digest), &image, &e.config)?;
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
        let mut names = Vec::new();
        let mut tag_list = tags;
        if tag_list.is_empty() {
            let top = e
                .layers
                .last()
                .and_then(|l| l.split('/').next())
                .unwrap_or("");
            for (repo, ts) in &repositories {
                for (t, id) in ts {
                    if id == top {
                        tag_list.push(format!("{repo}:{t}"));
                    }
                }
            }
        }
        for t in tag_list {
            names.push(Reference::parse(&t).map_err(|source| ArchiveError::Name {
                image: image.clone(),
                name: t.clone(),
                source,
            })?);
        }
        regs.push(Registration {
            manifest,
            index: None,
            names,
        });
    }
    Ok(regs)
}
