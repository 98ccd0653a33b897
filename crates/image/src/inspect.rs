//! Docker's `image inspect` and `image history` data, computed from the image config.

use oci_spec::image::ImageConfiguration;

use crate::digest::Digest;
use crate::images::{ImageError, ImageRecord, ImageStore};

/// `docker image inspect` fields.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectData {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    /// The config's "config" object as stored (Docker's field names).
    pub config: serde_json::Value,
    pub architecture: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub os: String,
    pub size: u64,
    #[serde(rename = "RootFS")]
    pub rootfs: RootFs,
    pub metadata: Metadata,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootFs {
    #[serde(rename = "Type")]
    pub kind: String,
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metadata {
    pub last_tag_time: String,
}

/// One `docker history` row (newest first in a history list).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    /// The image ID for the top row, "<missing>" for rows below, as Docker shows.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

impl ImageStore {
    fn config_of(
        &self,
        rec: &ImageRecord,
    ) -> Result<(ImageConfiguration, serde_json::Value), ImageError> {
        let bytes = self.content.read(&rec.id)?;
        let parse = |source| ImageError::ParseConfig {
            manifest: rec.manifest.clone(),
            config: rec.id.clone(),
            source,
        };
        let typed = serde_json::from_slice(&bytes).map_err(parse)?;
        let raw = serde_json::from_slice(&bytes).map_err(parse)?;
        Ok((typed, raw))
    }

    /// `docker image inspect` data.
    pub fn inspect(&self, name_or_id: &str) -> Result<InspectData, ImageError> {
        let rec = self.resolve(name_or_id)?;
        let (c, raw) = self.config_of(&rec)?;
        let s = |k: &str| {
            raw.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        Ok(InspectData {
            id: rec.id.to_string(),
            repo_tags: rec.repo_tags.clone(),
            repo_digests: rec.repo_digests.clone(),
            parent: String::new(),
            comment: s("comment"),
            created: c.created().clone().unwrap_or_default(),
            docker_version: s("docker_version"),
            author: c.author().clone().unwrap_or_default(),
            config: raw
                .get("config")
                .cloned()
                .unwrap_or(serde_json::Value::Null),
            architecture: c.architecture().to_string(),
            variant: c.variant().clone(),
            os: c.os().to_string(),
            size: rec.size,
            rootfs: RootFs {
                kind: c.rootfs().typ().clone(),
                layers: rec.diff_ids.iter().map(Digest::to_string).collect(),
            },
            metadata: Metadata {
                last_tag_time: rec
                    .last_tag_time
                    .clone()
                    .unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            },
        })
    }

    /// `docker history` rows, newest first. A row's size is its layer blob's size.
    pub fn history(&self, name_or_id: &str) -> Result<Vec<HistoryItem>, ImageError> {
        let rec = self.resolve(name_or_id)?;
        let (c, _) = self.config_of(&rec)?;
        let mut sizes = Vec::new();
        for l in &rec.layers {
            sizes.push(self.content.size(l).unwrap_or(0));
        }
        let mut layer = 0usize;
        let mut rows: Vec<HistoryItem> = Vec::new();
        let history = c.history().clone().unwrap_or_default();
        for h in &history {
            let size = if h.empty_layer().unwrap_or(false) {
                0
            } else {
                layer += 1;
                sizes.get(layer - 1).copied().unwrap_or(0)
            };
            rows.push(HistoryItem {
                id: "<missing>".into(),
                created: h
                    .created()
                    .as_deref()
                    .and_then(crate::time::parse_rfc3339)
                    .unwrap_or(0),
                created_by: h.created_by().clone().unwrap_or_default(),
                tags: vec![],
                size,
                comment: h.comment().clone().unwrap_or_default(),
            });
        }
        if rows.is_empty() {
            // No history in the config: one row per layer, as Docker shows.
            for size in sizes {
                rows.push(HistoryItem {
                    id: "<missing>".into(),
                    created: rec
                        .created
                        .as_deref()
                        .and_then(crate::time::parse_rfc3339)
                        .unwrap_or(0),
                    created_by: String::new(),
                    tags: vec![],
                    size,
                    comment: String::new(),
                });
            }
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = rec.id.to_string();
            top.tags = rec.repo_tags.clone();
        }
        Ok(rows)
    }
}
