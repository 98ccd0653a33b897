//! The image index: every image record and every name, in one JSON file
//! (`<root>/images.json`) that is replaced atomically (temp file, fsync, rename, fsync of the
//! directory), so a crash leaves the old index or the new one, never a mix.
//!
//! Why JSON and not SQLite: the index is small (one record per image, one line per name), is
//! read whole by every listing anyway, and a plain file keeps the store inspectable with `jq`
//! and free of a C dependency. Writers serialise on an exclusive `flock` of `<root>/images.lock`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::digest::Digest;
use crate::images::ImageRecord;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("image index {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("image index {path} is damaged ({source}); restore it from a backup or remove it and re-import the images")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// What `images.json` holds. Names are kept normalised (`docker.io/library/busybox:latest`,
/// `docker.io/library/busybox@sha256:...`); records keep no names of their own on disk.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct Index {
    /// Image ID hex -> record.
    pub images: BTreeMap<String, ImageRecord>,
    /// Normalised tag or digest reference -> image ID.
    pub names: BTreeMap<String, Digest>,
}

/// An exclusive lock on a file, released on drop.
pub struct Lock {
    _f: Flock<File>,
}

/// Takes a lock on `path` (created if missing), exclusive or shared.
pub fn lock(path: &Path, exclusive: bool) -> Result<Lock, IndexError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| IndexError::Io {
            path: path.to_path_buf(),
            what: "opening the lock file",
            source,
        })?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let f = Flock::lock(f, arg).map_err(|(_, e)| IndexError::Io {
        path: path.to_path_buf(),
        what: "locking",
        source: io::Error::from(e),
    })?;
    Ok(Lock { _f: f })
}

impl Index {
    /// Reads the index (an absent file is an empty index).
    pub fn load(path: &Path) -> Result<Index, IndexError> {
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Index::default()),
            Err(source) => {
                return Err(IndexError::Io {
                    path: path.to_path_buf(),
                    what: "reading",
                    source,
                })
            }
        };
        let mut idx: Index =
            serde_json::from_slice(&bytes).map_err(|source| IndexError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        idx.fill_names();
        Ok(idx)
    }

    /// Recomputes every record's familiar `repo_tags` / `repo_digests` from `names`.
    pub fn fill_names(&mut self) {
        for r in self.images.values_mut() {
            r.repo_tags.clear();
            r.repo_digests.clear();
        }
        for (name, id) in &self.names {
            let Some(r) = self.images.get_mut(id.hex()) else {
                continue;
            };
            let Ok(parsed) = crate::reference::Reference::parse(name) else {
                continue;
            };
            if parsed.digest.is_some() {
                r.repo_digests.push(parsed.familiar());
            } else {
                r.repo_tags.push(parsed.familiar());
            }
        }
    }

    /// Writes the index atomically.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let io = |what: &'static str| {
            move |source| IndexError::Io {
                path: path.to_path_buf(),
                what,
                source,
            }
        };
        let mut on_disk = self.clone();
        for r in on_disk.images.values_mut() {
            r.repo_tags.clear();
            r.repo_digests.clear();
        }
        let bytes = serde_json::to_vec_pretty(&on_disk).expect("index serialises");
        let tmp = path.with_extension("json.tmp");
        let mut f = File::create(&tmp).map_err(io("creating the new index"))?;
        f.write_all(&bytes).map_err(io("writing the new index"))?;
        f.sync_all().map_err(io("syncing the new index"))?;
        fs::rename(&tmp, path).map_err(io("replacing the index"))?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}
