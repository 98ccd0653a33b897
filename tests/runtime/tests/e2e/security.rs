//! Hardening: symlinks in the rootfs cannot point mounts at the host, no_new_privs, seccomp.

use std::path::Path;

use hull_e2e_runtime::host::mounts_under;
use hull_e2e_runtime::{require_root, Case};
use serde_json::json;

/// Mount a tmpfs at `/<link>/x` where `/<link>` is a symlink in the rootfs to `target`, which
/// (read on the host) is the marker dir. The runtime must either refuse, or mount inside the
/// rootfs; the host marker dir must stay untouched.
fn assert_no_escape(name: &str, link_target: &str, marker: &Path) {
    let mut c = Case::new(name, &["sh", "-c", "cat /proc/mounts"]);
    std::os::unix::fs::symlink(link_target, c.rootfs.join("escape")).unwrap();
    c.mount(json!({ "destination": "/escape/x", "type": "tmpfs", "source": "tmpfs" }));
    let out = c.run();
    let entries: Vec<_> = std::fs::read_dir(marker)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        entries.is_empty(),
        "mount escaped the rootfs: host {marker:?} now has {entries:?}"
    );
    assert!(
        mounts_under(marker).is_empty(),
        "mount escaped the rootfs onto the host"
    );
    if out.success() {
        // Resolved inside the rootfs: the mount point was made under rootfs/<marker path>.
        let inside = c.rootfs.join(marker.strip_prefix("/").unwrap()).join("x");
        assert!(
            inside.is_dir(),
            "mount accepted but {inside:?} not made: {out}"
        );
        let point = format!(" {}/x tmpfs ", marker.display());
        assert!(
            out.stdout.contains(&point),
            "no tmpfs at {point} in container: {out}"
        );
    } else {
        eprintln!("{name}: mount refused: {}", out.stderr.trim());
    }
}

#[test]
fn mount_through_symlink_stays_in_rootfs() {
    require_root!();
    let marker = tempfile::Builder::new()
        .prefix("hull-e2e-marker-")
        .tempdir()
        .unwrap();
    let m = marker.path();
    // Absolute symlink to the host dir.
    assert_no_escape("symlink-abs", m.to_str().unwrap(), m);
    // Relative symlink climbing far above the rootfs.
    let rel = format!("../../../../../../../../../..{}", m.display());
    assert_no_escape("symlink-rel", &rel, m);
}

#[test]
fn no_new_privileges_flag() {
    require_root!();
    let mut c = Case::new("nnp", &["grep", "NoNewPrivs", "/proc/self/status"]);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    c.spec["process"]["noNewPrivileges"] = json!(false);
    let out = c.run().ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "0"]
    );
}

#[test]
fn seccomp_filter_denies_listed_syscalls() {
    require_root!();
    let script = "grep ^Seccomp: /proc/self/status; /probe keyctl; /probe mkdir /tmp/d; \
                  /probe touch /tmp/f; true";
    let mut c = Case::new("seccomp", &["sh", "-c", script]);
    let out = c.run().ok();
    // Baseline without a filter: both calls work.
    assert_eq!(
        out.must_line("Seccomp:").split_whitespace().last(),
        Some("0"),
        "{out}"
    );
    assert_eq!(out.must_line("keyctl:"), "keyctl: ok");
    assert_eq!(out.must_line("mkdir:"), "mkdir: ok");

    std::fs::remove_dir(c.rootfs.join("tmp/d")).unwrap();
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            { "names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 },
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }
        ]
    });
    let out = c.run().ok();
    assert_eq!(
        out.must_line("Seccomp:").split_whitespace().last(),
        Some("2"),
        "{out}"
    );
    assert_eq!(out.must_line("keyctl:"), "keyctl: errno=1 (EPERM)");
    // SCMP_ACT_ERRNO without errnoRet means EPERM.
    assert_eq!(out.must_line("mkdir:"), "mkdir: errno=1 (EPERM)");
    assert_eq!(
        out.must_line("touch:"),
        "touch: ok",
        "an allowed call failed"
    );
    assert!(!c.rootfs.join("tmp/d").exists());
}
