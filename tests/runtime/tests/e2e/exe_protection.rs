//! CVE-2019-5736 class: until it execs, a container's init is an image of the runtime binary.
//! A process in another container sharing its pid namespace must not reach that binary through
//! /proc/<pid>/exe (the runtime makes its pre-exec processes non-dumpable).

use std::path::Path;
use std::time::Duration;

use hull_e2e_runtime::{cmd, is_hull, require_root, runtime, spec, Case};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

fn sha256(path: &Path) -> String {
    let out = cmd::host("sha256sum", &[path.to_str().unwrap()]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The pid of host process `pid` in its innermost pid namespace (the last NSpid field).
fn inner_pid(pid: i64) -> Vec<i64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or_else(|| panic!("no NSpid in /proc/{pid}/status"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

#[track_caller]
fn assert_denied(line: &str, what: &str) {
    assert!(
        line.ends_with("errno=13 (EACCES)") || line.ends_with("errno=1 (EPERM)"),
        "{what} of the waiting init's exe from a sibling container: {line:?}, want EACCES or EPERM"
    );
}

#[test]
fn waiting_init_exe_is_unreachable_from_sibling_container() {
    require_root!();
    let bin = runtime().bin.canonicalize().unwrap();
    let hash_before = sha256(&bin);

    // A runs; B is created in A's pid namespace and waits for `start`.
    let a = Case::new("exe-a", &["sleep", "30"]);
    a.create(&[]).ok();
    a.start().ok();
    a.wait_status("running", WAIT);
    let a_pid = a.state()["pid"].as_i64().unwrap();
    let mut b = Case::new("exe-b", &["true"]);
    for n in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "pid" {
            n["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
        }
    }
    b.create(&[]).ok();
    assert_eq!(b.state()["status"], "created");
    let b_host_pid = b.state()["pid"].as_i64().unwrap();
    let nspids = inner_pid(b_host_pid);
    assert_eq!(
        nspids.len(),
        2,
        "B's init is not one pid namespace down: {nspids:?}"
    );
    let n = nspids[1];
    assert_ne!(n, 1, "B's init is the init of A's pid namespace");

    // From inside A (default capabilities, no CAP_SYS_PTRACE): B's init is visible, it is
    // the runtime; its exe must not be readable, openable, or writable.
    let script = format!(
        "grep ^CapEff: /proc/self/status; echo comm=$(cat /proc/{n}/comm); \
         echo cmdline=$(tr '\\0' ' ' < /proc/{n}/cmdline); \
         echo own $(/probe readlink /proc/1/exe); echo b $(/probe readlink /proc/{n}/exe); \
         echo b $(/probe open /proc/{n}/exe); echo b $(/probe open-path /proc/{n}/exe); \
         echo b $(/probe write /proc/{n}/exe pwned); true"
    );
    let out = a.exec(&["sh", "-c", &script]).ok();
    let cap_eff = u64::from_str_radix(out.must_line("CapEff:")[7..].trim(), 16).unwrap();
    assert_eq!(
        cap_eff,
        spec::cap_mask(spec::DEFAULT_CAPS),
        "exec's capabilities: {out}"
    );
    assert_eq!(cap_eff & spec::cap_mask(&["CAP_SYS_PTRACE"]), 0);
    let cmdline = out.must_line("cmdline=");
    if is_hull() {
        assert!(
            cmdline.contains("hull-runtime") || out.must_line("comm=").contains("hull-runtime"),
            "pid {n} in A is not the runtime: {out}"
        );
    } else {
        assert!(cmdline.contains("runc"), "pid {n} in A is not runc: {out}");
    }
    // Control: A's own (exec'd, dumpable) init is readable the same way.
    assert_eq!(
        out.must_line("own "),
        "own readlink: ok /bin/busybox",
        "{out}"
    );
    assert_denied(out.must_line("b readlink:"), "readlink");
    assert_denied(out.must_line("b open:"), "open O_RDONLY");
    assert_denied(out.must_line("b open-path:"), "open O_PATH");
    assert_denied(out.must_line("b write:"), "open O_WRONLY");

    // B still starts and runs to completion; the host binary is unchanged.
    b.start().ok();
    b.wait_status("stopped", WAIT);
    assert_eq!(sha256(&bin), hash_before, "{} changed", bin.display());
    b.cmd(&["delete", &b.id]).ok();
    b.assert_clean();
    a.cmd(&["delete", "--force", &a.id]).ok();
    a.assert_clean();
}
