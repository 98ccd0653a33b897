//! hulld under bad input and bad luck: malformed requests get Docker's status codes and a
//! message naming the problem, clients that vanish mid-stream, a `kill -9` of hulld with a
//! running container (and in the middle of creates), a container whose init is killed.
//! After each, hulld still answers and nothing is left behind.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{busybox_tar, preflight, Hulld};

const CLI: &str = "/usr/bin/docker";

fn loaded() -> Option<Hulld> {
    if !preflight(&["/usr/bin/curl"]) {
        return None;
    }
    let d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    Some(d)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pings(d: &Hulld) {
    assert_eq!(
        d.curl(&[], "/_ping"),
        (200, "OK".to_string()),
        "hulld stopped answering"
    );
}

fn post(d: &Hulld, path: &str, body: &str) -> (u16, String) {
    d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ],
        path,
    )
}

/// `(status, message)` of an error response; panics when the body is not Docker's shape.
fn error_of(resp: (u16, String)) -> (u16, String) {
    let v: serde_json::Value =
        serde_json::from_str(&resp.1).unwrap_or_else(|e| panic!("not JSON ({e}): {resp:?}"));
    let m = v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {resp:?}"))
        .to_string();
    (resp.0, m)
}

/// Paths under /sys/fs/cgroup/*/hull/<id> (hull's parent only).
fn cgroups_of(id: &str) -> Vec<String> {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|c| c.path().join("hull").join(id))
        .chain([std::path::PathBuf::from("/sys/fs/cgroup/hull").join(id)])
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn malformed_requests_get_dockers_codes_and_hulld_keeps_serving() {
    let Some(d) = loaded() else { return };
    let create = "/v1.41/containers/create";
    let cases: &[(&str, &str, u16, &str)] = &[
        (create, "{bad", 400, "not valid JSON"),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Memory":"lots"}}"#,
            400,
            "Memory",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Memory":1}}"#,
            400,
            "Memory",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"NanoCpus":-1}}"#,
            400,
            "NanoCpus",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Binds":[":/x"]}}"#,
            400,
            "Binds[0]",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Binds":["rel/dir:/x"]}}"#,
            400,
            "rel/dir",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Binds":["vol:x"]}}"#,
            400,
            "absolute",
        ),
        (
            create,
            r#"{"Image":"busybox","HostConfig":{"Binds":["/:/host"]}}"#,
            403,
            "refused by policy",
        ),
        (
            create,
            r#"{"Image":"nosuch"}"#,
            404,
            "No such image: nosuch",
        ),
        ("/volumes/create", r#"{"Name":5}"#, 400, "Name"),
        ("/volumes/create", r#"{"Name":"a/b"}"#, 400, "a/b"),
        (
            "/volumes/create",
            r#"{"Name":"tv","DriverOpts":{"type":"nfs"}}"#,
            400,
            "nfs",
        ),
        (
            "/volumes/create",
            r#"{"Name":"tv","Driver":"flocker"}"#,
            400,
            "flocker",
        ),
    ];
    for (path, body, code, needle) in cases {
        let (got, msg) = error_of(post(&d, path, body));
        assert_eq!(got, *code, "{path} {body}: {msg}");
        assert!(
            msg.contains(needle),
            "{path} {body}: {msg:?} should name {needle:?}"
        );
        pings(&d);
    }
    for (path, needle) in [
        ("/containers/nosuch/json", "No such container: nosuch"),
        ("/volumes/nosuch", "no such volume"),
        ("/images/nosuch/json", "No such image"),
    ] {
        let (code, msg) = error_of(d.curl(&[], path));
        assert_eq!(code, 404, "{path}: {msg}");
        assert!(msg.contains(needle), "{path}: {msg}");
    }
    // A name taken: 409, and the first container is untouched.
    let body = r#"{"Image":"busybox","HostConfig":{"NetworkMode":"none"}}"#;
    let (code, first) = post(&d, "/containers/create?name=twin", body);
    assert_eq!(code, 201, "{first}");
    let (code, msg) = error_of(post(&d, "/containers/create?name=twin", body));
    assert_eq!(code, 409);
    assert!(msg.contains("\"/twin\" is already in use"), "{msg}");
    let (code, msg) = error_of(post(&d, "/containers/create?name=no/slash", body));
    assert_eq!(code, 400, "{msg}");
    // The CLIs' own checks and hulld's for what reaches it.
    assert!(d
        .fails(
            CLI,
            &[
                "run",
                "--network",
                "none",
                "--cpus",
                "-1",
                "busybox",
                "true"
            ]
        )
        .contains("NanoCpus"));
    assert!(d
        .fails(
            CLI,
            &["run", "--network", "none", "-m", "1", "busybox", "true"]
        )
        .contains("6MB"));
    assert!(d
        .fails(
            CLI,
            &["run", "--network", "none", "-v", ":/x", "busybox", "true"]
        )
        .contains(":/x"));
    // A start that fails: the error reaches `docker run --rm`, which does not hang, and
    // the container is gone.
    let (code, msg) = {
        let out = d.docker(
            CLI,
            &[
                "run",
                "--rm",
                "--network",
                "none",
                "busybox",
                "/no/such/program",
            ],
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_ne!(code, Some(0));
    assert!(msg.contains("/no/such/program"), "{msg}");
    assert_eq!(
        d.ok(CLI, &["ps", "-aq"]).lines().count(),
        1,
        "only twin is left"
    );
    // Garbage on the socket: the connection ends, the daemon does not.
    let _ = d.raw("NOT HTTP AT ALL\r\n\r\n");
    let _ =
        d.raw("POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Im");
    pings(&d);
    assert_eq!(d.ok(CLI, &["ps", "-aq"]).lines().count(), 1);
    d.ok(CLI, &["rm", "twin"]);
}

#[test]
fn clients_that_disconnect_mid_stream_do_no_harm() {
    let Some(d) = loaded() else { return };
    let id = d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "while true; do echo tick; sleep 0.1; done",
        ],
    );
    let id = id.trim().to_string();
    for args in [
        vec!["logs", "-f", id.as_str()],
        vec!["attach", "--no-stdin", id.as_str()],
    ] {
        let mut child = d
            .docker_cmd(CLI, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Read until a line arrives, then vanish.
        use std::io::Read;
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 5];
        out.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"tick\n");
        child.kill().unwrap();
        child.wait().unwrap();
        pings(&d);
    }
    // A raw attach whose client closes right after the first bytes of the stream.
    {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /containers/{id}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    }
    pings(&d);
    let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", &id])).unwrap();
    assert_eq!(v[0]["State"]["Status"], "running");
    assert!(d.ok(CLI, &["logs", "--tail", "1", &id]).starts_with("tick"));
    d.ok(CLI, &["rm", "-f", &id]);
}

