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

/// hulld runs the `hull-shim` binary next to it, which `cargo test -p hulld-bin` does not
/// rebuild: a shim older than its sources would test old code.
fn check_shim_is_fresh() {
    let shim = std::path::Path::new(common::hulld_bin()).with_file_name("hull-shim");
    let Ok(built) = std::fs::metadata(&shim).and_then(|m| m.modified()) else {
        return; // hulld then runs itself as the shim (`hulld __shim`), which is current
    };
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../hull-shim/src");
    for e in std::fs::read_dir(src).unwrap().flatten() {
        let changed = e.metadata().and_then(|m| m.modified()).unwrap();
        assert!(
            changed <= built,
            "{} is older than {}: run `cargo build -p hull-shim` first",
            shim.display(),
            e.path().display()
        );
    }
}

fn daemon() -> Hulld {
    check_shim_is_fresh();
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
    piped_with(d, CLI, args, input)
}

fn piped_with(d: &Hulld, cli: &str, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut c = d
        .docker_cmd(cli, args)
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
    for cli in common::docker_clis() {
        let (code, out, err) =
            piped_with(&d, cli, &["run", "-i", "--rm", "busybox", "cat"], b"hi\n");
        assert_eq!(code, 0, "{cli}: {err}\n{}", d.log());
        assert_eq!(out, "hi\n", "{cli}");
        // Bigger than a pipe buffer, and the exit code of the process after its stdin ended.
        let big: Vec<u8> = (0..200_000).map(|i| b"0123456789\n"[i % 11]).collect();
        let (code, out, err) = piped_with(
            &d,
            cli,
            &["run", "-i", "--rm", "busybox", "sh", "-c", "wc -c; exit 7"],
            &big,
        );
        assert_eq!(code, 7, "{cli}: {err}");
        assert_eq!(out.trim(), "200000", "{cli}");
        // Without -i the container's stdin is empty.
        let (code, out, _) = piped_with(&d, cli, &["run", "--rm", "busybox", "cat"], b"ignored\n");
        assert_eq!((code, out.as_str()), (0, ""), "{cli}");
    }
}

/// The shims' own logs (for failure messages).
fn shim_logs(d: &Hulld) -> String {
    let mut out = String::new();
    let dir = d.dir.path().join("exec/containers");
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(t) = std::fs::read_to_string(e.path().join("shim.log")) {
            out.push_str(&format!("--- {}\n{t}", e.path().display()));
        }
    }
    out
}

/// Runs `docker args...` on a pty driven by `steps` (see interactive/pty_drive.py); the
/// exit code and the driver's report.
fn on_pty(d: &Hulld, steps: serde_json::Value, args: &[&str]) -> (i32, String) {
    on_pty_with(d, CLI, steps, args)
}

fn on_pty_with(d: &Hulld, cli: &str, steps: serde_json::Value, args: &[&str]) -> (i32, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/interactive/pty_drive.py"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(steps.to_string())
        .arg("--")
        .arg(cli)
        .args(args)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.docker_config)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
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
        ["send", "tty\r"],
        ["expect", "/dev/pts/0"],
        // The CLI sends its size right after the start, maybe after the shell's prompt.
        ["until", "stty size\r", "24 80"],
        ["resize_until", 40, 120, "stty size\r"],
        ["send", "exit 3\r"],
    ]);
    let (code, report) = on_pty(&d, steps, &["run", "-it", "--name", "t1", "busybox", "sh"]);
    assert_eq!(
        code,
        3,
        "{report}\n--- hulld ---\n{}\n--- shims ---\n{}",
        d.log(),
        shim_logs(&d)
    );
    // The terminal's output is in the log too (one stream, as Docker's).
    let logs = d.ok(CLI, &["logs", "t1"]);
    assert!(logs.contains("42\r\n"), "{logs}");
    assert!(
        !logs.contains('\u{1}'),
        "frame headers in a tty's logs: {logs:?}"
    );
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

    // The newer CLI (API 1.42+ sends ConsoleSize with create).
    for cli in common::docker_clis().into_iter().filter(|c| *c != CLI) {
        let steps = serde_json::json!([
            ["expect", "# "],
            ["until", "stty size\r", "24 80"],
            ["resize_until", 30, 90, "stty size\r"],
            ["send", "exit 2\r"],
        ]);
        let (code, report) = on_pty_with(&d, cli, steps, &["run", "-it", "--rm", "busybox", "sh"]);
        assert_eq!(code, 2, "{cli}: {report}\n--- hulld ---\n{}", d.log());
    }
}

