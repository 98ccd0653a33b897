//! Pull: resolve a reference to a manifest (through an index for the wanted platform), then
//! fetch config and layers in parallel into the content store, each verified (digest and
//! size) on commit and resumed with an HTTP Range request from an earlier partial download.
//! The manifest (and index) are committed last, so a failed pull leaves no image behind, and
//! blobs this pull committed are removed again; partial downloads stay as resumable ingest
//! files.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::{ContentStore, StoreError};

use super::client::{Body, Client, RegistryOptions};
use super::error::{RegistryError, Result};
use super::manifest::{self, Descriptor, Index, Manifest, Platform};
use super::{parallel, Progress};

/// Manifests larger than this are refused (real ones are a few KiB).
const MANIFEST_LIMIT: u64 = 4 << 20;

/// What a pull stored.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The single-platform image manifest.
    pub manifest: Digest,
    /// The index (manifest list) the manifest was selected from, if the reference named one.
    pub index: Option<Digest>,
    pub config: Digest,
    pub layers: Vec<Descriptor>,
    /// Whether any blob was downloaded (false: everything was already in the store).
    pub downloaded: bool,
}

impl Pulled {
    /// The digest the reference resolved to (index if any): what `repo@sha256:...` names.
    pub fn resolved(&self) -> &Digest {
        self.index.as_ref().unwrap_or(&self.manifest)
    }
}

/// Pulls `reference` for `platform` into `store`. On failure, the blobs this pull committed
/// are removed again: use it only on a store no other operation is using (the image store's
/// [`super::pull_image`] takes the store's locks and cleans up safely).
pub fn pull(
    store: &ContentStore,
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<Pulled> {
    let (result, committed) = pull_with(
        store,
        reference,
        platform,
        opts,
        progress,
        &Hooks::default(),
    );
    match result {
        Ok(pulled) => {
            final_status(&pulled, reference, progress);
            Ok(pulled)
        }
        Err(e) => {
            for d in &committed {
                let _ = store.delete(d);
            }
            Err(e)
        }
    }
}

/// What a caller of [`pull_with`] learns while the pull runs.
#[derive(Default)]
pub(crate) struct Hooks<'a> {
    /// Called once the image manifest is known (before any blob is fetched).
    pub on_manifest: Option<&'a (dyn Fn(&Manifest) + Sync)>,
    /// Called each time a blob has been committed to the store.
    pub on_blob: Option<&'a (dyn Fn(&Digest) + Sync)>,
    /// Unpacking follows the download: a layer's download ends with "Download complete"
    /// and the unpacker says "Pull complete".
    pub unpacking: bool,
}

/// Docker's closing lines of a pull.
pub(crate) fn final_status(
    pulled: &Pulled,
    reference: &Reference,
    progress: &(dyn Fn(&Progress) + Sync),
) {
    progress(&Progress::status(format!("Digest: {}", pulled.resolved())));
    progress(&Progress::status(if pulled.downloaded {
        format!(
            "Status: Downloaded newer image for {}",
            reference.familiar()
        )
    } else {
        format!("Status: Image is up to date for {}", reference.familiar())
    }));
}

/// The pull itself; returns the blobs it committed (on failure too, for the caller to clean
/// up when that is safe).
pub(crate) fn pull_with(
    store: &ContentStore,
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    hooks: &Hooks,
) -> (Result<Pulled>, Vec<Digest>) {
    let committed = Mutex::new(Vec::new());
    let result = pull_inner(
        store, reference, platform, opts, progress, hooks, &committed,
    );
    (
        result,
        committed.into_inner().unwrap_or_else(|e| e.into_inner()),
    )
}

