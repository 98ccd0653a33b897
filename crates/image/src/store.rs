//! The content store: every blob (layer, config, manifest, index) lives under
//! `<root>/blobs/sha256/<hex>`, named by its digest.
//!
//! A blob is written to a file in `<root>/ingest/`, hashed as it is written, and moved into
//! place (rename, after fsync) only when its digest is the expected one. So a reader never
//! sees a half-written or wrong blob, an interrupted write leaves only an ingest file (removed
//! on drop, or resumed), and two writers of the same blob both succeed with one copy.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("content store {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("blob {digest} is not in the content store")]
    NotFound { digest: Digest },
    #[error("content does not match its digest: expected {expected}, got {actual} ({size} bytes); nothing was stored")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest}: expected {expected} bytes, got {actual}; nothing was stored")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A content-addressed blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) a store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore, StoreError> {
        let root = root.into();
        for d in [root.join("blobs/sha256"), root.join("ingest")] {
            fs::create_dir_all(&d).map_err(io_err(&d, "creating"))?;
        }
        Ok(ContentStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Size of a stored blob.
    pub fn size(&self, d: &Digest) -> Result<u64, StoreError> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err(&self.blob_path(d), "reading")(e)),
        }
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, StoreError> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { digest: d.clone() })
            }
            Err(e) => Err(io_err(&p, "opening")(e)),
        }
    }

    /// Reads a whole blob (manifests, configs) and checks it against its digest, so a blob
    /// damaged on disk is never trusted.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut f = self.open_blob(d)?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(io_err(&self.blob_path(d), "reading"))?;
        let actual = Digest::of(&buf);
        if &actual != d {
            return Err(StoreError::DigestMismatch {
                expected: d.clone(),
                actual,
                size: buf.len() as u64,
            });
        }
        Ok(buf)
    }

    /// Stores `bytes`; with `expected`, only if they match it.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest, StoreError> {
        let mut w = self.writer(expected.cloned(), Some(bytes.len() as u64))?;
        w.write_all(bytes).map_err(io_err(&w.path, "writing"))?;
        w.commit()
    }

    /// A writer for a new blob, in a fresh ingest file.
    pub fn writer(
        &self,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, StoreError> {
        let dir = self.root.join("ingest");
        for attempt in 0..16u32 {
            let name = format!("{}-{}-{attempt}.tmp", std::process::id(), unique());
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(BlobWriter {
                        file,
                        path,
                        hasher: Sha256::new(),
                        size: 0,
                        expected,
                        expected_size,
                        blobs: self.root.join("blobs/sha256"),
                        flushed: 0,
                        done: false,
                        keep_on_drop: false,
                        _lock: None,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_err(&path, "creating an ingest file")(e)),
            }
        }
        Err(StoreError::Io {
            path: dir,
            what: "creating an ingest file",
            source: io::ErrorKind::AlreadyExists.into(),
        })
    }

    /// A writer that continues an earlier, interrupted write of the blob `expected` (what was
    /// already written is re-hashed), so a download can resume. The partial file survives a
    /// dropped writer; it is removed on commit or on a digest mismatch.
    ///
    /// The writer holds an exclusive `flock` on the partial file, so a second writer of the
    /// same blob (another pull of the same image) waits for the first; it should then check
    /// [`ContentStore::exists`] and [`BlobWriter::discard`] itself if the blob arrived.
    pub fn resumable_writer(
        &self,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, StoreError> {
        let path = self
            .root
            .join("ingest")
            .join(format!("{}.partial", expected.hex()));
        let (mut file, lock) = loop {
            let file = OpenOptions::new()
                .read(true)
                .append(true)
                .create(true)
                .open(&path)
                .map_err(io_err(&path, "opening a partial blob"))?;
            let dup = file
                .try_clone()
                .map_err(io_err(&path, "opening a partial blob"))?;
            let lock = Flock::lock(dup, FlockArg::LockExclusive)
                .map_err(|(_, e)| io_err(&path, "locking a partial blob")(e.into()))?;
            // The holder we waited for may have committed (renamed) or removed the file:
            // then start over on a fresh one.
            let same = match (file.metadata(), fs::metadata(&path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if same {
                break (file, lock);
            }
        };
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(io_err(&path, "reading a partial blob"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(BlobWriter {
            file,
            path,
            hasher,
            size,
            expected: Some(expected.clone()),
            expected_size,
            blobs: self.root.join("blobs/sha256"),
            flushed: size,
            done: false,
            keep_on_drop: true,
            _lock: Some(lock),
        })
    }

    /// Removes a blob (a missing one is fine).
    pub fn delete(&self, d: &Digest) -> Result<(), StoreError> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&p, "removing")(e)),
        }
    }

    /// Every stored blob's digest.
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let dir = self.root.join("blobs/sha256");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).map_err(io_err(&dir, "listing"))? {
            let e = e.map_err(io_err(&dir, "listing"))?;
            if let Some(d) = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.as_nanos() as u64) ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}

