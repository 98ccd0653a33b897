//! Push: for an image whose manifest, config and layers are in the content store, upload the
//! blobs the registry lacks (mounted from another repository of the same registry when one is
//! known, else uploaded monolithically, or in chunks when large), then PUT the manifest. An
//! index is pushed with each of its manifests first.

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::ContentStore;

use super::client::{Body, Client, RegistryOptions};
use super::error::{RegistryError, Result};
use super::manifest::{self, Descriptor, Index, Manifest};
use super::{parallel, Progress};

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The digest of the manifest (or index) now tagged in the registry.
    pub digest: Digest,
    pub uploaded: usize,
    pub mounted: usize,
    pub existing: usize,
}

#[derive(Default)]
struct Counts {
    uploaded: AtomicUsize,
    mounted: AtomicUsize,
    existing: AtomicUsize,
}

/// Pushes the manifest (or index) `manifest` from `store` as `target` (its tag, else its
/// digest). `mount_from` names repositories of the same registry that may hold the blobs
/// already ("team/base"); the first is tried as a cross-repository mount.
pub fn push(
    store: &ContentStore,
    manifest: &Digest,
    target: &Reference,
    mount_from: &[String],
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Pushed> {
    let mount_from: Vec<String> = mount_from
        .iter()
        .filter(|m| **m != target.path)
        .cloned()
        .collect();
    let client = Client::new(target, opts, true, &mount_from)?;
    progress(&Progress::status(format!(
        "The push refers to repository [{}]",
        target.familiar_repository()
    )));
    let counts = Counts::default();
    let bytes = read_blob(store, &client, manifest)?;
    let mt = manifest::media_type_of(&bytes, None);
    if manifest::is_index(&mt) {
        let idx: Index = parse(&client, &bytes, manifest)?;
        for child in &idx.manifests {
            let b = read_blob(store, &client, &child.digest)?;
            push_image(
                store,
                &client,
                &b,
                &child.digest,
                &mount_from,
                opts,
                progress,
                &counts,
            )?;
            put_manifest(
                &client,
                &child.digest.to_string(),
                &b,
                &child.media_type_or(&b),
            )?;
        }
    } else if manifest::is_manifest(&mt) {
        push_image(
            store,
            &client,
            &bytes,
            manifest,
            &mount_from,
            opts,
            progress,
            &counts,
        )?;
    } else {
        return Err(RegistryError::MediaType {
            image: client.image.clone(),
            registry: client.registry.clone(),
            media_type: mt,
        });
    }
    let tag = match (&target.tag, &target.digest) {
        (Some(t), _) => t.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "latest".into(),
    };
    let digest = put_manifest(&client, &tag, &bytes, &mt)?;
    progress(&Progress::status(format!(
        "{tag}: digest: {digest} size: {}",
        bytes.len()
    )));
    Ok(Pushed {
        digest,
        uploaded: counts.uploaded.into_inner(),
        mounted: counts.mounted.into_inner(),
        existing: counts.existing.into_inner(),
    })
}

impl Descriptor {
    fn media_type_or(&self, body: &[u8]) -> String {
        if self.media_type.is_empty() {
            manifest::media_type_of(body, None)
        } else {
            self.media_type.clone()
        }
    }
}

fn read_blob(store: &ContentStore, client: &Client, d: &Digest) -> Result<Vec<u8>> {
    store.read(d).map_err(|cause| RegistryError::Store {
        image: client.image.clone(),
        cause: Box::new(cause),
    })
}

fn parse<T: serde::de::DeserializeOwned>(client: &Client, body: &[u8], d: &Digest) -> Result<T> {
    serde_json::from_slice(body).map_err(|cause| RegistryError::ManifestParse {
        image: client.image.clone(),
        registry: client.registry.clone(),
        digest: d.clone(),
        cause,
    })
}

#[allow(clippy::too_many_arguments)]
fn push_image(
    store: &ContentStore,
    client: &Client,
    bytes: &[u8],
    digest: &Digest,
    mount_from: &[String],
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    counts: &Counts,
) -> Result<()> {
    let m: Manifest = parse(client, bytes, digest)?;
    let mut blobs: Vec<&Descriptor> = Vec::new();
    for d in m.layers.iter().chain([&m.config]) {
        if !blobs.iter().any(|b| b.digest == d.digest) {
            blobs.push(d);
        }
    }
    for l in &m.layers {
        progress(&Progress::id("Preparing", l.digest.short()));
    }
    let cancel = AtomicBool::new(false);
    parallel(&blobs, opts.parallel, &cancel, |d| {
        let status = push_blob(store, client, d, mount_from, opts, progress, counts)?;
        if d.digest != m.config.digest {
            progress(&Progress::id(status, d.digest.short()));
        }
        Ok(())
    })
}

fn push_blob(
    store: &ContentStore,
    client: &Client,
    d: &Descriptor,
    mount_from: &[String],
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    counts: &Counts,
) -> Result<String> {
    let blob_url = client.url(&format!("blobs/{}", d.digest));
    match client.send("HEAD", &blob_url, &[], &[], &Body::Empty) {
        Ok(_) => {
            counts.existing.fetch_add(1, Ordering::Relaxed);
            return Ok("Layer already exists".into());
        }
        Err(RegistryError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e),
    }
    let size = store
        .size(&d.digest)
        .map_err(|cause| RegistryError::Store {
            image: client.image.clone(),
            cause: Box::new(cause),
        })?;
    let uploads = client.url("blobs/uploads/");
    let digest = d.digest.to_string();
    let empty = Body::Bytes(&[]);
    let resp = match mount_from.first() {
        Some(from) => client.send(
            "POST",
            &uploads,
            &[],
            &[("mount", &digest), ("from", from)],
            &empty,
        )?,
        None => client.send("POST", &uploads, &[], &[], &empty)?,
    };
    if resp.status() == 201 {
        counts.mounted.fetch_add(1, Ordering::Relaxed);
        return Ok(format!("Mounted from {}", mount_from[0]));
    }
    let location = |resp: &ureq::Response| {
        resp.header("location")
            .map(|l| client.resolve_location(l))
            .ok_or_else(|| RegistryError::UploadLocation {
                image: client.image.clone(),
                registry: client.registry.clone(),
                digest: d.digest.clone(),
            })
    };
    let mut loc = location(&resp)?;
    let short = d.digest.short().to_string();
    let octet = ("Content-Type", "application/octet-stream");
    let final_body = if size <= opts.chunk_size {
        Body::Blob {
            store,
            digest: &d.digest,
            offset: 0,
            len: size,
        }
    } else {
        let mut offset = 0;
        while offset < size {
            let len = opts.chunk_size.min(size - offset);
            let range = format!("{offset}-{}", offset + len - 1);
            let body = Body::Blob {
                store,
                digest: &d.digest,
                offset,
                len,
            };
            let r = client.send(
                "PATCH",
                &loc,
                &[octet, ("Content-Range", &range)],
                &[],
                &body,
            )?;
            loc = location(&r)?;
            offset += len;
            progress(&Progress::push(&short, offset, size));
        }
        Body::Bytes(&[])
    };
    let r = client.send("PUT", &loc, &[octet], &[("digest", &digest)], &final_body)?;
    let _ = r.into_reader().read_to_end(&mut Vec::new());
    counts.uploaded.fetch_add(1, Ordering::Relaxed);
    Ok("Pushed".into())
}

fn put_manifest(client: &Client, reference: &str, body: &[u8], media_type: &str) -> Result<Digest> {
    let url = client.url(&format!("manifests/{reference}"));
    let r = client.send(
        "PUT",
        &url,
        &[("Content-Type", media_type)],
        &[],
        &Body::Bytes(body),
    )?;
    let computed = Digest::of(body);
    match r
        .header("docker-content-digest")
        .and_then(|h| h.parse::<Digest>().ok())
    {
        Some(d) if d != computed => Err(RegistryError::ManifestDigest {
            image: client.image.clone(),
            registry: client.registry.clone(),
            expected: computed,
            actual: d,
        }),
        _ => Ok(computed),
    }
}
