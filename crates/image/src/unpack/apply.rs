//! Applying one tar entry to the snapshot directory.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, makedev, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;

use super::tree::{is_dir, lstat_at, open_dir_at, remove_all_at, Tree, WalkError};
use super::{DevicePolicy, UnpackError, UnpackOptions, UnpackReport};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE: &str = "trusted.overlay.opaque";

pub(super) struct Applier<'a> {
    tree: Tree,
    opts: &'a UnpackOptions,
    report: &'a mut UnpackReport,
    /// Directory mtimes, set at the end (creating children changes them).
    dir_times: Vec<(Vec<OsString>, i64)>,
}

/// The entry's path as in-root components. Absolute paths are made relative; `..` is refused.
fn components(entry: &str, raw: &[u8]) -> Result<(Vec<OsString>, bool), UnpackError> {
    if raw.contains(&0) {
        return Err(UnpackError::UnsafePath {
            entry: entry.to_string(),
            reason: "the name contains a NUL byte",
        });
    }
    let mut out = Vec::new();
    let mut absolute = false;
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::RootDir | Component::Prefix(_) => absolute = true,
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(UnpackError::UnsafePath {
                    entry: entry.to_string(),
                    reason: "the name has a '..' component",
                })
            }
            Component::Normal(n) => out.push(n.to_os_string()),
        }
    }
    Ok((out, absolute))
}

fn walk_err(entry: &str, e: WalkError) -> UnpackError {
    match e {
        WalkError::Symlink(component) => UnpackError::ThroughSymlink {
            entry: entry.to_string(),
            component,
        },
        WalkError::NotDir(component) | WalkError::Missing(component) => {
            UnpackError::NotADirectory {
                entry: entry.to_string(),
                component,
            }
        }
        WalkError::Io(component, e) => UnpackError::ParentDir {
            entry: entry.to_string(),
            component,
            source: e.into(),
        },
    }
}

fn write_err<'e>(entry: &'e str, step: &'static str) -> impl FnOnce(Errno) -> UnpackError + 'e {
    move |e| UnpackError::Write {
        entry: entry.to_string(),
        step,
        source: e.into(),
    }
}

fn io_err<'e>(entry: &'e str, step: &'static str) -> impl FnOnce(io::Error) -> UnpackError + 'e {
    move |source| UnpackError::Write {
        entry: entry.to_string(),
        step,
        source,
    }
}

/// Whether an xattr from a layer may be written; `Err` says why not.
fn xattr_allowed(name: &str) -> Result<(), &'static str> {
    // trusted.overlay.opaque is what `.wh..wh..opq` becomes anyway; every other trusted.*
    // attribute could steer overlayfs (redirects, metacopy) and is refused.
    if name.starts_with("user.")
        || name == OVERLAY_OPAQUE
        || name == "security.capability"
        || name == "system.posix_acl_access"
        || name == "system.posix_acl_default"
    {
        Ok(())
    } else if name.starts_with("trusted.") {
        Err("trusted.* attributes other than trusted.overlay.opaque are refused")
    } else {
        Err("only user.*, security.capability and POSIX ACL attributes are kept")
    }
}