fn status(d: &Hulld, name: &str) -> (String, u64, i64) {
    let v = inspect(d, name);
    (
        v["State"]["Status"].as_str().unwrap_or("").to_string(),
        v["RestartCount"].as_u64().unwrap_or(999),
        v["State"]["ExitCode"].as_i64().unwrap_or(-1),
    )
}

#[test]
fn restart_policies() {
    if !preflight(&[]) {
        return;
    }
    let d = daemon();
    // on-failure:2 restarts exactly twice, then stays exited with the last code.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "rf",
            "--restart",
            "on-failure:2",
            "busybox",
            "sh",
            "-c",
            "echo ran; exit 5",
        ],
    );
    wait_until("rf to stay exited", Duration::from_secs(20), || {
        status(&d, "rf").0 == "exited"
    });
    assert_eq!(status(&d, "rf"), ("exited".into(), 2, 5), "{}", d.log());
    let logs = d.ok(CLI, &["logs", "rf"]);
    assert_eq!(logs.matches("ran").count(), 3, "{logs}");
    // on-failure does not restart a success.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "ok",
            "--restart",
            "on-failure",
            "busybox",
            "true",
        ],
    );
    wait_until("ok to exit", Duration::from_secs(10), || {
        status(&d, "ok").0 == "exited"
    });
    assert_eq!(status(&d, "ok"), ("exited".into(), 0, 0));

    // always: restarts until stopped, and stop ends it for good.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "al",
            "--restart",
            "always",
            "busybox",
            "sh",
            "-c",
            "sleep 0.2; exit 1",
        ],
    );
    wait_until("al to restart 3 times", Duration::from_secs(30), || {
        status(&d, "al").1 >= 3
    });
    d.ok(CLI, &["stop", "-t", "1", "al"]);
    let (st, count, _) = status(&d, "al");
    assert_eq!(st, "exited");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        status(&d, "al"),
        (st, count, status(&d, "al").2),
        "restarted after stop"
    );
    // A long-running always container is stopped for good too.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "al2",
            "--restart",
            "always",
            "busybox",
            "sleep",
            "100",
        ],
    );
    d.ok(CLI, &["stop", "-t", "1", "al2"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(status(&d, "al2").0, "exited");
    assert_eq!(status(&d, "al2").1, 0);

    // Bad policies are refused like Docker's (the CLI checks some itself: ask the API).
    for (policy, words) in [
        (r#"{"Name":"sometimes"}"#, "invalid restart policy"),
        (
            r#"{"Name":"always","MaximumRetryCount":2}"#,
            "maximum retry count",
        ),
    ] {
        let body = format!(r#"{{"Image":"busybox","HostConfig":{{"RestartPolicy":{policy}}}}}"#);
        let (code, text) = d.curl(
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                &body,
            ],
            "/containers/create",
        );
        assert_eq!(code, 400, "{text}");
        assert!(text.contains(words), "{text}");
    }
    d.ok(CLI, &["rm", "-f", "rf", "ok", "al", "al2"]);
}

#[test]
fn log_rotation_and_driver_none() {
    if !preflight(&[]) {
        return;
    }
    let d = daemon();
    let id = d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done",
        ],
    );
    let id = id.trim().to_string();
    d.ok(CLI, &["wait", &id]);
    let log = d
        .dir
        .path()
        .join(format!("data/containers/{id}/{id}-json.log"));
    let name = |n: u32| std::path::PathBuf::from(format!("{}.{n}", log.display()));
    for p in [log.clone(), name(1), name(2)] {
        let len = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
            .len();
        assert!(len > 0 && len <= 1024, "{p:?} is {len} bytes");
    }
    assert!(!name(3).exists(), "max-file=3 keeps three files");
    let logs = d.ok(CLI, &["logs", &id]);
    let lines: Vec<u32> = logs
        .lines()
        .map(|l| l.trim_start_matches("line-").parse().unwrap())
        .collect();
    assert_eq!(lines.last(), Some(&299), "{logs}");
    assert!(
        lines.len() > 10 && lines.len() < 300,
        "{} lines kept",
        lines.len()
    );
    assert!(lines.windows(2).all(|w| w[1] == w[0] + 1), "{lines:?}");
    let tail = d.ok(CLI, &["logs", "--tail", "2", &id]);
    assert_eq!(tail, "line-298\nline-299\n");
    let v = inspect(&d, &id);
    assert_eq!(v["HostConfig"]["LogConfig"]["Config"]["max-size"], "1k");

    let e = d.fails(
        CLI,
        &["run", "--log-opt", "max-size=lots", "busybox", "true"],
    );
    assert!(e.contains("max-size"), "{e}");
    let e = d.fails(CLI, &["run", "--log-driver", "syslog", "busybox", "true"]);
    assert!(e.contains("syslog"), "{e}");

    d.ok(
        CLI,
        &[
            "run",
            "--name",
            "quiet",
            "--log-driver",
            "none",
            "busybox",
            "echo",
            "x",
        ],
    );
    let e = d.fails(CLI, &["logs", "quiet"]);
    assert!(e.contains("does not support reading"), "{e}");
    d.ok(CLI, &["rm", &id, "quiet"]);
}

