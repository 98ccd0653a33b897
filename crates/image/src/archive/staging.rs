//! Blobs an import adds, removed again if the import does not finish.

use std::collections::BTreeSet;

use crate::digest::Digest;
pub use crate::images::Registration;
use crate::images::{ImageError, ImageRecord, ImageStore};
use crate::index::Lock;

pub struct Staging<'a> {
    pub store: &'a ImageStore,
    before: BTreeSet<Digest>,
    added: Vec<Digest>,
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

    pub fn has(&self, d: &Digest) -> bool {
        self.added.contains(d)
    }

    /// Names the images (one index update) and keeps the blobs.
    pub fn finish(mut self, regs: &[Registration]) -> Result<Vec<ImageRecord>, ImageError> {
        let out = self.store.register_many(regs)?;
        self.done = true;
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
