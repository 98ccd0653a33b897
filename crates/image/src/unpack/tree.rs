//! Fd-relative access to the directory a layer is unpacked into.
//!
//! Every path is walked one component at a time from an fd of the snapshot root with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`,
//! and the last component is only ever touched through `*at` calls that do not follow it.
//! So a symlink (planted by this layer or any other) can never lead a write out of the
//! snapshot, and paths longer than PATH_MAX still work.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// Why a parent path could not be walked.
#[derive(Debug)]
pub(super) enum WalkError {
    /// `component` (a prefix of the path) is a symlink.
    Symlink(String),
    /// `component` exists and is not a directory.
    NotDir(String),
    /// `component` does not exist (and was not to be created).
    Missing(String),
    Io(String, Errno),
}

pub(super) struct Tree {
    root: OwnedFd,
    /// The last parent walked to, reused by the next entry in the same directory.
    cache: Option<(Vec<OsString>, OwnedFd)>,
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS
                | ResolveFlag::RESOLVE_NO_XDEV,
        )
}

/// Opens `name` (one component) below `dir` as a directory, never following a symlink.
pub(super) fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlag,
) -> Result<OwnedFd, Errno> {
    openat2(dir, name, how(flags | OFlag::O_DIRECTORY))
}

/// `lstat` of `name` in `dir`; `None` when it does not exist.
pub(super) fn lstat_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Option<FileStat>, Errno> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

pub(super) fn is_dir(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

pub(super) fn is_symlink(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK
}

/// Removes `name` in `dir` (a whole tree if it is a directory), never following symlinks.
pub(super) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let Some(st) = lstat_at(dir, name)? else {
        return Ok(());
    };
    if !is_dir(&st) {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir);
    }
    let sub = open_dir_at(dir, name, OFlag::O_RDONLY)?;
    let names: Vec<OsString> = {
        let mut d = nix::dir::Dir::from_fd(sub.try_clone().map_err(|_| Errno::EMFILE)?)?;
        d.iter()
            .filter_map(|e| e.ok())
            .map(|e| {
                use std::os::unix::ffi::OsStrExt;
                OsStr::from_bytes(e.file_name().to_bytes()).to_os_string()
            })
            .filter(|n| n != "." && n != "..")
            .collect()
    };
    for n in names {
        remove_all_at(sub.as_fd(), &n)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir)
}

impl Tree {
    pub(super) fn new(root: OwnedFd) -> Tree {
        Tree { root, cache: None }
    }

    pub(super) fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// Forgets the cached parent (after anything that may have removed a directory).
    pub(super) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// An fd of the directory `comps` below the root, creating missing directories (0755,
    /// owned by the caller) when `create`.
    pub(super) fn dir(
        &mut self,
        comps: &[OsString],
        create: bool,
    ) -> Result<BorrowedFd<'_>, WalkError> {
        if comps.is_empty() {
            return Ok(self.root.as_fd());
        }
        let hit = matches!(&self.cache, Some((c, _)) if c.as_slice() == comps);
        if !hit {
            let fd = self.walk(comps, create)?;
            self.cache = Some((comps.to_vec(), fd));
        }
        Ok(self
            .cache
            .as_ref()
            .map(|(_, fd)| fd.as_fd())
            .unwrap_or(self.root.as_fd()))
    }

    fn walk(&self, comps: &[OsString], create: bool) -> Result<OwnedFd, WalkError> {
        let shown = |i: usize| {
            comps[..=i]
                .iter()
                .map(|c| c.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/")
        };
        let mut cur: Option<OwnedFd> = None;
        for (i, c) in comps.iter().enumerate() {
            let parent = cur.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            let next = match open_dir_at(parent, c, OFlag::O_PATH) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) if create => {
                    match mkdirat(parent, c.as_os_str(), Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(WalkError::Io(shown(i), e)),
                    }
                    open_dir_at(parent, c, OFlag::O_PATH).map_err(|e| WalkError::Io(shown(i), e))?
                }
                Err(Errno::ENOENT) => return Err(WalkError::Missing(shown(i))),
                Err(e @ (Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV)) => {
                    return Err(match lstat_at(parent, c) {
                        Ok(Some(st)) if is_symlink(&st) => WalkError::Symlink(shown(i)),
                        Ok(Some(st)) if !is_dir(&st) => WalkError::NotDir(shown(i)),
                        _ => WalkError::Io(shown(i), e),
                    })
                }
                Err(e) => return Err(WalkError::Io(shown(i), e)),
            };
            cur = Some(next);
        }
        cur.ok_or(WalkError::Missing(String::new()))
    }
}
