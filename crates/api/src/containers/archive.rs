//! `docker cp`: `HEAD`, `GET` and `PUT /containers/{id}/archive?path=...`.
//!
//! Every path is resolved in the container's root filesystem as the container would see it,
//! never on the host: the directory that holds the entry is opened with
//! `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` from an fd of the rootfs (an absolute
//! symlink in the image points into the rootfs, `..` stops at its top), and everything below
//! it is read or made relative to directory fds with `O_NOFOLLOW` (`openat`, `mkdirat`,
//! `symlinkat`, `linkat`, `fchown` on the opened file), so neither an image nor a running
//! container that swaps a directory for a symlink can make hulld read or write a host file.
//!
//! A path under one of the container's volumes or binds is resolved the same way in that
//! mount's source (a volume keeps the container's own ids, a bind the host's); a tmpfs
//! exists only in the container and is refused. A directory copied out goes into the
//! volumes, binds and hulld's files mounted below it (a tmpfs shows as its mount point).

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use hull_runtime::mounts::open_dir_in_root;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use nix::unistd::{Gid, Uid};
use serde::Serialize;
use tokio::sync::mpsc;

use super::fs::{ChannelWriter, IdShift};
use super::{ContainerService, ContainersError};

/// `X-Docker-Container-Path-Stat`: base64 of this JSON.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits (what the docker CLI decodes).
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// What went wrong with a path; the routes turn it into Docker's codes.
fn not_found(path: &str) -> ContainersError {
    ContainersError::PathNotFound(path.to_string())
}

fn bad(reason: String) -> ContainersError {
    ContainersError::Invalid(reason)
}

fn errno(what: String) -> impl Fn(nix::Error) -> ContainersError {
    move |e| ContainersError::Invalid(format!("{what}: {e}"))
}

/// A container path, made absolute and lexically clean ("/a/../b" is "/b"; ".." stops at
/// "/"); whether it ended with "/" or "/." (then the entry must be a directory).
fn clean(path: &str) -> Result<(PathBuf, bool), ContainersError> {
    if path.is_empty() {
        return Err(bad("path: empty; name a path in the container".into()));
    }
    if path.contains('\0') {
        return Err(bad("path: contains a NUL byte".into()));
    }
    let dir_only = path.ends_with('/') || path.ends_with("/.");
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok((out, dir_only))
}

/// An entry: the directory holding it (opened in the root) and its name in there ("." for
/// the root itself).
struct Entry {
    parent: OwnedFd,
    name: OsString,
    path: PathBuf,
}

impl Entry {
    /// `at`'s entry: its holding directory opened in `at.root`.
    fn resolve(at: &Located<'_>) -> Result<Entry, ContainersError> {
        let shown = at.path.display().to_string();
        let (parent, name) = match (at.rel.parent(), at.rel.file_name()) {
            (Some(p), Some(n)) => (p, n.to_owned()),
            _ => (Path::new("/"), OsString::from(".")),
        };
        let parent = open_dir_in_root(at.root, parent).map_err(|e| match e {
            nix::Error::ENOENT | nix::Error::ENOTDIR => not_found(&shown),
            e => errno(format!("resolving {shown} in the container"))(e),
        })?;
        Ok(Entry {
            parent,
            name,
            path: at.path.clone(),
        })
    }

