//! fds: nothing the runtime (or its caller) holds reaches the container, and the cwd is inside
//! it (the CVE-2024-21626 class).

use std::fs::File;
use std::time::Duration;

use hull_e2e_runtime::{cmd, leak_fd, require_root, Case, Out};

fn assert_only_stdio(out: &Out, cwd: &str, leak: &str) {
    assert_eq!(out.must_line("fds:"), "fds: 0 1 2", "{out}");
    assert_eq!(out.must_line("cwd:"), format!("cwd: {cwd}"), "{out}");
    assert!(
        !out.stdout.contains(leak),
        "leaked fd reached the container: {out}"
    );
}

#[test]
fn run_leaks_no_fds() {
    require_root!();
    let mut c = Case::new("fds-run", &["/probe", "fds"]);
    c.spec["process"]["cwd"] = "/tmp".into();
    let leak = c.dir.join("leaked-file");
    std::fs::write(&leak, "").unwrap();
    let f = File::open(&leak).unwrap();
    c.write_spec();
    let mut run = c.rt();
    run.arg("run").arg("--bundle").arg(&c.bundle).arg(&c.id);
    leak_fd(&mut run, &f, 9);
    let out = cmd::run(&mut run, cmd::TIMEOUT).ok();
    assert_only_stdio(&out, "/tmp", leak.to_str().unwrap());
}

#[test]
fn exec_leaks_no_fds() {
    require_root!();
    let c = Case::new("fds-exec", &["sleep", "300"]);
    c.create(&[]).ok();
    c.start().ok();
    c.wait_status("running", Duration::from_secs(10));
    let leak = c.dir.join("leaked-file");
    std::fs::write(&leak, "").unwrap();
    let f = File::open(&leak).unwrap();
    let mut exec = c.rt();
    exec.arg("exec").arg(&c.id).arg("/probe").arg("fds");
    leak_fd(&mut exec, &f, 9);
    let out = cmd::run(&mut exec, cmd::TIMEOUT).ok();
    assert_only_stdio(&out, "/", leak.to_str().unwrap());
}