/// daemon.json's log-opts are the default of containers created after hulld read it.
#[test]
fn daemon_log_opts_are_defaults() {
    if !preflight(&[]) {
        return;
    }
    let mut d = daemon();
    std::fs::write(
        d.dir.path().join("daemon.json"),
        r#"{"log-opts": {"max-size": "2k", "max-file": "2"}}"#,
    )
    .unwrap();
    d.restart();
    let id = d.ok(CLI, &["run", "-d", "busybox", "sh", "-c", "seq 1 500"]);
    let id = id.trim().to_string();
    d.ok(CLI, &["wait", &id]);
    let v = inspect(&d, &id);
    assert_eq!(
        v["HostConfig"]["LogConfig"]["Config"]["max-size"], "2k",
        "{v}"
    );
    let log = d
        .dir
        .path()
        .join(format!("data/containers/{id}/{id}-json.log"));
    let rotated = |n: u32| std::path::PathBuf::from(format!("{}.{n}", log.display()));
    assert!(std::fs::metadata(&log).unwrap().len() <= 2048);
    assert!(rotated(1).exists());
    assert!(!rotated(2).exists(), "max-file 2 keeps two files");
    // A container's own LogConfig wins.
    let id2 = d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--log-opt",
            "max-size=1m",
            "busybox",
            "sh",
            "-c",
            "seq 1 500",
        ],
    );
    let id2 = id2.trim().to_string();
    d.ok(CLI, &["wait", &id2]);
    let log2 = d
        .dir
        .path()
        .join(format!("data/containers/{id2}/{id2}-json.log"));
    assert!(!std::path::Path::new(&format!("{}.1", log2.display())).exists());
    assert_eq!(d.ok(CLI, &["logs", "--tail", "1", &id2]), "500\n");
    d.ok(CLI, &["rm", &id, &id2]);
}

#[test]
fn exec_it_and_exec_i() {
    if !preflight(&["/usr/bin/python3"]) {
        return;
    }
    let d = daemon();
    d.ok(
        CLI,
        &["run", "-d", "--name", "box", "busybox", "sleep", "300"],
    );
    let steps = serde_json::json!([
        ["expect", "# "],
        ["send", "echo in-exec-$((2*21))\r"],
        ["expect", "in-exec-42"],
        ["send", "tty\r"],
        ["expect", "/dev/pts/"],
        ["until", "stty size\r", "24 80"],
        ["resize_until", 33, 99, "stty size\r"],
        ["send", "exit 4\r"],
    ]);
    let (code, report) = on_pty(&d, steps, &["exec", "-it", "box", "sh"]);
    assert_eq!(code, 4, "{report}\n--- hulld ---\n{}", d.log());
    // Piped stdin to exec -i, and output and exit code without a tty.
    let (code, out, err) = piped(
        &d,
        &["exec", "-i", "box", "sh", "-c", "cat; exit 2"],
        b"piped\n",
    );
    assert_eq!((code, out.as_str()), (2, "piped\n"), "{err}");
    let (code, _, err) = piped(&d, &["exec", "box", "nosuchcmd"], b"");
    assert_ne!(code, 0);
    assert!(err.contains("executable file not found"), "{err}");
    for cli in common::docker_clis().into_iter().filter(|c| *c != CLI) {
        let steps = serde_json::json!([
            ["expect", "# "],
            ["send", "echo new-cli-$((5*5))\r"],
            ["expect", "new-cli-25"],
            ["resize_until", 20, 70, "stty size\r"],
            ["send", "exit\r"],
        ]);
        let (code, report) = on_pty_with(&d, cli, steps, &["exec", "-it", "box", "sh"]);
        assert_eq!(code, 0, "{cli}: {report}\n--- hulld ---\n{}", d.log());
    }
    d.ok(CLI, &["rm", "-f", "box"]);
}

