use std::path::Path;

use super::*;
use crate::testutil::{fake_v2_dirs, files, read, res};
use crate::{new_manager, Error as CrateError};

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma";
const LEAF_FILES: &str = "cpu.weight cpu.max cpu.max.burst cpu.idle cpuset.cpus cpuset.mems \
    memory.max memory.low memory.swap.max pids.max io.weight io.max \
    hugetlb.2MB.max rdma.max memory.high";

fn v2() -> (tempfile::TempDir, Box<dyn Manager>) {
    let d = tempfile::tempdir().unwrap();
    fake_v2_dirs(d.path(), "hull/c1", ALL, LEAF_FILES);
    let m = new_manager(d.path(), None, "c1").unwrap();
    (d, m)
}

fn f(root: &Path, file: &str) -> String {
    read(&root.join("hull/c1").join(file))
}

#[test]
fn detects_v2_and_enables_core_controllers_down_to_the_parent() {
    let (d, m) = v2();
    assert_eq!(m.hierarchy(), Hierarchy::V2);
    m.apply(77).unwrap();
    assert_eq!(f(d.path(), "cgroup.procs"), "77");
    let want = "+cpu +cpuset +io +memory +pids";
    assert_eq!(read(&d.path().join("cgroup.subtree_control")), want);
    assert_eq!(read(&d.path().join("hull/cgroup.subtree_control")), want);
    // The leaf holds processes: its subtree_control is left alone.
    assert_eq!(f(d.path(), "cgroup.subtree_control"), "");
    assert_eq!(m.pids().unwrap(), vec![77]);
    assert_eq!(
        m.mount_sources(),
        vec![(String::new(), d.path().join("hull/c1"))]
    );
}

#[test]
fn only_missing_controllers_are_enabled() {
    let (d, m) = v2();
    files(d.path(), &[("cgroup.subtree_control", "cpu memory")]);
    files(
        &d.path().join("hull"),
        &[("cgroup.subtree_control", "cpu cpuset io memory pids")],
    );
    // What is available in the root bounds what is asked.
    files(d.path(), &[("cgroup.controllers", "cpu memory pids")]);
    m.apply(1).unwrap();
    assert_eq!(read(&d.path().join("cgroup.subtree_control")), "+pids");
    assert_eq!(
        read(&d.path().join("hull/cgroup.subtree_control")),
        "cpu cpuset io memory pids"
    );
}

