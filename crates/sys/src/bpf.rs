//! eBPF program loading for the cgroup v2 device controller (owned by the cgroups work).
//!
//! Only what a `BPF_PROG_TYPE_CGROUP_DEVICE` filter needs: load a program from hand-assembled
//! instructions, attach it to a cgroup directory, list the programs already attached there, and
//! detach a program by id. Each wrapper is one bpf(2) call whose failure maps to `io::Error`.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `BPF_PROG_TYPE_CGROUP_DEVICE` from `include/uapi/linux/bpf.h`.
pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
/// `BPF_CGROUP_DEVICE` attach type.
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// `BPF_F_ALLOW_MULTI`: several programs may be attached to one cgroup for one attach type.
pub const F_ALLOW_MULTI: u32 = 2;

const CMD_PROG_LOAD: libc::c_long = 5;
const CMD_PROG_ATTACH: libc::c_long = 8;
const CMD_PROG_DETACH: libc::c_long = 9;
const CMD_PROG_GET_FD_BY_ID: libc::c_long = 13;
const CMD_PROG_QUERY: libc::c_long = 16;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Opcode.
    pub code: u8,
    /// Destination register in the low nibble, source register in the high nibble.
    pub regs: u8,
    /// Signed offset (jumps: in instructions, relative to the next one; loads: in bytes).
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl Insn {
    /// Builds an instruction from its parts.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }
}

/// The `BPF_PROG_LOAD` member of `union bpf_attr`, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The `BPF_PROG_ATTACH` / `BPF_PROG_DETACH` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// The `BPF_PROG_QUERY` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// The `BPF_PROG_GET_FD_BY_ID` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct GetIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Loads a `BPF_PROG_TYPE_CGROUP_DEVICE` program. On a verifier rejection the error message
/// carries the verifier log.
pub fn prog_load_cgroup_device(insns: &[Insn], license: &CStr) -> io::Result<OwnedFd> {
    let insn_cnt = u32::try_from(insns.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many instructions"))?;
    let mut log = vec![0u8; 64 * 1024];
    let mut name = [0u8; 16];
    name[..11].copy_from_slice(b"hull_device");
    let attr = ProgLoadAttr {
        prog_type: PROG_TYPE_CGROUP_DEVICE,
        insn_cnt,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
        prog_name: name,
        expected_attach_type: ATTACH_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is a properly initialised prefix of `union bpf_attr` for BPF_PROG_LOAD and
    // its size is passed along; the instruction array, the NUL-terminated license and the log
    // buffer it points to stay alive and unmoved for the duration of the call, and the kernel
    // writes at most `log_size` bytes into the log buffer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            CMD_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if ret < 0 {
        let err = io::Error::last_os_error();
        let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
        let text = String::from_utf8_lossy(&log[..end]);
        if text.trim().is_empty() {
            return Err(err);
        }
        return Err(io::Error::new(
            err.kind(),
            format!("{err}; verifier log: {}", text.trim()),
        ));
    }
    // SAFETY: on success BPF_PROG_LOAD returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// Attaches `prog` to the cgroup directory `cgroup` (`BPF_PROG_ATTACH`).
pub fn prog_attach(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
    flags: u32,
) -> io::Result<()> {
    let attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is an initialised prefix of `union bpf_attr` for BPF_PROG_ATTACH, passed
    // with its size; both descriptors are borrowed and so stay open during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            CMD_PROG_ATTACH,
            &attr as *const AttachAttr,
            std::mem::size_of::<AttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Detaches `prog` from the cgroup directory `cgroup` (`BPF_PROG_DETACH`).
pub fn prog_detach(
    prog: BorrowedFd<'_>,
    cgroup: BorrowedFd<'_>,
    attach_type: u32,
) -> io::Result<()> {
    let attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..Default::default()
    };
    // SAFETY: `attr` is an initialised prefix of `union bpf_attr` for BPF_PROG_DETACH, passed
    // with its size; both descriptors are borrowed and so stay open during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            CMD_PROG_DETACH,
            &attr as *const AttachAttr,
            std::mem::size_of::<AttachAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lists the ids of the programs attached directly to `cgroup` for `attach_type`
/// (`BPF_PROG_QUERY`, without effective/inherited programs).
pub fn prog_query(cgroup: BorrowedFd<'_>, attach_type: u32) -> io::Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            ..Default::default()
        };
        // SAFETY: `attr` is an initialised prefix of `union bpf_attr` for BPF_PROG_QUERY, passed
        // with its size; `prog_ids` points to `prog_cnt` writable u32s that outlive the call,
        // and the kernel writes back only into `attr` and that array.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                CMD_PROG_QUERY,
                &mut attr as *mut QueryAttr,
                std::mem::size_of::<QueryAttr>(),
            )
        };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENOSPC) && (attr.prog_cnt as usize) > ids.len() {
                ids = vec![0u32; attr.prog_cnt as usize];
                continue;
            }
            return Err(err);
        }
        ids.truncate(attr.prog_cnt as usize);
        return Ok(ids);
    }
}

/// Opens a file descriptor for the loaded program with the given id (`BPF_PROG_GET_FD_BY_ID`).
pub fn prog_get_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let attr = GetIdAttr {
        prog_id: id,
        ..Default::default()
    };
    // SAFETY: `attr` is an initialised prefix of `union bpf_attr` for BPF_PROG_GET_FD_BY_ID,
    // passed with its size, and holds no pointers.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            CMD_PROG_GET_FD_BY_ID,
            &attr as *const GetIdAttr,
            std::mem::size_of::<GetIdAttr>(),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the kernel returns a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insn_layout_matches_kernel() {
        assert_eq!(std::mem::size_of::<Insn>(), 8);
        let i = Insn::new(0x61, 2, 1, 4, 0);
        assert_eq!(i.regs, 0x12);
        assert_eq!(std::mem::size_of::<QueryAttr>(), 32);
        assert_eq!(std::mem::size_of::<ProgLoadAttr>(), 72);
    }
}
