//! Bad input is refused before any process exists, with an error naming what is wrong, and
//! leaves nothing behind.

use hull_e2e_runtime::{is_hull, mentions, require_root, Case, Out};
use serde_json::{json, Value};

/// `create` must fail, say why on stderr (naming each of `words`, checked for hull only: runc
/// words its errors its own way), and leave no state dir, cgroup, mount or process.
#[track_caller]
fn assert_refused(c: &Case, words: &[&str]) -> Out {
    let out = c.create(&[]);
    assert!(!out.success(), "bad spec accepted: {out}");
    assert!(!out.stderr.trim().is_empty(), "no error message: {out}");
    if is_hull() {
        for w in words {
            assert!(
                mentions(&out.stderr, w),
                "error does not mention {w:?}: {out}"
            );
        }
    }
    assert!(
        !c.cmd(&["state", &c.id]).success(),
        "a container exists after refusal"
    );
    c.assert_clean();
    out
}

/// What runc does with input hull refuses: reported, not asserted.
fn runc_note(c: &Case, what: &str) {
    let out = c.create(&[]);
    eprintln!("runc with {what}: exit {:?}", out.code());
}

#[test]
fn unknown_namespace_type() {
    require_root!();
    let mut c = Case::new("bad-ns", &["true"]);
    c.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "bogus" }));
    assert_refused(&c, &["namespace", "bogus"]);
}

#[test]
fn uid_mappings_without_user_namespace() {
    require_root!();
    let mut c = Case::new("bad-uidmap", &["true"]);
    c.spec["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    c.spec["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
    if is_hull() {
        assert_refused(&c, &["uidMappings", "user"]);
    } else {
        // runc 1.1 ignores mappings when there is no user namespace.
        runc_note(&c, "uidMappings without a user namespace");
    }
}

#[test]
fn missing_rootfs() {
    require_root!();
    let mut c = Case::new("bad-rootfs", &["true"]);
    c.spec["root"]["path"] = json!("no-such-rootfs");
    let log = c.dir.join("runtime-log.json");
    c.globals = vec![
        "--log".into(),
        log.to_str().unwrap().into(),
        "--log-format".into(),
        "json".into(),
    ];
    assert_refused(&c, &["no-such-rootfs"]);
    // The error is also in the --log file as JSON (containerd reads it from there).
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let errors: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|v| v["level"] == "error")
        .collect();
    assert!(
        errors.iter().any(|e| e["msg"]
            .as_str()
            .is_some_and(|m| m.contains("no-such-rootfs"))),
        "no error naming the rootfs in {}: {text}",
        log.display()
    );
}

#[test]
fn bad_seccomp_syscall_name() {
    require_root!();
    let mut c = Case::new("bad-seccomp", &["true"]);
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{ "names": ["no_such_syscall_hull"], "action": "SCMP_ACT_ERRNO" }]
    });
    if is_hull() {
        assert_refused(&c, &["no_such_syscall_hull"]);
    } else {
        // runc skips syscall names libseccomp does not know (for forward compatibility).
        runc_note(&c, "an unknown seccomp syscall name");
    }
}

#[test]
fn malformed_json() {
    require_root!();
    let mut c = Case::new("bad-json", &["true"]);
    std::fs::write(
        c.bundle.join("config.json"),
        "{ \"ociVersion\": \"1.0.2\", \"process\": {",
    )
    .unwrap();
    c.spec = Value::Null;
    assert_refused(&c, &["json"]);
}
