//! OCI image-layout archives (`oci-layout`, `index.json`, `blobs/sha256/`), as written by
//! `skopeo copy ... oci-archive:` and umoci. Manifests, indexes and configs are stored with
//! their original bytes, so manifest digests survive.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::docker::read_small;
use super::layer::{self, put_small};
use super::load::{check_config, diff_ids, LoadOptions};
use super::staging::{Registration, Staging};
use super::tarindex::TarIndex;
use super::ArchiveError;
use crate::digest::Digest;
use crate::media;
use crate::progress::Progress;
use crate::reference::Reference;

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn digest_of(desc: &Descriptor, image: &str, file: &str) -> Result<Digest, ArchiveError> {
    desc.digest()
        .to_string()
        .parse()
        .map_err(|_| ArchiveError::BadDigest {
            image: image.to_string(),
            file: file.to_string(),
            value: desc.digest().to_string(),
        })
}

/// Reads a small blob named by `desc` and stores it, verified.
fn small_blob(
    tar: &TarIndex,
    staging: &mut Staging,
    d: &Digest,
    image: &str,
) -> Result<Vec<u8>, ArchiveError> {
    let bytes = read_small(tar, &blob_path(d), image, "a descriptor")?;
    put_small(staging, &bytes, Some(d), image, &blob_path(d))?;
    Ok(bytes)
}

/// The name an index entry gives its image: containerd's full name, or an OCI ref.name that
/// is a whole reference ("busybox:latest"; a bare "latest" names no repository).
fn name_of(desc: &Descriptor) -> Option<String> {
    let a = desc.annotations().as_ref()?;
    if let Some(n) = a.get("io.containerd.image.name") {
        return Some(n.clone());
    }
    let r = a.get("org.opencontainers.image.ref.name")?;
    (r.contains(':') || r.contains('/')).then(|| r.clone())
}

pub fn read(
    tar: &TarIndex,
    staging: &mut Staging,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Vec<Registration>, ArchiveError> {
    let archive = tar.path().display().to_string();
    let bytes = read_small(tar, "index.json", &archive, "the OCI layout")?;
    let index: ImageIndex =
        serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json {
            image: archive.clone(),
            file: "index.json".into(),
            source,
        })?;
    let mut regs = Vec::new();
    for desc in index.manifests() {
        let name = name_of(desc);
        let mut d = digest_of(desc, &archive, "index.json")?;
        let image = name.clone().unwrap_or_else(|| d.to_string());
        let mut mt = desc.media_type().to_string();
        let mut nested = None;
        if media::is_index_type(&mt) {
            let b = small_blob(tar, staging, &d, &image)?;
            let idx: ImageIndex =
                serde_json::from_slice(&b).map_err(|source| ArchiveError::Json {
                    image: image.clone(),
                    file: blob_path(&d),
                    source,
                })?;
            let chosen = idx.manifests().iter().find(|m| {
                m.platform().as_ref().is_some_and(|p| {
                    p.os().to_string() == opts.os && p.architecture().to_string() == opts.arch
                })
            });
            let Some(chosen) = chosen else {
                return Err(ArchiveError::Platform {
                    image,
                    wanted: format!("{}/{}", opts.os, opts.arch),
                    found: "only other platforms in its index".into(),
                });
            };
            nested = Some(d.clone());
            d = digest_of(chosen, &image, &blob_path(&d))?;
            mt = chosen.media_type().to_string();
        }
        if !media::is_manifest_type(&mt) {
            return Err(ArchiveError::MediaType {
                image,
                what: "manifest",
                media_type: mt,
            });
        }
        let mbytes = small_blob(tar, staging, &d, &image)?;
        let m: ImageManifest =
            serde_json::from_slice(&mbytes).map_err(|source| ArchiveError::Json {
                image: image.clone(),
                file: blob_path(&d),
                source,
            })?;
        media::check_manifest(&m).map_err(|(what, media_type)| ArchiveError::MediaType {
            image: image.clone(),
            what,
            media_type,
        })?;
        let cd = digest_of(m.config(), &image, &blob_path(&d))?;
        let cbytes = read_small(tar, &blob_path(&cd), &image, "the manifest")?;
        let config = check_config(&cbytes, &image, &blob_path(&cd), opts)?;
        let want = diff_ids(&config, m.layers().len(), &image)?;
        let mut jobs = Vec::with_capacity(m.layers().len());
        for (l, diff_id) in m.layers().iter().zip(&want) {
            let ld = digest_of(l, &image, &blob_path(&d))?;
            jobs.push(layer::Job {
                path: blob_path(&ld),
                expected: Some(ld),
                size: l.size(),
                diff_id: diff_id.clone(),
            });
        }
        layer::ingest_all(staging, tar, &image, &jobs, opts.unpack(), progress)?;
        put_small(staging, &cbytes, Some(&cd), &image, &blob_path(&cd))?;
        let names = match &name {
            Some(n) => vec![Reference::parse(n).map_err(|source| ArchiveError::Name {
                image: image.clone(),
                name: n.clone(),
                source,
            })?],
            None => vec![],
        };
        regs.push(Registration {
            manifest: d,
            index: nested,
            names,
        });
    }
    Ok(regs)
}
