//! `docker load`: reads an archive (a file, or a stream spooled to a file), finds out its
//! kind, and hands it to the docker-save or OCI-layout reader.

use std::fs::{self, File};
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::ImageConfiguration;

use super::layer::{detect, Compression};
use super::staging::Staging;
use super::tarindex::TarIndex;
use super::{docker, oci, ArchiveError};
use crate::images::{host_arch, ImageRecord, ImageStore};
use crate::progress::{Message, Progress};
use crate::snapshot::Snapshotter;

/// What a load accepts.
#[derive(Clone)]
pub struct LoadOptions {
    /// "linux"
    pub os: String,
    /// "amd64", "arm64", ...
    pub arch: String,
    /// Unpack each layer into this snapshotter while it is loaded (docker load's behaviour:
    /// the archive's bytes are read and hashed once, written to the blob store and the
    /// snapshot at the same time). None: store the blobs only.
    pub unpack: Option<Arc<Snapshotter>>,
}

impl LoadOptions {
    pub(super) fn unpack(&self) -> Option<&Snapshotter> {
        self.unpack.as_deref()
    }
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("os", &self.os)
            .field("arch", &self.arch)
            .field(
                "unpack",
                &self.unpack.as_ref().map(|s| s.root().to_path_buf()),
            )
            .finish()
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            os: "linux".into(),
            arch: host_arch().into(),
            unpack: None,
        }
    }
}

/// A temporary file in the store's ingest area, removed on drop.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn spool(store: &ImageStore, mut src: impl Read, what: &str) -> Result<Spool, ArchiveError> {
    let path = store.content.root().join("ingest").join(format!(
        "load-{}-{}.tar",
        std::process::id(),
        crate::time::now_rfc3339()
    ));
    let io_err = |what: &'static str| {
        let path = path.clone();
        move |source| ArchiveError::Io { path, what, source }
    };
    let mut f = File::create(&path).map_err(io_err("creating a spool file"))?;
    let guard = Spool(path.clone());
    io::copy(&mut src, &mut f).map_err(|source| ArchiveError::Io {
        path: PathBuf::from(what),
        what: "reading the archive",
        source,
    })?;
    f.flush().map_err(io_err("writing a spool file"))?;
    Ok(guard)
}

/// Loads an archive from a stream (stdin): spooled (decompressed, if it is gzip or zstd) to a
/// file in the store's ingest area first, since a tar's files come in any order.
pub fn load(
    store: &ImageStore,
    src: impl Read,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let mut src = io::BufReader::with_capacity(1 << 20, src);
    let head = src.fill_buf().map_err(|source| ArchiveError::Io {
        path: PathBuf::from("<stdin>"),
        what: "reading the archive",
        source,
    })?;
    let s = match detect(head) {
        Ok(Compression::Gzip) => {
            spool(store, flate2::bufread::MultiGzDecoder::new(src), "<stdin>")?
        }
        Ok(Compression::Zstd) => {
            let d = zstd::stream::read::Decoder::with_buffer(src).map_err(|source| {
                ArchiveError::Io {
                    path: PathBuf::from("<stdin>"),
                    what: "decompressing",
                    source,
                }
            })?;
            spool(store, d, "<stdin>")?
        }
        _ => spool(store, src, "<stdin>")?,
    };
    load_file(store, &s.0, opts, progress)
}

/// Loads an archive file: docker save or OCI layout, plain or gzip/zstd-compressed.
pub fn load_file(
    store: &ImageStore,
    path: &Path,
    opts: &LoadOptions,
    progress: &dyn Progress,
) -> Result<Vec<ImageRecord>, ArchiveError> {
    let io_err = |what| {
        move |source| ArchiveError::Io {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    let mut f = File::open(path).map_err(io_err("opening"))?;
    let mut head = [0u8; 6];
    let n = f.read(&mut head).map_err(io_err("reading"))?;
    let decompressed;
    let tar_path = match detect(&head[..n]) {
        Ok(Compression::None) => path,
        Ok(Compression::Gzip) => {
            let f = File::open(path).map_err(io_err("opening"))?;
            decompressed = spool(
                store,
                flate2::read::MultiGzDecoder::new(f),
                &path.to_string_lossy(),
            )?;
            &decompressed.0
        }
        Ok(Compression::Zstd) => {
            let f = File::open(path).map_err(io_err("opening"))?;
            let d = zstd::stream::read::Decoder::new(f).map_err(io_err("decompressing"))?;
            decompressed = spool(store, d, &path.to_string_lossy())?;
            &decompressed.0
        }
        Err(kind) => {
            return Err(ArchiveError::Io {
                path: path.to_path_buf(),
                what: "detecting the compression",
                source: io::Error::other(format!("{kind} is not supported; use gzip or zstd")),
            })
        }
    };
    let tar = TarIndex::open(tar_path)?;
    let mut staging = Staging::new(store)?;
    let regs = if tar.contains("manifest.json") {
        docker::read(&tar, &mut staging, opts, progress)?
    } else if tar.contains("index.json") {
        oci::read(&tar, &mut staging, opts, progress)?
    } else {
        return Err(ArchiveError::NoManifest {
            path: path.to_path_buf(),
        });
    };
    let recs = staging.finish(&regs)?;
    for r in &recs {
        if r.repo_tags.is_empty() {
            progress.emit(Message::stream(format!("Loaded image ID: {}\n", r.id)));
        }
        for reg in &regs {
            if reg.manifest == r.manifest || reg.index.as_ref() == Some(&r.manifest) {
                for n in &reg.names {
                    progress.emit(Message::stream(format!("Loaded image: {}\n", n.familiar())));
                }
            }
        }
    }
    Ok(recs)
}

/// Parses a config and checks its platform.
pub(super) fn check_config(
    bytes: &[u8],
    image: &str,
    file: &str,
    opts: &LoadOptions,
) -> Result<ImageConfiguration, ArchiveError> {
    let c: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|source| ArchiveError::Json {
            image: image.to_string(),
            file: file.to_string(),
            source,
        })?;
    let (os, arch) = (c.os().to_string(), c.architecture().to_string());
    if os != opts.os || arch != opts.arch {
        return Err(ArchiveError::Platform {
            image: image.to_string(),
            wanted: format!("{}/{}", opts.os, opts.arch),
            found: format!("{os}/{arch}"),
        });
    }
    Ok(c)
}

/// The config's diff_ids, checked against the layer count.
pub(super) fn diff_ids(
    c: &ImageConfiguration,
    layers: usize,
    image: &str,
) -> Result<Vec<crate::Digest>, ArchiveError> {
    let mut out = Vec::new();
    for d in c.rootfs().diff_ids() {
        out.push(d.parse().map_err(|_| ArchiveError::BadDigest {
            image: image.to_string(),
            file: "config rootfs.diff_ids".into(),
            value: d.clone(),
        })?);
    }
    if out.len() != layers {
        return Err(ArchiveError::LayerCount {
            image: image.to_string(),
            layers,
            diff_ids: out.len(),
        });
    }
    Ok(out)
}