    fn stat(&self) -> Result<FileStat, ContainersError> {
        fstatat(
            self.parent.as_fd(),
            self.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| match e {
            nix::Error::ENOENT | nix::Error::ENOTDIR => not_found(&self.path.display().to_string()),
            e => errno(format!("reading {}", self.path.display()))(e),
        })
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Go's `os.FileMode` for a stat.
fn go_mode(st: &FileStat) -> u32 {
    let perm = st.st_mode & 0o777;
    let mut m = perm;
    let k = kind(st);
    if k == SFlag::S_IFDIR {
        m |= 1 << 31;
    } else if k == SFlag::S_IFLNK {
        m |= 1 << 27;
    } else if k == SFlag::S_IFIFO {
        m |= 1 << 25;
    } else if k == SFlag::S_IFSOCK {
        m |= 1 << 24;
    } else if k == SFlag::S_IFCHR {
        m |= (1 << 26) | (1 << 21);
    } else if k == SFlag::S_IFBLK {
        m |= 1 << 26;
    }
    if st.st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st.st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st.st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    hull_runtime::state::rfc3339(secs, nanos.clamp(0, 999_999_999) as u32)
}

/// Where a container path's files are as hulld sees them: the rootfs, or the source of
/// the volume or bind mounted over that part of the tree.
struct Roots {
    rec: super::record::Record,
    rootfs: OwnedFd,
    /// (destination, source fd (None: a tmpfs, only in the container), ids, writable), the
    /// longest destinations first.
    mounts: Vec<(PathBuf, Option<OwnedFd>, IdShift, bool)>,
    /// /etc/hostname, /etc/hosts, /etc/resolv.conf: hulld's files bound over the image's
    /// (destination, the directory holding the file, its name there). Read-only here: a
    /// copy replaces a file by a new one, which the container's bind would not see.
    files: Vec<(PathBuf, OwnedFd, OsString)>,
}

/// A container path located: the root its files are under, the path within that root,
/// how ids shift there, and whether it may be written.
struct Located<'a> {
    root: BorrowedFd<'a>,
    rel: PathBuf,
    path: PathBuf,
    shift: IdShift,
    writable: bool,
}

impl Roots {
    /// One of hulld's files bound at exactly `path`: its directory and its name there.
    fn file_at(&self, path: &Path) -> Option<(BorrowedFd<'_>, &OsStr)> {
        self.files
            .iter()
            .find(|(d, ..)| d == path)
            .map(|(_, dir, name)| (dir.as_fd(), name.as_os_str()))
    }

    fn locate(&self, path: &Path) -> Result<Located<'_>, ContainersError> {
        if let Some((dir, name)) = self.file_at(path) {
            return Ok(Located {
                root: dir,
                rel: Path::new("/").join(name),
                path: path.to_path_buf(),
                shift: IdShift::of(&self.rec),
                writable: false,
            });
        }
        for (dest, fd, shift, writable) in &self.mounts {
            let Ok(rest) = path.strip_prefix(dest) else {
                continue;
            };
            let Some(fd) = fd else {
                return Err(bad(format!(
                    "path {}: inside the container's tmpfs at {}, which exists only in the \
                     container; use docker exec (e.g. tar) for it",
                    path.display(),
                    dest.display()
                )));
            };
            return Ok(Located {
                root: fd.as_fd(),
                rel: Path::new("/").join(rest),
                path: path.to_path_buf(),
                shift: *shift,
                writable: *writable,
            });
        }
        let readonly = self
            .rec
            .host_config
            .get("ReadonlyRootfs")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        Ok(Located {
            root: self.rootfs.as_fd(),
            rel: path.to_path_buf(),
            path: path.to_path_buf(),
            shift: IdShift::of(&self.rec),
            writable: !readonly,
        })
    }

    /// When `path` is exactly where a volume, a bind or one of hulld's files is mounted:
    /// the directory fd and name to read it through instead of the rootfs's mount point
    /// (a tmpfs has none: its empty mount point is what hulld can show).
    fn exact(&self, path: &Path) -> Option<(BorrowedFd<'_>, OsString, IdShift)> {
        if let Some((dir, name)) = self.file_at(path) {
            return Some((dir, name.to_owned(), IdShift::of(&self.rec)));
        }
        self.mounts.iter().find_map(|(dest, fd, shift, _)| {
            (dest == path)
                .then_some(fd.as_ref())
                .flatten()
                .map(|fd| (fd.as_fd(), OsString::from("."), *shift))
        })
    }
}

fn open_root(dir: &Path) -> Result<OwnedFd, ContainersError> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno(format!("opening {}", dir.display())))
}

