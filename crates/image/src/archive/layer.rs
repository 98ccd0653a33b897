//! Streaming one layer into the content store: the bytes go to a blob writer (hashed for the
//! blob digest) and, through a decompressor picked by magic bytes, to a second hash (the
//! diff_id). Nothing is held in memory beyond a buffer.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use super::staging::Staging;
use super::ArchiveError;
use crate::digest::Digest;
use crate::media;
use crate::progress::{Message, Progress};

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

/// Streams one layer from `src` (of `total` bytes, if known) into the store. `expected` is
/// the blob digest when the archive names it. `image`/`layer` name it in errors; `id` in
/// progress messages.
#[allow(clippy::too_many_arguments)]
pub fn ingest(
    staging: &mut Staging,
    src: impl Read,
    expected: Option<&Digest>,
    total: u64,
    image: &str,
    layer: &str,
    id: &str,
    progress: &dyn Progress,
) -> Result<LayerOut, ArchiveError> {
    let read_err = |source| ArchiveError::ReadLayer {
        image: image.to_string(),
        layer: layer.to_string(),
        source,
    };
    let mut w = staging.store.content.writer(expected.cloned(), None)?;
    let mut tee = Tee {
        inner: src,
        out: &mut w,
        done: 0,
        total,
        last: 0,
        id,
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
        image: image.to_string(),
        layer: layer.to_string(),
        kind,
    })?;
    let mut diff = HashSink(Sha256::new());
    let rest = io::Cursor::new(head[..got].to_vec()).chain(&mut tee);
    let copied = match compression {
        Compression::None => copy(rest, &mut io::sink()),
        Compression::Gzip => copy(flate2::read::MultiGzDecoder::new(rest), &mut diff),
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(rest).and_then(|d| copy(d, &mut diff))
        }
    };
    copied.map_err(read_err)?;
    copy(&mut tee, &mut io::sink()).map_err(read_err)?;
    let size = tee.done;
    let blob = w.commit().map_err(|source| ArchiveError::BlobDigest {
        image: image.to_string(),
        file: layer.to_string(),
        source,
    })?;
    staging.committed(&blob);
    let diff_id = match compression {
        Compression::None => blob.clone(),
        _ => Digest::from_hasher(diff.0),
    };
    Ok(LayerOut {
        blob,
        diff_id,
        size,
        compression,
    })
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

/// Reads a small blob (manifest, config) from `src`, stores it against `expected` if given.
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
