//! The new mount API (open_tree, mount_setattr, move_mount, fsopen/fsconfig/fsmount) and a
//! helper child that holds a fresh user namespace, for idmapped mounts.
//!
//! Every function owns the descriptors it returns. Paths are passed as C strings built here,
//! so callers never handle raw pointers.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const AT_RECURSIVE: u32 = 0x8000;
pub const AT_EMPTY_PATH: u32 = libc::AT_EMPTY_PATH as u32;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_SET_FD: u32 = 5;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// `struct mount_attr` (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn fd_result(rc: libc::c_long) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as RawFd) })
}

fn unit_result(rc: libc::c_long) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// open_tree(2): with `OPEN_TREE_CLONE`, a detached copy of the mount at `path` (relative to
/// `dirfd`, or `dirfd` itself when `path` is empty and `AT_EMPTY_PATH` is in `flags`).
pub fn open_tree(dirfd: BorrowedFd<'_>, path: &str, flags: u32) -> io::Result<OwnedFd> {
    let p = cstr(path)?;
    // SAFETY: `p` is a NUL-terminated string alive for the call; the other arguments are ints.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd.as_raw_fd(),
            p.as_ptr(),
            flags as libc::c_uint,
        )
    };
    fd_result(rc)
}

/// mount_setattr(2) on the mount behind `fd` (an open_tree fd): sets `set`, clears `clear`;
/// with `MOUNT_ATTR_IDMAP` in `set`, `userns` carries the id mapping.
pub fn mount_setattr(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let empty = cstr("")?;
    let flags = AT_EMPTY_PATH | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` is a properly laid out mount_attr alive for the call and its size is
    // passed; `empty` is a NUL-terminated string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            empty.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit_result(rc)
}

/// move_mount(2) of a detached mount `from` onto the directory `to` (an O_PATH fd of the
/// target, so the path resolved by the caller is exactly where the mount lands).
pub fn move_mount(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = cstr("")?;
    // SAFETY: both paths are the same NUL-terminated empty string alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            (MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) as libc::c_uint,
        )
    };
    unit_result(rc)
}

/// fsopen(2): a filesystem context for `fstype` ("overlay").
pub fn fsopen(fstype: &str) -> io::Result<OwnedFd> {
    let t = cstr(fstype)?;
    // SAFETY: `t` is a NUL-terminated string alive for the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) };
    fd_result(rc)
}

/// fsconfig(FSCONFIG_SET_STRING, key, value).
pub fn fsconfig_set_string(fs: BorrowedFd<'_>, key: &str, value: &str) -> io::Result<()> {
    let k = cstr(key)?;
    let v = cstr(value)?;
    // SAFETY: `k` and `v` are NUL-terminated strings alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    };
    unit_result(rc)
}

/// fsconfig(FSCONFIG_SET_FLAG, key).
pub fn fsconfig_set_flag(fs: BorrowedFd<'_>, key: &str) -> io::Result<()> {
    let k = cstr(key)?;
    // SAFETY: `k` is a NUL-terminated string alive for the call; value must be NULL.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            k.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    unit_result(rc)
}

/// fsconfig(FSCONFIG_SET_FD, key, fd) (overlayfs "lowerdir+" with a layer fd, kernel 6.13+).
pub fn fsconfig_set_fd(fs: BorrowedFd<'_>, key: &str, fd: BorrowedFd<'_>) -> io::Result<()> {
    let k = cstr(key)?;
    // SAFETY: `k` is a NUL-terminated string alive for the call; value must be NULL and the
    // fd is passed in `aux`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FD,
            k.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            fd.as_raw_fd(),
        )
    };
    unit_result(rc)
}

/// fsconfig(FSCONFIG_CMD_CREATE) then fsmount(2): a detached mount of the configured
/// filesystem.
pub fn fs_create_and_mount(fs: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: CMD_CREATE takes no key or value (both NULL, aux 0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    unit_result(rc)?;
    // SAFETY: fsmount takes an fd and two integer flag words, no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    fd_result(rc)
}

/// A child process in a new user namespace that sleeps until this value is dropped (then it
/// is killed and reaped). While it lives, the caller writes its uid_map/gid_map and opens
/// `/proc/<pid>/ns/user`; the namespace outlives the child through that fd.
pub struct UsernsChild {
    pub pid: libc::pid_t,
}

impl UsernsChild {
    /// Clones a child with CLONE_NEWUSER. Safe to call from a multi-threaded process: the
    /// child only makes raw syscalls (prctl, getppid, pause, _exit) and holds no descriptor
    /// that another process waits on.
    pub fn spawn() -> io::Result<UsernsChild> {
        // SAFETY: getpid takes nothing.
        let parent = unsafe { libc::getpid() };
        // SAFETY: clone without CLONE_VM and with a NULL stack behaves like fork: the child
        // gets a copy of the address space. It runs only async-signal-safe syscalls and never
        // returns into Rust code, so locks held by other threads at clone time are never
        // touched.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
                std::ptr::null_mut::<libc::c_void>(),
                std::ptr::null_mut::<libc::c_int>(),
                std::ptr::null_mut::<libc::c_int>(),
                0 as libc::c_ulong,
            )
        };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: raw syscalls only; the child dies with its parent and otherwise waits
            // for the SIGKILL sent on drop.
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(0);
                }
                loop {
                    libc::pause();
                }
            }
        }
        Ok(UsernsChild {
            pid: pid as libc::pid_t,
        })
    }
}

impl Drop for UsernsChild {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    }
}
