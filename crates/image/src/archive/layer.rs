//! Streaming one layer into the content store: the bytes go to a blob writer (hashed for the
//! blob digest) and, through a decompressor picked by magic bytes, to a second hash (the
//! diff_id). Nothing is held in memory beyond a buffer.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use super::staging::Staging;
use super::tarindex::TarIndex;
use super::ArchiveError;
use crate::digest::Digest;
use crate::images::ImageStore;
use crate::media;
use crate::progress::{Message, Progress};
use crate::snapshot::{PendingSnapshot, Snapshotter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => media::OCI_LAYER,
            Compression::Gzip => media::OCI_LAYER_GZIP,
            Compression::Zstd => media::OCI_LAYER_ZSTD,
        }
    }
}

/// Recognises a compressed stream by its first bytes.
pub fn detect(head: &[u8]) -> Result<Compression, &'static str> {
    match head {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [b'B', b'Z', b'h', ..] => Err("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', ..] => Err("xz"),
        _ => Ok(Compression::None),
    }
}

pub struct LayerOut {
    pub blob: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub compression: Compression,
}

struct HashSink(Sha256);

impl Write for HashSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Copies what is read into the blob writer and reports progress.
struct Tee<'a, R> {
    inner: R,
    out: &'a mut crate::store::BlobWriter,
    done: u64,
    total: u64,
    last: u64,
    id: &'a str,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.done += n as u64;
        if self.done - self.last >= 4 << 20 || (n == 0 && self.done != self.last) {
            self.last = self.done;
            self.progress.emit(Message::status(
                "Loading layer",
                self.id,
                self.done,
                self.total,
            ));
        }
        Ok(n)
    }
}

/// Where a layer comes from, for errors and progress: `image` and `layer` (its file in the
/// archive) name it in errors, `id` in progress messages; `expected` is the blob digest when
/// the archive names it, `total` its size if known.
pub struct Source<'a> {
    pub expected: Option<&'a Digest>,
    pub total: u64,
    pub image: &'a str,
    pub layer: &'a str,
    pub id: &'a str,
}

/// A snapshot to unpack the layer into while it streams into the store.
pub struct UnpackTo<'a> {
    pub snap: &'a Snapshotter,
    pub chain: Digest,
    pub parent: Option<Digest>,
}

