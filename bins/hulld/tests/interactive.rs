//! Interactive containers with the docker CLI: `run -i` with piped stdin, `run -it` and
//! `exec -it` through a pty (python3's pty module gives the CLI a terminal), resize,
//! `attach`, `start -ai`; restart policies (RestartCount), json-file log rotation, log driver
//! none; and the shim's RSS (printed, for bench/README.md).

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{busybox_tar, preflight, Hulld};

const CLI: &str = "/usr/bin/docker";

fn daemon() -> Hulld {
    let d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d
}

fn inspect(d: &Hulld, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", name])).unwrap();
    v[0].clone()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the CLI with `input` on its stdin (a pipe); (exit code, stdout, stderr).
fn piped(d: &Hulld, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut c = d
        .docker_cmd(CLI, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input).unwrap();
    let out = c.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_i_pipes_stdin() {
    if !preflight(&[]) {
        return;
    }
    let d = daemon();
    let (code, out, err) = piped(&d, &["run", "-i", "--rm", "busybox", "cat"], b"hi\n");
    assert_eq!(code, 0, "{err}\n{}", d.log());
    assert_eq!(out, "hi\n");
    // Bigger than a pipe buffer, and the exit code of the process after its stdin ended.
    let big: Vec<u8> = (0..200_000).map(|i| b"0123456789\n"[i % 11]).collect();
    let (code, out, err) = piped(
        &d,
        &["run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; exit 7"],
        &big,
    );
    assert_eq!(code, 7, "{err}");
    assert_eq!(out.trim(), "200000");
    // Without -i the container's stdin is empty.
    let (code, out, _) = piped(&d, &["run", "--rm", "busybox", "cat"], b"ignored\n");
    assert_eq!((code, out.as_str()), (0, ""));
}
