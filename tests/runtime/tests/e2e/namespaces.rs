//! Namespaces: new ones differ from the host's, joined ones are the given ones.

use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use hull_e2e_runtime::host::{ns_id, ns_link, umount_detach};
use hull_e2e_runtime::{cmd, require_root, runtime, Case};
use serde_json::json;

const KINDS: &[&str] = &["pid", "mnt", "uts", "ipc", "net", "cgroup"];

fn ns_script() -> String {
    let mut s = String::from("echo self=$$; ");
    for k in KINDS.iter().chain(&["user"]) {
        s.push_str(&format!("echo {k}=$(readlink /proc/self/ns/{k}); "));
    }
    s.push_str("echo procs=$(cd /proc && echo [0-9]*)");
    s
}

#[test]
fn new_namespaces_differ_from_host() {
    require_root!();
    let script = ns_script();
    let c = Case::new("ns-new", &["sh", "-c", &script]);
    let out = c.run().ok();
    // The shell is the container's pid 1, and only it and its children are visible.
    assert_eq!(out.must_line("self="), "self=1", "{out}");
    let pids: Vec<u32> = out.must_line("procs=")[6..]
        .split(' ')
        .map(|p| p.parse().unwrap())
        .collect();
    // pid 1 and the subshell listing /proc: nothing of the host's.
    assert!(
        pids.contains(&1) && pids.len() <= 2,
        "container sees pids {pids:?}"
    );
    for k in KINDS {
        let inside = &out.must_line(&format!("{k}="))[k.len() + 1..];
        let host = ns_link(format!("/proc/self/ns/{k}"));
        assert!(inside.starts_with(&format!("{k}:[")), "{k}: {out}");
        assert_ne!(inside, host, "{k} namespace is the host's");
    }
    // No user namespace was asked for: the runtime must not add one.
    assert_eq!(&out.must_line("user=")[5..], ns_link("/proc/self/ns/user"));
}

#[test]
fn namespace_left_out_is_shared_with_host() {
    require_root!();
    let script = ns_script();
    let mut c = Case::new("ns-shared", &["sh", "-c", &script]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "network");
    let out = c.run().ok();
    assert_eq!(
        &out.must_line("net=")[4..],
        ns_link("/proc/self/ns/net"),
        "{out}"
    );
    assert_ne!(
        &out.must_line("uts=")[4..],
        ns_link("/proc/self/ns/uts"),
        "{out}"
    );
}

/// Kill and reap a helper process on drop.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Detach a test's own bind mount on drop.
struct Unmount(String);
impl Drop for Unmount {
    fn drop(&mut self) {
        umount_detach(&self.0);
    }
}

fn set_netns_path(c: &mut Case, path: &str) {
    for n in c.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = json!(path);
        }
    }
}

/// A new network namespace kept alive by a bind mount on a file of the case's directory
/// (the `ip netns` / hulld pattern): the file, its path, and the guard that unmounts it.
fn bound_netns(c: &Case) -> (std::path::PathBuf, String, Unmount) {
    let file = c.dir.join("netns");
    std::fs::write(&file, "").unwrap();
    let path = file.to_str().unwrap().to_string();
    cmd::host("unshare", &[&format!("--net={path}"), "true"]);
    let unmount = Unmount(path.clone());
    (file, path, unmount)
}

#[test]
fn joins_network_namespace_by_path() {
    require_root!();
    let script = "readlink /proc/self/ns/net";

    // 1. A netns kept alive by a bind mount (the `ip netns` / hulld pattern).
    let mut c = Case::new("ns-join", &["sh", "-c", script]);
    let (file, path, _unmount) = bound_netns(&c);
    let want = ns_id("net", &file);
    assert_ne!(want, ns_link("/proc/self/ns/net"));
    set_netns_path(&mut c, &path);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.trim(),
        want,
        "container is not in the bind-mounted netns"
    );

    // 2. The netns of a running process.
    let child = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .unwrap();
    let sleeper = Reap(child);
    let proc_ns = format!("/proc/{}/ns/net", sleeper.0.id());
    let deadline = Instant::now() + Duration::from_secs(5);
    while ns_link(&proc_ns) == ns_link("/proc/self/ns/net") {
        assert!(
            Instant::now() < deadline,
            "unshare did not enter a new netns"
        );
        thread::sleep(Duration::from_millis(10));
    }
    set_netns_path(&mut c, &proc_ns);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.trim(),
        ns_link(&proc_ns),
        "container is not in the process's netns"
    );
}

