//! A container's filesystem: `changes` (the overlay upper dir against the image's layers),
//! `export` (a tar stream of the merged rootfs) and the tar writer `commit` also uses for the
//! upper dir (overlay whiteouts become `.wh.` files, opaque directories `.wh..wh..opq`).
//!
//! Files on disk belong to the container's host ids (its user-namespace slice); tars carry
//! the container's ids, as Docker's do.

use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use hull_image::snapshot::{mount_to, unmount};

use super::record::Record;
use super::{io_err, ContainerService, ContainersError};

const OPAQUE: &str = "trusted.overlay.opaque";

/// Whether `m` is an overlay whiteout (a character device 0:0).
fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    matches!(xattr::get(p, OPAQUE), Ok(Some(v)) if v == b"y")
}

/// Host ids of the container's slice back to the container's.
#[derive(Clone, Copy)]
pub(crate) struct IdShift {
    pub start: u32,
    pub size: u32,
}

impl IdShift {
    pub(crate) fn of(rec: &Record) -> IdShift {
        IdShift {
            start: rec.uid_start,
            size: hull_engine::userns::RANGE_SIZE,
        }
    }

    /// A container id as the host sees it.
    pub(crate) fn forward(&self, id: u32) -> u32 {
        if self.start > 0 && id < self.size {
            self.start + id
        } else {
            id
        }
    }

    pub(crate) fn back(&self, id: u32) -> u64 {
        if self.start > 0 && id >= self.start && id - self.start < self.size {
            (id - self.start) as u64
        } else {
            id as u64
        }
    }
}

/// What the tar walk does with overlay markers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Markers {
    /// A merged view: there are none.
    Merged,
    /// An upper dir: whiteouts become `.wh.NAME`, opaque directories get `.wh..wh..opq`.
    Upper,
}

/// Writes the tree below `root` as a tar to `out` (paths relative, directories first).
pub(crate) fn write_tar(
    root: &Path,
    shift: IdShift,
    markers: Markers,
    out: impl Write,
) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    walk(&mut b, root, Path::new(""), shift, markers)?;
    b.into_inner()?.flush()
}

/// A symlink entry whose target is written as it is: `append_link` normalizes the
/// target as a path and turns "/" into "//". Targets longer than the header's 100 bytes
/// go through it (a GNU long-link entry).
pub(crate) fn append_symlink<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &Path,
    target: &Path,
) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_os_str().as_bytes();
    h.set_entry_type(tar::EntryType::Symlink);
    if bytes.len() <= 100 {
        h.set_link_name_literal(bytes)?;
        b.append_data(h, name, std::io::empty())
    } else {
        b.append_link(h, name, target)
    }
}

fn header(m: &Metadata, shift: IdShift) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(m, tar::HeaderMode::Complete);
    h.set_uid(shift.back(m.uid()));
    h.set_gid(shift.back(m.gid()));
    h
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    shift: IdShift,
    markers: Markers,
) -> std::io::Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    if markers == Markers::Upper && !rel.as_os_str().is_empty() && is_opaque(&dir) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        b.append_data(&mut h, rel.join(".wh..wh..opq"), std::io::empty())?;
    }
    for e in entries {
        let name = e.file_name();
        let path = e.path();
        let r = rel.join(&name);
        let m = std::fs::symlink_metadata(&path)?;
        let ft = m.file_type();
        if markers == Markers::Upper && is_whiteout(&m) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            let wh = format!(".wh.{}", name.to_string_lossy());
            b.append_data(&mut h, rel.join(wh), std::io::empty())?;
            continue;
        }
        let mut h = header(&m, shift);
        if ft.is_dir() {
            b.append_data(&mut h, &r, std::io::empty())?;
            walk(b, root, &r, shift, markers)?;
        } else if ft.is_file() {
            let f = File::open(&path)?;
            b.append_data(&mut h, &r, f)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path)?;
            h.set_size(0);
            append_symlink(b, &mut h, &r, &target)?;
        } else if ft.is_socket() {
            continue; // tar has no sockets
        } else {
            h.set_size(0);
            b.append_data(&mut h, &r, std::io::empty())?;
        }
    }
    Ok(())
}

