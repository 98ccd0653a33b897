//! Containers through hulld, driven by the real docker CLIs: run (attached, `--rm`, exit
//! codes, stdout/stderr), the secure defaults seen from inside, policy refusals, detached
//! containers with ps, logs, stop, kill, exec and rm, and Docker's error codes; afterwards nothing
//! is left (mounts, cgroups, shims, records).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{busybox_tar, docker_clis, preflight, Hulld};

/// The 11 capabilities hull keeps (crates/engine/src/defaults.rs): CHOWN DAC_OVERRIDE
/// FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT SETFCAP.
const CAP_MASK: &str = "00000000800405fb";

/// Runs `cli args` and returns (exit code, stdout, stderr).
fn run(d: &Hulld, cli: &str, args: &[&str]) -> (i32, String, String) {
    let out = d.docker(cli, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// Processes whose command line names this daemon's directory (its shims).
fn shims_of(d: &Hulld) -> Vec<String> {
    let me = d.dir.path().display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&me) && !cmd.contains("hulld -H") && !cmd.contains("--data-root") {
            out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
        }
    }
    out
}

fn cgroups_of(ids: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    for ctrl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for id in ids {
            let p = ctrl.path().join("hull").join(id);
            if p.exists() {
                left.push(p.display().to_string());
            }
        }
    }
    left
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn milestones(cli: &str) {
    let d = Hulld::start_isolated();
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let mut ids = Vec::new();

    // Attached runs: output, exit codes, --rm.
    let cid = d.dir.path().join("cid");
    let (code, out, err) = run(
        &d,
        cli,
        &[
            "run",
            "--rm",
            "--cidfile",
            cid.to_str().unwrap(),
            "busybox",
            "echo",
            "hello",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    ids.push(std::fs::read_to_string(&cid).unwrap().trim().to_string());
    let (code, _, err) = run(&d, cli, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, err) = run(
        &d,
        cli,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!((code, out.as_str()), (0, "out\n"), "{err}");
    assert!(
        err.contains("err"),
        "stderr reaches the client's stderr: {err}"
    );

    // The secure defaults, seen from inside.
    let status = d.ok(cli, &["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    assert_eq!(field(&status, "Seccomp:"), "2", "{status}");
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "{status}");
    assert_eq!(field(&status, "CapEff:"), CAP_MASK, "{status}");
    let map = d.ok(
        cli,
        &["run", "--rm", "busybox", "cat", "/proc/self/uid_map"],
    );
    let cols: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(cols[0], "0", "{map}");
    assert_ne!(cols[1], "0", "container root is not host root: {map}");
    // `none` (and any network under --bridge none) has lo, up, as Docker's; a server on
    // 127.0.0.1 answers inside.
    let lo = d.ok(
        cli,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "ip -o link; nc -l -p 7000 -e echo pong & sleep 0.3; nc 127.0.0.1 7000 </dev/null",
        ],
    );
    assert!(lo.contains("lo: <LOOPBACK,UP"), "lo is not up: {lo}");
    assert!(!lo.contains("eth0"), "none has only lo: {lo}");
    assert!(lo.contains("pong"), "no answer on 127.0.0.1: {lo}");
    // The default pids limit holds when the CLI sends no --pids-limit (v1 or v2 layout).
    let pids = d.ok(
        cli,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    assert_eq!(pids.trim(), "4096", "default pids limit: {pids}");

    // Policy: refused, clearly.
    let (code, _, err) = run(&d, cli, &["run", "--rm", "--privileged", "busybox", "true"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Privileged") && err.contains("refused by policy"),
        "{err}"
    );

    // Detached: ps, logs, stop.
    let id = d.ok(
        cli,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 1; done",
        ],
    );
    let id = id.trim().to_string();
    ids.push(id.clone());
    let ps = d.ok(cli, &["ps"]);
    assert!(
        ps.lines()
            .any(|l| l.contains(&id[..12]) && l.contains("Up") && l.ends_with("web")),
        "{ps}"
    );
    wait_for("ticks", || d.ok(cli, &["logs", "web"]).contains("tick\n"));
    let t = Instant::now();
    d.ok(cli, &["stop", "-t", "1", "web"]);
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "stop took {:?}",
        t.elapsed()
    );
    let st = d.ok(
        cli,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web",
        ],
    );
    assert_eq!(
        st.trim(),
        "exited 137",
        "sh as pid 1 ignores SIGTERM: SIGKILL after 1 s"
    );
    let ps = d.ok(cli, &["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(
        d.ok(cli, &["logs", "web"]).contains("tick"),
        "logs outlive the container"
    );
    // start again, restart, then rm of a stopped container.
    d.ok(cli, &["start", "web"]);
    let running = || d.ok(cli, &["inspect", "-f", "{{.State.Running}}", "web"]);
    assert_eq!(running().trim(), "true");
    d.ok(cli, &["restart", "-t", "0", "web"]);
    assert_eq!(running().trim(), "true");
    d.ok(cli, &["stop", "-t", "0", "web"]);
    d.ok(cli, &["rm", "web"]);

    // kill, and rm of a running container.
    let id = d.ok(
        cli,
        &["run", "-d", "--name", "k", "busybox", "sleep", "100"],
    );
    ids.push(id.trim().to_string());
    let e = d.fails(cli, &["rm", "k"]);
    assert!(e.contains("cannot remove a running container"), "{e}");
    d.ok(cli, &["kill", "k"]);
    wait_for("k to exit", || {
        d.ok(cli, &["inspect", "-f", "{{.State.ExitCode}}", "k"])
            .trim()
            == "137"
    });
    d.ok(cli, &["rm", "k"]);
    let id = d.ok(
        cli,
        &["run", "-d", "--name", "dup", "busybox", "sleep", "100"],
    );
    ids.push(id.trim().to_string());
    let e = d.fails(cli, &["run", "-d", "--name", "dup", "busybox", "true"]);
    assert!(e.contains("is already in use"), "{e}");

    // exec: output, exit code, env/workdir/user, an unknown program.
    assert_eq!(d.ok(cli, &["exec", "dup", "echo", "hi"]), "hi\n");
    let (code, _, err) = run(&d, cli, &["exec", "dup", "sh", "-c", "echo e >&2; exit 7"]);
    assert_eq!((code, err.as_str()), (7, "e\n"));
    let out = d.ok(
        cli,
        &[
            "exec",
            "-e",
            "FOO=bar",
            "-w",
            "/tmp",
            "-u",
            "1000",
            "dup",
            "sh",
            "-c",
            "echo $FOO $(pwd) $(id -u)",
        ],
    );
    assert_eq!(out, "bar /tmp 1000\n");
    let (code, _, err) = run(&d, cli, &["exec", "dup", "nosuchcmd"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("executable file not found"), "{err}");
    d.ok(cli, &["rm", "-f", "dup"]);

    // Errors in Docker's codes and shape; the daemon keeps serving.
    let (code, body) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"nosuch"}"#,
        ],
        "/containers/create",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such image: nosuch"), "{body}");
    d.ok(cli, &["create", "--name", "c1", "busybox", "true"]);
    let (code, body) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"busybox"}"#,
        ],
        "/containers/create?name=c1",
    );
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (code, body) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        ],
        "/containers/create",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("HostConfig.Privileged"), "{body}");
    let (code, _) = d.curl(&[], "/containers/nosuch/json");
    assert_eq!(code, 404);
    d.ok(cli, &["rm", "c1"]);
    assert_eq!(d.curl(&[], "/_ping"), (200, "OK".to_string()));

    // Nothing left.
    assert_eq!(d.ok(cli, &["ps", "-aq"]).trim(), "");
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
    assert_eq!(cgroups_of(&ids), Vec::<String>::new(), "cgroups left");
    assert_eq!(shims_of(&d), Vec::<String>::new(), "shims left");
    let left = std::fs::read_dir(d.dir.path().join("data/containers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "container records left");
    assert!(Path::new(&d.dir.path().join("exec/containers")).exists());
}

#[test]
fn docker_clis_run_containers() {
    if !preflight(&[]) {
        return;
    }
    for cli in docker_clis() {
        milestones(cli);
    }
}

/// The shim outlives hulld: a container keeps running across a daemon restart, and the new
/// daemon shows it, streams its logs, stops and removes it.
#[test]
fn containers_outlive_a_hulld_restart() {
    if !preflight(&[]) {
        return;
    }
    let cli = "/usr/bin/docker";
    let mut d = Hulld::start();
    // On the host's network namespace: no bridge (--network none).
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let id = d.ok(
        cli,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "keep",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.2; done",
        ],
    );
    let id = id.trim().to_string();
    let pid = d.ok(cli, &["inspect", "-f", "{{.State.Pid}}", "keep"]);
    d.restart();
    let ps = d.ok(cli, &["ps"]);
    assert!(ps.contains(&id[..12]) && ps.contains("Up"), "{ps}");
    assert_eq!(d.ok(cli, &["inspect", "-f", "{{.State.Pid}}", "keep"]), pid);
    let before = d.ok(cli, &["logs", "keep"]).lines().count();
    wait_for("new ticks after the restart", || {
        d.ok(cli, &["logs", "keep"]).lines().count() > before
    });
    d.ok(cli, &["stop", "-t", "0", "keep"]);
    let st = d.ok(cli, &["inspect", "-f", "{{.State.Status}}", "keep"]);
    assert_eq!(st.trim(), "exited");
    d.ok(cli, &["rm", "keep"]);
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
    assert_eq!(cgroups_of(&[id]), Vec::<String>::new(), "cgroups left");
    assert_eq!(shims_of(&d), Vec::<String>::new(), "shims left");
}