fn pull_inner(
    store: &ContentStore,
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    hooks: &Hooks,
    committed: &Mutex<Vec<Digest>>,
) -> Result<Pulled> {
    let client = Client::new(reference, opts, false, &[])?;
    let tag_or_digest = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    };
    progress(&Progress::id(
        format!("Pulling from {}", reference.path),
        tag_or_digest.clone(),
    ));
    let (body, digest, media_type) =
        fetch_manifest(store, &client, &tag_or_digest, reference.digest.as_ref())?;
    let (index, manifest_bytes, manifest_digest) = if manifest::is_index(&media_type) {
        let idx: Index = parse(&client, &body, &digest)?;
        let chosen = manifest::select_platform(&idx, platform).map_err(|available| {
            RegistryError::NoPlatform {
                image: client.image.clone(),
                wanted: platform.to_string(),
                available,
            }
        })?;
        let (b, d, mt) = fetch_manifest(
            store,
            &client,
            &chosen.digest.to_string(),
            Some(&chosen.digest),
        )?;
        if !manifest::is_manifest(&mt) {
            return Err(media_type_error(&client, mt));
        }
        (Some((body, digest)), b, d)
    } else if manifest::is_manifest(&media_type) {
        (None, body, digest)
    } else {
        return Err(media_type_error(&client, media_type));
    };
    let m: Manifest = parse(&client, &manifest_bytes, &manifest_digest)?;
    if let Some(f) = hooks.on_manifest {
        f(&m);
    }

    fetch_blobs(store, &client, &m, opts, progress, committed, hooks)?;
    let put = |bytes: &[u8], d: &Digest| -> Result<()> {
        if !store.exists(d) {
            store
                .put(bytes, Some(d))
                .map_err(|cause| RegistryError::Store {
                    image: client.image.clone(),
                    cause: Box::new(cause),
                })?;
            committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(d.clone());
        }
        Ok(())
    };
    put(&manifest_bytes, &manifest_digest)?;
    if let Some((b, d)) = &index {
        put(b, d)?;
    }
    let downloaded = !committed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_empty();
    Ok(Pulled {
        manifest: manifest_digest,
        index: index.map(|(_, d)| d),
        config: m.config.digest.clone(),
        layers: m.layers.clone(),
        downloaded,
    })
}

fn media_type_error(client: &Client, media_type: String) -> RegistryError {
    RegistryError::MediaType {
        image: client.image.clone(),
        registry: client.registry.clone(),
        media_type,
    }
}

fn parse<T: serde::de::DeserializeOwned>(client: &Client, body: &[u8], d: &Digest) -> Result<T> {
    serde_json::from_slice(body).map_err(|cause| RegistryError::ManifestParse {
        image: client.image.clone(),
        registry: client.registry.clone(),
        digest: d.clone(),
        cause,
    })
}

/// A manifest's bytes, digest and media type: from the store when it holds the digest asked
/// for (or, for a tag, the digest a HEAD request names), else by GET. With `expected`, the
/// bytes must have that digest.
fn fetch_manifest(
    store: &ContentStore,
    client: &Client,
    reference: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Digest, String)> {
    let url = client.url(&format!("manifests/{reference}"));
    let known = match expected {
        Some(d) => Some(d.clone()),
        // A registry that cannot answer HEAD is asked by GET, which names the failure.
        None => match client.send(
            "HEAD",
            &url,
            &[("Accept", manifest::ACCEPT)],
            &[],
            &Body::Empty,
        ) {
            Ok(r) => r
                .header("docker-content-digest")
                .and_then(|h| h.parse::<Digest>().ok()),
            Err(RegistryError::Status { .. }) => None,
            Err(e) => return Err(e),
        },
    };
    if let Some(d) = known.filter(|d| store.exists(d)) {
        if let Ok(body) = store.read(&d) {
            let mt = manifest::media_type_of(&body, None);
            return Ok((body, d, mt));
        }
    }
    let resp = client
        .send(
            "GET",
            &url,
            &[("Accept", manifest::ACCEPT)],
            &[],
            &Body::Empty,
        )
        .map_err(|e| match e {
            RegistryError::Status { status: 404, .. } => RegistryError::ManifestUnknown {
                image: client.image.clone(),
                registry: client.registry.clone(),
                reference: reference.to_string(),
            },
            e => e,
        })?;
    let content_type = resp.header("content-type").map(str::to_string);
    let header_digest = resp
        .header("docker-content-digest")
        .and_then(|d| d.parse::<Digest>().ok());
    let mut body = Vec::new();
    resp.into_reader()
        .take(MANIFEST_LIMIT + 1)
        .read_to_end(&mut body)
        .map_err(|e| client.body_error(format!("manifest {reference}"), e))?;
    if body.len() as u64 > MANIFEST_LIMIT {
        return Err(RegistryError::ManifestTooLarge {
            image: client.image.clone(),
            registry: client.registry.clone(),
            limit: MANIFEST_LIMIT,
        });
    }
    let actual = Digest::of(&body);
    if let Some(want) = expected.or(header_digest.as_ref()) {
        if want != &actual {
            return Err(RegistryError::ManifestDigest {
                image: client.image.clone(),
                registry: client.registry.clone(),
                expected: want.clone(),
                actual,
            });
        }
    }
    let mt = manifest::media_type_of(&body, content_type.as_deref());
    Ok((body, actual, mt))
}

