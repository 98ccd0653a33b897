//! Network namespaces as fds, and work done inside one on a thread of its own.
//!
//! A network namespace is a property of a thread, so entering one with `setns` on a
//! short-lived thread changes nothing for the rest of the process. A netlink socket
//! stays bound to the namespace it was created in: [`crate::netlink::Netlink::open_in`]
//! creates its socket on such a thread and then uses it from anywhere.

use std::fs::File;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, unshare, CloneFlags};

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