/// Streams one layer from `src` into the store (the caller records the committed blob in its
/// [`Staging`]). With `unpack`, the same bytes are unpacked on the way (read and hashed once)
/// into a snapshot that is returned verified but unpublished.
pub fn ingest(
    store: &ImageStore,
    src: impl Read,
    at: &Source,
    progress: &dyn Progress,
    unpack: Option<UnpackTo>,
) -> Result<(LayerOut, Option<PendingSnapshot>), ArchiveError> {
    let read_err = |source| ArchiveError::ReadLayer {
        image: at.image.to_string(),
        layer: at.layer.to_string(),
        source,
    };
    let mut w = store.content.writer(at.expected.cloned(), None)?;
    let mut tee = Tee {
        inner: src,
        out: &mut w,
        done: 0,
        total: at.total,
        last: 0,
        id: at.id,
        progress,
    };
    let mut head = [0u8; 6];
    let mut got = 0;
    while got < head.len() {
        let n = tee.read(&mut head[got..]).map_err(read_err)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let compression = detect(&head[..got]).map_err(|kind| ArchiveError::Compression {
        image: at.image.to_string(),
        layer: at.layer.to_string(),
        kind,
    })?;
    let mut diff = HashSink(Sha256::new());
    let rest = io::Cursor::new(head[..got].to_vec()).chain(&mut tee);
    let mut pending = None;
    match unpack {
        Some(u) => {
            let p = u.snap.stage_stream(rest, &u.chain, u.parent).map_err(|e| {
                match e {
                    // A read error is the archive's fault, not the unpack's.
                    crate::snapshot::SnapshotError::UnpackStream {
                        source: crate::unpack::UnpackError::Read { source, .. },
                        ..
                    } => read_err(source),
                    e => ArchiveError::Unpack {
                        image: at.image.to_string(),
                        layer: at.layer.to_string(),
                        source: Box::new(e),
                    },
                }
            })?;
            pending = Some(p);
        }
        None => {
            let copied = match compression {
                Compression::None => copy(rest, &mut io::sink()),
                Compression::Gzip => copy(flate2::read::MultiGzDecoder::new(rest), &mut diff),
                Compression::Zstd => {
                    zstd::stream::read::Decoder::new(rest).and_then(|d| copy(d, &mut diff))
                }
            };
            copied.map_err(read_err)?;
        }
    }
    copy(&mut tee, &mut io::sink()).map_err(read_err)?;
    let size = tee.done;
    let blob = w.commit().map_err(|source| ArchiveError::BlobDigest {
        image: at.image.to_string(),
        file: at.layer.to_string(),
        source,
    })?;
    let diff_id = match (compression, pending.as_ref().and_then(|p| p.diff_id())) {
        (Compression::None, _) => blob.clone(),
        (_, Some(d)) => d.clone(),
        _ => Digest::from_hasher(diff.0),
    };
    let pending = pending.map(|p| p.verified(blob.clone(), diff_id.clone()));
    Ok((
        LayerOut {
            blob,
            diff_id,
            size,
            compression,
        },
        pending,
    ))
}

/// One layer of an image in an archive, as its manifest and config describe it.
pub struct Job {
    /// Its file in the archive.
    pub path: String,
    /// Its blob digest, when the archive names it.
    pub expected: Option<Digest>,
    pub size: u64,
    /// From the config.
    pub diff_id: Digest,
}

/// Stores (and, with `snap`, unpacks) the layers of `image`, several at once (one per CPU;
/// each reads its own range of the archive). Checks each against its diff ID. The blobs and
/// snapshots are recorded in `staging` (also those of layers that succeeded when another
/// failed, so that dropping the staging removes them); returns the layers in order.
pub fn ingest_all(
    staging: &mut Staging,
    tar: &TarIndex,
    image: &str,
    jobs: &[Job],
    snap: Option<&Snapshotter>,
    progress: &dyn Progress,
) -> Result<Vec<LayerOut>, ArchiveError> {
    let diff_ids: Vec<Digest> = jobs.iter().map(|j| j.diff_id.clone()).collect();
    let chains = crate::unpack::chain_ids(&diff_ids);
    let store = staging.store;
    let one = |i: usize| -> Result<(LayerOut, Option<PendingSnapshot>), ArchiveError> {
        let j = &jobs[i];
        let src = tar
            .open_entry(&j.path)
            .ok_or_else(|| ArchiveError::Missing {
                image: image.to_string(),
                file: j.path.clone(),
                by: "the manifest",
            })?
            .map_err(|source| ArchiveError::ReadLayer {
                image: image.to_string(),
                layer: j.path.clone(),
                source,
            })?;
        let unpack = snap.filter(|s| !s.has(&chains[i])).map(|s| UnpackTo {
            snap: s,
            chain: chains[i].clone(),
            parent: i.checked_sub(1).map(|p| chains[p].clone()),
        });
        let at = Source {
            expected: j.expected.as_ref(),
            total: j.size,
            image,
            layer: &j.path,
            id: j.diff_id.short(),
        };
        // A diff ID other than the config's is an error the caller reports below (after
        // recording the committed blob; the snapshot is then dropped, unpublished).
        ingest(store, src, &at, progress, unpack)
    };
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len());
    let mut results: Vec<Option<Result<_, ArchiveError>>> = (0..jobs.len()).map(|_| None).collect();
    if workers <= 1 {
        for (i, r) in results.iter_mut().enumerate() {
            let res = one(i);
            let failed = res.is_err();
            *r = Some(res);
            if failed {
                break;
            }
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots = std::sync::Mutex::new(&mut results);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= jobs.len() {
                        break;
                    }
                    let res = one(i);
                    if res.is_err() {
                        // no new layers after a failure
                        next.store(jobs.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                    slots.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(res);
                });
            }
        });
    }
    let mut outs = Vec::with_capacity(jobs.len());
    let mut first_err = None;
    for (r, j) in results.into_iter().zip(jobs) {
        match r {
            None => {}
            Some(Ok((out, _))) if out.diff_id != j.diff_id => {
                staging.committed(&out.blob);
                first_err.get_or_insert(ArchiveError::DiffId {
                    image: image.to_string(),
                    layer: j.path.clone(),
                    expected: j.diff_id.clone(),
                    actual: out.diff_id,
                });
            }
            Some(Ok((out, pending))) => {
                staging.committed(&out.blob);
                if let Some(p) = pending {
                    staging.unpacked(p);
                }
                outs.push(out);
            }
            Some(Err(e)) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(outs),
    }
}

fn copy(mut r: impl Read, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..k])?;
        n += k as u64;
    }
}

/// Stores a small blob (manifest, config), checked against `expected` if given.
pub fn put_small(
    staging: &mut Staging,
    bytes: &[u8],
    expected: Option<&Digest>,
    image: &str,
    file: &str,
) -> Result<Digest, ArchiveError> {
    let d = staging
        .store
        .content
        .put(bytes, expected)
        .map_err(|source| ArchiveError::BlobDigest {
            image: image.to_string(),
            file: file.to_string(),
            source,
        })?;
    staging.committed(&d);
    Ok(d)
}
