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

/// Runs `docker args...` on a pty driven by `steps` (see interactive/pty_drive.py); the
/// exit code and the driver's report.
fn on_pty(d: &Hulld, steps: serde_json::Value, args: &[&str]) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interactive/pty_drive.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(steps.to_string())
        .arg("--")
        .arg(CLI)
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.docker_config)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned()
        + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn run_it_through_a_pty_with_resize() {
    if !preflight(&["/usr/bin/python3"]) {
        return;
    }
    let d = daemon();
    let steps = serde_json::json!([
        ["expect", "# "],
        ["send", "echo $((6*7))\r"],
        ["expect", "42"],
        ["send", "tty; stty size\r"],
        ["expect", "/dev/pts/0"],
        ["expect", "24 80"],
        ["resize", 40, 120],
        ["sleep", 1],
        ["send", "stty size\r"],
        ["expect", "40 120"],
        ["send", "exit 3\r"],
    ]);
    let (code, report) = on_pty(&d, steps, &["run", "-it", "--name", "t1", "busybox", "sh"]);
    assert_eq!(code, 3, "{report}\n--- hulld ---\n{}", d.log());
    // The terminal's output is in the log too (one stream, as Docker's).
    let logs = d.ok(CLI, &["logs", "t1"]);
    assert!(logs.contains("40 120"), "{logs}");
    let v = inspect(&d, "t1");
    assert_eq!(v["Config"]["Tty"], true);
    assert_eq!(v["State"]["ExitCode"], 3);

    // start -ai: the same container again, attached.
    let steps = serde_json::json!([
        ["expect", "# "],
        ["send", "echo again-$((1+1))\r"],
        ["expect", "again-2"],
        ["send", "exit\r"],
    ]);
    let (code, report) = on_pty(&d, steps, &["start", "-ai", "t1"]);
    assert_eq!(code, 0, "{report}\n--- hulld ---\n{}", d.log());
    d.ok(CLI, &["rm", "t1"]);
}
