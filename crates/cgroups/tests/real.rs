//! Root tests against the host's /sys/fs/cgroup. Each test makes its own cgroup below hull/
//! (`hull/test-<pid>-<n>`), puts a shell child in it, and a guard kills the child and removes
//! the cgroup even when an assertion fails. Without root they print a skip message and pass.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use hull_cgroups::{detect, new_manager, Hierarchy, Manager};
use oci_spec::runtime::LinuxResources;

const ROOT: &str = "/sys/fs/cgroup";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() && Path::new(ROOT).exists() {
        return false;
    }
    eprintln!("skipping {test}: needs root and {ROOT}");
    true
}

fn unique_id() -> String {
    format!(
        "test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// Kills the child (after thawing, so a frozen child can die) and removes the cgroup on drop.
struct Guard {
    mgr: Box<dyn Manager>,
    child: Option<Child>,
}

impl Guard {
    fn new(root: &Path) -> Guard {
        Guard::with_path(root, None)
    }

    fn with_path(root: &Path, cgroups_path: Option<&str>) -> Guard {
        let mgr = new_manager(root, cgroups_path, &unique_id()).unwrap();
        Guard { mgr, child: None }
    }

    /// Starts `sh -c script` and moves it into the cgroup. Scripts start with `read go` so
    /// that nothing runs before the move and `set`.
    fn spawn(&mut self, script: &str) -> i32 {
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        self.child = Some(child);
        self.mgr.apply(pid).unwrap();
        pid
    }

    fn go(&mut self) {
        let stdin = self.child.as_mut().unwrap().stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(&mut self) -> Output {
        let mut child = self.child.take().unwrap();
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "child did not finish");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait_with_output().unwrap()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn dirs(&self) -> Vec<PathBuf> {
        self.mgr
            .mount_sources()
            .into_iter()
            .map(|(_, d)| d)
            .collect()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.mgr.thaw();
        self.kill();
        if let Err(e) = self.mgr.destroy() {
            eprintln!("cleanup of {}: {e}", self.mgr.relative_path().display());
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// The container's directory for a v1 mount name ("memory", "cpu" ...).
fn v1_dir(g: &Guard, name: &str) -> PathBuf {
    g.mgr
        .mount_sources()
        .into_iter()
        .find(|(n, _)| n.split(',').any(|c| c == name))
        .unwrap_or_else(|| panic!("no {name} hierarchy"))
        .1
}

fn is_v1_or_hybrid(test: &str) -> bool {
    match detect(Path::new(ROOT)).unwrap() {
        Hierarchy::V1 | Hierarchy::Hybrid => true,
        Hierarchy::V2 => {
            eprintln!("skipping {test}: host is cgroup v2 only");
            false
        }
    }
}

/// A cgroup2 root to test the v2 manager on: /sys/fs/cgroup on a v2 host, unified/ on a hybrid
/// one (cgroup.freeze and eBPF device programs work there without controllers).
fn v2_root() -> Option<PathBuf> {
    match detect(Path::new(ROOT)).unwrap() {
        Hierarchy::V2 => Some(ROOT.into()),
        Hierarchy::Hybrid => Some(Path::new(ROOT).join("unified")),
        Hierarchy::V1 => None,
    }
}

const BURN: &str = "read go; i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; exec sleep 30";

#[test]
fn v1_lifecycle_limits_stats_freeze_destroy() {
    if skip_unless_root("v1_lifecycle") || !is_v1_or_hybrid("v1_lifecycle") {
        return;
    }
    let mut g = Guard::new(Path::new(ROOT));
    let pid = g.spawn(BURN);
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);
    // Placed in every hierarchy, the named systemd one and unified/ included.
    let rel = g.mgr.relative_path().display().to_string();
    let membership = read(Path::new(&format!("/proc/{pid}/cgroup")));
    for line in membership.lines() {
        assert!(line.ends_with(&format!("/{rel}")), "{line} (want {rel})");
    }

    g.mgr
        .set(&res(r#"{
            "memory": {"limit": 67108864, "reservation": 33554432},
            "pids": {"limit": 20},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"}
        }"#))
        .unwrap();
    let mem = v1_dir(&g, "memory");
    assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(read(&v1_dir(&g, "pids").join("pids.max")), "20");
    let cpu = v1_dir(&g, "cpu");
    assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&cpu.join("cpu.shares")), "512");
    assert_eq!(read(&v1_dir(&g, "cpuset").join("cpuset.cpus")), "0");

    // memory+swap must stay >= memory at each write: growing writes memsw first, shrinking
    // writes the limit first; the kernel refuses the other order with EINVAL.
    let mem = v1_dir(&g, "memory");
    if mem.join("memory.memsw.limit_in_bytes").exists() {
        for (limit, swap) in [
            (67108864, 134217728),
            (268435456, 536870912),
            (33554432, 50331648),
        ] {
            let spec = format!(r#"{{"memory": {{"limit": {limit}, "swap": {swap}}}}}"#);
            g.mgr.set(&res(&spec)).unwrap();
            assert_eq!(read(&mem.join("memory.limit_in_bytes")), limit.to_string());
            assert_eq!(
                read(&mem.join("memory.memsw.limit_in_bytes")),
                swap.to_string()
            );
        }
        g.mgr
            .set(&res(r#"{"memory": {"limit": 67108864, "swap": -1}}"#))
            .unwrap();
    }

    g.go();
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let s = g.mgr.stats().unwrap();
        if s.cpu.usage_total_ns > 0 && s.memory.usage > 0 {
            break s;
        }
        assert!(Instant::now() < deadline, "stats stayed zero: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(stats.memory.limit, Some(67108864));
    assert!(stats.pids.current >= 1, "{stats:?}");
    assert_eq!(stats.pids.limit, Some(20));

    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    assert_eq!(read(&v1_dir(&g, "freezer").join("freezer.state")), "FROZEN");
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());

    let dirs = g.dirs();
    assert!(dirs.iter().all(|d| d.exists()));
    g.kill();
    g.mgr.destroy().unwrap();
    for d in &dirs {
        assert!(!d.exists(), "{} still there", d.display());
        // The shared parent stays.
        assert!(d.parent().unwrap().exists());
    }
}

#[test]
fn v1_pids_limit_is_enforced() {
    if skip_unless_root("v1_pids_limit") || !is_v1_or_hybrid("v1_pids_limit") {
        return;
    }
    let mut g = Guard::new(Path::new(ROOT));
    g.spawn("read go; /bin/true && echo forked");
    g.mgr.set(&res(r#"{"pids": {"limit": 1}}"#)).unwrap();
    g.go();
    let out = g.finish();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("forked"),
        "fork succeeded under pids.max 1"
    );
    // The same script forks without the limit.
    let mut g2 = Guard::new(Path::new(ROOT));
    g2.spawn("read go; /bin/true && echo forked");
    g2.go();
    assert!(String::from_utf8_lossy(&g2.finish().stdout).contains("forked"));
}

/// Opens /dev/null and /dev/zero from inside the cgroup and says which worked.
const DEVICE_PROBE: &str = "read go; \
    ( exec 3>/dev/null ) 2>&- && echo null-ok; \
    ( exec 3</dev/zero ) 2>&- && echo zero-ok; \
    exit 0";

const DENY_ALL_BUT_NULL: &str = r#"{"devices": [
    {"allow": false, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
]}"#;

#[test]
fn v1_device_rules() {
    if skip_unless_root("v1_device_rules") || !is_v1_or_hybrid("v1_device_rules") {
        return;
    }
    // An absolute cgroupsPath, as containerd and dockerd pass, kept below hull/.
    let abs = format!("/hull/{}-abs", unique_id());
    let mut g = Guard::with_path(Path::new(ROOT), Some(&abs));
    assert_eq!(g.mgr.relative_path(), Path::new(&abs[1..]));
    g.spawn(DEVICE_PROBE);
    g.mgr.set(&res(DENY_ALL_BUT_NULL)).unwrap();
    assert_eq!(
        read(&v1_dir(&g, "devices").join("devices.list")),
        "c 1:3 rwm"
    );
    assert!(v1_dir(&g, "devices").starts_with(Path::new(ROOT).join("devices/hull")));
    g.go();
    let stdout = String::from_utf8(g.finish().stdout).unwrap();
    assert_eq!(stdout.trim(), "null-ok", "{stdout}");
}

#[test]
fn v2_device_filter_freeze_destroy() {
    if skip_unless_root("v2_device_filter") {
        return;
    }
    let Some(root) = v2_root() else {
        eprintln!("skipping v2_device_filter: no cgroup2 hierarchy");
        return;
    };
    let mut g = Guard::new(&root);
    assert_eq!(g.mgr.hierarchy(), Hierarchy::V2);
    let pid = g.spawn(DEVICE_PROBE);
    assert_eq!(g.mgr.pids().unwrap(), vec![pid]);
    g.mgr.set(&res(DENY_ALL_BUT_NULL)).unwrap();
    // A second set replaces the program instead of stacking a second one.
    g.mgr.set(&res(DENY_ALL_BUT_NULL)).unwrap();

    g.mgr.freeze().unwrap();
    assert!(g.mgr.is_frozen().unwrap());
    g.mgr.thaw().unwrap();
    assert!(!g.mgr.is_frozen().unwrap());

    g.go();
    let stdout = String::from_utf8(g.finish().stdout).unwrap();
    assert_eq!(stdout.trim(), "null-ok", "{stdout}");

    // Allowing everything again lets /dev/zero through: the old program was detached.
    let mut g2 = Guard::new(&root);
    g2.spawn(DEVICE_PROBE);
    g2.mgr.set(&res(DENY_ALL_BUT_NULL)).unwrap();
    g2.mgr
        .set(&res(r#"{"devices": [{"allow": true, "access": "rwm"}]}"#))
        .unwrap();
    g2.go();
    let stdout = String::from_utf8(g2.finish().stdout).unwrap();
    assert_eq!(stdout.trim(), "null-ok\nzero-ok", "{stdout}");

    let dirs = g.dirs();
    g.mgr.destroy().unwrap();
    assert!(dirs.iter().all(|d| !d.exists()));
}
