//! One garbage collection for the whole store: blobs no image reaches, then snapshots that
//! neither an image's layer chain nor a container's writable layer needs.
//!
//! Both run under the store's exclusive gc lock, so they wait for loads, pulls and unpacks in
//! progress (which hold it shared) and none starts meanwhile. `rmi` frees an image's blobs
//! at once, but its snapshots only here: the next prune removes those no other image shares.

use crate::digest::Digest;
use crate::images::{ImageError, ImageStore};
use crate::remove::GcReport;
use crate::snapshot::{SnapshotError, Snapshotter};
use crate::unpack::chain_ids;

#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("collecting unused blobs: {0}")]
    Blobs(#[source] ImageError),
    #[error("listing snapshots before collecting them: {0}")]
    ListSnapshots(#[source] SnapshotError),
    #[error("collecting unused snapshots: {0}")]
    Snapshots(#[source] SnapshotError),
}

/// What [`gc_all`] freed.
#[derive(Debug, Default, Clone)]
pub struct PruneReport {
    /// Blobs (and stale ingest files) removed.
    pub blobs: GcReport,
    /// Snapshots removed (chain IDs), with their uncompressed layer sizes.
    pub snapshots: Vec<(Digest, u64)>,
    pub snapshot_bytes: u64,
}

impl PruneReport {
    pub fn freed_bytes(&self) -> u64 {
        self.blobs.freed_bytes + self.snapshot_bytes
    }
}

/// Removes every blob no image reaches, then every snapshot that no image's layer chain
/// (nor its ancestors) and no container layer uses.
pub fn gc_all(images: &ImageStore, snap: &Snapshotter) -> Result<PruneReport, GcError> {
    let _gc = images.gc_lock(true).map_err(GcError::Blobs)?;
    let blobs = images.gc_locked().map_err(GcError::Blobs)?;
    let live: Vec<Digest> = blobs
        .live_chains
        .iter()
        .filter_map(|diff_ids| chain_ids(diff_ids).pop())
        .collect();
    let sizes: std::collections::HashMap<Digest, u64> = snap
        .list()
        .map_err(GcError::ListSnapshots)?
        .into_iter()
        .map(|i| (i.chain_id, i.report.size))
        .collect();
    let mut report = PruneReport {
        blobs,
        ..PruneReport::default()
    };
    for chain in snap.gc(&live).map_err(GcError::Snapshots)? {
        let size = sizes.get(&chain).copied().unwrap_or(0);
        report.snapshot_bytes += size;
        report.snapshots.push((chain, size));
    }
    Ok(report)
}