#[test]
fn set_memory_with_swap_conversion() {
    let (d, m) = v2();
    m.set(&res(
        r#"{"memory": {"limit": 1048576, "reservation": 524288, "swap": 3145728,
        "swappiness": 10, "disableOOMKiller": true}}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "memory.max"), "1048576");
    assert_eq!(f(d.path(), "memory.low"), "524288");
    assert_eq!(f(d.path(), "memory.swap.max"), "2097152");
    m.set(&res(r#"{"memory": {"limit": -1}}"#)).unwrap();
    assert_eq!(f(d.path(), "memory.max"), "max");
    assert_eq!(f(d.path(), "memory.swap.max"), "max");
    m.set(&res(r#"{"memory": {"limit": 1048576, "swap": 1048576}}"#))
        .unwrap();
    assert_eq!(f(d.path(), "memory.swap.max"), "0");
    assert_eq!(memory::swap_max(0, 5), None);
    assert_eq!(memory::swap_max(-1, 5).as_deref(), Some("max"));
}

#[test]
fn swap_without_swap_accounting() {
    let (d, m) = v2();
    std::fs::remove_file(d.path().join("hull/c1/memory.swap.max")).unwrap();
    m.set(&res(r#"{"memory": {"limit": 1048576, "swap": 1048576}}"#))
        .unwrap();
    m.set(&res(r#"{"memory": {"limit": 1048576, "swap": -1}}"#))
        .unwrap();
    let e = m
        .set(&res(r#"{"memory": {"limit": 1048576, "swap": 2097152}}"#))
        .unwrap_err();
    assert!(
        matches!(e, CrateError::V2(Error::SwapUnsupported { .. })),
        "{e}"
    );
}

#[test]
fn set_cpu_conversions() {
    let (d, m) = v2();
    m.set(&res(
        r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10,
        "idle": 0, "cpus": "0-1", "mems": "0"}}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "cpu.weight"), "39");
    assert_eq!(f(d.path(), "cpu.max"), "50000 100000");
    assert_eq!(f(d.path(), "cpu.max.burst"), "10");
    assert_eq!(f(d.path(), "cpu.idle"), "0");
    assert_eq!(f(d.path(), "cpuset.cpus"), "0-1");
    assert_eq!(f(d.path(), "cpuset.mems"), "0");
    m.set(&res(r#"{"cpu": {"quota": -1}}"#)).unwrap();
    assert_eq!(f(d.path(), "cpu.max"), "max");
    assert_eq!(cpu::shares_to_weight(2), 1);
    assert_eq!(cpu::shares_to_weight(262_144), 10_000);
    assert_eq!(
        cpu::max_line(None, Some(50_000)).as_deref(),
        Some("max 50000")
    );
    assert_eq!(cpu::max_line(Some(0), Some(0)), None);
    let e = m
        .set(&res(
            r#"{"cpu": {"realtimeRuntime": 100, "realtimePeriod": 1000}}"#,
        ))
        .unwrap_err();
    assert!(
        matches!(e, CrateError::V2(Error::RealtimeUnsupported)),
        "{e}"
    );
}

#[test]
fn set_pids_io_hugetlb_rdma_unified() {
    let (d, m) = v2();
    m.set(&res(r#"{"pids": {"limit": 10}}"#)).unwrap();
    assert_eq!(f(d.path(), "pids.max"), "10");
    m.set(&res(r#"{"pids": {"limit": 0}}"#)).unwrap();
    assert_eq!(f(d.path(), "pids.max"), "max");
    m.set(&res(r#"{"blockIO": {"weight": 1000,
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 200}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 5}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 6}]}}"#))
        .unwrap();
    assert_eq!(f(d.path(), "io.weight"), "10000");
    assert_eq!(
        f(d.path(), "io.max"),
        "8:0 rbps=100 wbps=200 riops=5 wiops=6"
    );
    assert_eq!(io_ctl::blkio_to_io_weight(10), 1);
    assert_eq!(io_ctl::blkio_to_io_weight(500), 4950);
    m.set(&res(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "hugetlb.2MB.max"), "2097152");
    m.set(&res(
        r#"{"rdma": {"mlx4_0": {"hcaHandles": 2, "hcaObjects": 2000}}}"#,
    ))
    .unwrap();
    assert_eq!(
        f(d.path(), "rdma.max"),
        "mlx4_0 hca_handle=2 hca_object=2000"
    );
    m.set(&res(
        r#"{"unified": {"memory.high": "1073741824"}, "network": {"classID": 1}}"#,
    ))
    .unwrap();
    assert_eq!(f(d.path(), "memory.high"), "1073741824");
}

#[test]
fn io_weight_falls_back_to_bfq() {
    let (d, m) = v2();
    std::fs::remove_file(d.path().join("hull/c1/io.weight")).unwrap();
    files(&d.path().join("hull/c1"), &[("io.bfq.weight", "100")]);
    m.set(&res(r#"{"blockIO": {"weight": 300,
        "weightDevice": [{"major": 8, "minor": 16, "weight": 400}]}}"#))
        .unwrap();
    assert_eq!(f(d.path(), "io.bfq.weight"), "8:16 400");
}

#[test]
fn unavailable_controller_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    fake_v2_dirs(d.path(), "hull/c1", "cpu", LEAF_FILES);
    let m = new_manager(d.path(), None, "c1").unwrap();
    // "No limit" needs no pids controller; a limit does.
    m.set(&res(r#"{"pids": {"limit": 0}}"#)).unwrap();
    assert!(m.set(&res(r#"{"pids": {"limit": 5}}"#)).is_err());
    let e = m
        .set(&res(r#"{"memory": {"limit": 1048576}}"#))
        .unwrap_err();
    match &e {
        CrateError::V2(Error::ControllerUnavailable {
            controller, field, ..
        }) => {
            assert_eq!(controller, "memory");
            assert_eq!(field, "linux.resources.memory");
        }
        other => panic!("{other}"),
    }
    let e = m
        .set(&res(r#"{"unified": {"io.max": "8:0 rbps=1"}}"#))
        .unwrap_err();
    assert!(e.to_string().contains("io controller"), "{e}");
}

#[test]
fn freezer_and_stats() {
    let (d, m) = v2();
    let leaf = d.path().join("hull/c1");
    // A fake kernel: report frozen as soon as it is asked.
    files(&leaf, &[("cgroup.events", "populated 1\nfrozen 1\n")]);
    m.freeze().unwrap();
    assert_eq!(f(d.path(), "cgroup.freeze"), "1");
    assert!(m.is_frozen().unwrap());
    files(&leaf, &[("cgroup.events", "populated 1\nfrozen 0\n")]);
    m.thaw().unwrap();
    assert_eq!(f(d.path(), "cgroup.freeze"), "0");
    assert!(!m.is_frozen().unwrap());
    files(
        &leaf,
        &[
            ("cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\nnr_periods 7\nnr_throttled 2\nthrottled_usec 3\n"),
            ("memory.current", "4096"),
            ("memory.peak", "8192"),
            ("memory.max", "max"),
            ("memory.swap.current", "0"),
            ("memory.stat", "anon 1\nfile 300\n"),
            ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
            ("pids.current", "2"),
            ("pids.max", "50"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
        ],
    );
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage_total_ns, 10_000);
    assert_eq!(s.cpu.usage_user_ns, 6_000);
    assert_eq!(s.cpu.nr_throttled, 2);
    assert_eq!(s.cpu.throttled_time_ns, 3_000);
    assert_eq!(s.memory.usage, 4096);
    assert_eq!(s.memory.max_usage, 8192);
    assert_eq!(s.memory.limit, None);
    assert_eq!(s.memory.cache, 300);
    assert_eq!(s.memory.swap_usage, Some(0));
    assert_eq!(
        (s.memory.failcnt, s.memory.oom_events, s.memory.oom_kill),
        (4, 1, 1)
    );
    assert_eq!(s.pids.current, 2);
    assert_eq!(s.pids.limit, Some(50));
    assert_eq!(s.io.devices[0].write_bytes, 20);
    assert_eq!(s.io.devices[0].write_ops, 2);
}

#[test]
fn freeze_times_out_and_thaws_back() {
    let (d, m) = v2();
    // cgroup.events never says frozen: the fake kernel does not react.
    let e = m.freeze().unwrap_err();
    assert!(
        matches!(e, CrateError::V2(Error::FreezeTimeout { .. })),
        "{e}"
    );
    assert_eq!(f(d.path(), "cgroup.freeze"), "0");
}

#[test]
fn destroy_keeps_parent() {
    let d = tempfile::tempdir().unwrap();
    files(d.path(), &[("cgroup.controllers", "")]);
    std::fs::create_dir_all(d.path().join("hull/c1/nested")).unwrap();
    let m = new_manager(d.path(), None, "c1").unwrap();
    m.destroy().unwrap();
    assert!(!d.path().join("hull/c1").exists());
    assert!(d.path().join("hull").exists());
    m.destroy().unwrap();
}
