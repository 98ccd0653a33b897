//! File descriptor ownership helpers.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// Takes ownership of a raw file descriptor that a C library handed to us and that nothing else
/// will close (for example the notify fd returned by libseccomp).
///
/// Returns `None` for a negative descriptor.
pub fn take_ownership(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: the caller promises (by calling this function) that `fd` is an open descriptor
    // that no other owner will close; from here on the returned OwnedFd is its only owner.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
