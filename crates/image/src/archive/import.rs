//! `docker import`: a plain rootfs tarball (uncompressed, gzip or zstd) as a one-layer image,
//! its config made from Docker `--change` instructions.

use std::io::Read;

use serde_json::{json, Map};

use super::changes::apply_changes;
use super::layer::{self, put_small};
use super::load::LoadOptions;
use super::staging::{Registration, Staging};
use super::ArchiveError;
use crate::images::{ImageRecord, ImageStore};
use crate::media;
use crate::progress::{Message, Progress};
use crate::reference::Reference;

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Docker `--change` instructions.
    pub changes: Vec<String>,
    /// The history comment (`--message`); default "Imported from SOURCE".
    pub message: Option<String>,
    pub platform: LoadOptions,
}

/// Imports `src` (named `source` in history and errors) as an image named `name`.
pub fn import(
    store: &ImageStore,
    src: impl Read,
    source: &str,
    name: Option<&Reference>,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImageRecord, ArchiveError> {
    let image = name
        .map(Reference::familiar)
        .unwrap_or_else(|| source.to_string());
    let mut config = Map::new();
    apply_changes(&mut config, &opts.changes)?;
    let mut staging = Staging::new(store)?;
    let at = layer::Source {
        expected: None,
        total: 0,
        image: &image,
        layer: source,
        id: "import",
    };
    let (out, _) = layer::ingest(store, src, &at, progress, None)?;
    staging.committed(&out.blob);
    let now = crate::time::now_rfc3339();
    let comment = opts
        .message
        .clone()
        .unwrap_or_else(|| format!("Imported from {source}"));
    let cfg = json!({
        "architecture": opts.platform.arch,
        "os": opts.platform.os,
        "created": now,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [out.diff_id.to_string()]},
        "history": [{"created": now, "created_by": "", "comment": comment}],
    });
    let cbytes = serde_json::to_vec(&cfg).expect("config serialises");
    let cd = put_small(&mut staging, &cbytes, None, &image, "config")?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": cd.to_string(), "size": cbytes.len()},
        "layers": [{
            "mediaType": out.compression.media_type(),
            "digest": out.blob.to_string(),
            "size": out.size,
        }],
    });
    let mbytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let md = put_small(&mut staging, &mbytes, None, &image, "manifest")?;
    let reg = Registration {
        manifest: md,
        index: None,
        names: name.into_iter().cloned().collect(),
    };
    let rec = staging.finish(&[reg])?.remove(0);
    progress.emit(Message::stream(format!("{}\n", rec.id)));
    Ok(rec)
}
