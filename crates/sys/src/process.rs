//! Process creation: fork a child that runs a closure and exits, and small process helpers.

use std::io;

use std::sync::atomic::{AtomicBool, Ordering};

use nix::unistd::Pid;

/// Set in children created by [`fork`]; they are single-threaded until they exec.
static IN_FORKED_CHILD: AtomicBool = AtomicBool::new(false);

/// Number of threads in this process, read from `/proc/self/stat` (field 20).
pub fn thread_count() -> io::Result<u32> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may contain spaces and parentheses: fields after it start
    // after the last ')'.
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed /proc/self/stat"))?;
    // rest starts with " <state> <ppid> ..."; num_threads is overall field 20, i.e. the 18th
    // field after the command name.
    rest.split_whitespace()
        .nth(17)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no num_threads in /proc/self/stat",
            )
        })
}

/// Forks the calling process. The child runs `child` and exits with the code it returns,
/// without running destructors, atexit handlers or returning into the caller's frames.
/// The parent gets the child's pid.
///
/// Refuses to fork a multi-threaded process: a forked child of a threaded process may only
/// call async-signal-safe functions, and `child` is arbitrary Rust code.
pub fn fork<F: FnOnce() -> i32>(child: F) -> io::Result<Pid> {
    // A child made by this function has exactly one thread (fork copies only the caller), and
    // may have entered a mount namespace where /proc/self does not name it: skip the check.
    if !IN_FORKED_CHILD.load(Ordering::Relaxed) && thread_count()? != 1 {
        return Err(io::Error::other(
            "refusing to fork a multi-threaded process",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child inherits no locks
    // held by other threads and may run arbitrary code. The child never returns from this
    // function: it leaves through `_exit`.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            IN_FORKED_CHILD.store(true, Ordering::Relaxed);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(127);
            exit_now(code)
        }
        pid => Ok(Pid::from_raw(pid)),
    }
}

/// Leaves the process at once with `code`: no destructors, no atexit handlers, no stdio
/// flushing. Used by forked children.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is async-signal-safe and always sound to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// Sets the calling process's domain name (in its UTS namespace).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live byte slice for the duration of the call;
    // the kernel copies it.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Marks every descriptor from `from` upwards close-on-exec (close_range with
/// CLOSE_RANGE_CLOEXEC), so that nothing the runtime holds leaks into the container process.
pub fn cloexec_from(from: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it takes
    // no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, from, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Resets every signal to its default disposition and unblocks all signals, so the program
/// the container execs starts from a clean signal state (the runtime's own ignored SIGPIPE and
/// blocked signals must not leak into it).
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL stores no Rust callback; invalid signal numbers in the
        // range only make the call fail, which is ignored.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    // SAFETY: the set lives on the stack for the duration of both calls.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Gives the calling process a new, anonymous session keyring (keyctl
/// KEYCTL_JOIN_SESSION_KEYRING with a NULL name), so that a container does not share the
/// runtime's session keyring and the keys in it.
pub fn join_new_session_keyring() -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a NULL name asks the kernel for a new anonymous keyring; no memory is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    if rc >= 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Gives the heap's free memory back to the kernel (glibc's `malloc_trim(0)`); a long-lived
/// small process (hull-shim) calls it after a burst of allocations (a container's create).
/// Returns whether memory was released.
pub fn trim_heap() -> bool {
    // SAFETY: malloc_trim takes a size and touches only the allocator's own state.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Makes glibc's allocator keep less free memory for a long-lived daemon that is idle most
/// of the time (hulld): one arena for all threads (`M_ARENA_MAX` = 1; by default each
/// thread that allocates may get its own arena, whose freed memory stays with it), and a
/// fixed `M_MMAP_THRESHOLD` of `mmap_threshold` bytes (setting it turns off glibc's dynamic
/// threshold: after a large mapped buffer is freed, glibc raises the mmap threshold to its
/// size and the trim threshold to twice that, so later large buffers come from the heap
/// and what is freed at its top is kept instead of given back). Call it first thing in
/// `main`, before threads start. Returns whether glibc took both settings.
pub fn compact_heap(mmap_threshold: usize) -> bool {
    let threshold = libc::c_int::try_from(mmap_threshold).unwrap_or(libc::c_int::MAX);
    // SAFETY: mallopt takes two integers and changes only the allocator's parameters;
    // glibc documents it as safe to call at any time (it takes the arena lock).
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1) == 1
            && libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_heap_is_taken_by_glibc() {
        assert!(super::compact_heap(128 * 1024), "mallopt refused a setting");
    }
}
