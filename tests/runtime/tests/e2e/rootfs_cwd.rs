//! The root filesystem: a read-only root keeps /dev and the tmpfs mounts writable, and a
//! missing `process.cwd` is created.

use hull_e2e_runtime::{require_root, Case};
use serde_json::json;

#[test]
fn readonly_root_keeps_dev_writable() {
    require_root!();
    let script = "/probe touch /rootfile; /probe mkdir /tmp/d; echo dev $(/probe touch /dev/f); \
                  echo shm $(/probe touch /dev/shm/f); echo null $(echo x > /dev/null && echo ok); \
                  grep ' / ' /proc/self/mountinfo";
    let mut c = Case::new("ro-root", &["sh", "-c", script]);
    c.spec["root"]["readonly"] = json!(true);
    let out = c.run().ok();
    assert_eq!(out.must_line("touch:"), "touch: errno=30 (EROFS)", "{out}");
    assert_eq!(out.must_line("mkdir:"), "mkdir: errno=30 (EROFS)", "{out}");
    assert_eq!(out.must_line("dev "), "dev touch: ok", "{out}");
    assert_eq!(out.must_line("shm "), "shm touch: ok", "{out}");
    assert_eq!(out.must_line("null "), "null ok", "{out}");
    let root_opts = out
        .stdout
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .and_then(|l| l.split(' ').nth(5))
        .unwrap_or_else(|| panic!("no / in mountinfo: {out}"));
    assert!(
        root_opts.split(',').any(|o| o == "ro"),
        "/ mounted {root_opts}"
    );
    assert!(!c.rootfs.join("rootfile").exists());
}

#[test]
fn missing_cwd_is_created() {
    require_root!();
    let mut c = Case::new("cwd-new", &["sh", "-c", "pwd; touch here"]);
    c.spec["process"]["cwd"] = json!("/work/deep/dir");
    assert!(!c.rootfs.join("work").exists());
    let out = c.run().ok();
    assert_eq!(out.stdout, "/work/deep/dir\n", "{out}");
    let dir = c.rootfs.join("work/deep/dir");
    assert!(dir.is_dir(), "{} not created", dir.display());
    assert!(
        dir.join("here").is_file(),
        "process did not run in the new cwd"
    );
}
