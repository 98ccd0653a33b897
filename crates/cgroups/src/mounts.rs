//! Finding the cgroup v1 hierarchies below a cgroup root (normally /sys/fs/cgroup).
//!
//! The truth is /proc/self/mountinfo (which controllers each mount carries, whether cpu and
//! cpuacct are joined). When it lists no cgroup mount below `fs_root` (a test's fake tree, or a
//! root that is not a mount), the directories are scanned instead: a directory holding `tasks`
//! is a v1 hierarchy and its name lists its controllers ("cpu,cpuacct"), as systemd names them.

use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// The controllers that cgroup v1 knows; any other directory name is a named hierarchy.
const V1_CONTROLLERS: &[&str] = &[
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {path}: {source}")]
    ReadMountinfo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("list cgroup root {path}: {source}")]
    ScanRoot {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One mounted cgroup v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Hierarchy {
    /// Where it is mounted, e.g. /sys/fs/cgroup/cpu,cpuacct.
    pub mountpoint: PathBuf,
    /// Its controllers, e.g. ["cpu", "cpuacct"]; empty for a named hierarchy.
    pub controllers: Vec<String>,
    /// The `name=` of a named hierarchy (e.g. "systemd").
    pub name: Option<String>,
}

impl V1Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The name to mount it under inside a container: the host mountpoint's last component
    /// ("cpu,cpuacct", "memory", "systemd").
    pub fn mount_name(&self) -> String {
        self.mountpoint
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The v1 hierarchies mounted below `fs_root`, in mount order.
pub fn v1_hierarchies(fs_root: &Path) -> Result<Vec<V1Hierarchy>, Error> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|source| Error::ReadMountinfo {
        path: MOUNTINFO.into(),
        source,
    })?;
    let root = fs_root
        .canonicalize()
        .unwrap_or_else(|_| fs_root.to_owned());
    let found = parse_mountinfo(&text, &root);
    if !found.is_empty() {
        return Ok(found);
    }
    scan(fs_root)
}

/// The cgroup v1 mounts directly below `root` in a mountinfo text.
pub fn parse_mountinfo(text: &str, root: &Path) -> Vec<V1Hierarchy> {
    let mut out: Vec<V1Hierarchy> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mountpoint) = left.split(' ').nth(4) else {
            continue;
        };
        let mut rf = right.split(' ');
        let (Some("cgroup"), Some(_source), Some(opts)) = (rf.next(), rf.next(), rf.next()) else {
            continue;
        };
        let mountpoint = PathBuf::from(unescape(mountpoint));
        if mountpoint.parent() != Some(root) {
            continue;
        }
        let mut h = V1Hierarchy {
            mountpoint,
            controllers: Vec::new(),
            name: None,
        };
        for opt in opts.split(',') {
            if let Some(n) = opt.strip_prefix("name=") {
                h.name = Some(n.to_owned());
            } else if V1_CONTROLLERS.contains(&opt) {
                h.controllers.push(opt.to_owned());
            }
        }
        // A hierarchy mounted twice (bind mounts) counts once.
        if !out
            .iter()
            .any(|o| o.controllers == h.controllers && o.name == h.name)
        {
            out.push(h);
        }
    }
    out
}

/// Octal escapes in mountinfo paths (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = |c: &u8| (b'0'..=b'7').contains(c);
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(octal) {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            let v = v as u8;
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fallback: directories below `fs_root` (not symlinks, not the v2 `unified`) that hold a
/// `tasks` file.
fn scan(fs_root: &Path) -> Result<Vec<V1Hierarchy>, Error> {
    let err = |source| Error::ScanRoot {
        path: fs_root.to_owned(),
        source,
    };
    let entries = match std::fs::read_dir(fs_root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err)?;
        if !entry.file_type().map_err(err)?.is_dir() || !entry.path().join("tasks").exists() {
            continue;
        }
        let dir_name = entry.file_name().to_string_lossy().into_owned();
        let mut h = V1Hierarchy {
            mountpoint: entry.path(),
            controllers: Vec::new(),
            name: None,
        };
        for part in dir_name.split(',') {
            if let Some(n) = part.strip_prefix("name=") {
                h.name = Some(n.to_owned());
            } else if V1_CONTROLLERS.contains(&part) {
                h.controllers.push(part.to_owned());
            }
        }
        if h.controllers.is_empty() && h.name.is_none() {
            h.name = Some(dir_name);
        }
        out.push(h);
    }
    out.sort_by(|a, b| a.mountpoint.cmp(&b.mountpoint));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:32 / /mnt/other rw,relatime - cgroup cgroup rw,memory
51 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_lists_v1_hierarchies() {
        let h = parse_mountinfo(HYBRID, Path::new("/sys/fs/cgroup"));
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].mountpoint, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[0].mount_name(), "cpu,cpuacct");
        assert_eq!(h[1].controllers, ["cpuset"]);
        assert!(h[2].has("memory"));
        assert_eq!(h[3].name.as_deref(), Some("systemd"));
        assert!(h[3].controllers.is_empty());
    }

    #[test]
    fn mountinfo_unescapes() {
        let t = "1 2 0:1 / /a\\040b/memory rw - cgroup cgroup rw,memory\n";
        let h = parse_mountinfo(t, Path::new("/a b"));
        assert_eq!(h[0].mountpoint, Path::new("/a b/memory"));
    }

    #[test]
    fn scan_fake_tree() {
        let d = tempfile::tempdir().unwrap();
        for dir in ["cpu,cpuacct", "memory", "systemd", "unified"] {
            std::fs::create_dir(d.path().join(dir)).unwrap();
        }
        for dir in ["cpu,cpuacct", "memory", "systemd"] {
            std::fs::write(d.path().join(dir).join("tasks"), "").unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", d.path().join("cpu")).unwrap();
        let h = v1_hierarchies(d.path()).unwrap();
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[1].controllers, ["memory"]);
        assert_eq!(h[2].name.as_deref(), Some("systemd"));
    }
}
