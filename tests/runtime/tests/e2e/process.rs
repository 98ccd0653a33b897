//! Process settings: user and groups, umask, cwd, env, hostname, domainname, oom_score_adj,
//! sysctls.

use hull_e2e_runtime::spec::PATH_ENV;
use hull_e2e_runtime::{is_hull, require_root, Case};
use serde_json::json;

fn host_sysctl(name: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/"))).unwrap()
}

#[test]
fn process_settings_apply() {
    require_root!();
    let script = "grep -E '^(Uid|Gid|Groups):' /proc/self/status; echo umask=$(umask); \
                  echo cwd=$(pwd); echo foo=$FOO; echo hostname=$(hostname); \
                  echo domain=$(cat /proc/sys/kernel/domainname); \
                  echo oom=$(cat /proc/self/oom_score_adj); \
                  echo ipfwd=$(cat /proc/sys/net/ipv4/ip_forward); \
                  echo shmmax=$(cat /proc/sys/kernel/shmmax)";
    let mut c = Case::new("process", &["sh", "-c", script]);
    c.spec["process"]["user"] =
        json!({ "uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027 });
    c.spec["process"]["cwd"] = json!("/tmp");
    c.spec["process"]["env"] = json!([PATH_ENV, "FOO=bar baz"]);
    c.spec["process"]["oomScoreAdj"] = json!(123);
    c.spec["hostname"] = json!("hull-host");
    c.spec["domainname"] = json!("hull.example");
    c.spec["linux"]["sysctl"] = json!({ "net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789" });
    let (fwd, shmmax) = (
        host_sysctl("net.ipv4.ip_forward"),
        host_sysctl("kernel.shmmax"),
    );
    let out = c.run().ok();
    let fields = |p: &str| {
        out.must_line(p)
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(fields("Uid:"), "1000 1000 1000 1000", "{out}");
    assert_eq!(fields("Gid:"), "1001 1001 1001 1001", "{out}");
    assert_eq!(fields("Groups:"), "10 20", "{out}");
    assert_eq!(out.must_line("umask="), "umask=0027");
    assert_eq!(out.must_line("cwd="), "cwd=/tmp");
    assert_eq!(out.must_line("foo="), "foo=bar baz");
    assert_eq!(out.must_line("hostname="), "hostname=hull-host");
    // runc 1.1 ignores `domainname` (supported from runc 1.2).
    if is_hull() {
        assert_eq!(out.must_line("domain="), "domain=hull.example");
    }
    assert_eq!(out.must_line("oom="), "oom=123");
    assert_eq!(out.must_line("ipfwd="), "ipfwd=1");
    assert_eq!(out.must_line("shmmax="), "shmmax=123456789");
    // Set in the container's namespaces, not the host's.
    assert_eq!(host_sysctl("net.ipv4.ip_forward"), fwd);
    assert_eq!(host_sysctl("kernel.shmmax"), shmmax);
}
