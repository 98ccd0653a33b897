//! An image's layers as snapshots: where the store keeps its snapshotter, and the unpack that
//! follows a load, an import or a pull (as `docker load`/`docker pull` unpack into their
//! graph driver before they return).
//!
//! An unpack runs under the store's shared gc lock, so a concurrent prune neither removes the
//! blobs being read nor the snapshots being made. A failed unpack leaves the image
//! registered: [`unpack_image`] (`hull-image unpack`, or making a container) tries again,
//! and only the missing snapshots are unpacked.

use crate::digest::Digest;
use crate::images::{ImageError, ImageRecord, ImageStore};
use crate::snapshot::{Layer, SnapshotError, Snapshotter, UnpackProgress};
use crate::unpack::UnpackOptions;

#[derive(Debug, thiserror::Error)]
pub enum LayersError {
    #[error("opening the snapshotter: {0}")]
    OpenSnapshotter(#[source] Box<SnapshotError>),
    #[error("locking the image store against a concurrent prune: {0}")]
    Lock(#[source] ImageError),
    #[error("unpacking the layers of image {image}: {source}")]
    Unpack {
        image: Digest,
        #[source]
        source: Box<SnapshotError>,
    },
}

/// What an unpack tells its caller, layer by layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerEvent<'a> {
    /// Unpacking `blob`: `current` of `total` compressed bytes read.
    Extracting {
        blob: &'a Digest,
        current: u64,
        total: u64,
    },
    /// `blob`'s snapshot is in place (`unpacked`: by this call; else it already was).
    Done { blob: &'a Digest, unpacked: bool },
}

/// The snapshotter of an image store: `<root>/snapshotter`, reading the store's blobs.
pub fn open_snapshotter(
    images: &ImageStore,
    opts: UnpackOptions,
) -> Result<Snapshotter, LayersError> {
    Snapshotter::open(
        images.root().join("snapshotter"),
        images.content.clone(),
        opts,
    )
    .map_err(|e| LayersError::OpenSnapshotter(Box::new(e)))
}

/// An image's layers (blob and diff ID), bottom first.
pub fn image_layers(rec: &ImageRecord) -> Vec<Layer> {
    rec.layers
        .iter()
        .zip(&rec.diff_ids)
        .map(|(blob, diff_id)| Layer {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
        })
        .collect()
}

/// Unpacks every layer of `rec` that has no snapshot yet (in parallel). Returns the chain
/// IDs, bottom first.
pub fn unpack_image(
    images: &ImageStore,
    snap: &Snapshotter,
    rec: &ImageRecord,
    on: &(dyn Fn(LayerEvent) + Sync),
) -> Result<Vec<Digest>, LayersError> {
    let _gc = images.gc_lock(false).map_err(LayersError::Lock)?;
    let layers = image_layers(rec);
    snap.ensure_with(&layers, &|p| event(&layers, p, on))
        .map_err(|source| LayersError::Unpack {
            image: rec.id.clone(),
            source: Box::new(source),
        })
}

fn event(layers: &[Layer], p: UnpackProgress, on: &(dyn Fn(LayerEvent) + Sync)) {
    let blob = &layers[p.layer].blob;
    on(if p.done {
        LayerEvent::Done {
            blob,
            unpacked: true,
        }
    } else {
        LayerEvent::Extracting {
            blob,
            current: p.current,
            total: p.total,
        }
    })
}

/// Makes sure layer `i` has its snapshot (its lower layers must have theirs, or are unpacked
/// too). Returns the chain IDs of layers `0..=i`.
pub(crate) fn unpack_layer(
    snap: &Snapshotter,
    layers: &[Layer],
    i: usize,
    on: &(dyn Fn(LayerEvent) + Sync),
) -> Result<Vec<Digest>, SnapshotError> {
    let unpacked = std::sync::atomic::AtomicBool::new(false);
    let chains = snap.ensure_with(&layers[..=i], &|p: UnpackProgress| {
        if p.layer == i {
            unpacked.store(true, std::sync::atomic::Ordering::Relaxed);
            if !p.done {
                event(layers, p, on);
            }
        }
    })?;
    on(LayerEvent::Done {
        blob: &layers[i].blob,
        unpacked: unpacked.load(std::sync::atomic::Ordering::Relaxed),
    });
    Ok(chains)
}