impl ContainerService {
    /// The roots of the container's files: its rootfs as hulld sees it (mounted from
    /// create to removal) and the sources of its volumes (content with the container's
    /// own ids: no shift) and binds (host ids, which the container sees through its user
    /// namespace).
    fn archive_roots(&self, name: &str) -> Result<Roots, ContainersError> {
        let rec = self.get(name)?;
        let rootfs_dir = self.exec_dir(&rec.id).join("rootfs");
        let rootfs = open_root(&rootfs_dir)?;
        // an unmounted rootfs directory is empty: say so rather than "not found" (the
        // mount is on the fd opened, whatever the path does afterwards)
        let dev = |st: nix::Result<FileStat>| st.map(|s| s.st_dev).ok();
        let mounted = match (
            dev(nix::sys::stat::fstat(&rootfs)),
            dev(nix::sys::stat::stat(&self.exec_dir(&rec.id))),
        ) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        if !mounted {
            return Err(ContainersError::Conflict(format!(
                "container {}: its root filesystem is not mounted (start the container once)",
                rec.id
            )));
        }
        let mut mounts = Vec::new();
        for m in &rec.mounts {
            let dest = clean(&m.destination)?.0;
            if dest == Path::new("/") {
                continue;
            }
            let (fd, shift) = match m.typ.as_str() {
                "volume" => (
                    Some(open_root(Path::new(&m.source))?),
                    IdShift { start: 0, size: 0 },
                ),
                "bind" => (Some(open_root(Path::new(&m.source))?), IdShift::of(&rec)),
                _ => (None, IdShift::of(&rec)),
            };
            mounts.push((dest, fd, shift, m.rw));
        }
        mounts.sort_by_key(|(d, ..)| std::cmp::Reverse(d.components().count()));
        let mut files = Vec::new();
        let spec = std::fs::read(self.exec_dir(&rec.id).join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        for m in spec
            .as_ref()
            .and_then(|s| s["mounts"].as_array())
            .into_iter()
            .flatten()
        {
            let (Some(dest), Some(source)) = (m["destination"].as_str(), m["source"].as_str())
            else {
                continue;
            };
            let source = Path::new(source);
            // made by hulld for this container (or the one whose network it shares)
            let ours = source.starts_with(&self.paths.exec);
            if !ours || !["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"].contains(&dest) {
                continue;
            }
            if let (Some(dir), Some(name)) = (source.parent(), source.file_name()) {
                files.push((PathBuf::from(dest), open_root(dir)?, name.to_owned()));
            }
        }
        Ok(Roots {
            rec,
            rootfs,
            mounts,
            files,
        })
    }

    /// `HEAD /containers/{id}/archive`: what is at `path`.
    pub fn archive_stat(&self, name: &str, path: &str) -> Result<PathStat, ContainersError> {
        let (path, dir_only) = clean(path)?;
        let roots = self.archive_roots(name)?;
        let e = Entry::resolve(&roots.locate(&path)?)?;
        stat_of(&e, dir_only)
    }

    /// `GET /containers/{id}/archive`: a tar of `path` (its base name at the top), streamed.
    pub fn archive_get(
        &self,
        name: &str,
        path: &str,
    ) -> Result<(PathStat, mpsc::Receiver<Bytes>), ContainersError> {
        let (path, dir_only) = clean(path)?;
        let roots = self.archive_roots(name)?;
        let at = roots.locate(&path)?;
        let shift = at.shift;
        let e = Entry::resolve(&at)?;
        let stat = stat_of(&e, dir_only)?;
        let rec = &roots.rec;
        let top = if stat.name == "/" {
            OsString::from(".")
        } else {
            OsString::from(&stat.name)
        };
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let id = rec.id.clone();
        std::thread::spawn(move || {
            let mut b = tar::Builder::new(ChannelWriter::new(tx));
            let walk = Walk {
                roots: &roots,
                path: path.clone(),
            };
            let r = walk
                .append(&mut b, e.parent.as_fd(), &e.name, Path::new(&top), shift)
                .and_then(|()| b.into_inner().and_then(|mut w| w.flush()));
            if let Err(err) = r {
                if err.kind() != std::io::ErrorKind::BrokenPipe {
                    tracing::warn!("container {id}: archive of {}: {err}", path.display());
                }
            }
        });
        Ok((stat, rx))
    }

    /// `PUT /containers/{id}/archive`: extracts the tar `body` into the directory `path`.
    /// Entries belong to the container's root unless `copy_uid_gid` (then to the ids in
    /// the tar, inside the container's user namespace).
    pub fn archive_put(
        &self,
        name: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        body: impl Read,
    ) -> Result<(), ContainersError> {
        let (path, _) = clean(path)?;
        let roots = self.archive_roots(name)?;
        let writable = |at: &Located<'_>| {
            if at.writable {
                Ok(())
            } else {
                // Docker's words
                Err(ContainersError::Forbidden(format!(
                    "container rootfs is marked read-only, or {} is in a read-only mount",
                    at.path.display()
                )))
            }
        };
        let at = roots.locate(&path)?;
        writable(&at)?;
        let dest = Entry::resolve(&at)?;
        if kind(&dest.stat()?) != SFlag::S_IFDIR {
            // Docker's words
            return Err(bad(format!(
                "extraction point is not a directory: {}",
                path.display()
            )));
        }
        let owner = |shift: IdShift, uid: u64, gid: u64| -> (Uid, Gid) {
            let (uid, gid) = if copy_uid_gid { (uid, gid) } else { (0, 0) };
            (
                Uid::from_raw(shift.forward(uid as u32)),
                Gid::from_raw(shift.forward(gid as u32)),
            )
        };
        let mut archive = tar::Archive::new(body);
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("reading the tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("reading the tar: {e}")))?;
            let rel = entry
                .path()
                .map_err(|e| bad(format!("a tar entry's name: {e}")))?
                .into_owned();
            // inside the destination: no absolute names, no ".." (Docker refuses them too)
            let mut target = path.clone();
            for c in rel.components() {
                match c {
                    Component::Normal(n) => target.push(n),
                    Component::CurDir => {}
                    _ => {
                        return Err(bad(format!(
                            "tar entry {}: names outside the destination are refused",
                            rel.display()
                        )))
                    }
                }
            }
            if target == path {
                continue; // "./": the destination itself
            }
            let h = entry.header().clone();
            // each entry where its path is: the rootfs, or a volume or bind below it
            let at = roots.locate(&target)?;
            writable(&at)?;
            let (uid, gid) = owner(at.shift, h.uid().unwrap_or(0), h.gid().unwrap_or(0));
            let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
            let mtime = h.mtime().unwrap_or(0) as i64;
            let e = Entry::resolve(&at)?;
            let existing = fstatat(
                e.parent.as_fd(),
                e.name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .ok();
            let put = Put {
                e: &e,
                uid,
                gid,
                mode,
                mtime,
            };
            match h.entry_type() {
                tar::EntryType::Directory => {
                    put.dir(existing.as_ref(), no_overwrite_dir_non_dir)?
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    put.replace(existing.as_ref())?;
                    put.file(&mut entry)?;
                }
                tar::EntryType::Symlink => {
                    let to = h
                        .link_name()
                        .ok()
                        .flatten()
                        .ok_or_else(|| bad(format!("symlink {} has no target", rel.display())))?
                        .into_owned();
                    put.replace(existing.as_ref())?;
                    put.symlink(&to)?;
                }
                tar::EntryType::Link => {
                    let to = h
                        .link_name()
                        .ok()
                        .flatten()
                        .ok_or_else(|| bad(format!("hard link {} has no target", rel.display())))?
                        .into_owned();
                    let (to, _) = clean(&path.join(to).to_string_lossy())?;
                    let to = roots.locate(&to)?;
                    if to.root.as_raw_fd() != at.root.as_raw_fd() {
                        return Err(bad(format!(
                            "hard link {} to {}: across mounts",
                            rel.display(),
                            to.path.display()
                        )));
                    }
                    put.replace(existing.as_ref())?;
                    put.hard_link(&to)?;
                }
                tar::EntryType::Fifo => {
                    put.replace(existing.as_ref())?;
                    put.fifo()?;
                }
                // device nodes are the runtime's business, not a copy's; the rest (pax
                // and GNU long-name headers) the tar reader has already applied
                _ => {}
            }
        }
        // The end-of-archive blocks and the writer's padding after them: read them, so that
        // the client is not cut off while still sending (it would see a broken pipe).
        let _ = std::io::copy(&mut archive.into_inner(), &mut std::io::sink());
        Ok(())
    }
}

fn stat_of(e: &Entry, dir_only: bool) -> Result<PathStat, ContainersError> {
    let st = e.stat()?;
    if dir_only && kind(&st) != SFlag::S_IFDIR {
        return Err(bad(format!("{}: not a directory", e.path.display())));
    }
    let link_target = if kind(&st) == SFlag::S_IFLNK {
        let to = nix::fcntl::readlinkat(e.parent.as_fd(), e.name.as_os_str())
            .map_err(errno(format!("reading the link {}", e.path.display())))?;
        let parent = e.path.parent().unwrap_or(Path::new("/"));
        clean(&parent.join(to).to_string_lossy())?
            .0
            .display()
            .to_string()
    } else {
        String::new()
    };
    let name = match e.path.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => "/".into(),
    };
    Ok(PathStat {
        name,
        size: st.st_size,
        mode: go_mode(&st),
        mtime: rfc3339(st.st_mtime, st.st_mtime_nsec),
        link_target,
    })
}

