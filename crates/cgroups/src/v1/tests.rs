use std::path::Path;

use super::*;
use crate::testutil::{fake_v1, files, read, res, V1_MOUNTS};
use crate::{new_manager, Error as CrateError};

const REL: &str = "hull/c1";

fn manager(root: &Path) -> Box<dyn Manager> {
    new_manager(root, None, "c1").unwrap()
}

fn hybrid() -> (tempfile::TempDir, Box<dyn Manager>) {
    let d = tempfile::tempdir().unwrap();
    fake_v1(d.path(), V1_MOUNTS, REL, true);
    let m = manager(d.path());
    (d, m)
}

fn f(root: &Path, mount: &str, file: &str) -> String {
    read(&root.join(mount).join(REL).join(file))
}

#[test]
fn detects_hybrid_and_v1() {
    let (d, m) = hybrid();
    assert_eq!(m.hierarchy(), Hierarchy::Hybrid);
    assert_eq!(m.relative_path(), Path::new(REL));
    std::fs::remove_dir_all(d.path().join("unified")).unwrap();
    assert_eq!(manager(d.path()).hierarchy(), Hierarchy::V1);
}

#[test]
fn apply_places_pid_everywhere_and_fills_cpuset() {
    let (d, m) = hybrid();
    m.apply(4242).unwrap();
    for mount in V1_MOUNTS.iter().chain(&["unified"]) {
        assert_eq!(f(d.path(), mount, "cgroup.procs"), "4242", "{mount}");
    }
    // The intermediate hull/ and the container's own cpuset got the root's values.
    assert_eq!(read(&d.path().join("cpuset/hull/cpuset.cpus")), "0-3");
    assert_eq!(f(d.path(), "cpuset", "cpuset.cpus"), "0-3");
    assert_eq!(f(d.path(), "cpuset", "cpuset.mems"), "0");
    assert_eq!(m.pids().unwrap(), vec![4242]);
}

#[test]
fn set_memory() {
    let (d, m) = hybrid();
    m.set(&res(
        r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 2097152,
        "swappiness": 10, "disableOOMKiller": true, "kernel": 1}}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "memory", "memory.limit_in_bytes"), "1048576");
    assert_eq!(
        f(d.path(), "memory", "memory.memsw.limit_in_bytes"),
        "2097152"
    );
    assert_eq!(
        f(d.path(), "memory", "memory.soft_limit_in_bytes"),
        "524288"
    );
    assert_eq!(f(d.path(), "memory", "memory.swappiness"), "10");
    assert_eq!(f(d.path(), "memory", "memory.oom_control"), "1");
    m.set(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(f(d.path(), "memory", "memory.limit_in_bytes"), "-1");
    assert_eq!(f(d.path(), "memory", "memory.memsw.limit_in_bytes"), "-1");
}

