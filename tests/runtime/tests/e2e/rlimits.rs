//! rlimits: set as asked; above the caller's hard limit is refused (hull).

use hull_e2e_runtime::{is_hull, mentions, require_root, Case};
use serde_json::json;

fn host_nofile_hard() -> u64 {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r.rlim_max
}

#[test]
fn nofile_limit_is_applied() {
    require_root!();
    let hard = host_nofile_hard().min(20000);
    let (soft, hard) = (hard / 4, hard / 2);
    let mut c = Case::new(
        "rlimit",
        &["sh", "-c", "grep 'Max open files' /proc/self/limits"],
    );
    c.spec["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": soft, "hard": hard }]);
    let out = c.run().ok();
    let f: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(
        f[3..],
        [soft.to_string().as_str(), &hard.to_string(), "files"],
        "{out}"
    );
}

#[test]
fn nofile_above_host_hard_limit() {
    require_root!();
    let over = host_nofile_hard() * 2;
    let mut c = Case::new(
        "rlimit-over",
        &["sh", "-c", "grep 'Max open files' /proc/self/limits"],
    );
    c.spec["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": over, "hard": over }]);
    let out = c.run();
    if is_hull() {
        assert!(
            !out.success(),
            "limit above the host's hard limit accepted: {out}"
        );
        assert!(out.stdout.is_empty(), "the container ran: {out}");
        assert!(
            mentions(&out.stderr, "RLIMIT_NOFILE"),
            "error does not name the rlimit: {out}"
        );
    } else {
        // runc (root, CAP_SYS_RESOURCE) raises the hard limit as asked.
        eprintln!("runc with RLIMIT_NOFILE {over}: {}", out.stdout.trim());
    }
}
