//! A process that cannot be executed is refused at `create`, saying why, and leaves nothing
//! behind.

use hull_e2e_runtime::{require_root, Case, Out};

/// `create` must fail with a message naming `path` and one of `why` (lower-case), and leave no
/// container, state dir, cgroup, mount or process.
#[track_caller]
fn assert_exec_refused(name: &str, path: &str, why: &[&str]) -> Out {
    let c = Case::new(name, &[path]);
    let out = c.create(&[]);
    assert!(!out.success(), "created a container running {path}: {out}");
    assert_ne!(out.code(), Some(0), "{out}");
    let err = out.stderr.to_lowercase();
    assert!(err.contains(path), "error does not name {path}: {out}");
    assert!(
        why.iter().any(|w| err.contains(w)),
        "error does not say why (any of {why:?}): {out}"
    );
    assert!(
        !c.cmd(&["state", &c.id]).success(),
        "a container exists after the refusal"
    );
    c.assert_clean();
    out
}

#[test]
fn missing_executable_is_refused_at_create() {
    require_root!();
    assert_exec_refused(
        "exec-missing",
        "/no/such/binary",
        &["no such file", "not found", "does not exist"],
    );
}

#[test]
fn non_executable_file_is_refused_at_create() {
    require_root!();
    assert_exec_refused(
        "exec-noexec",
        "/etc/passwd",
        &["permission", "not executable"],
    );
}
