//! Host-side observations: namespaces, mounts, cgroups and processes.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `readlink` of a namespace file, e.g. `net:[4026531840]`.
#[track_caller]
pub fn ns_link(path: impl AsRef<Path>) -> String {
    let p = path.as_ref();
    std::fs::read_link(p)
        .unwrap_or_else(|e| panic!("readlink {}: {e}", p.display()))
        .to_string_lossy()
        .into_owned()
}

/// The `net:[INODE]` form of a namespace file (a /proc/PID/ns link or a bind-mounted nsfs file).
#[track_caller]
pub fn ns_id(kind: &str, path: impl AsRef<Path>) -> String {
    let p = path.as_ref();
    let ino = std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .ino();
    format!("{kind}:[{ino}]")
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Mount points of this process's mount namespace at or under `path`.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = path.to_string_lossy().into_owned();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(unescape))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

/// Detach a mount (cleanup of a leak, or of a test's own bind mount).
pub fn umount_detach(path: &str) {
    let Ok(c) = std::ffi::CString::new(path) else {
        return;
    };
    // SAFETY: c is a valid NUL-terminated path; umount2 only reads it.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// The cgroup roots of this host: each v1 hierarchy dir under /sys/fs/cgroup and the v2 one
/// (/sys/fs/cgroup itself on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one).
pub fn cgroup_roots() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_path_buf()];
    }
    let mut roots: Vec<PathBuf> = std::fs::read_dir(base)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    roots.sort();
    roots
}

/// The cgroup dirs that exist for `rel` (e.g. `hull-e2e/ID`) in any hierarchy.
pub fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    cgroup_roots()
        .into_iter()
        .map(|r| r.join(rel))
        .filter(|p| p.exists())
        .collect()
}

/// Read a cgroup file of `rel`: the v1 `controller/file` if that hierarchy exists, else the v2
/// file. Returns the path read and its trimmed content.
pub fn cgroup_read(rel: &str, controller: &str, v1_file: &str, v2_file: &str) -> (PathBuf, String) {
    let base = Path::new("/sys/fs/cgroup");
    let mut candidates = vec![base.join(controller).join(rel).join(v1_file)];
    candidates.push(base.join(rel).join(v2_file));
    candidates.push(base.join("unified").join(rel).join(v2_file));
    for c in candidates {
        if let Ok(s) = std::fs::read_to_string(&c) {
            return (c, s.trim().to_string());
        }
    }
    panic!("no {controller} cgroup file ({v1_file} / {v2_file}) for {rel}");
}

/// Pids of host processes whose root or cwd lies under `path`.
pub fn procs_under(path: &Path) -> Vec<u32> {
    let prefix = path.to_string_lossy().into_owned();
    let me = std::process::id();
    let Ok(d) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    d.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|&pid| pid != me)
        .filter(|pid| {
            ["root", "cwd"].iter().any(|l| {
                std::fs::read_link(format!("/proc/{pid}/{l}"))
                    .map(|t| t.to_string_lossy().starts_with(&prefix))
                    .unwrap_or(false)
            })
        })
        .collect()
}

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit(')')
            .next()
            .map(|r| !r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// A process's argv, joined by spaces.
pub fn cmdline(pid: i64) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}
