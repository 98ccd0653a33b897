//! Mount helpers: fstab-style option parsing, and resolving a mount target *inside* the
//! container's root so that a symlink planted in an image can never point a mount at the host.
//!
//! Targets are opened with `openat2(RESOLVE_IN_ROOT)` relative to an fd of the rootfs, and the
//! mount is made on `/proc/self/fd/N`, so the path the kernel mounts on is exactly the file we
//! resolved, never a path re-walked later.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{mkdirat, Mode};

/// Parsed fstab-style mount options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the mount itself (MS_RDONLY, MS_NOSUID, MS_BIND, MS_REC, ...).
    pub flags: MsFlags,
    /// Flags to clear (e.g. "rw" clears MS_RDONLY); kept for remounts.
    pub cleared: MsFlags,
    /// Propagation changes to apply after mounting (MS_PRIVATE, MS_SLAVE, ... possibly with MS_REC).
    pub propagation: Vec<MsFlags>,
    /// Everything the kernel should see as filesystem data ("mode=755,size=65536k").
    pub data: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: String::new(),
        }
    }
}

impl MountOptions {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(MsFlags::MS_RDONLY)
    }
}

/// MS_* propagation flags for a propagation name ("rslave" -> MS_SLAVE|MS_REC).
pub fn propagation_flag(name: &str) -> Option<MsFlags> {
    Some(match name {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// Parses options; `typ` "bind" implies MS_BIND.
pub fn parse_options(typ: Option<&str>, options: &[String]) -> MountOptions {
    let mut o = MountOptions::default();
    if typ == Some("bind") {
        o.flags |= MsFlags::MS_BIND;
    }
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        let (set, clear) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
            "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            other => {
                if let Some(p) = propagation_flag(other) {
                    o.propagation.push(p);
                } else if other == "tmpcopyup"
                    || other.starts_with("idmap")
                    || other.starts_with("ridmap")
                {
                    // Extensions we do not implement yet are ignored rather than sent to the kernel.
                } else {
                    data.push(other);
                }
                continue;
            }
        };
        o.flags |= set;
        o.flags &= !clear;
        o.cleared |= clear;
    }
    o.data = data.join(",");
    o
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Opens `path` (a container path) inside `root` with O_PATH, resolving symlinks within root.
pub fn open_in_root(root: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    Ok(open_in_root_with(root.as_fd(), path, OFlag::O_PATH)?)
}

/// [`open_in_root`] that must find a directory (O_PATH | O_DIRECTORY): ENOTDIR otherwise.
pub fn open_dir_in_root(root: BorrowedFd<'_>, path: &Path) -> nix::Result<OwnedFd> {
    open_in_root_with(root, path, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

fn open_in_root_with(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = relative(path);
    let rel: &Path = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        &rel
    };
    openat2(root, rel, how(flags))
}

/// Strips the leading "/" (and "." components) of a container path.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// What to create at a mount target that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Dir,
    File,
}

/// Resolves `dest` inside `root`, creating missing directories (and the last component as
/// `kind`), and returns an O_PATH fd of the target. The walk follows symlinks itself, as if
/// `root` were "/" (an absolute link restarts at root, ".." stops at root), so a dangling link
/// in an image leads to a directory created *inside* the rootfs. Creation happens relative to
/// directory fds resolved inside root and never follows a symlink.
pub fn prepare_target(root: &OwnedFd, dest: &Path, kind: TargetKind) -> io::Result<OwnedFd> {
    match open_in_root(root, dest) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut remaining: std::collections::VecDeque<std::ffi::OsString> =
        relative(dest).iter().map(|c| c.to_os_string()).collect();
    let mut cur = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = remaining.pop_front() {
        if name == ".." {
            cur.pop();
            continue;
        }
        if name == "." || name.is_empty() {
            continue;
        }
        let parent = openat2(
            open_in_root(root, &cur)?.as_fd(),
            ".",
            how(OFlag::O_DIRECTORY | OFlag::O_RDONLY),
        )?;
        match nix::sys::stat::fstatat(
            parent.as_fd(),
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = nix::fcntl::readlinkat(parent.as_fd(), name.as_os_str())?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    cur = PathBuf::from("/");
                }
                for c in target.iter().rev() {
                    if c != "/" {
                        remaining.push_front(c.to_os_string());
                    }
                }
            }
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => cur.push(&name),
            Ok(_) if remaining.is_empty() => cur.push(&name),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
            Err(Errno::ENOENT) => {
                if remaining.is_empty() && kind == TargetKind::File {
                    let created = nix::fcntl::openat(
                        parent.as_fd(),
                        name.as_os_str(),
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_CLOEXEC
                            | OFlag::O_NOFOLLOW,
                        Mode::from_bits_truncate(0o644),
                    );
                    match created {
                        Ok(_) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    match mkdirat(
                        parent.as_fd(),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                cur.push(&name);
            }
            Err(e) => return Err(e.into()),
        }
    }
    open_in_root(root, &cur)
}

/// The path through which the kernel reaches exactly the file behind `fd`.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// mount(2) onto the file behind `target`.
pub fn mount_on(
    source: Option<&Path>,
    target: &OwnedFd,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    let data = data.filter(|d| !d.is_empty());
    mount(source, &fd_path(target), fstype, flags, data)
}

/// The flags that a read-only (or other) bind remount must keep: in a user namespace the kernel
/// refuses to clear nosuid/nodev/noexec/atime flags that the original mount had ("locked").
pub fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let o = parse_options(
            Some("tmpfs"),
            &s(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        );
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn bind_and_propagation() {
        let o = parse_options(Some("none"), &s(&["rbind", "ro", "rprivate"]));
        assert!(o.is_bind() && o.flags.contains(MsFlags::MS_REC) && o.is_readonly());
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
        let o = parse_options(Some("bind"), &s(&["ro", "rw"]));
        assert!(o.is_bind() && !o.is_readonly());
    }

    #[test]
    fn symlink_cannot_lead_outside_root() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../../..", root.path().join("up")).unwrap();
        let rootfd = nix::fcntl::open(
            root.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        prepare_target(&rootfd, Path::new("/escape/x/y"), TargetKind::Dir).unwrap();
        prepare_target(&rootfd, Path::new("/up/z"), TargetKind::File).unwrap();
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing may be created outside root"
        );
        // The absolute symlink was resolved as if root were "/": the dirs were made inside root.
        let inside = root
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("x/y");
        assert!(inside.is_dir(), "{} should exist", inside.display());
        assert!(root.path().join("z").is_file());
    }
}
