//! Test archives made in memory: layers, `docker save` archives in both layouts, OCI layouts;
//! and a byte-exact listing of a store's files.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hull_image::images::host_arch;
use hull_image::Digest;
use serde_json::json;

pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

pub fn zstd(b: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(b, 1).unwrap()
}

#[derive(Clone, Copy, PartialEq)]
pub enum Layout {
    /// `<id>/layer.tar`, `<config hex>.json`
    Classic,
    /// `blobs/sha256/<hex>` (docker 25+)
    Blobs,
}

/// An image: its layers as stored (maybe compressed) with their uncompressed tars.
pub struct TestImage {
    pub tags: Vec<String>,
    pub layers: Vec<(Vec<u8>, Vec<u8>)>,
    pub arch: String,
    pub label: String,
}

impl TestImage {
    pub fn new(tag: &str, layers: Vec<(Vec<u8>, Vec<u8>)>) -> TestImage {
        TestImage {
            tags: vec![tag.to_string()],
            layers,
            arch: host_arch().to_string(),
            label: tag.to_string(),
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|(_, raw)| Digest::of(raw).to_string())
            .collect();
        let history: Vec<_> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, _)| json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("layer {i}")}))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": self.arch, "os": "linux", "created": "2024-01-02T03:04:05Z",
            "config": {"Cmd": ["sh"], "Labels": {"test": self.label}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .unwrap()
    }

    pub fn id(&self) -> Digest {
        Digest::of(&self.config())
    }
}

/// A `docker save` archive of `images`.
pub fn docker_archive(images: &[TestImage], layout: Layout) -> Vec<u8> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut manifest = Vec::new();
    for img in images {
        let config = img.config();
        let cd = Digest::of(&config);
        let cpath = match layout {
            Layout::Classic => format!("{}.json", cd.hex()),
            Layout::Blobs => format!("blobs/sha256/{}", cd.hex()),
        };
        files.insert(cpath.clone(), config);
        let mut lpaths = Vec::new();
        for (stored, raw) in &img.layers {
            let p = match layout {
                Layout::Classic => format!("{}/layer.tar", Digest::of(raw).hex()),
                Layout::Blobs => format!("blobs/sha256/{}", Digest::of(stored).hex()),
            };
            files.insert(p.clone(), stored.clone());
            lpaths.push(p);
        }
        manifest.push(json!({"Config": cpath, "RepoTags": img.tags, "Layers": lpaths}));
    }
    files.insert(
        "manifest.json".into(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    tar_of(&refs)
}

/// An OCI image-layout archive of one image; `layer_type` overrides every layer media type.
pub fn oci_archive(img: &TestImage, name: Option<&str>, layer_type: Option<&str>) -> Vec<u8> {
    let config = img.config();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let blob = |b: &[u8]| format!("blobs/sha256/{}", Digest::of(b).hex());
    files.insert(blob(&config), config.clone());
    let mut layers = Vec::new();
    for (stored, _) in &img.layers {
        files.insert(blob(stored), stored.clone());
        let mt = layer_type.unwrap_or(match stored.first() {
            Some(0x1f) => "application/vnd.oci.image.layer.v1.tar+gzip",
            Some(0x28) => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        });
        layers.push(json!({"mediaType": mt, "digest": Digest::of(stored).to_string(), "size": stored.len()}));
    }
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": layers,
        "annotations": {"org.opencontainers.image.title": "made by the test"},
    }))
    .unwrap();
    files.insert(blob(&manifest), manifest.clone());
    let mut desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&manifest).to_string(), "size": manifest.len()});
    if let Some(n) = name {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": n});
    }
    files.insert(
        "index.json".into(),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [desc]})).unwrap(),
    );
    files.insert(
        "oci-layout".into(),
        br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
    );
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    tar_of(&refs)
}

/// A layer tar with one file of `n` pseudo-random bytes (seeded), plus its stored form.
pub fn layer(seed: u8, n: usize, compress: fn(&[u8]) -> Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let mut x = seed as u32 + 1;
    let data: Vec<u8> = (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    let raw = tar_of(&[(&format!("file{seed}"), &data)]);
    (compress(&raw), raw)
}

pub fn plain(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

/// Every file under `root` with its contents' digest.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), String::new());
                todo.push(p);
            } else {
                out.insert(rel, Digest::of(&std::fs::read(&p).unwrap()).to_string());
            }
        }
    }
    out
}