/// One entry of a PUT, made relative to its parent directory's fd.
struct Put<'a> {
    e: &'a Entry,
    uid: Uid,
    gid: Gid,
    mode: Mode,
    mtime: i64,
}

impl Put<'_> {
    fn err(&self, what: &str) -> impl Fn(nix::Error) -> ContainersError + '_ {
        let what = what.to_string();
        move |e| errno(format!("{what} {}", self.e.path.display()))(e)
    }

    fn name(&self) -> &OsStr {
        self.e.name.as_os_str()
    }

    /// Makes room for a non-directory: a directory there is an error (whatever
    /// noOverwriteDirNonDir says: hull does not delete a directory tree for a copy),
    /// anything else is replaced.
    fn replace(&self, existing: Option<&FileStat>) -> Result<(), ContainersError> {
        let Some(st) = existing else { return Ok(()) };
        if kind(st) == SFlag::S_IFDIR {
            return Err(bad(format!(
                "cannot overwrite directory {} with non-directory",
                self.e.path.display()
            )));
        }
        nix::unistd::unlinkat(
            self.e.parent.as_fd(),
            self.name(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .map_err(self.err("replacing"))
    }

    fn dir(&self, existing: Option<&FileStat>, no_overwrite: bool) -> Result<(), ContainersError> {
        match existing {
            Some(st) if kind(st) == SFlag::S_IFDIR => {}
            Some(_) if no_overwrite => {
                return Err(bad(format!(
                    "cannot overwrite non-directory {} with directory",
                    self.e.path.display()
                )))
            }
            Some(_) => {
                self.replace(existing)?;
                nix::sys::stat::mkdirat(
                    self.e.parent.as_fd(),
                    self.name(),
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(self.err("making the directory"))?;
            }
            None => nix::sys::stat::mkdirat(
                self.e.parent.as_fd(),
                self.name(),
                Mode::from_bits_truncate(0o700),
            )
            .map_err(self.err("making the directory"))?,
        }
        let fd = openat(
            self.e.parent.as_fd(),
            self.name(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.err("opening the directory"))?;
        self.finish(&fd)
    }

    fn file(&self, content: &mut impl Read) -> Result<(), ContainersError> {
        let fd = openat(
            self.e.parent.as_fd(),
            self.name(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(self.err("creating"))?;
        let mut f = std::fs::File::from(fd);
        std::io::copy(content, &mut f).map_err(|e| {
            ContainersError::Invalid(format!("writing {}: {e}", self.e.path.display()))
        })?;
        self.finish(&f)
    }

    fn symlink(&self, to: &Path) -> Result<(), ContainersError> {
        nix::unistd::symlinkat(to, self.e.parent.as_fd(), self.name())
            .map_err(self.err("making the symlink"))?;
        nix::unistd::fchownat(
            self.e.parent.as_fd(),
            self.name(),
            Some(self.uid),
            Some(self.gid),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(self.err("setting the owner of"))
    }

    fn hard_link(&self, to: &Located<'_>) -> Result<(), ContainersError> {
        let target = Entry::resolve(to)?;
        let fd = openat(
            target.parent.as_fd(),
            target.name.as_os_str(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.err("finding the target of the hard link"))?;
        nix::unistd::linkat(
            fd.as_fd(),
            "",
            self.e.parent.as_fd(),
            self.name(),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(self.err("making the hard link"))
    }

    fn fifo(&self) -> Result<(), ContainersError> {
        nix::unistd::mkfifoat(
            self.e.parent.as_fd(),
            self.name(),
            Mode::from_bits_truncate(0o600),
        )
        .map_err(self.err("making the fifo"))?;
        let fd = openat(
            self.e.parent.as_fd(),
            self.name(),
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(self.err("opening the fifo"))?;
        // fchown/fchmod need a real fd; an O_PATH one works through /proc/self/fd
        nix::unistd::fchownat(
            fd.as_fd(),
            "",
            Some(self.uid),
            Some(self.gid),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(self.err("setting the owner of"))
    }

    /// Owner, mode (after the owner: a chown clears setuid bits) and mtime, on the fd.
    fn finish(&self, fd: &impl AsFd) -> Result<(), ContainersError> {
        nix::unistd::fchown(fd.as_fd(), Some(self.uid), Some(self.gid))
            .map_err(self.err("setting the owner of"))?;
        nix::sys::stat::fchmod(fd.as_fd(), self.mode).map_err(self.err("setting the mode of"))?;
        let t = nix::sys::time::TimeSpec::new(self.mtime, 0);
        nix::sys::stat::futimens(fd.as_fd(), &t, &t).map_err(self.err("setting the time of"))
    }
}

/// Appends the entry `name` of directory `dir` to the tar as `as_name`, and what is below it.
/// A copy out's walk: the entry at container path `path`, read where its files are (the
/// rootfs, or a volume, bind or hulld's file mounted there).
struct Walk<'a> {
    roots: &'a Roots,
    path: PathBuf,
}

impl Walk<'_> {
    fn append<W: Write>(
        &self,
        b: &mut tar::Builder<W>,
        dir: BorrowedFd<'_>,
        name: &OsStr,
        as_name: &Path,
        shift: IdShift,
    ) -> std::io::Result<()> {
        match self.roots.exact(&self.path) {
            Some((mdir, mname, mshift)) => append(b, self, mdir, &mname, as_name, mshift),
            None => append(b, self, dir, name, as_name, shift),
        }
    }

    fn child(&self, name: &OsStr) -> Walk<'_> {
        Walk {
            roots: self.roots,
            path: self.path.join(name),
        }
    }
}

fn append<W: Write>(
    b: &mut tar::Builder<W>,
    walk: &Walk<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    as_name: &Path,
    shift: IdShift,
) -> std::io::Result<()> {
    let st = fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(shift.back(st.st_uid));
    h.set_gid(shift.back(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    let k = kind(&st);
    if k == SFlag::S_IFDIR {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, as_name, std::io::empty())?;
        let fd = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let mut names: Vec<OsString> = nix::dir::Dir::from_fd(fd.try_clone()?)?
            .iter()
            .flatten()
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_owned())
            .filter(|n| n != "." && n != "..")
            .collect();
        names.sort();
        for n in names {
            walk.child(&n)
                .append(b, fd.as_fd(), &n, &as_name.join(&n), shift)?;
        }
    } else if k == SFlag::S_IFREG {
        let fd = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(st.st_size as u64);
        // the size in the header is what goes out, whatever the file does meanwhile
        let f = std::fs::File::from(fd).take(st.st_size as u64);
        b.append_data(&mut h, as_name, PadTo(f, st.st_size as u64))?;
    } else if k == SFlag::S_IFLNK {
        let to = nix::fcntl::readlinkat(dir, name)?;
        super::fs::append_symlink(b, &mut h, as_name, Path::new(&to))?;
    } else if k == SFlag::S_IFIFO {
        h.set_entry_type(tar::EntryType::Fifo);
        b.append_data(&mut h, as_name, std::io::empty())?;
    }
    // sockets and device nodes are not copied
    Ok(())
}

/// A reader that yields exactly `n` bytes: the file's, then zeros if it shrank.
struct PadTo<R>(R, u64);

impl<R: Read> Read for PadTo<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.1 == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.1 as usize);
        let got = match self.0.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.1 -= got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_are_cleaned_lexically() {
        assert_eq!(
            clean("/etc/hostname").unwrap(),
            (PathBuf::from("/etc/hostname"), false)
        );
        assert_eq!(clean("etc/").unwrap(), (PathBuf::from("/etc"), true));
        assert_eq!(
            clean("/a/../../b/./c/.").unwrap(),
            (PathBuf::from("/b/c"), true)
        );
        assert_eq!(clean("/").unwrap(), (PathBuf::from("/"), true));
        assert!(clean("").is_err());
        assert!(clean("/a\0b").is_err());
    }

    #[test]
    fn short_files_are_padded_to_their_header_size() {
        let mut out = Vec::new();
        PadTo(&b"abc"[..], 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc\0\0");
        let mut out = Vec::new();
        PadTo((&b"abcdef"[..]).take(4), 4)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abcd");
    }
}
