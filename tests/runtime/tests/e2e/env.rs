//! `process.env` without PATH: the program is still found on a default PATH.

use hull_e2e_runtime::{is_hull, require_root, Case};
use serde_json::json;

#[test]
fn empty_env_uses_default_path() {
    require_root!();
    let mut c = Case::new("env-empty", &["sh", "-c", "echo ok"]);
    c.spec["process"]["env"] = json!([]);
    let out = c.run();
    if !is_hull() {
        // runc 1.1 looks the program up on the (empty) PATH of process.env and fails.
        eprintln!(
            "runc with env []: exit {:?}: {}",
            out.code(),
            out.stderr.trim()
        );
        c.assert_clean();
        return;
    }
    assert!(out.success(), "sh not found without PATH in env: {out}");
    assert_eq!(out.stdout, "ok\n", "{out}");
    c.assert_clean();
}
