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

/// Starts writing the dirty pages of `fd` in `offset..offset+len` back to disk, without
/// waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): a later `fsync` then waits only for
/// what is still in flight. It promises no durability by itself (no metadata, no cache flush).
pub fn start_writeback(
    fd: std::os::fd::BorrowedFd<'_>,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(n)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    };
    // SAFETY: sync_file_range takes a descriptor kept open by the borrow for the call's
    // duration and plain integers; it touches no memory of ours.
    let r = unsafe { libc::sync_file_range(fd.as_raw_fd(), off, n, libc::SYNC_FILE_RANGE_WRITE) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
