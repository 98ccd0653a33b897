//! cgroups: limits are written and enforced, and the cgroup goes with the container.

use std::time::Duration;

use hull_e2e_runtime::host::{cgroup_dirs, cgroup_read};
use hull_e2e_runtime::{require_root, Case};
use serde_json::json;

const MIB: u64 = 1 << 20;

#[test]
fn memory_limit_oom_kills() {
    require_root!();
    let mut c = Case::new("cg-mem", &["/probe", "alloc", "200"]);
    c.spec["linux"]["resources"]["memory"] = json!({ "limit": 32 * MIB, "swap": 32 * MIB });

    // `run` reports the OOM kill as death by SIGKILL.
    let out = c.run();
    assert_eq!(out.code(), Some(137), "{out}");
    assert!(
        out.line("alloc: ok").is_none(),
        "allocated 200 MiB under a 32 MiB limit: {out}"
    );

    // Seen from the host: the limit is in the cgroup, which records the OOM kill.
    c.create(&[]).ok();
    let rel = c.cgroup_rel();
    let (file, limit) = cgroup_read(&rel, "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(limit, (32 * MIB).to_string(), "{}", file.display());
    c.start().ok();
    c.wait_status("stopped", Duration::from_secs(20));
    let (file, events) = cgroup_read(&rel, "memory", "memory.oom_control", "memory.events");
    let kills = events
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        kills.is_some_and(|n| n >= 1),
        "no oom_kill in {}: {events}",
        file.display()
    );
    assert!(!c.output().contains("alloc: ok"), "{}", c.output());
    c.cmd(&["delete", &c.id]).ok();
    assert!(
        cgroup_dirs(&rel).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(&rel)
    );
    c.assert_clean();
}

#[test]
fn pids_limit_stops_fork_bomb() {
    require_root!();
    let mut c = Case::new("cg-pids", &["/probe", "forkbomb", "100"]);
    c.spec["linux"]["resources"]["pids"] = json!({ "limit": 20 });
    c.create(&[]).ok();
    let rel = c.cgroup_rel();
    let (file, max) = cgroup_read(&rel, "pids", "pids.max", "pids.max");
    assert_eq!(max, "20", "{}", file.display());
    c.start().ok();
    c.wait_status("stopped", Duration::from_secs(20));
    let out = c.output();
    let line = out
        .lines()
        .find(|l| l.starts_with("forkbomb:"))
        .expect("no forkbomb line");
    let forked: u32 = line["forkbomb: forked=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // 20 tasks: the probe itself and at most 19 children.
    assert!((10..=19).contains(&forked), "{line}");
    assert!(line.ends_with("errno=11 (EAGAIN)"), "{line}");
    c.cmd(&["delete", &c.id]).ok();
    assert!(
        cgroup_dirs(&rel).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs(&rel)
    );
    c.assert_clean();
}
