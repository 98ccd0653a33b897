//! seccomp(2): install a classic-BPF seccomp filter that was generated beforehand.
//!
//! hull generates the BPF program with libseccomp in the runtime's parent process; the
//! container's init only installs it, with one seccomp(2) call and no allocation. Nothing here
//! sets no_new_privs: the caller must have set it or hold CAP_SYS_ADMIN (the kernel refuses the
//! filter with EACCES otherwise).

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `SECCOMP_FILTER_FLAG_TSYNC`: install the filter in every thread of the process.
pub const FILTER_FLAG_TSYNC: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC as u32;
/// `SECCOMP_FILTER_FLAG_LOG`: log every action but SECCOMP_RET_ALLOW.
pub const FILTER_FLAG_LOG: u32 = libc::SECCOMP_FILTER_FLAG_LOG as u32;
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW`: leave the speculative store bypass mitigation off.
pub const FILTER_FLAG_SPEC_ALLOW: u32 = libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32;
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification fd for SECCOMP_RET_USER_NOTIF.
pub const FILTER_FLAG_NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
/// `SECCOMP_FILTER_FLAG_TSYNC_ESRCH` (Linux 5.7): a TSYNC failure is ESRCH rather than the id of
/// the thread that could not be synchronized. The kernel requires it when TSYNC and
/// NEW_LISTENER are combined, since both would otherwise return a positive number.
pub const FILTER_FLAG_TSYNC_ESRCH: u32 = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;

/// `BPF_MAXINSNS`: the most instructions one classic-BPF program may have.
pub const MAX_INSNS: usize = 4096;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if the condition is true.
    pub jt: u8,
    /// Jump offset if the condition is false.
    pub jf: u8,
    /// Immediate operand.
    pub k: u32,
}

// `install_filter` hands a `*const SockFilter` to the kernel as `struct sock_filter *`.
const _: () =
    assert!(std::mem::size_of::<SockFilter>() == std::mem::size_of::<libc::sock_filter>());
const _: () =
    assert!(std::mem::align_of::<SockFilter>() == std::mem::align_of::<libc::sock_filter>());

impl SockFilter {
    /// The instruction from its 8 bytes in native byte order (the layout of
    /// `seccomp_export_bpf`'s output).
    pub const fn from_ne_bytes(b: [u8; 8]) -> Self {
        SockFilter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// The instruction's 8 bytes in native byte order.
    pub const fn to_ne_bytes(self) -> [u8; 8] {
        let c = self.code.to_ne_bytes();
        let k = self.k.to_ne_bytes();
        [c[0], c[1], self.jt, self.jf, k[0], k[1], k[2], k[3]]
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`: installs `program` as a seccomp filter of
/// the calling thread (of every thread with [`FILTER_FLAG_TSYNC`]).
///
/// Returns the user-notification fd (close-on-exec) when `flags` has
/// [`FILTER_FLAG_NEW_LISTENER`], `None` otherwise. With [`FILTER_FLAG_TSYNC`] but without
/// [`FILTER_FLAG_TSYNC_ESRCH`], a thread that cannot be synchronized is an error naming it; the
/// filter is then not installed. Makes no allocation unless it fails that way.
///
/// An empty program, or one longer than the `u16` the kernel's `sock_fprog` counts in, is
/// `InvalidInput` (the kernel itself refuses more than [`MAX_INSNS`] with EINVAL).
pub fn install_filter(program: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    // Never truncate the length: that would install a prefix of the program.
    let len = match u16::try_from(program.len()) {
        Ok(len) if len > 0 => len,
        _ => return Err(io::ErrorKind::InvalidInput.into()),
    };
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` points at `len` instructions of `program`, which outlives the call and has
    // the layout of `struct sock_filter` (asserted above). The kernel only reads them (the cast
    // to `*mut` is the C declaration's, not a write) and copies the program before returning.
    // The call creates at most one fd, which the code below takes ownership of.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if flags & FILTER_FLAG_NEW_LISTENER != 0 {
        // With NEW_LISTENER (which the kernel accepts with TSYNC only together with
        // TSYNC_ESRCH), a non-negative result is the new listener fd.
        let fd = libc::c_int::try_from(ret)
            .map_err(|_| io::Error::other(format!("seccomp returned {ret} as listener fd")))?;
        // SAFETY: the kernel just created `fd` for us; nothing else owns or will close it.
        return Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }));
    }
    if ret > 0 {
        // TSYNC without TSYNC_ESRCH: `ret` is the id of a thread that could not be
        // synchronized; no thread got the filter.
        return Err(io::Error::other(format!(
            "thread {ret} could not be synchronized (SECCOMP_FILTER_FLAG_TSYNC)"
        )));
    }
    Ok(None)
}

/// Whether the running kernel accepts `flags` for SECCOMP_SET_MODE_FILTER.
///
/// Probes as libseccomp does: seccomp(2) with a NULL program checks the flags first and then
/// fails with EFAULT, installing nothing; unknown flags or a refused combination fail with
/// EINVAL. Any other failure (seccomp(2) itself blocked) counts as unsupported.
pub fn filter_flags_supported(flags: u32) -> bool {
    // SAFETY: a NULL program pointer is never dereferenced by us; the kernel validates the flags,
    // then fails to copy the program from user memory with EFAULT. Nothing is installed and no
    // fd is created (the listener fd is allocated only after the program was copied).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            std::ptr::null::<libc::sock_fprog>(),
        )
    };
    ret == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instruction_bytes_round_trip() {
        let insn = SockFilter {
            code: 0x15,
            jt: 1,
            jf: 2,
            k: 0xc000_003e,
        };
        assert_eq!(SockFilter::from_ne_bytes(insn.to_ne_bytes()), insn);
    }

    #[test]
    fn empty_or_oversized_programs_are_refused_before_the_kernel() {
        let err = install_filter(&[], 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        let ret_allow = SockFilter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: 0x7fff_0000,
        };
        let long = vec![ret_allow; usize::from(u16::MAX) + 1];
        let err = install_filter(&long, 0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn flag_probe_tells_known_from_unknown() {
        assert!(filter_flags_supported(0));
        assert!(filter_flags_supported(FILTER_FLAG_TSYNC));
        assert!(!filter_flags_supported(1 << 31));
        // The kernel refuses TSYNC with NEW_LISTENER unless TSYNC_ESRCH comes too.
        assert!(!filter_flags_supported(
            FILTER_FLAG_TSYNC | FILTER_FLAG_NEW_LISTENER
        ));
    }
}