/// The default bridge: an address on hull0's subnet, the route, hosts and hostname files,
/// exec in a bridged container, and no veth left after rm (hulld in its own namespace).
#[test]
fn default_bridge_network() {
    if !preflight(&[]) {
        return;
    }
    let cli = "/usr/bin/docker";
    let d = Hulld::start_isolated();
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let id = d.ok(
        cli,
        &["run", "-d", "--name", "b", "busybox", "sleep", "100"],
    );
    let id = id.trim().to_string();
    let addr = d.ok(
        cli,
        &["exec", "b", "ip", "-4", "-o", "addr", "show", "eth0"],
    );
    assert!(addr.contains("inet 172.17.0."), "{addr}");
    let route = d.ok(cli, &["exec", "b", "ip", "route"]);
    assert!(route.contains("default via 172.17.0.1 dev eth0"), "{route}");
    let hosts = d.ok(cli, &["exec", "b", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&id[..12]), "{hosts}");
    assert_eq!(d.ok(cli, &["exec", "b", "hostname"]).trim(), &id[..12]);
    d.ok(cli, &["rm", "-f", "b"]);
    let links = std::process::Command::new("nsenter")
        .args(["-t", &d.pid().to_string(), "-n", "ip", "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["lo:", "hull0:"], "{links}");
    assert_eq!(
        d.mounts(),
        Vec::<String>::new(),
        "mounts left (the pinned namespace)"
    );
    assert_eq!(cgroups_of(&[id]), Vec::<String>::new(), "cgroups left");
}
