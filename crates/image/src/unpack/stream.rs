//! Layer streams: compression detected by magic number, and readers that hash what passes.

use std::io::{self, BufRead, BufReader, Read};

use sha2::{Digest as _, Sha256};

use super::UnpackError;
use crate::digest::Digest;

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// What the first bytes of a blob say. `Err` names formats we do not read (xz, bzip2).
pub fn detect(head: &[u8]) -> Result<Compression, &'static str> {
    Ok(match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        [0xfd, b'7', b'z', b'X', b'Z', ..] => return Err("xz"),
        [b'B', b'Z', b'h', ..] => return Err("bzip2"),
        _ => Compression::None,
    })
}

/// A reader that hashes (sha256) and counts everything read through it.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    active: bool,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
            active: true,
        }
    }

    /// A reader that only counts (its digest is that of nothing): for an uncompressed blob,
    /// whose digest is the tar stream's, hashed once by the reader behind it.
    pub fn counting(inner: R) -> Hashing<R> {
        Hashing {
            active: false,
            ..Hashing::new(inner)
        }
    }

    /// Reads the rest of the stream (so the digest covers all of it) and returns the digest
    /// and the byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.len))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.active {
            self.hasher.update(&buf[..n]);
        }
        self.len += n as u64;
        Ok(n)
    }
}

/// The uncompressed tar stream of a blob: `blob` (already wrapped by the caller to hash the
/// compressed bytes) behind the decompressor its magic number calls for.
pub fn decompressed<'a, R: Read + 'a>(
    blob: R,
) -> Result<(Compression, Box<dyn Read + 'a>), UnpackError> {
    let read = |source| UnpackError::Read {
        step: "reading the layer blob",
        source,
    };
    let mut buf = BufReader::with_capacity(1 << 16, blob);
    let head = buf.fill_buf().map_err(read)?;
    let kind = detect(head).map_err(|format| UnpackError::Compression { format })?;
    let reader: Box<dyn Read + 'a> = match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buf).map_err(read)?),
    };
    Ok((kind, reader))
}