/// VmRSS of a process, in KiB.
fn rss_kib(pid: i64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Prints the RSS of the shim of a running container, idle and interactive (no assert on
/// the figure: it goes into bench/README.md; the test checks that there is one shim per
/// container and that it is the process hulld recorded).
#[test]
fn shim_rss() {
    if !preflight(&[]) {
        return;
    }
    let d = daemon();
    let id = d.ok(
        CLI,
        &[
            "run",
            "-d",
            "-i",
            "busybox",
            "sh",
            "-c",
            "sleep 1; seq 1 20000; sleep 300",
        ],
    );
    let id = id.trim();
    let rec = d.record(id);
    let shim = rec["state"]["shim_pid"].as_i64().unwrap();
    assert!(shim > 0);
    let cmdline = std::fs::read(format!("/proc/{shim}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains(id),
        "pid {shim} is not this container's shim"
    );
    let sock = d.dir.path().join(format!("exec/containers/{id}/io.sock"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&sock).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "io.sock is for root only");
    let idle = rss_kib(shim);
    // After output to the log.
    wait_until("the output", Duration::from_secs(20), || {
        d.ok(CLI, &["logs", "--tail", "1", id]) == "20000\n"
    });
    let busy = rss_kib(shim);
    let exe = std::fs::read_link(format!("/proc/{shim}/exe")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{shim}/status")).unwrap();
    for l in status
        .lines()
        .filter(|l| l.starts_with("Rss") || l.starts_with("VmHWM"))
    {
        println!("hull-shim {l}");
    }
    let rollup = std::fs::read_to_string(format!("/proc/{shim}/smaps_rollup")).unwrap();
    for l in rollup
        .lines()
        .filter(|l| l.starts_with("Pss") || l.starts_with("Private"))
    {
        println!("hull-shim {l}");
    }
    if std::env::var_os("HULL_SHIM_SMAPS").is_some() {
        let smaps = std::fs::read_to_string(format!("/proc/{shim}/smaps")).unwrap();
        let mut name = String::new();
        for l in smaps.lines() {
            if l.contains('-') && !l.starts_with(char::is_uppercase) {
                name = l.to_string();
            } else if let Some(v) = l.strip_prefix("Rss:") {
                if v.trim() != "0 kB" {
                    println!("{v:>10}  {name}");
                }
            }
        }
    }
    println!(
        "hull-shim VmRSS: {idle} KiB idle, {busy} KiB after 20000 lines of output ({})",
        exe.display()
    );
    // With more containers the binary's pages are shared: what one more shim costs.
    let more: Vec<String> = (0..3)
        .map(|_| {
            d.ok(CLI, &["run", "-d", "busybox", "sleep", "300"])
                .trim()
                .to_string()
        })
        .collect();
    let rollup = std::fs::read_to_string(format!("/proc/{shim}/smaps_rollup")).unwrap();
    let pss = rollup
        .lines()
        .find(|l| l.starts_with("Pss:"))
        .unwrap_or("")
        .trim_start_matches("Pss:")
        .trim();
    println!("hull-shim Pss with 4 containers running: {pss}");
    d.ok(CLI, &["rm", "-f", id]);
    for m in &more {
        d.ok(CLI, &["rm", "-f", m]);
    }
}

fn record_pids(d: &Hulld, name: &str) -> (i64, i64) {
    let id = inspect(d, name)["Id"].as_str().unwrap().to_string();
    let rec = d.record(&id);
    (
        rec["state"]["shim_pid"].as_i64().unwrap(),
        rec["state"]["pid"].as_i64().unwrap(),
    )
}

/// `always` and `unless-stopped` containers come back when hulld starts after their shims
/// died (as after a reboot); a stopped `unless-stopped` and a policy-less one do not.
#[test]
fn restart_policies_at_daemon_start() {
    if !preflight(&[]) {
        return;
    }
    let mut d = daemon();
    for (name, policy) in [
        ("al", "always"),
        ("us", "unless-stopped"),
        ("us2", "unless-stopped"),
        ("no", "no"),
    ] {
        d.ok(
            CLI,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--restart",
                policy,
                "busybox",
                "sleep",
                "300",
            ],
        );
    }
    d.ok(CLI, &["stop", "-t", "1", "us2"]);
    let pids: Vec<(i64, i64)> = ["al", "us", "no"]
        .iter()
        .map(|n| record_pids(&d, n))
        .collect();
    assert!(d.stop(), "hulld did not stop: {}", d.log());
    for (shim, init) in pids {
        for p in [shim, init] {
            let _ = Command::new("kill")
                .args(["-KILL", &p.to_string()])
                .status();
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    d.restart();
    let running = |n: &str| inspect(&d, n)["State"]["Running"].as_bool().unwrap();
    wait_until("al and us to run again", Duration::from_secs(20), || {
        running("al") && running("us")
    });
    assert!(
        !running("us2"),
        "a stopped unless-stopped container was restarted"
    );
    assert!(!running("no"));
    // What the killed shim of "no" could not clean up is gone (its cgroups).
    let no_id = inspect(&d, "no")["Id"].as_str().unwrap().to_string();
    let mut left = Vec::new();
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for p in [e.path().join("hull").join(&no_id), e.path().join(&no_id)] {
            if p.exists() {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "cgroups left by a dead shim: {left:?}");
    assert_eq!(d.ok(CLI, &["exec", "al", "echo", "back"]), "back\n");
    d.ok(CLI, &["rm", "-f", "al", "us", "us2", "no"]);
}

/// `docker attach` to a running -it container: typed input runs, Ctrl-P Ctrl-Q detaches
/// and the container keeps running.
#[test]
fn attach_and_detach() {
    if !preflight(&["/usr/bin/python3"]) {
        return;
    }
    let d = daemon();
    d.ok(CLI, &["run", "-dit", "--name", "a", "busybox", "sh"]);
    let steps = serde_json::json!([
        ["sleep", 0.5],
        ["send", "echo att-$((3*3))\r"],
        ["expect", "att-9"],
        ["send", "\u{10}\u{11}"],
    ]);
    let (code, report) = on_pty(&d, steps, &["attach", "a"]);
    assert!(
        report.contains("read escape sequence"),
        "{report}\n--- hulld ---\n{}",
        d.log()
    );
    let _ = code;
    assert_eq!(inspect(&d, "a")["State"]["Running"], true);
    // Attached again, exit ends the container and the attach.
    let steps = serde_json::json!([["sleep", 0.5], ["send", "exit 6\r"],]);
    let (code, report) = on_pty(&d, steps, &["attach", "a"]);
    assert_eq!(code, 6, "{report}");
    assert_eq!(inspect(&d, "a")["State"]["Running"], false);
    d.ok(CLI, &["rm", "a"]);
}

/// A raw hijacked attach (no CLI): stdin in, multiplexed output back, and the request's
/// detachKeys end the attach while the container keeps running.
#[test]
fn raw_attach_with_detach_keys() {
    use std::io::Read;
    if !preflight(&[]) {
        return;
    }
    let d = daemon();
    d.ok(CLI, &["run", "-d", "-i", "--name", "cat", "busybox", "cat"]);
    let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"POST /containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-a,x HTTP/1.1\r\n\
          Host: hull\r\nUpgrade: tcp\r\nConnection: Upgrade\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "{}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("multiplexed-stream"), "{head}");
    s.write_all(b"hello\n").unwrap();
    let mut frame = [0u8; 14];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(
        &frame[..8],
        &[1, 0, 0, 0, 0, 0, 0, 6],
        "a stdout frame of 6 bytes"
    );
    assert_eq!(&frame[8..], b"hello\n");
    // The detach keys: the daemon ends the attach; the container goes on.
    s.write_all(b"\x01x").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the attach ends after the detach keys");
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(inspect(&d, "cat")["State"]["Running"], true);
    // A bad detachKeys is a 400 naming it.
    let (code, body) = d.curl(
        &["-X", "POST"],
        "/containers/cat/attach?stream=1&stdin=1&detachKeys=ctrl-1",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("detachKeys"), "{body}");
    d.ok(CLI, &["rm", "-f", "cat"]);
}

/// A container restarted by its shim keeps its network (the namespace hulld made at start
/// stays until the last exit).
#[test]
fn restart_keeps_the_network() {
    if !preflight(&["/usr/bin/unshare"]) {
        return;
    }
    let d = Hulld::start_isolated();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "n",
            "--restart",
            "on-failure:1",
            "busybox",
            "sh",
            "-c",
            "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; exit 1",
        ],
    );
    wait_until("n to stay exited", Duration::from_secs(20), || {
        status(&d, "n").0 == "exited"
    });
    assert_eq!(status(&d, "n").1, 1);
    let logs = d.ok(CLI, &["logs", "n"]);
    let addrs: Vec<&str> = logs.lines().collect();
    assert_eq!(addrs.len(), 2, "one address per run: {logs}");
    assert_eq!(addrs[0], addrs[1], "{logs}");
    assert!(addrs[0].starts_with("inet "), "{logs}");
    d.ok(CLI, &["rm", "n"]);
}
