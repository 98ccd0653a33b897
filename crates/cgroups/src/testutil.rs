//! Fake cgroup trees for unit tests: directories and control files as the kernel would show
//! them, in a temporary directory.

use std::fs;
use std::path::Path;

use oci_spec::runtime::LinuxResources;

pub fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

pub fn files(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

const UNLIMITED: &str = "9223372036854771712";

/// The control files of one v1 hierarchy's cgroup.
fn v1_files(mount: &str) -> Vec<(&'static str, &'static str)> {
    let mut f = vec![("cgroup.procs", ""), ("tasks", "")];
    for c in mount.split(',') {
        f.extend_from_slice(match c {
            "memory" => &[
                ("memory.limit_in_bytes", UNLIMITED),
                ("memory.memsw.limit_in_bytes", UNLIMITED),
                ("memory.soft_limit_in_bytes", UNLIMITED),
                ("memory.swappiness", "60"),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
                ("memory.usage_in_bytes", "4096"),
                ("memory.max_usage_in_bytes", "8192"),
                ("memory.memsw.usage_in_bytes", "5120"),
                ("memory.failcnt", "1"),
                ("memory.stat", "cache 100\nrss 200\ninactive_file 50\n"),
            ][..],
            "cpu" => &[
                ("cpu.shares", "1024"),
                ("cpu.cfs_period_us", "100000"),
                ("cpu.cfs_quota_us", "-1"),
                ("cpu.cfs_burst_us", "0"),
                ("cpu.rt_period_us", "1000000"),
                ("cpu.rt_runtime_us", "0"),
                ("cpu.idle", "0"),
                (
                    "cpu.stat",
                    "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\n",
                ),
            ][..],
            "cpuacct" => &[
                ("cpuacct.usage", "123456789"),
                ("cpuacct.stat", "user 10\nsystem 5\n"),
                ("cpuacct.usage_percpu", "100000000 23456789 \n"),
            ][..],
            "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")][..],
            "pids" => &[("pids.max", "max"), ("pids.current", "3")][..],
            "blkio" => &[
                ("blkio.bfq.weight", "100"),
                ("blkio.bfq.weight_device", ""),
                ("blkio.throttle.read_bps_device", ""),
                ("blkio.throttle.write_bps_device", ""),
                ("blkio.throttle.read_iops_device", ""),
                ("blkio.throttle.write_iops_device", ""),
                (
                    "blkio.throttle.io_service_bytes",
                    "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
                ),
                (
                    "blkio.throttle.io_serviced",
                    "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\n",
                ),
            ][..],
            "devices" => &[
                ("devices.allow", ""),
                ("devices.deny", ""),
                ("devices.list", ""),
            ][..],
            "freezer" => &[("freezer.state", "THAWED")][..],
            "hugetlb" => &[("hugetlb.2MB.limit_in_bytes", UNLIMITED)][..],
            _ => &[][..],
        });
    }
    f
}

/// A v1 host below `root` with the given mounts (directory names as systemd makes them), the
/// container's directory `rel` and its ancestors pre-populated (a real kernel creates the
/// control files on mkdir; tmpfs does not). `hybrid` adds `unified/`.
pub fn fake_v1(root: &Path, mounts: &[&str], rel: &str, hybrid: bool) {
    for m in mounts {
        let base = root.join(m);
        let mut root_files = v1_files(m);
        for f in root_files.iter_mut() {
            match f.0 {
                "cpuset.cpus" => f.1 = "0-3",
                "cpuset.mems" => f.1 = "0",
                _ => {}
            }
        }
        files(&base, &root_files);
        let mut dir = base.clone();
        for comp in Path::new(rel).components() {
            dir.push(comp);
            files(&dir, &v1_files(m));
        }
    }
    if hybrid {
        fake_v2_dirs(&root.join("unified"), rel, "", "");
    }
}

/// The standard hybrid layout of this project's hosts (cpu and cpuacct separate).
pub const V1_MOUNTS: &[&str] = &[
    "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "pids",
    "systemd",
];

/// A v2 root and the container's directory `rel`, each with cgroup.controllers listing
/// `controllers`.
pub fn fake_v2_dirs(root: &Path, rel: &str, controllers: &str, leaf_extra: &str) {
    let mut dir = root.to_owned();
    files(
        &dir,
        &[
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", ""),
            ("cgroup.procs", ""),
        ],
    );
    for comp in Path::new(rel).components() {
        dir.push(comp);
        files(
            &dir,
            &[
                ("cgroup.controllers", controllers),
                ("cgroup.subtree_control", ""),
                ("cgroup.procs", ""),
                ("cgroup.freeze", "0"),
                ("cgroup.events", "populated 0\nfrozen 0\n"),
                ("cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"),
            ],
        );
    }
    for name in leaf_extra.split_whitespace() {
        fs::write(dir.join(name), "").unwrap();
    }
}