#[test]
fn time_namespace_applies_offsets() {
    require_root!();
    let probe = Case::new("ns-time-features", &["true"]);
    let features = probe.cmd(&["features"]);
    let v: serde_json::Value = serde_json::from_str(&features.stdout).unwrap_or_default();
    let supported = v["linux"]["namespaces"]
        .as_array()
        .is_some_and(|a| a.iter().any(|n| n == "time"));
    if !supported {
        eprintln!(
            "skipped: {} does not list the time namespace",
            runtime().bin.display()
        );
        return;
    }
    drop(probe);
    let mut c = Case::new(
        "ns-time",
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/time; cat /proc/self/timens_offsets",
        ],
    );
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "time" }));
    c.spec["linux"]["timeOffsets"] = json!({
        "monotonic": { "secs": 31536000, "nanosecs": 0 },
        "boottime": { "secs": 86400, "nanosecs": 0 }
    });
    let out = c.run().ok();
    let mut lines = out.stdout.lines();
    assert_ne!(
        lines.next(),
        Some(ns_link("/proc/self/ns/time").as_str()),
        "{out}"
    );
    let offsets: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(
        offsets.contains(&vec!["monotonic", "31536000", "0"]),
        "{out}"
    );
    assert!(offsets.contains(&vec!["boottime", "86400", "0"]), "{out}");
}

/// A net.* sysctl is allowed in a network namespace joined by path (one a network layer made)
/// and refused for the runtime's own (host) namespace.
#[test]
fn net_sysctl_in_joined_namespace_only() {
    require_root!();
    let mut c = Case::new("ns-sysctl", &["cat", "/proc/sys/net/ipv4/ip_forward"]);
    let (_, path, _unmount) = bound_netns(&c);
    set_netns_path(&mut c, &path);
    c.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let out = c.run().ok();
    assert_eq!(out.stdout.trim(), "1", "{out}");

    if hull_e2e_runtime::is_hull() {
        let host_before = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        let mut h = Case::new("ns-sysctl-host", &["true"]);
        set_netns_path(&mut h, "/proc/self/ns/net");
        h.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        let out = h.run();
        assert!(
            !out.success(),
            "a net sysctl in the host's netns must be refused: {out}"
        );
        assert!(
            out.stderr.contains("linux.sysctl.net.ipv4.ip_forward"),
            "{out}"
        );
        let host_after = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
        assert_eq!(host_before, host_after, "the host's sysctl changed");
    }
}

/// A container in a user namespace that joins a network namespace it does not own (what
/// hulld does for bridge networks) cannot mount sysfs itself; the runtime makes the mount
/// in the network namespace and the init moves it onto /sys. Before, the init bound the
/// host's /sys, and /sys/class/net listed the host's interfaces (runc fails the create).
#[test]
fn sysfs_of_a_joined_network_namespace_in_a_user_namespace() {
    require_root!();
    if !hull_e2e_runtime::is_hull() {
        // runc 1.1 refuses this container: "mount sysfs ... operation not permitted"
        return;
    }
    let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert!(
        host_links > 1,
        "the host has only lo: this test proves nothing"
    );
    let mut c = Case::new(
        "ns-sysfs",
        &["sh", "-c", "ls /sys/class/net; grep ' /sys ' /proc/mounts"],
    );
    let (_, path, _unmount) = bound_netns(&c);
    set_netns_path(&mut c, &path);
    c.user_namespace(100000);
    let out = c.run().ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"lo"), "{out}");
    assert!(
        lines
            .get(1)
            .is_some_and(|l| l.starts_with("sysfs /sys sysfs ro,")),
        "{out}"
    );
}
