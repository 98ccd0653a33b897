//! `docker save`: Docker's `manifest.json` layout with OCI blobs and an OCI `index.json`,
//! as docker 25+ writes it. `docker load` of any version reads `manifest.json`; OCI tools
//! read `index.json`. Blobs are written as stored, each once.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use super::ArchiveError;
use crate::digest::Digest;
use crate::images::{is_id_form, ImageRecord, ImageStore};
use crate::media;
use crate::reference::Reference;

fn write_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let what = what.into();
    move |source| ArchiveError::Write { what, source }
}

fn header(size: u64, dir: bool) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h
}

fn add_bytes<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> Result<(), ArchiveError> {
    let mut h = header(bytes.len() as u64, false);
    b.append_data(&mut h, path, bytes).map_err(write_err(path))
}

/// Writes the images named by `names` (with the tags named; an ID saves the image without
/// tags) as one archive to `out`.
pub fn save(store: &ImageStore, names: &[&str], out: impl Write) -> Result<(), ArchiveError> {
    // Image ID -> (record, tags to include), in the order asked.
    let mut order: Vec<Digest> = Vec::new();
    let mut images: BTreeMap<Digest, (ImageRecord, Vec<Reference>)> = BTreeMap::new();
    for n in names {
        let rec = store.resolve(n)?;
        let tag = if is_id_form(n, &rec.id) {
            None
        } else {
            Reference::parse(n).ok().filter(|r| r.digest.is_none())
        };
        let e = images.entry(rec.id.clone()).or_insert_with(|| {
            order.push(rec.id.clone());
            (rec, vec![])
        });
        if let Some(t) = tag {
            if !e.1.contains(&t) {
                e.1.push(t);
            }
        }
    }
    let mut b = tar::Builder::new(out);
    for d in ["blobs/", "blobs/sha256/"] {
        let mut h = header(0, true);
        b.append_data(&mut h, d, io::empty())
            .map_err(write_err(d))?;
    }
    add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let mut index = Vec::new();
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut blobs: Vec<Digest> = Vec::new();
    for id in &order {
        let (rec, tags) = &images[id];
        let mbytes = store.content.read(&rec.manifest)?;
        let probe: media::Probe =
            serde_json::from_slice(&mbytes).map_err(|source| ArchiveError::Json {
                image: rec.id.to_string(),
                file: rec.manifest.to_string(),
                source,
            })?;
        let mt = probe
            .media_type
            .unwrap_or_else(|| media::OCI_MANIFEST.into());
        let desc = |name: Option<&Reference>| {
            let mut d = serde_json::json!({
                "mediaType": mt,
                "digest": rec.manifest.to_string(),
                "size": mbytes.len(),
            });
            if let Some(r) = name {
                d["annotations"] = serde_json::json!({
                    "io.containerd.image.name": r.to_string(),
                    "org.opencontainers.image.ref.name": r.tag.clone().unwrap_or_default(),
                });
            }
            d
        };
        if tags.is_empty() {
            index.push(desc(None));
        }
        for t in tags {
            index.push(desc(Some(t)));
            let top = rec
                .layers
                .last()
                .map(|l| l.hex().to_string())
                .unwrap_or_default();
            repositories
                .entry(t.familiar_repository())
                .or_default()
                .insert(t.tag.clone().unwrap_or_default(), top);
        }
        let path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        manifest.push(serde_json::json!({
            "Config": path(&rec.id),
            "RepoTags": tags.iter().map(Reference::familiar).collect::<Vec<_>>(),
            "Layers": rec.layers.iter().map(path).collect::<Vec<_>>(),
        }));
        blobs.push(rec.manifest.clone());
        blobs.push(rec.id.clone());
        blobs.extend(rec.layers.iter().cloned());
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": index,
    });
    add_bytes(
        &mut b,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
    )?;
    add_bytes(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    )?;
    add_bytes(
        &mut b,
        "repositories",
        &serde_json::to_vec(&repositories).expect("json"),
    )?;
    let mut written = BTreeSet::new();
    for d in blobs {
        if !written.insert(d.clone()) {
            continue;
        }
        let f = store.content.open_blob(&d)?;
        let size = store.content.size(&d)?;
        let mut h = header(size, false);
        let p = format!("blobs/sha256/{}", d.hex());
        b.append_data(&mut h, &p, f).map_err(write_err(&p))?;
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(write_err("finishing the tar"))?;
    Ok(())
}
