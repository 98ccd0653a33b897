//! Blobs an import adds, removed again if the import does not finish.

use std::collections::BTreeSet;

use crate::digest::Digest;
pub use crate::images::Registration;
use crate::images::{ImageError, ImageRecord, ImageStore};
use crate::index::Lock;
use crate::snapshot::PendingSnapshot;

pub struct Staging<'a> {
    pub store: &'a ImageStore,
    before: BTreeSet<Digest>,
    added: Vec<Digest>,
    /// Layers unpacked while they were loaded, published once the images are named (and
    /// discarded, with their staging directories, if the load fails).
    pending: Vec<PendingSnapshot>,
    done: bool,
    _gc: Lock,
}

impl<'a> Staging<'a> {
    /// Holds the store's GC lock shared until dropped, so a concurrent prune cannot collect
    /// blobs before they are named.
    pub fn new(store: &'a ImageStore) -> Result<Staging<'a>, ImageError> {
        let gc = store.gc_lock(false)?;
        let before = store.content.list()?.into_iter().collect();
        Ok(Staging {
            store,
            before,
            added: Vec::new(),
            pending: Vec::new(),
            done: false,
            _gc: gc,
        })
    }

    /// Notes a committed blob (remembered for removal if it was not there before).
    pub fn committed(&mut self, d: &Digest) {
        if !self.before.contains(d) && !self.added.contains(d) {
            self.added.push(d.clone());
        }
    }

    /// Keeps a layer unpacked during the load, to publish with the images.
    pub fn unpacked(&mut self, s: PendingSnapshot) {
        self.pending.push(s);
    }

    /// Names the images (one index update), keeps the blobs and publishes the snapshots
    /// unpacked on the way (one that fails to publish is only logged: the snapshotter
    /// unpacks it again from its blob when a container needs it).
    pub fn finish(mut self, regs: &[Registration]) -> Result<Vec<ImageRecord>, ImageError> {
        let out = self.store.register_many(regs)?;
        self.done = true;
        for p in std::mem::take(&mut self.pending) {
            if let Err(e) = p.publish() {
                tracing::warn!("keeping a layer unpacked during the load: {e}");
            }
        }
        Ok(out)
    }
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        if !self.done {
            for d in &self.added {
                let _ = self.store.content.delete(d);
            }
        }
    }
}