#[test]
fn kill_9_of_hulld_keeps_containers_and_records() {
    let Some(mut d) = loaded() else { return };
    let id = d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--name",
            "survivor",
            "--network",
            "none",
            "-v",
            "kept:/k",
            "busybox",
            "sh",
            "-c",
            "echo started > /k/f; trap 'exit 3' TERM; while true; do echo tick; sleep 0.1; done",
        ],
    );
    let id = id.trim().to_string();
    let pid = d
        .ok(CLI, &["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .to_string();
    wait_for("the first log line", || {
        d.ok(CLI, &["logs", &id]).contains("tick")
    });

    // Creates in flight while hulld dies: afterwards every container listed is whole.
    let host = d.host();
    let config = d.docker_config.clone();
    let creator = std::thread::spawn(move || {
        for i in 0..40 {
            let _ = std::process::Command::new(CLI)
                .args([
                    "create",
                    "--network",
                    "none",
                    "--name",
                    &format!("c{i}"),
                    "busybox",
                ])
                .env("DOCKER_HOST", &host)
                .env("DOCKER_CONFIG", &config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    d.kill9_and_restart();
    creator.join().unwrap();

    // The container still runs, with the same init, and is listed, logged, inspectable.
    let ps = d.ok(CLI, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.lines().any(|l| l.starts_with("survivor Up")), "{ps}");
    assert_eq!(
        d.ok(CLI, &["inspect", "-f", "{{.State.Pid}}", &id]).trim(),
        pid
    );
    assert!(d.ok(CLI, &["logs", &id]).starts_with("tick\n"));
    let mounts = d.ok(
        CLI,
        &[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Name}}:{{.Destination}}{{end}}",
            &id,
        ],
    );
    assert_eq!(mounts.trim(), "kept:/k");
    // Every record in the store is complete: each container the daemon lists inspects.
    let all: Vec<String> = d
        .ok(CLI, &["ps", "-aq", "--no-trunc"])
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(all.len(), d.records().len());
    for c in &all {
        let v: serde_json::Value = serde_json::from_str(&d.ok(CLI, &["inspect", c])).unwrap();
        assert!(v[0]["Name"].as_str().unwrap().starts_with('/'), "{v}");
    }
    assert_eq!(d.ok(CLI, &["volume", "ls", "-q"]).trim(), "kept");
    // A create the kill interrupted left nothing: one exec directory per record.
    let dirs = std::fs::read_dir(d.dir.path().join("exec/containers"))
        .unwrap()
        .count();
    assert_eq!(dirs, all.len(), "exec directories without a record");
    // Stop works through the new daemon and the exit is recorded.
    d.ok(CLI, &["stop", "-t", "5", &id]);
    assert_eq!(
        d.ok(
            CLI,
            &[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                &id
            ]
        )
        .trim(),
        "exited 3"
    );
    let mut rm = vec!["rm", "-f"];
    rm.extend(all.iter().map(String::as_str));
    d.ok(CLI, &rm);
    d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "kept:/k",
            "busybox",
            "cat",
            "/k/f",
        ],
    )
    .eq("started\n")
    .then_some(())
    .expect("the volume kept its content");
    assert!(cgroups_of(&id).is_empty(), "{:?}", cgroups_of(&id));
}

#[test]
fn a_container_whose_init_is_killed_is_exited_137_and_leaves_nothing() {
    let Some(d) = loaded() else { return };
    let id = d.ok(
        CLI,
        &["run", "-d", "--network", "none", "busybox", "sleep", "1000"],
    );
    let id = id.trim().to_string();
    let pid: i32 = d
        .ok(CLI, &["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    assert!(
        !cgroups_of(&id).is_empty(),
        "the running container has cgroups under hull/"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the exit", || {
        d.ok(CLI, &["inspect", "-f", "{{.State.Status}}", &id])
            .trim()
            == "exited"
    });
    assert_eq!(
        d.ok(
            CLI,
            &["inspect", "-f", "{{.State.ExitCode}} {{.State.Pid}}", &id]
        )
        .trim(),
        "137 0"
    );
    assert!(d
        .ok(CLI, &["ps", "-a", "--format", "{{.Status}}"])
        .contains("Exited (137)"));
    wait_for("its cgroups to go", || cgroups_of(&id).is_empty());
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    d.ok(CLI, &["rm", &id]);
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
    assert!(d.records().is_empty());
    pings(&d);
}

#[test]
fn records_of_the_file_store_are_imported_on_start() {
    let Some(mut d) = loaded() else { return };
    let id = d.ok(
        CLI,
        &[
            "create",
            "--network",
            "none",
            "--name",
            "legacy",
            "busybox",
            "echo",
            "from before",
        ],
    );
    let id = id.trim().to_string();
    assert!(d.stop(), "hulld did not stop: {}", d.log());
    // Turn the state back into what an older hulld left: container.json files, no database.
    let data = d.dir.path().join("data");
    let records = d.records();
    assert_eq!(records.len(), 1);
    std::fs::write(
        data.join("containers").join(&id).join("container.json"),
        serde_json::to_vec_pretty(&records[0]).unwrap(),
    )
    .unwrap();
    for f in ["hull.db", "hull.db-wal", "hull.db-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
    d.restart_stopped();
    assert_eq!(
        d.ok(CLI, &["ps", "-a", "--format", "{{.Names}}"]).trim(),
        "legacy"
    );
    assert_eq!(d.ok(CLI, &["start", "-a", "legacy"]), "from before\n");
    assert!(data
        .join("containers")
        .join(&id)
        .join("container.json.imported")
        .exists());
    // The name is reserved in the store: a second "legacy" is a conflict.
    assert!(d
        .fails(CLI, &["create", "--name", "legacy", "busybox"])
        .contains("already in use"));
    d.ok(CLI, &["rm", "legacy"]);
    assert!(d.records().is_empty());
}
