//! Removing the cgroups a test made its peers create (below a `hull` parent).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Owns one cgroup path (relative to each hierarchy's root, e.g.
/// `hull/e2e-ctr-1234`) in every mounted hierarchy (v1, v2, hybrid). On drop it
/// kills the processes left in that subtree, removes it deepest first, and removes
/// its parent directories (such as `hull`) that did not exist before, while empty.
pub struct CgroupCleanup {
    rel: PathBuf,
    /// Parents of `rel` (nearest last) that were absent in some hierarchy at start.
    new_parents: Vec<PathBuf>,
}

impl CgroupCleanup {
    pub fn new(rel: &str) -> CgroupCleanup {
        let rel = PathBuf::from(rel.trim_start_matches('/'));
        assert!(
            rel.starts_with("hull") && rel.components().count() >= 2,
            "test cgroups live below hull/: {}",
            rel.display()
        );
        let mut new_parents = Vec::new();
        for root in hierarchies() {
            for parent in rel.ancestors().skip(1) {
                if parent.as_os_str().is_empty() {
                    continue;
                }
                let abs = root.join(parent);
                if !abs.exists() && !new_parents.contains(&abs) {
                    new_parents.push(abs);
                }
            }
        }
        new_parents.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        CgroupCleanup { rel, new_parents }
    }

    /// `/hull/...`, as an OCI `cgroupsPath` or a `--cgroup-parent`.
    pub fn abs(&self) -> String {
        format!("/{}", self.rel.display())
    }
}

impl Drop for CgroupCleanup {
    fn drop(&mut self) {
        for root in hierarchies() {
            let top = root.join(&self.rel);
            if top.is_dir() {
                remove_tree(&top);
            }
        }
        for p in &self.new_parents {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// Mount points of the cgroup (v1) and cgroup2 hierarchies.
pub fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut v = Vec::new();
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let fstype = post.split(' ').next().unwrap_or("");
        if fstype != "cgroup" && fstype != "cgroup2" {
            continue;
        }
        if let Some(mp) = pre.split(' ').nth(4) {
            let mp = PathBuf::from(mp);
            if !v.contains(&mp) {
                v.push(mp);
            }
        }
    }
    v
}

/// Kill what is left in the subtree, then rmdir it deepest first (a cgroup
/// directory only holds control files, which rmdir accepts).
fn remove_tree(top: &Path) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut dirs = Vec::new();
        collect_dirs(top, &mut dirs);
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for d in &dirs {
            for pid in procs(d) {
                // SAFETY: kill(2) on a pid listed in a cgroup that only our test's
                // containers use.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        for d in &dirs {
            let _ = std::fs::remove_dir(d);
        }
        if !top.exists() || Instant::now() > deadline {
            if top.exists() {
                eprintln!("cgroup cleanup: {} still present", top.display());
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn collect_dirs(d: &Path, out: &mut Vec<PathBuf>) {
    out.push(d.to_path_buf());
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                collect_dirs(&e.path(), out);
            }
        }
    }
}

fn procs(d: &Path) -> Vec<libc::pid_t> {
    std::fs::read_to_string(d.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