#[test]
fn memory_swap_without_memsw_accounting() {
    let (d, m) = hybrid();
    std::fs::remove_file(
        d.path()
            .join("memory")
            .join(REL)
            .join("memory.memsw.limit_in_bytes"),
    )
    .unwrap();
    m.set(&res(r#"{"memory": {"limit": 1048576, "swap": 1048576}}"#))
        .unwrap();
    m.set(&res(r#"{"memory": {"limit": 1048576, "swap": -1}}"#))
        .unwrap();
    assert_eq!(f(d.path(), "memory", "memory.limit_in_bytes"), "1048576");
    let e = m
        .set(&res(r#"{"memory": {"limit": 1048576, "swap": 2097152}}"#))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CrateError::V1(Error::SwapUnsupported { swap: 2097152, .. })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("linux.resources.memory.swap"), "{e}");
}

#[test]
fn set_cpu_and_cpuset() {
    let (d, m) = hybrid();
    m.set(&res(
        r#"{"cpu": {"shares": 512, "quota": 50000, "period": 200000, "burst": 1000,
        "realtimeRuntime": 950, "realtimePeriod": 1000, "idle": 1, "cpus": "1-2", "mems": "0"}}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "cpu", "cpu.shares"), "512");
    assert_eq!(f(d.path(), "cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(f(d.path(), "cpu", "cpu.cfs_period_us"), "200000");
    assert_eq!(f(d.path(), "cpu", "cpu.cfs_burst_us"), "1000");
    assert_eq!(f(d.path(), "cpu", "cpu.rt_runtime_us"), "950");
    assert_eq!(f(d.path(), "cpu", "cpu.rt_period_us"), "1000");
    assert_eq!(f(d.path(), "cpu", "cpu.idle"), "1");
    assert_eq!(f(d.path(), "cpuset", "cpuset.cpus"), "1-2");
    assert_eq!(f(d.path(), "cpuset", "cpuset.mems"), "0");
    // Unset fields are not touched.
    m.set(&res(r#"{"cpu": {"quota": -1}}"#)).unwrap();
    assert_eq!(f(d.path(), "cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(f(d.path(), "cpu", "cpu.shares"), "512");
}

#[test]
fn set_pids_blkio_hugetlb() {
    let (d, m) = hybrid();
    m.set(&res(r#"{"pids": {"limit": 100}}"#)).unwrap();
    assert_eq!(f(d.path(), "pids", "pids.max"), "100");
    m.set(&res(r#"{"pids": {"limit": 0}}"#)).unwrap();
    assert_eq!(f(d.path(), "pids", "pids.max"), "max");
    m.set(&res(r#"{"pids": {"limit": -1}}"#)).unwrap();
    assert_eq!(f(d.path(), "pids", "pids.max"), "max");
    m.set(&res(r#"{"blockIO": {"weight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 10}]}}"#))
        .unwrap();
    assert_eq!(f(d.path(), "blkio", "blkio.bfq.weight"), "300");
    assert_eq!(f(d.path(), "blkio", "blkio.bfq.weight_device"), "8:0 200");
    assert_eq!(
        f(d.path(), "blkio", "blkio.throttle.read_bps_device"),
        "8:0 1048576"
    );
    assert_eq!(
        f(d.path(), "blkio", "blkio.throttle.write_iops_device"),
        "8:16 10"
    );
    m.set(&res(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}"#,
    ))
    .unwrap();
    assert_eq!(
        f(d.path(), "hugetlb", "hugetlb.2MB.limit_in_bytes"),
        "4194304"
    );
}

#[test]
fn blkio_weight_prefers_cfq_file_and_needs_one() {
    let (d, m) = hybrid();
    let dir = d.path().join("blkio").join(REL);
    files(&dir, &[("blkio.weight", "500")]);
    m.set(&res(r#"{"blockIO": {"weight": 700}}"#)).unwrap();
    assert_eq!(read(&dir.join("blkio.weight")), "700");
    assert_eq!(read(&dir.join("blkio.bfq.weight")), "100");
    std::fs::remove_file(dir.join("blkio.weight")).unwrap();
    std::fs::remove_file(dir.join("blkio.bfq.weight")).unwrap();
    let e = m.set(&res(r#"{"blockIO": {"weight": 700}}"#)).unwrap_err();
    assert!(
        matches!(e, CrateError::V1(Error::NoBlkioWeight { .. })),
        "{e}"
    );
}

#[test]
fn device_rules_deny_all_then_in_order() {
    let rules: Vec<oci_spec::runtime::LinuxDeviceCgroup> = serde_json::from_str(
        r#"[{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": false, "type": "c", "major": 1, "minor": 5, "access": "w"},
            {"allow": true, "type": "p", "access": "rwm"},
            {"allow": true, "type": "b", "access": "m"}]"#,
    )
    .unwrap();
    let plan = devices::plan(&rules).unwrap();
    let want = [
        ("devices.deny", "a"),
        ("devices.deny", "a *:* rwm"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.deny", "c 1:5 w"),
        ("devices.allow", "b *:* m"),
    ];
    assert_eq!(plan.len(), want.len());
    for ((f1, l1), (f2, l2)) in plan.iter().zip(want) {
        assert_eq!((*f1, l1.as_str()), (f2, l2));
    }
    let (d, m) = hybrid();
    let mut r = res("{}");
    r.set_devices(Some(rules));
    m.set(&r).unwrap();
    assert_eq!(f(d.path(), "devices", "devices.allow"), "b *:* m");
    assert_eq!(f(d.path(), "devices", "devices.deny"), "c 1:5 w");
}

#[test]
fn missing_controller_and_unified_are_errors() {
    let d = tempfile::tempdir().unwrap();
    fake_v1(d.path(), &["cpu,cpuacct", "freezer"], REL, false);
    let m = manager(d.path());
    let e = m
        .set(&res(r#"{"memory": {"limit": 1048576}}"#))
        .unwrap_err();
    assert!(
        matches!(
            e,
            CrateError::V1(Error::ControllerMissing {
                controller: "memory",
                ..
            })
        ),
        "{e}"
    );
    assert!(e.to_string().contains("linux.resources.memory"), "{e}");
    let e = m
        .set(&res(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(matches!(e, CrateError::V1(Error::UnifiedOnV1)), "{e}");
    // Network settings without net_cls/net_prio are ignored, as are kernel memory limits and
    // a pids section that sets no limit.
    m.set(&res(
        r#"{"network": {"classID": 5}, "memory": {"kernel": 5}, "pids": {"limit": 0}}"#,
    ))
    .unwrap();
    let e = m.set(&res(r#"{"pids": {"limit": 5}}"#)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "linux.resources.pids: no pids cgroup hierarchy is mounted under {}",
            d.path().display()
        )
    );
    // Joined cpu,cpuacct: both found in one hierarchy.
    m.set(&res(r#"{"cpu": {"shares": 100}}"#)).unwrap();
    assert_eq!(f(d.path(), "cpu,cpuacct", "cpu.shares"), "100");
    assert_eq!(m.stats().unwrap().cpu.usage_total_ns, 123456789);
    let names: Vec<String> = m.mount_sources().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["cpu,cpuacct", "freezer"]);
}

#[test]
fn validation_runs_in_set() {
    let (_d, m) = hybrid();
    let e = m.set(&res(r#"{"cpu": {"shares": 1}}"#)).unwrap_err();
    assert!(
        e.to_string().starts_with("linux.resources.cpu.shares"),
        "{e}"
    );
}

#[test]
fn freezer_states() {
    let (d, m) = hybrid();
    assert!(!m.is_frozen().unwrap());
    m.freeze().unwrap();
    assert!(m.is_frozen().unwrap());
    assert_eq!(f(d.path(), "freezer", "freezer.state"), "FROZEN");
    m.thaw().unwrap();
    assert!(!m.is_frozen().unwrap());
}

#[test]
fn stats_from_files() {
    let (_d, m) = hybrid();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage_total_ns, 123456789);
    assert_eq!(s.cpu.usage_user_ns, 100_000_000);
    assert_eq!(s.cpu.usage_system_ns, 50_000_000);
    assert_eq!(s.cpu.per_cpu_ns, vec![100000000, 23456789]);
    assert_eq!(s.cpu.nr_throttled, 3);
    assert_eq!(s.cpu.throttled_time_ns, 5000);
    assert_eq!(s.memory.usage, 4096);
    assert_eq!(s.memory.max_usage, 8192);
    assert_eq!(s.memory.limit, None);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.swap_usage, Some(1024));
    assert_eq!(s.memory.oom_kill, 2);
    assert_eq!(s.memory.stat["inactive_file"], 50);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.pids.limit, None);
    assert_eq!(s.io.devices.len(), 1);
    let dev = &s.io.devices[0];
    assert_eq!((dev.major, dev.minor), (8, 0));
    assert_eq!((dev.read_bytes, dev.write_bytes), (4096, 8192));
    assert_eq!((dev.read_ops, dev.write_ops), (1, 2));
    // It serialises (the engine stores and sends it).
    let json = serde_json::to_string(&s).unwrap();
    let back: crate::Stats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
}

#[test]
fn mount_sources_name_each_hierarchy() {
    let (d, m) = hybrid();
    let src = m.mount_sources();
    assert_eq!(src.len(), V1_MOUNTS.len() + 1);
    assert!(src.contains(&("memory".to_owned(), d.path().join("memory").join(REL))));
    assert!(src.contains(&("systemd".to_owned(), d.path().join("systemd").join(REL))));
    assert!(src.contains(&("unified".to_owned(), d.path().join("unified").join(REL))));
}

#[test]
fn destroy_removes_only_the_container_tree() {
    let d = tempfile::tempdir().unwrap();
    for m in ["memory", "pids"] {
        files(&d.path().join(m), &[("tasks", "")]);
        std::fs::create_dir_all(d.path().join(m).join("hull/c1/sub/deeper")).unwrap();
        std::fs::create_dir_all(d.path().join(m).join("hull/other")).unwrap();
    }
    let m = manager(d.path());
    m.destroy().unwrap();
    for mount in ["memory", "pids"] {
        assert!(!d.path().join(mount).join("hull/c1").exists());
        assert!(d.path().join(mount).join("hull/other").exists());
    }
    // Already gone: fine.
    m.destroy().unwrap();
    // An absolute path removes exactly that directory, not its parent.
    std::fs::create_dir_all(d.path().join("memory/docker/abc")).unwrap();
    let m = new_manager(d.path(), Some("/docker/abc"), "abc").unwrap();
    assert_eq!(m.relative_path(), Path::new("docker/abc"));
    m.destroy().unwrap();
    assert!(!d.path().join("memory/docker/abc").exists());
    assert!(d.path().join("memory/docker").exists());
}
