//! Network namespaces as fds, and work done inside one on a thread of its own.
//!
//! A network namespace is a property of a thread, so entering one with `setns` on a
//! short-lived thread changes nothing for the rest of the process. A netlink socket
//! stays bound to the namespace it was created in: [`crate::netlink::Netlink::open_in`]
//! creates its socket on such a thread and then uses it from anywhere.

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::os::fd::AsRawFd;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot create a network namespace (unshare): {0}")]
    Unshare(#[source] nix::Error),
    #[error("cannot open the network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot enter the network namespace (setns): {0}")]
    Enter(#[source] nix::Error),
    #[error("cannot create the mount point {path} for a network namespace: {source}")]
    CreatePinFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot bind-mount the network namespace on {path}: {source}")]
    Pin {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot unmount the network namespace at {path}: {source}")]
    Unpin {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("cannot remove {path}: {source}")]
    RemovePinFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread working in a network namespace panicked")]
    ThreadPanicked,
}

/// Runs `f` on a new thread that has entered `netns`, and returns its result.
pub fn run_in<T, F>(netns: BorrowedFd<'_>, f: F) -> Result<T, NetnsError>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(netns, CloneFlags::CLONE_NEWNET).map_err(NetnsError::Enter)?;
            Ok(f())
        })
        .join()
        .map_err(|_| NetnsError::ThreadPanicked)?
    })
}

/// Creates a new, empty network namespace (only a `lo`, down) and returns an fd that
/// keeps it alive; nothing is mounted.
pub fn create() -> Result<OwnedFd, NetnsError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
            open(Path::new("/proc/thread-self/ns/net"))
        })
        .join()
        .map_err(|_| NetnsError::ThreadPanicked)?
    })
}

/// Opens a network namespace by path (a `/proc/PID/ns/net` or a bind-mounted file).
pub fn open(path: &Path) -> Result<OwnedFd, NetnsError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|source| NetnsError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Bind-mounts the namespace `netns` on `path` (a new empty file), so that it can be
/// joined by path (the OCI `namespaces[].path` of a container) and outlives every fd.
/// A failure leaves no file behind.
pub fn pin(netns: BorrowedFd<'_>, path: &Path) -> Result<(), NetnsError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| NetnsError::CreatePinFile {
            path: path.to_owned(),
            source,
        })?;
    let source = format!("/proc/self/fd/{}", netns.as_raw_fd());
    if let Err(e) = mount(
        Some(source.as_str()),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        let _ = std::fs::remove_file(path);
        return Err(NetnsError::Pin {
            path: path.to_owned(),
            source: e,
        });
    }
    Ok(())
}

/// Undoes [`pin`]: unmounts (lazily, so a namespace still in use by a process stays
/// alive for it) and removes the file. A path that is not there is not an error.
pub fn unpin(path: &Path) -> Result<(), NetnsError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(source) => {
            return Err(NetnsError::Unpin {
                path: path.to_owned(),
                source,
            })
        }
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NetnsError::RemovePinFile {
            path: path.to_owned(),
            source: e,
        }),
        _ => Ok(()),
    }
}
