//! Layer unpacking: a layer blob (tar, gzip or zstd) into a snapshot directory in overlayfs
//! lower-dir form, with the diff ID computed on the way.
//!
//! - Whiteouts `.wh.NAME` become overlayfs whiteouts (character device 0:0); opaque markers
//!   `.wh..wh..opq` become `trusted.overlay.opaque=y` on their directory.
//! - Every write is resolved inside the destination ([`tree`]): absolute names are made
//!   relative (with a warning), `..` components, paths through symlinks, hardlinks out of the
//!   layer and device nodes (by policy) are refused with an error naming the entry.
//! - Ownership (numeric), permissions (setuid kept, and recorded), mtimes, xattrs
//!   (`user.*`, `security.capability`, POSIX ACLs; other `trusted.*` and `security.*` are
//!   dropped with a warning), symlinks (stored as is), hardlinks and FIFOs are kept.

mod apply;
mod stream;
mod tree;

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
pub use stream::{detect, Compression};

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("opening the unpack destination {path}: {source}")]
    OpenDest { path: PathBuf, source: Errno },
    #[error("{step}: {source}")]
    Read {
        step: &'static str,
        source: io::Error,
    },
    #[error("layer is {format}-compressed; only uncompressed, gzip and zstd layers are supported")]
    Compression { format: &'static str },
    #[error("layer entry {entry:?} refused: {reason}")]
    UnsafePath { entry: String, reason: &'static str },
    #[error(
        "layer entry {entry:?} refused: it would be written through the symlink {component:?}"
    )]
    ThroughSymlink { entry: String, component: String },
    #[error("layer entry {entry:?} refused: {component:?} is not a directory")]
    NotADirectory { entry: String, component: String },
    #[error("layer entry {entry:?}: opening its parent directory {component:?}: {source}")]
    ParentDir {
        entry: String,
        component: String,
        source: io::Error,
    },
    #[error("layer entry {entry:?}: hardlink to {target:?} refused: {reason}")]
    HardlinkTarget {
        entry: String,
        target: String,
        reason: &'static str,
    },
    #[error("layer entry {entry:?} is a device node, and the device policy refuses them")]
    DeviceRefused { entry: String },
    #[error("layer entry {entry:?}: {step}: {source}")]
    Write {
        entry: String,
        step: &'static str,
        source: io::Error,
    },
    #[error("layer content does not match its diff ID: expected {expected}, got {actual}; the snapshot was discarded")]
    DiffIdMismatch { expected: Digest, actual: Digest },
    #[error("layer blob does not match its digest: expected {expected}, got {actual}; the snapshot was discarded")]
    BlobDigestMismatch { expected: Digest, actual: Digest },
}

/// What to do with character and block device nodes in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePolicy {
    /// Leave them out, with a warning (the default: a container gets its devices from the
    /// runtime, never from an image).
    #[default]
    Skip,
    /// Fail the unpack.
    Refuse,
    /// Create them (needs CAP_MKNOD).
    Create,
}

#[derive(Debug, Clone, Default)]
pub struct UnpackOptions {
    pub devices: DevicePolicy,
    /// The diff ID from the image config; the unpack fails if the content differs.
    pub expected_diff_id: Option<Digest>,
    /// The blob digest (as in the manifest); checked against the bytes read.
    pub expected_blob: Option<Digest>,
    /// The caller hashes the blob bytes itself as it hands them over (a load writing the
    /// same bytes to the content store): the blob is not hashed here, nor the tar stream of
    /// an uncompressed blob (its diff ID is the blob digest), and the report's `diff_id` is
    /// then None. A compressed blob's tar stream is still hashed (only this sees it).
    pub caller_hashes_blob: bool,
}

/// What an unpack did.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UnpackReport {
    pub diff_id: Option<Digest>,
    /// Uncompressed size of the layer stream.
    pub size: u64,
    pub entries: u64,
    /// Regular files with the setuid or setgid bit.
    pub setuid: Vec<String>,
    /// Entries changed or left out, one line each, naming the entry.
    pub warnings: Vec<String>,
}

/// Chain IDs of a layer stack, bottom first (OCI image spec: chainID(L0) = diffID(L0),
/// chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))).
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => {
                let mut h = Sha256::new();
                h.update(format!("{parent} {d}").as_bytes());
                Digest::from_hasher(h)
            }
        };
        out.push(next);
    }
    out
}

/// The diff ID of a layer blob (the digest of its uncompressed stream), without unpacking.
pub fn diff_id(blob: impl Read) -> Result<Digest, UnpackError> {
    let mut blob = blob;
    let (_, tar_stream) = stream::decompressed(&mut blob)?;
    let (d, _) = stream::Hashing::new(tar_stream)
        .finish()
        .map_err(|source| UnpackError::Read {
            step: "reading the layer blob",
            source,
        })?;
    Ok(d)
}

/// Unpacks the layer `blob` into the existing, empty directory `dest`. On error `dest` is
/// left partly written: the caller discards it (snapshots are unpacked into a staging
/// directory and renamed into place only on success).
pub fn unpack(
    blob: impl Read,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, UnpackError> {
    let root = open(
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| UnpackError::OpenDest {
        path: dest.to_path_buf(),
        source,
    })?;
    // An uncompressed blob is its own tar stream: hash it once, for both digests.
    let mut blob = io::BufReader::with_capacity(1 << 16, blob);
    let head = blob.fill_buf().map_err(|source| UnpackError::Read {
        step: "reading the layer blob",
        source,
    })?;
    let plain = matches!(stream::detect(head), Ok(Compression::None));
    let trusted = opts.caller_hashes_blob;
    let mut blob = if plain || trusted {
        stream::Hashing::counting(blob)
    } else {
        stream::Hashing::new(blob)
    };
    let (_, tar_stream) = stream::decompressed(&mut blob)?;
    let mut tar_stream = if plain && trusted {
        stream::Hashing::counting(tar_stream)
    } else {
        stream::Hashing::new(tar_stream)
    };
    let mut report = UnpackReport::default();
    {
        let mut archive = tar::Archive::new(&mut tar_stream);
        let mut applier = apply::Applier::new(tree::Tree::new(root), opts, &mut report);
        let entries = archive.entries().map_err(|source| UnpackError::Read {
            step: "reading the layer's tar stream",
            source,
        })?;
        for entry in entries {
            let mut entry = entry.map_err(|source| UnpackError::Read {
                step: "reading a tar header",
                source,
            })?;
            applier.entry(&mut entry)?;
        }
        applier.finish()?;
    }
    let (diff_id, size) = tar_stream.finish().map_err(|source| UnpackError::Read {
        step: "reading the end of the layer",
        source,
    })?;
    let (blob_digest, _) = blob.finish().map_err(|source| UnpackError::Read {
        step: "reading the end of the layer blob",
        source,
    })?;
    if trusted {
        report.diff_id = (!plain).then_some(diff_id);
        report.size = size;
        return Ok(report);
    }
    let blob_digest = if plain { diff_id.clone() } else { blob_digest };
    if let Some(expected) = &opts.expected_blob {
        if *expected != blob_digest {
            return Err(UnpackError::BlobDigestMismatch {
                expected: expected.clone(),
                actual: blob_digest,
            });
        }
    }
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(UnpackError::DiffIdMismatch {
                expected: expected.clone(),
                actual: diff_id,
            });
        }
    }
    report.diff_id = Some(diff_id);
    report.size = size;
    Ok(report)
}

#[cfg(test)]
mod tests;