/// Writes one blob into the ingest area; [`BlobWriter::commit`] moves it into place.
#[derive(Debug)]
pub struct BlobWriter {
    file: File,
    path: PathBuf,
    hasher: Sha256,
    size: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
    blobs: PathBuf,
    /// Up to where write-back has been started ([`WRITEBACK_CHUNK`]).
    flushed: u64,
    done: bool,
    keep_on_drop: bool,
    /// For a resumable writer: its lock on the partial file (released after the file is
    /// committed or removed, since fields drop after `Drop::drop`).
    _lock: Option<Flock<File>>,
}

impl BlobWriter {
    /// Bytes written so far (for a resumed writer, including the earlier part).
    pub fn written(&self) -> u64 {
        self.size
    }

    /// Removes the ingest file (also a resumable one) without committing it.
    pub fn discard(mut self) {
        self.done = true;
        let _ = fs::remove_file(&self.path);
    }

    /// Checks the digest (and size), syncs, and moves the blob into the store.
    pub fn commit(mut self) -> Result<Digest, StoreError> {
        self.done = true;
        let actual = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = &self.expected {
            if &actual != expected {
                let _ = fs::remove_file(&self.path);
                return Err(StoreError::DigestMismatch {
                    expected: expected.clone(),
                    actual,
                    size: self.size,
                });
            }
        }
        if let Some(want) = self.expected_size {
            if want != self.size {
                let _ = fs::remove_file(&self.path);
                return Err(StoreError::SizeMismatch {
                    digest: actual,
                    expected: want,
                    actual: self.size,
                });
            }
        }
        self.file
            .sync_all()
            .map_err(io_err(&self.path, "syncing"))?;
        let dest = self.blobs.join(actual.hex());
        if dest.exists() {
            let _ = fs::remove_file(&self.path);
            return Ok(actual);
        }
        fs::rename(&self.path, &dest).map_err(io_err(&dest, "committing"))?;
        if let Ok(d) = File::open(&self.blobs) {
            let _ = d.sync_all();
        }
        Ok(actual)
    }
}

/// A blob writer starts the disk write of every this many bytes as soon as they are written,
/// so that the fsync at commit waits only for the last of them (on a journaled filesystem the
/// fsync of a large layer written at once otherwise dominates a load).
const WRITEBACK_CHUNK: u64 = 8 << 20;

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        if self.size - self.flushed >= WRITEBACK_CHUNK {
            use std::os::fd::AsFd;
            // Only a hint: a filesystem that cannot is synced at commit all the same.
            let _ = hull_sys::fd::start_writeback(
                self.file.as_fd(),
                self.flushed,
                self.size - self.flushed,
            );
            self.flushed = self.size;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.done && !self.keep_on_drop {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_only_on_matching_digest() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let good = Digest::of(b"hello");
        assert_eq!(s.put(b"hello", Some(&good)).unwrap(), good);
        assert_eq!(s.read(&good).unwrap(), b"hello");
        let err = s.put(b"tampered", Some(&Digest::of(b"other"))).unwrap_err();
        assert!(matches!(err, StoreError::DigestMismatch { .. }), "{err}");
        assert_eq!(s.list().unwrap(), vec![good]);
        assert_eq!(
            fs::read_dir(t.path().join("ingest")).unwrap().count(),
            0,
            "no ingest leftovers"
        );
    }

    #[test]
    fn dropped_writer_leaves_nothing_and_resume_continues() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        {
            let mut w = s.writer(None, None).unwrap();
            w.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
        let d = Digest::of(b"abcdef");
        {
            let mut w = s.resumable_writer(&d, Some(6)).unwrap();
            w.write_all(b"abc").unwrap();
        }
        let mut w = s.resumable_writer(&d, Some(6)).unwrap();
        assert_eq!(w.written(), 3);
        w.write_all(b"def").unwrap();
        assert_eq!(w.commit().unwrap(), d);
        assert_eq!(s.read(&d).unwrap(), b"abcdef");
    }

    #[test]
    fn a_second_resumable_writer_waits_for_the_first() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let d = Digest::of(b"abcdef");
        let mut first = s.resumable_writer(&d, Some(6)).unwrap();
        first.write_all(b"abc").unwrap();
        let second = std::thread::spawn({
            let (s, d) = (s.clone(), d.clone());
            move || {
                let w = s.resumable_writer(&d, Some(6)).unwrap();
                // The first writer committed meanwhile: this one starts on a fresh file.
                assert_eq!(w.written(), 0);
                assert!(s.exists(&d));
                w.discard();
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!second.is_finished(), "the second writer did not wait");
        first.write_all(b"def").unwrap();
        first.commit().unwrap();
        second.join().unwrap();
        assert_eq!(s.read(&d).unwrap(), b"abcdef");
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn concurrent_writers_of_one_blob() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let data = vec![7u8; 1 << 20];
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                let data = data.clone();
                std::thread::spawn(move || s.put(&data, Some(&Digest::of(&data))).unwrap())
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(s.list().unwrap().len(), 1);
        assert_eq!(s.read(&Digest::of(&data)).unwrap().len(), 1 << 20);
    }

    #[test]
    fn corrupt_blob_on_disk_is_detected() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let d = s.put(b"config", None).unwrap();
        fs::write(s.blob_path(&d), b"evil").unwrap();
        assert!(matches!(s.read(&d), Err(StoreError::DigestMismatch { .. })));
    }
}
