//! A pull into an image store, as `docker pull` does it: download, register, and unpack each
//! layer into its snapshot as soon as it and every layer below it are in the store, so that
//! unpacking overlaps the downloads of the layers above.
//!
//! Concurrency: the whole pull (downloads, registration, unpack) holds the store's gc lock
//! shared, so a prune waits for it. Two pulls of one blob serialise on its partial download
//! (the second finds the blob committed and skips it). A failed pull removes the blobs it
//! committed only after taking the gc lock exclusive, that is once every other pull, load and
//! unpack has finished, and then only those no registered image reaches: a blob another
//! operation relied on is either named by an image by then, or that operation is not running.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex, MutexGuard};

use oci_spec::image::ImageConfiguration;

use super::manifest::{Manifest, Platform};
use super::pull::{final_status, pull_with, Hooks, Pulled};
use super::{register_pulled, Progress, ProgressDetail, RegistryError, RegistryOptions};
use crate::digest::Digest;
use crate::images::{ImageError, ImageRecord, ImageStore};
use crate::layers::{self, LayerEvent, LayersError};
use crate::reference::Reference;
use crate::snapshot::{Layer, Snapshotter};

#[derive(Debug, thiserror::Error)]
pub enum PullImageError {
    #[error("locking the image store: {0}")]
    Lock(#[source] ImageError),
    #[error(transparent)]
    Pull(RegistryError),
    #[error("registering the pulled image: {0}")]
    Register(#[source] ImageError),
}

/// What [`pull_image`] did.
#[derive(Debug)]
pub struct PullOutcome {
    pub pulled: Pulled,
    pub record: ImageRecord,
    /// The unpack's result (chain IDs, bottom first), when unpacking was asked for. An error
    /// here leaves the image registered; unpacking it again retries.
    pub unpack: Option<Result<Vec<Digest>, LayersError>>,
}

#[derive(Default)]
struct State {
    manifest: Option<Manifest>,
    /// Blobs committed while this pull ran (by it, or by a concurrent one).
    arrived: HashSet<Digest>,
    finished: bool,
}

fn locked(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pulls `reference` into `images`, registers it (by tag and digest), and with `snap`
/// unpacks its layers while the download goes on. The caller must not hold the store's gc
/// lock: a failed pull takes it exclusive to clean up.
pub fn pull_image(
    images: &ImageStore,
    snap: Option<&Snapshotter>,
    reference: &Reference,
    platform: &Platform,
    opts: &RegistryOptions,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Result<PullOutcome, PullImageError> {
    let shared = images.gc_lock(false).map_err(PullImageError::Lock)?;
    let state = Mutex::new(State::default());
    let cv = Condvar::new();
    let on_manifest = |m: &Manifest| {
        locked(&state).manifest = Some(m.clone());
        cv.notify_all();
    };
    let on_blob = |d: &Digest| {
        locked(&state).arrived.insert(d.clone());
        cv.notify_all();
    };
    let hooks = Hooks {
        on_manifest: Some(&on_manifest),
        on_blob: Some(&on_blob),
        unpacking: snap.is_some(),
    };
    let (result, committed, early) = std::thread::scope(|s| {
        let unpacker = snap.map(|snap| {
            let (state, cv) = (&state, &cv);
            s.spawn(move || unpack_as_downloaded(images, snap, state, cv, progress))
        });
        let (result, committed) =
            pull_with(&images.content, reference, platform, opts, progress, &hooks);
        locked(&state).finished = true;
        cv.notify_all();
        let early = unpacker.and_then(|h| h.join().ok().flatten());
        (result, committed, early)
    });
    let pulled = match result {
        Ok(p) => p,
        Err(e) => {
            drop(shared);
            cleanup(images, &committed);
            return Err(PullImageError::Pull(e));
        }
    };
    let record = register_pulled(images, reference, &pulled).map_err(PullImageError::Register)?;
    drop(shared);
    // The overlapped unpack gives up when it cannot read the config; then unpack now.
    let unpack = snap.map(|snap| match early {
        Some(r) => r,
        None => layers::unpack_image(images, snap, &record, &|e| show(progress, e, true)),
    });
    final_status(&pulled, reference, progress);
    Ok(PullOutcome {
        pulled,
        record,
        unpack,
    })
}

/// Removes blobs a failed pull committed, once no other operation runs, and only those no
/// image reaches.
fn cleanup(images: &ImageStore, committed: &[Digest]) {
    if committed.is_empty() {
        return;
    }
    let Ok(_gc) = images.gc_lock(true) else {
        return;
    };
    let Ok(live) = images.read_index().and_then(|idx| images.live_blobs(&idx)) else {
        return;
    };
    for d in committed.iter().filter(|d| !live.contains(*d)) {
        let _ = images.content.delete(d);
    }
}

/// Docker's messages for an unpack: "Extracting" with progress, then "Pull complete" (for a
/// layer this pull downloaded, or one it had to unpack).
fn show(progress: &(dyn Fn(&Progress) + Sync), e: LayerEvent, downloaded: bool) {
    match e {
        LayerEvent::Extracting {
            blob,
            current,
            total,
        } => progress(&Progress {
            status: "Extracting".into(),
            progress_detail: Some(ProgressDetail { current, total }),
            id: Some(blob.short().to_string()),
        }),
        LayerEvent::Done { blob, unpacked } if unpacked || downloaded => {
            progress(&Progress::id("Pull complete", blob.short()))
        }
        LayerEvent::Done { .. } => {}
    }
}

/// Unpacks layer after layer as they arrive. `None`: the pull failed, or the config could not
/// be read here (the caller unpacks after registration, which names the problem).
fn unpack_as_downloaded(
    images: &ImageStore,
    snap: &Snapshotter,
    state: &Mutex<State>,
    cv: &Condvar,
    progress: &(dyn Fn(&Progress) + Sync),
) -> Option<Result<Vec<Digest>, LayersError>> {
    let content = &images.content;
    let wait = |ready: &dyn Fn(&State) -> bool| wait_for(state, cv, ready);
    let m = wait(&|s| s.manifest.is_some())?.manifest.clone()?;
    let config = m.config.digest.clone();
    drop(wait(&|s| {
        s.arrived.contains(&config) || content.exists(&config)
    })?);
    let c: ImageConfiguration = serde_json::from_slice(&content.read(&config).ok()?).ok()?;
    let diff_ids: Vec<Digest> = c
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| d.parse().ok())
        .collect::<Option<_>>()?;
    if diff_ids.len() != m.layers.len() {
        return None;
    }
    let layers: Vec<Layer> = m
        .layers
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| Layer {
            blob: d.digest.clone(),
            diff_id,
        })
        .collect();
    let mut chains = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let g = wait(&|s| s.arrived.contains(&l.blob) || content.exists(&l.blob))?;
        let downloaded = g.arrived.contains(&l.blob);
        drop(g);
        match layers::unpack_layer(snap, &layers, i, &|e| show(progress, e, downloaded)) {
            Ok(c) => chains = c,
            Err(source) => {
                return Some(Err(LayersError::Unpack {
                    image: config,
                    source: Box::new(source),
                }))
            }
        }
    }
    Some(Ok(chains))
}

/// Waits until `ready` holds; None if the pull finished without it.
fn wait_for<'a>(
    state: &'a Mutex<State>,
    cv: &Condvar,
    ready: &dyn Fn(&State) -> bool,
) -> Option<MutexGuard<'a, State>> {
    let mut g = locked(state);
    loop {
        if ready(&g) {
            return Some(g);
        }
        if g.finished {
            return None;
        }
        g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}
