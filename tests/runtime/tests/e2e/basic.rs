//! `run`: output and exit code.

use std::thread;
use std::time::Duration;

use hull_e2e_runtime::{require_root, Case};

#[test]
fn run_returns_output_and_exit_code() {
    require_root!();
    let c = Case::new("run-exit", &["sh", "-c", "echo hi; echo oops >&2; exit 7"]);
    let out = c.run();
    assert_eq!(out.code(), Some(7), "{out}");
    assert_eq!(out.stdout, "hi\n", "{out}");
    assert!(
        out.stderr.contains("oops"),
        "container stderr not passed through: {out}"
    );
    // `run` deletes the container when it exits.
    c.assert_clean();
}

#[test]
fn run_reports_death_by_signal_as_128_plus_signal() {
    require_root!();
    let c = Case::new("run-signal", &["sleep", "30"]);
    let out = thread::scope(|s| {
        s.spawn(|| {
            // Kill the container's init from the host once it runs.
            c.wait_status("running", Duration::from_secs(10));
            let pid = c.state()["pid"].as_i64().expect("pid");
            // SAFETY: kill has no memory-safety preconditions.
            assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        });
        c.run()
    });
    assert_eq!(out.code(), Some(128 + 9), "{out}");
    c.assert_clean();
}
