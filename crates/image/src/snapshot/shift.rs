//! The fallback for user namespaces without id-mapped layers: a copy of a snapshot with every
//! owner shifted into the container's host id range. Made once per (chain, mapping) and
//! shared by every container with that mapping.
//!
//! The source is a snapshot this store unpacked (trusted layout, never written by
//! containers), so plain path operations that do not follow symlinks are used.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::mount::IdMap;

/// Copies the tree `src` to `dst` (which must not exist) with owners shifted by `map`.
/// Returns the number of entries copied. On error, the path that failed is returned with it.
pub(super) fn shifted_copy(
    src: &Path,
    dst: &Path,
    map: &IdMap,
) -> Result<u64, (PathBuf, io::Error)> {
    let mut links = HashMap::new();
    let mut count = 0;
    copy(src, dst, map, &mut links, &mut count)?;
    Ok(count)
}

fn at(p: &Path) -> impl FnOnce(io::Error) -> (PathBuf, io::Error) + '_ {
    move |e| (p.to_path_buf(), e)
}

fn errno(p: &Path) -> impl FnOnce(nix::errno::Errno) -> (PathBuf, io::Error) + '_ {
    move |e| (p.to_path_buf(), io::Error::from(e))
}

fn copy(
    src: &Path,
    dst: &Path,
    map: &IdMap,
    links: &mut HashMap<(u64, u64), PathBuf>,
    count: &mut u64,
) -> Result<(), (PathBuf, io::Error)> {
    let md = fs::symlink_metadata(src).map_err(at(src))?;
    let ft = md.file_type();
    *count += 1;
    if ft.is_dir() {
        fs::create_dir(dst).map_err(at(dst))?;
        for entry in fs::read_dir(src).map_err(at(src))? {
            let entry = entry.map_err(at(src))?;
            copy(
                &entry.path(),
                &dst.join(entry.file_name()),
                map,
                links,
                count,
            )?;
        }
    } else if ft.is_file() {
        if md.nlink() > 1 {
            if let Some(first) = links.get(&(md.dev(), md.ino())) {
                return fs::hard_link(first, dst).map_err(at(dst));
            }
            links.insert((md.dev(), md.ino()), dst.to_path_buf());
        }
        fs::copy(src, dst).map_err(at(dst))?;
    } else if ft.is_symlink() {
        symlink(fs::read_link(src).map_err(at(src))?, dst).map_err(at(dst))?;
    } else {
        let kind = if ft.is_char_device() {
            SFlag::S_IFCHR
        } else if ft.is_block_device() {
            SFlag::S_IFBLK
        } else if ft.is_fifo() {
            SFlag::S_IFIFO
        } else {
            SFlag::S_IFSOCK
        };
        mknod(dst, kind, Mode::from_bits_truncate(0o600), md.rdev()).map_err(errno(dst))?;
    }
    std::os::unix::fs::lchown(
        dst,
        Some(map.to_host(md.uid())),
        Some(map.to_host(md.gid())),
    )
    .map_err(at(dst))?;
    if !ft.is_symlink() {
        // After chown, which clears setuid bits.
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))
            .map_err(at(dst))?;
    }
    for name in xattr::list(src).map_err(at(src))? {
        if let Some(v) = xattr::get(src, &name).map_err(at(src))? {
            xattr::set(dst, &name, &v).map_err(at(dst))?;
        }
    }
    let atime = TimeSpec::new(md.atime(), md.atime_nsec());
    let mtime = TimeSpec::new(md.mtime(), md.mtime_nsec());
    utimensat(
        nix::fcntl::AT_FDCWD,
        dst,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(errno(dst))
}