fn fetch_blobs(
    store: &ContentStore,
    client: &Client,
    m: &Manifest,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    committed: &Mutex<Vec<Digest>>,
    hooks: &Hooks,
) -> Result<()> {
    // Each blob once: two workers must not write one partial download.
    let mut todo: Vec<(&Descriptor, bool)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for l in &m.layers {
        if !seen.insert(&l.digest) {
            continue;
        }
        if store.exists(&l.digest) {
            progress(&Progress::id("Already exists", l.digest.short()));
        } else {
            progress(&Progress::id("Pulling fs layer", l.digest.short()));
            todo.push((l, true));
        }
    }
    if !store.exists(&m.config.digest) && !seen.contains(&m.config.digest) {
        todo.insert(0, (&m.config, false));
    }
    let cancel = AtomicBool::new(false);
    parallel(&todo, opts.parallel, &cancel, |(d, is_layer)| {
        let shown = |p: Progress| {
            if *is_layer {
                progress(&p)
            }
        };
        if fetch_blob(store, client, d, &shown, &cancel)? {
            committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(d.digest.clone());
        }
        if let Some(f) = hooks.on_blob {
            f(&d.digest);
        }
        if !hooks.unpacking {
            shown(Progress::id("Pull complete", d.digest.short()));
        }
        Ok(())
    })
}

/// Downloads one blob into the store, resuming a partial download; a resumed download that
/// fails verification is restarted once from scratch (the failed commit removed the partial).
/// Returns false when another writer (a concurrent pull) committed the blob meanwhile.
fn fetch_blob(
    store: &ContentStore,
    client: &Client,
    d: &Descriptor,
    progress: &dyn Fn(Progress),
    cancel: &AtomicBool,
) -> Result<bool> {
    let store_err = |cause| RegistryError::Store {
        image: client.image.clone(),
        cause: Box::new(cause),
    };
    let verify_err = |cause| RegistryError::Verify {
        image: client.image.clone(),
        registry: client.registry.clone(),
        digest: d.digest.clone(),
        cause: Box::new(cause),
    };
    let short = d.digest.short().to_string();
    let url = client.url(&format!("blobs/{}", d.digest));
    for attempt in 0..2 {
        let mut w = store
            .resumable_writer(&d.digest, Some(d.size))
            .map_err(store_err)?;
        if store.exists(&d.digest) {
            // A concurrent pull of the same blob held the partial file and committed it.
            w.discard();
            progress(Progress::id("Download complete", &short));
            return Ok(false);
        }
        let offset = w.written();
        let retry = |e: &StoreError| {
            attempt == 0
                && offset > 0
                && matches!(
                    e,
                    StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. }
                )
        };
        if offset >= d.size {
            match w.commit() {
                Ok(_) => return Ok(true),
                Err(e) if retry(&e) => continue,
                Err(e) => return Err(verify_err(e)),
            }
        }
        let range = format!("bytes={offset}-");
        let headers: &[(&str, &str)] = if offset > 0 {
            &[("Range", &range)]
        } else {
            &[]
        };
        let resp = client
            .send("GET", &url, headers, &[], &Body::Empty)
            .map_err(|e| match e {
                RegistryError::Status { status: 404, .. } => RegistryError::BlobUnknown {
                    image: client.image.clone(),
                    registry: client.registry.clone(),
                    digest: d.digest.clone(),
                },
                e => e,
            })?;
        let ranged = resp.status() == 206;
        if ranged {
            let ok = resp
                .header("content-range")
                .is_some_and(|cr| cr.starts_with(&format!("bytes {offset}-")));
            if !ok {
                return Err(client.body_error(
                    format!("blob {} (bad Content-Range)", d.digest),
                    io::Error::new(io::ErrorKind::InvalidData, "unexpected Content-Range"),
                ));
            }
        }
        let mut reader = resp.into_reader();
        let read_err = |e| client.body_error(format!("blob {}", d.digest), e);
        if offset > 0 && !ranged {
            // The server ignored Range: it sends the whole blob; skip what we have.
            io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(read_err)?;
        }
        let mut reader = reader.take(d.size + 1 - offset);
        let mut buf = vec![0u8; 256 << 10];
        let (mut current, mut shown) = (offset, 0u64);
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(read_err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "cancelled: another blob of this pull failed",
                )));
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            w.write_all(&buf[..n]).map_err(|source| {
                store_err(StoreError::Io {
                    path: store.root().join("ingest"),
                    what: "writing a download",
                    source,
                })
            })?;
            current += n as u64;
            if current - shown >= 512 << 10 || current == d.size {
                shown = current;
                progress(Progress::download(&short, current, d.size));
            }
        }
        progress(Progress::id("Verifying Checksum", &short));
        match w.commit() {
            Ok(_) => {
                progress(Progress::id("Download complete", &short));
                return Ok(true);
            }
            Err(e) if retry(&e) => continue,
            Err(e) => return Err(verify_err(e)),
        }
    }
    unreachable!("the second attempt returns")
}
