//! The test's private directory, and host paths the peer daemons create outside it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A private temp directory under /tmp. Dropping it kills the processes whose
/// command line names it (shims and daemons we started, which all get paths in
/// it), unmounts everything below it (lazily if busy), and removes it; if a
/// mount cannot be undone it keeps the directory rather than delete through it.
pub struct Sandbox {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hull-e2e-{name}."))
            .tempdir_in("/tmp")
            .expect("create sandbox dir in /tmp");
        let path = dir.path().to_path_buf();
        Sandbox {
            dir: Some(dir),
            path,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Kill leftovers, unmount, remove. Idempotent; also run by `Drop`.
    pub fn cleanup(&mut self) {
        let Some(dir) = self.dir.take() else {
            return;
        };
        let killed = kill_procs_naming(&self.path);
        if killed > 0 {
            eprintln!(
                "sandbox: killed {killed} leftover process(es) naming {}",
                self.path.display()
            );
        }
        let left = umount_under(&self.path);
        if left.is_empty() {
            if let Err(e) = dir.close() {
                eprintln!("sandbox: remove {}: {e}", self.path.display());
            }
        } else {
            let kept = dir.keep();
            eprintln!(
                "sandbox: mounts remain under {} ({left:?}); left it in place",
                kept.display()
            );
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Mount points at or below `root` in our mount namespace, deepest first.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let root = root.to_string_lossy().into_owned();
    let prefix = format!("{}/", root.trim_end_matches('/'));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|m| *m == root || m.starts_with(&prefix))
        .collect();
    v.sort_by_key(|m| std::cmp::Reverse(m.len()));
    v.dedup();
    v.into_iter().map(PathBuf::from).collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmount everything at or below `root` (deepest first, lazily when busy);
/// returns what is still mounted afterwards.
pub fn umount_under(root: &Path) -> Vec<PathBuf> {
    for _ in 0..5 {
        let mounts = mounts_under(root);
        if mounts.is_empty() {
            break;
        }
        for m in mounts {
            let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            // SAFETY: umount2 with a valid NUL-terminated path; failure is handled
            // by retrying lazily and by the final check.
            unsafe {
                if libc::umount2(c.as_ptr(), 0) != 0 {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
        }
    }
    mounts_under(root)
}

/// SIGKILL every process (but us) whose command line contains `needle`, through a
/// pidfd so that a recycled pid is never hit; wait (up to 5 s) until they are gone.
/// Returns how many were signalled.
pub fn kill_procs_naming(needle: &Path) -> usize {
    let needle = needle.as_os_str().as_encoded_bytes().to_vec();
    let me = std::process::id();
    let mut fds = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me || !cmdline_contains(pid, &needle) {
            continue;
        }
        // SAFETY: pidfd_open takes a pid and flags; the returned fd is owned here.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) } as i32;
        if fd < 0 {
            continue;
        }
        // Re-check through the pidfd's pid: still the same process?
        if cmdline_contains(pid, &needle) {
            // SAFETY: fd is a pidfd we own; null siginfo, no flags.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            fds.push((pid, fd));
        } else {
            // SAFETY: closing the pidfd we opened.
            unsafe { libc::close(fd) };
        }
    }
    let n = fds.len();
    let deadline = Instant::now() + Duration::from_secs(5);
    for (pid, fd) in fds {
        while is_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(fd) };
    }
    n
}

fn cmdline_contains(pid: u32, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| !needle.is_empty() && c.windows(needle.len()).any(|w| w == needle))
        .unwrap_or(false)
}

/// Alive and not a zombie.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Host paths that a peer daemon creates outside our sandbox (e.g.
/// /run/containerd/s for shim sockets, /etc/docker/key.json). Those that did not
/// exist when the guard was made are removed on drop: files, and directories
/// only while empty (deepest first), so another user's content is never touched.
pub struct HostPathsCleanup {
    absent: Vec<PathBuf>,
}

impl HostPathsCleanup {
    pub fn new(paths: &[&str]) -> HostPathsCleanup {
        let mut absent: Vec<PathBuf> = paths
            .iter()
            .map(PathBuf::from)
            .filter(|p| std::fs::symlink_metadata(p).is_err())
            .collect();
        absent.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        HostPathsCleanup { absent }
    }
}

impl Drop for HostPathsCleanup {
    fn drop(&mut self) {
        for p in &self.absent {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir(p);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(p);
                }
                Err(_) => {}
            }
        }
    }
}