impl<'a> Applier<'a> {
    pub(super) fn new(tree: Tree, opts: &'a UnpackOptions, report: &'a mut UnpackReport) -> Self {
        Applier {
            tree,
            opts,
            report,
            dir_times: Vec::new(),
        }
    }

    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.report.warnings.push(msg);
    }

    pub(super) fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<(), UnpackError> {
        self.report.entries += 1;
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let (mut comps, absolute) = components(&name, &raw)?;
        if absolute {
            self.warn(format!(
                "layer entry {name:?}: absolute name made relative to the root"
            ));
        }
        let kind = e.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let Some(base) = comps.pop() else {
            // "./": the root directory itself.
            if kind == EntryType::Directory {
                let root = self
                    .tree
                    .root()
                    .try_clone_to_owned()
                    .map_err(io_err(&name, "opening the root"))?;
                self.dir_meta(&name, e, File::from(root))?;
                self.dir_times
                    .push((Vec::new(), e.header().mtime().unwrap_or(0) as i64));
            } else {
                self.warn(format!(
                    "layer entry {name:?}: names the root but is not a directory; left out"
                ));
            }
            return Ok(());
        };
        let base_s = base.to_string_lossy().into_owned();
        if base_s == OPAQUE {
            let dir = self
                .tree
                .dir(&comps, true)
                .map_err(|w| walk_err(&name, w))?;
            let f = openat(
                dir,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(write_err(&name, "opening the opaque directory"))?;
            xattr::FileExt::set_xattr(&File::from(f), OVERLAY_OPAQUE, b"y")
                .map_err(io_err(&name, "marking the directory opaque"))?;
            return Ok(());
        }
        if let Some(hidden) = base_s.strip_prefix(WHITEOUT) {
            if hidden == "." || hidden == ".." {
                return Err(UnpackError::UnsafePath {
                    entry: name,
                    reason: "a whiteout of '.' or '..'",
                });
            }
            if hidden.starts_with(".wh.") || hidden.is_empty() {
                self.warn(format!("layer entry {name:?}: aufs metadata left out"));
                return Ok(());
            }
            let dir = self
                .tree
                .dir(&comps, true)
                .map_err(|w| walk_err(&name, w))?;
            let hidden = OsStr::new(hidden);
            remove_all_at(dir, hidden)
                .map_err(write_err(&name, "removing the whited-out entry"))?;
            mknodat(dir, hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(write_err(&name, "creating an overlay whiteout"))?;
            self.tree.invalidate();
            return Ok(());
        }
        if matches!(kind, EntryType::Char | EntryType::Block) {
            match self.opts.devices {
                DevicePolicy::Skip => {
                    self.warn(format!("layer entry {name:?}: device node left out"));
                    return Ok(());
                }
                DevicePolicy::Refuse => return Err(UnpackError::DeviceRefused { entry: name }),
                DevicePolicy::Create => {}
            }
        }
        let is_new_dir = kind == EntryType::Directory;
        // Replace what is there, except a directory over a directory (merged).
        {
            let dir = self
                .tree
                .dir(&comps, true)
                .map_err(|w| walk_err(&name, w))?;
            if let Some(st) = lstat_at(dir, &base).map_err(write_err(&name, "inspecting"))? {
                if !(is_new_dir && is_dir(&st)) {
                    remove_all_at(dir, &base)
                        .map_err(write_err(&name, "replacing an existing entry"))?;
                    if is_dir(&st) {
                        self.tree.invalidate();
                    }
                }
            }
        }
        let xattrs = self.xattrs(&name, e)?;
        let h = e.header();
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        let mtime = TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0);
        let owner = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let (major, minor) = (
            h.device_major().ok().flatten().unwrap_or(0),
            h.device_minor().ok().flatten().unwrap_or(0),
        );
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let dir = self
                    .tree
                    .dir(&comps, false)
                    .map_err(|w| walk_err(&name, w))?;
                let fd = openat(
                    dir,
                    base.as_os_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(write_err(&name, "creating the file"))?;
                let mut f = File::from(fd);
                let size = e.size();
                copy_content(e, size, &mut f)
                    .map_err(io_err(&name, "writing the file's content"))?;
                fchown(&f, owner.0, owner.1).map_err(write_err(&name, "setting the owner"))?;
                fchmod(&f, mode).map_err(write_err(&name, "setting the mode"))?;
                set_xattrs(&name, &f, &xattrs)?;
                futimens(&f, &mtime, &mtime).map_err(write_err(&name, "setting the mtime"))?;
                if mode.bits() & 0o6000 != 0 {
                    self.report.setuid.push(name.clone());
                    tracing::info!("layer entry {name:?} is setuid/setgid ({:o})", mode.bits());
                }
            }
            EntryType::Directory => {
                let dir = self
                    .tree
                    .dir(&comps, false)
                    .map_err(|w| walk_err(&name, w))?;
                match mkdirat(dir, base.as_os_str(), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(err) => return Err(write_err(&name, "creating the directory")(err)),
                }
                let fd = open_dir_at(dir, &base, OFlag::O_RDONLY)
                    .map_err(write_err(&name, "opening the directory"))?;
                let f = File::from(fd);
                fchown(&f, owner.0, owner.1).map_err(write_err(&name, "setting the owner"))?;
                fchmod(&f, mode).map_err(write_err(&name, "setting the mode"))?;
                set_xattrs(&name, &f, &xattrs)?;
                comps.push(base);
                self.dir_times.push((comps, mtime.tv_sec()));
            }
            EntryType::Symlink => {
                let target = link.unwrap_or_default();
                let dir = self
                    .tree
                    .dir(&comps, false)
                    .map_err(|w| walk_err(&name, w))?;
                symlinkat(OsStr::from_bytes(&target), dir, base.as_os_str())
                    .map_err(write_err(&name, "creating the symlink"))?;
                fchownat(
                    dir,
                    base.as_os_str(),
                    owner.0,
                    owner.1,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(write_err(&name, "setting the symlink's owner"))?;
                utimensat(
                    dir,
                    base.as_os_str(),
                    &mtime,
                    &mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(write_err(&name, "setting the symlink's mtime"))?;
                if !xattrs.is_empty() {
                    self.warn(format!(
                        "layer entry {name:?}: xattrs on a symlink left out"
                    ));
                }
            }
            EntryType::Link => self.hardlink(&name, &comps, &base, &link.unwrap_or_default())?,
            EntryType::Fifo | EntryType::Char | EntryType::Block => {
                let sflag = match kind {
                    EntryType::Fifo => SFlag::S_IFIFO,
                    EntryType::Char => SFlag::S_IFCHR,
                    _ => SFlag::S_IFBLK,
                };
                let dir = self
                    .tree
                    .dir(&comps, false)
                    .map_err(|w| walk_err(&name, w))?;
                mknodat(
                    dir,
                    base.as_os_str(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    makedev(major.into(), minor.into()),
                )
                .map_err(write_err(&name, "creating the node"))?;
                fchownat(
                    dir,
                    base.as_os_str(),
                    owner.0,
                    owner.1,
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(write_err(&name, "setting the owner"))?;
                // The node was just created in a directory only this unpack writes: it is
                // not a symlink, so following is harmless (fchmodat cannot not follow).
                fchmodat(dir, base.as_os_str(), mode, FchmodatFlags::FollowSymlink)
                    .map_err(write_err(&name, "setting the mode"))?;
                utimensat(
                    dir,
                    base.as_os_str(),
                    &mtime,
                    &mtime,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(write_err(&name, "setting the mtime"))?;
            }
            other => self.warn(format!(
                "layer entry {name:?}: unsupported entry type {other:?} left out"
            )),
        }
        Ok(())
    }

    fn hardlink(
        &mut self,
        name: &str,
        comps: &[OsString],
        base: &OsStr,
        target: &[u8],
    ) -> Result<(), UnpackError> {
        let target_s = String::from_utf8_lossy(target).into_owned();
        let refuse = |reason| UnpackError::HardlinkTarget {
            entry: name.to_string(),
            target: target_s.clone(),
            reason,
        };
        let (mut tcomps, _) =
            components(name, target).map_err(|_| refuse("the target has a '..' component"))?;
        let Some(tbase) = tcomps.pop() else {
            return Err(refuse("the target is the root directory"));
        };
        let tdir = match self.tree.dir(&tcomps, false) {
            Ok(d) => d
                .try_clone_to_owned()
                .map_err(io_err(name, "opening the link target's directory"))?,
            Err(WalkError::Symlink(_)) => {
                return Err(refuse("the target's path goes through a symlink"))
            }
            Err(_) => return Err(refuse("the target is not in this layer")),
        };
        match lstat_at(tdir.as_fd(), &tbase) {
            Ok(Some(st)) if is_dir(&st) => return Err(refuse("the target is a directory")),
            Ok(Some(_)) => {}
            _ => return Err(refuse("the target is not in this layer")),
        }
        let dir = self.tree.dir(comps, false).map_err(|w| walk_err(name, w))?;
        linkat(tdir.as_fd(), tbase.as_os_str(), dir, base, AtFlags::empty())
            .map_err(write_err(name, "creating the hardlink"))
    }

    fn xattrs<R: Read>(
        &mut self,
        name: &str,
        e: &mut tar::Entry<'_, R>,
    ) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
        let mut out = Vec::new();
        let Some(pax) = e
            .pax_extensions()
            .map_err(io_err(name, "reading PAX headers"))?
        else {
            return Ok(out);
        };
        let mut dropped = Vec::new();
        for ext in pax {
            let ext = ext.map_err(io_err(name, "reading PAX headers"))?;
            let Some(attr) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
                continue;
            };
            let attr = String::from_utf8_lossy(attr).into_owned();
            match xattr_allowed(&attr) {
                Ok(()) => out.push((attr, ext.value_bytes().to_vec())),
                Err(why) => dropped.push(format!(
                    "layer entry {name:?}: xattr {attr} left out ({why})"
                )),
            }
        }
        for d in dropped {
            self.warn(d);
        }
        Ok(out)
    }

    fn dir_meta<R: Read>(
        &mut self,
        name: &str,
        e: &tar::Entry<'_, R>,
        dir: File,
    ) -> Result<(), UnpackError> {
        let h = e.header();
        let dir = File::from(
            openat(
                &dir,
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(write_err(name, "opening the directory"))?,
        );
        fchown(
            &dir,
            h.uid().ok().map(|u| Uid::from_raw(u as u32)),
            h.gid().ok().map(|g| Gid::from_raw(g as u32)),
        )
        .map_err(write_err(name, "setting the owner"))?;
        fchmod(
            &dir,
            Mode::from_bits_truncate(h.mode().unwrap_or(0o755) & 0o7777),
        )
        .map_err(write_err(name, "setting the mode"))
    }

    /// Sets directory mtimes (after all their children were written).
    pub(super) fn finish(&mut self) -> Result<(), UnpackError> {
        let times = std::mem::take(&mut self.dir_times);
        for (mut comps, secs) in times.into_iter().rev() {
            let t = TimeSpec::new(secs, 0);
            let shown = comps
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let base = comps.pop().unwrap_or_else(|| OsString::from("."));
            // A directory removed or replaced later in the layer has nothing left to date.
            let Ok(dir) = self.tree.dir(&comps, false) else {
                continue;
            };
            match utimensat(
                dir,
                base.as_os_str(),
                &t,
                &t,
                UtimensatFlags::NoFollowSymlink,
            ) {
                Ok(()) | Err(Errno::ENOENT) => {}
                Err(e) => return Err(write_err(&shown, "setting the directory's mtime")(e)),
            }
        }
        Ok(())
    }
}

fn set_xattrs(name: &str, f: &File, xattrs: &[(String, Vec<u8>)]) -> Result<(), UnpackError> {
    for (k, v) in xattrs {
        xattr::FileExt::set_xattr(f, k, v).map_err(io_err(name, "setting an xattr"))?;
    }
    Ok(())
}

/// Copies a file's content with a buffer sized to it (up to 1 MiB): large layer files take
/// far fewer write calls than with `io::copy`'s 8 KiB.
fn copy_content(from: &mut impl Read, size: u64, to: &mut File) -> io::Result<()> {
    let mut buf = vec![0u8; size.clamp(1, 1 << 20) as usize];
    let mut filled = 0;
    loop {
        let n = match from.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        filled += n;
        if n == 0 || filled == buf.len() {
            to.write_all(&buf[..filled])?;
            filled = 0;
        }
        if n == 0 {
            return Ok(());
        }
    }
}