/// A writer that sends 64 KiB chunks on a channel (from a blocking thread); a closed
/// channel is a broken pipe, which ends the walk.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// The lower dirs of a container's overlay, top first.
fn lowers(svc: &ContainerService, id: &str) -> Result<Vec<PathBuf>, ContainersError> {
    let mounts = svc.snapshots.mounts(id)?;
    Ok(mounts
        .iter()
        .flat_map(|m| m.options.iter())
        .filter_map(|o| o.strip_prefix("lowerdir="))
        .flat_map(|l| l.split(':'))
        .map(PathBuf::from)
        .collect())
}

fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|l| std::fs::symlink_metadata(l.join(rel)).is_ok())
}

fn is_mountpoint(p: &Path) -> bool {
    let target = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_str()))
}

/// A mount of the container's rootfs that is unmounted (and its directory removed) on drop.
struct TempMount(PathBuf);

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.0) {
            tracing::warn!("unmounting {}: {e}", self.0.display());
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

impl ContainerService {
    /// `GET /containers/{id}/changes`: Kind 0 modified, 1 added, 2 deleted.
    pub fn changes(&self, name: &str) -> Result<Value, ContainersError> {
        let rec = self.get(name)?;
        let upper = self.upper_dir(&rec.id);
        let lowers = lowers(self, &rec.id)?;
        let mut out = Vec::new();
        diff(&upper, Path::new(""), &lowers, &mut out)
            .map_err(io_err("reading the writable layer", &upper))?;
        out.sort_by(|a: &(String, u8), b| a.0.cmp(&b.0));
        Ok(Value::Array(
            out.into_iter()
                .map(|(p, k)| json!({ "Path": p, "Kind": k }))
                .collect(),
        ))
    }

    /// `GET /containers/{id}/export`: the merged rootfs as a tar, streamed. A rootfs that is
    /// not mounted is mounted read-only for the export.
    pub fn export(&self, name: &str) -> Result<mpsc::Receiver<Bytes>, ContainersError> {
        let rec = self.get(name)?;
        let rootfs = self.exec_dir(&rec.id).join("rootfs");
        let temp = if is_mountpoint(&rootfs) {
            None
        } else {
            let dir = self.exec_dir(&rec.id).join("export-rootfs");
            std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
            for m in self.snapshots.mounts(&rec.id)? {
                let mut m = m.clone();
                m.options.push("ro".into());
                mount_to(&m, &dir).map_err(|source| ContainersError::Mount {
                    path: dir.clone(),
                    source,
                })?;
            }
            Some(TempMount(dir))
        };
        let root = temp.as_ref().map_or(rootfs, |t| t.0.clone());
        let shift = IdShift::of(&rec);
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let id = rec.id.clone();
        std::thread::spawn(move || {
            let _temp = temp;
            if let Err(e) = write_tar(&root, shift, Markers::Merged, ChannelWriter::new(tx)) {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    tracing::warn!("exporting container {id}: {e}");
                }
            }
        });
        Ok(rx)
    }
}

/// Walks the upper dir: whiteouts are deletions, opaque directories delete what the lowers
/// had below them, other entries are modifications (in a lower) or additions.
fn diff(
    upper: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<(String, u8)>,
) -> std::io::Result<()> {
    let dir = upper.join(rel);
    for e in std::fs::read_dir(&dir)?.flatten() {
        let r = rel.join(e.file_name());
        let shown = format!("/{}", r.display());
        let m = std::fs::symlink_metadata(e.path())?;
        if is_whiteout(&m) {
            out.push((shown, 2));
            continue;
        }
        let existed = in_lowers(lowers, &r);
        out.push((shown, if existed { 0 } else { 1 }));
        if m.is_dir() {
            if existed && is_opaque(&e.path()) {
                // Everything the lowers had below an opaque directory is gone, unless the
                // upper has it again.
                let mut seen = std::collections::BTreeSet::new();
                for l in lowers {
                    for c in std::fs::read_dir(l.join(&r))
                        .into_iter()
                        .flatten()
                        .flatten()
                    {
                        let cr = r.join(c.file_name());
                        if std::fs::symlink_metadata(upper.join(&cr)).is_err()
                            && seen.insert(cr.clone())
                        {
                            out.push((format!("/{}", cr.display()), 2));
                        }
                    }
                }
                diff(upper, &r, &[], out)?;
            } else {
                diff(upper, &r, lowers, out)?;
            }
        }
    }
    Ok(())
}
