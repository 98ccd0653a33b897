//! e2e (root): a private hulld (temporary state, `--bridge none` or, for the network tests,
//! its own network namespace; stopped by its pid) driven by the hull CLI: load, the images
//! and ps tables, run --rm exit codes, run -d + logs + exec + inspect + stop + rm, version,
//! TLS, push/pull; -p with ps's PORTS and port, pause/unpause, top, stats, rename, run -i,
//! run -it and exec -it on a pty, volumes, user networks with DNS names, restart policies,
//! logs -f, events filters, diff/commit/export/import, info and system df. hulld must be
//! built next to hull (`cargo build -p hulld-bin`; a workspace build does it).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "../../hulld/tests/pki/mod.rs"]
mod pki;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// Root and busybox-static, or a skip (a failure with HULL_REQUIRE_PEERS=1).
fn preflight() -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("/bin/busybox".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("hull CLI e2e tests need {}", missing.join(", "));
    if std::env::var("HULL_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{msg}; HULL_REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIP {msg}");
    false
}

fn hull_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hull")
}

fn hulld_bin() -> PathBuf {
    let p = Path::new(hull_bin()).with_file_name("hulld");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p hulld-bin)",
        p.display()
    );
    p
}

struct Hulld {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Hulld {
    fn start() -> Hulld {
        Self::start_with(&[])
    }

    fn start_with(extra: &[&str]) -> Hulld {
        Self::start_full(extra, false)
    }

    /// A hulld in a network namespace of its own (`unshare -n`, which execs it: the child's
    /// pid is hulld's), with its default bridge there and `lo` up for the test's clients.
    fn start_isolated() -> Hulld {
        let d = Self::start_full(&[], true);
        let st = d.in_ns(&["ip", "link", "set", "lo", "up"]);
        assert!(st.status.success(), "lo up in hulld's netns");
        d
    }

    /// Runs a command in hulld's network namespace.
    fn in_ns(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.child.id().to_string(), "-n"])
            .args(args)
            .output()
            .expect("running nsenter")
    }

    fn start_full(extra: &[&str], isolated: bool) -> Hulld {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        let socket = dir.path().join("run/hull.sock");
        std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(dir.path().join("hulld.log")).unwrap();
        // Only a hulld in its own network namespace may make a bridge.
        let mut cmd = if isolated {
            let mut c = Command::new("unshare");
            c.arg("-n").arg(hulld_bin());
            c
        } else {
            let mut c = Command::new(hulld_bin());
            c.args(["--bridge", "none"]);
            c
        };
        let child = cmd
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting hulld");
        let mut d = Hulld { child, dir, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = d.child.try_wait() {
                panic!("hulld exited ({st}): {}", d.log());
            }
            if d.ping() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "hulld did not answer: {}",
                d.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        if s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").is_err() {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("200 OK")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hulld.log")).unwrap_or_default()
    }

    fn hull(&self, args: &[&str]) -> Output {
        self.hull_cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("running hull")
    }

    /// `hull args...` with this daemon's address and a private DOCKER_CONFIG.
    fn hull_cmd(&self, args: &[&str]) -> Command {
        let cfg = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&cfg);
        let mut c = Command::new(hull_bin());
        c.args(args)
            .env("DOCKER_CONFIG", &cfg)
            .env("HULL_HOST", format!("unix://{}", self.socket.display()))
            .env_remove("DOCKER_HOST");
        c
    }

    /// Runs hull, asserts success, returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.hull(args);
        assert!(
            out.status.success(),
            "hull {args:?} failed ({}): {}\n--- hulld log ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn code(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.hull(args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Kills the shims and containers this daemon's records name, unmounts what is left.
    fn kill_leftovers(&self) {
        let data = self.dir.path().join("data/containers");
        for e in std::fs::read_dir(&data).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read(e.path().join("container.json")) else {
                continue;
            };
            let Ok(rec) = serde_json::from_slice::<serde_json::Value>(&text) else {
                continue;
            };
            for key in ["pid", "shim_pid"] {
                let pid = rec["state"][key].as_i64().unwrap_or(0);
                if pid > 0 {
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let me = self.dir.path().display().to_string();
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&me))
            .collect();
        for m in mounts.iter().rev() {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
    }
}

impl Drop for Hulld {
    fn drop(&mut self) {
        // Whatever a test left (it may have failed half way): removed through the daemon.
        let ids = self.hull(&["ps", "-aq"]);
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            let _ = self.hull(&args);
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill_leftovers();
    }
}

/// The busybox image of scripts/mk-busybox-image.sh.
fn busybox_tar(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-image.sh");
    let st = Command::new("bash")
        .arg(script)
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "scripts/mk-busybox-image.sh failed");
    out
}

/// The header cells of a table (split on runs of 2+ spaces, as docker's columns are).
fn header(table: &str) -> Vec<String> {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn hull_cli_drives_hulld() {
    if !preflight() {
        return;
    }
    let d = Hulld::start();
    let tar = busybox_tar(d.dir.path());

    // version: the client's and the server's.
    let v = d.ok(&["version"]);
    assert!(
        v.contains("Client: hull") && v.contains("Server: hull"),
        "{v}"
    );
    assert!(v.contains("API version:      1.43"), "{v}");
    assert_eq!(
        d.ok(&["version", "--format", "{{.Server.ApiVersion}}"])
            .trim(),
        "1.43"
    );

    // load (not a terminal: docker's quiet output) and the images table.
    let out = d.ok(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    // On a terminal (util-linux `script` gives it a pty): a progress bar per layer.
    let out = Command::new("script")
        .args(["-qec"])
        .arg(format!("{} load -i {}", hull_bin(), tar.to_str().unwrap()))
        .arg("/dev/null")
        .env("HULL_HOST", format!("unix://{}", d.socket.display()))
        .stdin(Stdio::null())
        .output()
        .expect("running script (util-linux)");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{tty}");
    assert!(
        tty.contains("Loading layer") && tty.contains("[====="),
        "{tty}"
    );
    assert!(tty.contains("Loaded image: busybox:latest"), "{tty}");
    let images = d.ok(&["images"]);
    assert_eq!(
        header(&images),
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{images}"
    );
    let row = images.lines().nth(1).expect("a busybox row");
    assert!(row.starts_with("busybox      latest    "), "{images}");
    assert!(
        row.trim_end().ends_with("MB") || row.trim_end().ends_with("kB"),
        "{row}"
    );
    // events: the loads so far, in docker's line format, ended by --until.
    let ev = d.ok(&["events", "--since", "0", "--until", "0s"]);
    let line = ev.lines().find(|l| l.contains(" image load ")).expect(&ev);
    assert!(line.ends_with("(name=busybox:latest)"), "{ev}");
    assert!(line.starts_with("20") && line.contains('T'), "{ev}");
    assert_eq!(d.ok(&["image", "ls"]), images, "image ls is images");
    let ids = d.ok(&["images", "-q"]);
    assert_eq!(ids.trim().len(), 12, "{ids}");

    // run --rm: output and the container's exit code; 127 for a missing command; 125 for a
    // bad flag value and for a daemon refusal.
    let (code, out, _) = d.code(&["run", "--rm", "busybox", "sh", "-c", "echo out; exit 3"]);
    assert_eq!((code, out.as_str()), (3, "out\n"));
    let (code, _, err) = d.code(&["run", "--rm", "busybox", "/nonexistent"]);
    assert_eq!(code, 127, "{err}");
    let (code, _, err) = d.code(&["run", "--rm", "-m", "lots", "busybox", "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("lots"), "{err}");
    let (code, _, err) = d.code(&["run", "--rm", "--init", "busybox", "true"]);
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = d.code(&["run", "--rm", "no-such-image-here:v9", "true"]);
    assert_eq!(code, 125, "{err}");
    let (code, _, err) = d.code(&["frobnicate"]);
    assert_eq!(code, 125, "{err}");

    // SIGTERM to `hull run` goes to the container (docker's --sig-proxy).
    let mut child = Command::new(hull_bin())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done",
        ])
        .env("HULL_HOST", format!("unix://{}", d.socket.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let st = child.wait().unwrap();
    assert_eq!((st.code(), rest.as_str()), (Some(7), "got-term\n"));

    // run -d, ps, logs, exec, inspect, stop, rm.
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-e",
            "GREETING=hello",
            "busybox",
            "sh",
            "-c",
            "echo $GREETING; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = d.ok(&["ps"]);
    assert_eq!(
        header(&ps),
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ],
        "{ps}"
    );
    let row = ps.lines().find(|l| l.starts_with(&id[..12])).expect(&ps);
    assert!(
        row.contains("busybox") && row.contains("Up ") && row.ends_with("web"),
        "{ps}"
    );
    assert!(row.contains("\"sh -c echo $GREETIN…\""), "{row}");
    assert_eq!(d.ok(&["ps", "-q"]).trim(), &id[..12]);
    assert_eq!(d.ok(&["container", "ls", "-q"]).trim(), &id[..12]);
    assert_eq!(
        d.ok(&["ps", "--format", "{{.ID}} {{.Names}}"]).trim(),
        format!("{} web", &id[..12])
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if d.ok(&["logs", "web"]) == "hello\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "logs: {}",
            d.ok(&["logs", "web"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, out, err) = d.code(&[
        "exec",
        "-e",
        "X=in-exec",
        "-w",
        "/tmp",
        "web",
        "sh",
        "-c",
        "echo $X $(pwd); exit 4",
    ]);
    assert_eq!((code, out.as_str()), (4, "in-exec /tmp\n"), "{err}");
    let inspect: serde_json::Value = serde_json::from_str(&d.ok(&["inspect", "web"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.as_str());
    assert_eq!(inspect[0]["State"]["Running"], true);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "running"
    );
    let (code, _, err) = d.code(&["inspect", "nothing-by-this-name"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(d.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    let ps = d.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited ("), "{ps}");
    assert_eq!(d.ok(&["rm", "web"]).trim(), "web");
    assert!(d.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // create + start -a: the output and the container's exit code; kill -s + wait.
    let made = d.ok(&[
        "create",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo again; exit 5",
    ]);
    assert_eq!(made.trim().len(), 64, "{made}");
    let (code, out, err) = d.code(&["start", "-a", "once"]);
    assert_eq!((code, out.as_str()), (5, "again\n"), "{err}");
    d.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "1000"]);
    // cp both ways: into a directory with the source's name, else as the path named
    let local = d.dir.path().join("cp");
    std::fs::create_dir_all(local.join("tree/sub")).unwrap();
    std::fs::write(local.join("note"), "note\n").unwrap();
    std::fs::write(local.join("tree/sub/leaf"), "leaf\n").unwrap();
    let at = |p: &str| local.join(p).to_str().unwrap().to_string();
    d.ok(&["cp", &at("note"), "sleeper:/tmp/"]);
    d.ok(&["cp", &at("note"), "sleeper:/tmp/renamed"]);
    d.ok(&["cp", &at("tree"), "sleeper:/tmp/tree"]);
    let inside = d.ok(&[
        "exec",
        "sleeper",
        "cat",
        "/tmp/note",
        "/tmp/renamed",
        "/tmp/tree/sub/leaf",
    ]);
    assert_eq!(inside, "note\nnote\nleaf\n");
    d.ok(&["cp", "sleeper:/tmp/tree", &at("back")]);
    assert_eq!(
        std::fs::read_to_string(local.join("back/sub/leaf")).unwrap(),
        "leaf\n"
    );
    std::fs::create_dir(local.join("into")).unwrap();
    d.ok(&["cp", "sleeper:/tmp/renamed", &at("into")]);
    assert_eq!(
        std::fs::read_to_string(local.join("into/renamed")).unwrap(),
        "note\n"
    );
    let (code, _, err) = d.code(&["cp", "sleeper:/nonexistent", &at("x")]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Could not find the file /nonexistent"),
        "{err}"
    );
    assert_eq!(d.ok(&["kill", "-s", "KILL", "sleeper"]).trim(), "sleeper");
    assert_eq!(d.ok(&["wait", "sleeper"]).trim(), "137");
    assert_eq!(d.ok(&["rm", "once", "sleeper"]), "once\nsleeper\n");
    let (code, _, err) = d.code(&["rm", "web"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container"), "{err}");
}

/// `CA-ca.pem` and leaves `LEAF.pem`/`LEAF-key.pem` signed by it, each with extensions `ext`.
fn pki(dir: &Path, ca: &str, leaves: &[(&str, &str)]) {
    pki::ca(dir, ca);
    for (leaf, ext) in leaves {
        pki::leaf(dir, ca, leaf, ext);
    }
}

#[test]
fn hull_cli_over_mutual_tls() {
    if !preflight() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let p = certs.path();
    pki(
        p,
        "good",
        &[
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ],
    );
    pki(p, "other", &[("stranger", "extendedKeyUsage=clientAuth\n")]);
    let f = |n: &str| p.join(n).display().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = Hulld::start_with(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &f("good-ca.pem"),
        "--tlscert",
        &f("server.pem"),
        "--tlskey",
        &f("server-key.pem"),
    ]);
    let hull = |args: &[&str]| {
        Command::new(hull_bin())
            .args(args)
            .env_remove("HULL_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_TLS_VERIFY")
            .env("DOCKER_CERT_PATH", "/nonexistent")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let ok = hull(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &f("good-ca.pem"),
        "--tlscert",
        &f("client.pem"),
        "--tlskey",
        &f("client-key.pem"),
        "version",
        "--format",
        "{{.Server.ApiVersion}}",
    ]);
    assert!(
        ok.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&ok.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "1.43");
    // Another CA's client certificate, or none: refused by the daemon.
    let bad = hull(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &f("good-ca.pem"),
        "--tlscert",
        &f("stranger.pem"),
        "--tlskey",
        &f("stranger-key.pem"),
        "ps",
    ]);
    assert!(!bad.status.success(), "another CA's client was served");
    let none = hull(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        &f("good-ca.pem"),
        "ps",
    ]);
    assert!(
        !none.status.success(),
        "a client without a certificate was served"
    );
    // No --tlsverify: the CLI will not talk plain TCP.
    let plain = hull(&["-H", &tcp, "ps"]);
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("--tlsverify"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
}

/// A private Debian `docker-registry` on 127.0.0.1 with htpasswd users, stopped by its pid.
struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    host: String,
}

impl Registry {
    fn start(user: &str, password: &str) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let out = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .expect("running htpasswd");
        assert!(out.status.success());
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, out.stdout).unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: hull-test\n    path: {}\n",
                storage.display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let r = Registry {
            child,
            _dir: dir,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&r.host).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn hull_cli_push_and_pull_with_credentials() {
    if !preflight() {
        return;
    }
    if !Path::new("/usr/bin/docker-registry").exists() || !Path::new("/usr/bin/htpasswd").exists() {
        assert!(
            std::env::var("HULL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "docker-registry and htpasswd are needed (scripts/install-deps)"
        );
        eprintln!("SKIP: docker-registry or htpasswd missing");
        return;
    }
    let d = Hulld::start();
    let tar = busybox_tar(d.dir.path());
    d.ok(&["load", "-i", tar.to_str().unwrap()]);
    let reg = Registry::start("hull", "s3cret");
    let image = format!("{}/hull/bb:v1", reg.host);
    d.ok(&["tag", "busybox", &image]);
    // No credentials: the registry refuses the push.
    let (code, _, err) = d.code(&["push", &image]);
    assert_ne!(code, 0, "pushed without credentials");
    assert!(!err.is_empty());
    // docker login's entry in DOCKER_CONFIG: sent as X-Registry-Auth.
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("hull:s3cret");
    std::fs::write(
        d.dir.path().join("docker-config/config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host),
    )
    .unwrap();
    let out = d.ok(&["push", &image]);
    assert!(out.contains("v1: digest: sha256:"), "{out}");
    let out = d.ok(&["rmi", &image]);
    assert!(out.contains(&format!("Untagged: {image}")), "{out}");
    let out = d.ok(&["pull", &image]);
    assert!(out.trim_end().ends_with(&image), "{out}");
    assert!(d
        .ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .contains(&image));
    // run pulls what is missing.
    d.ok(&["rmi", &image]);
    let (code, out, err) = d.code(&["run", "--rm", &image, "echo", "pulled"]);
    assert_eq!((code, out.as_str()), (0, "pulled\n"), "{err}");
    assert!(err.contains("Unable to find image"), "{err}");
}

/// Runs `cmd` to its end, killed (and a failure) after `secs`; its stdout.
fn output_within(mut cmd: Command, secs: u64) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

/// Polls `f` until it is true (20 s at most; then a failure naming `what`).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `hull args...` on a pty driven by `steps` (hulld's tests/interactive/pty_drive.py);
/// the exit code and the driver's report.
fn on_pty(d: &Hulld, steps: serde_json::Value, args: &[&str]) -> (i32, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../hulld/tests/interactive/pty_drive.py"
    );
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(steps.to_string())
        .arg("--")
        .arg(hull_bin())
        .args(args)
        .env("HULL_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", d.dir.path().join("docker-config"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// The row of `table` whose cells include `cell`.
fn row_with<'a>(table: &'a str, cell: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split("  ").any(|c| c.trim() == cell))
        .unwrap_or_else(|| panic!("no row with {cell:?} in\n{table}"))
}

#[test]
fn hull_cli_ports_volumes_networks_terminals_and_images() {
    if !preflight() {
        return;
    }
    if !Path::new("/usr/bin/python3").exists() {
        assert!(
            std::env::var("HULL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "python3 is needed (scripts/install-deps)"
        );
        eprintln!("SKIP: python3 missing");
        return;
    }
    // Its own network namespace: bridges, veths and port rules never touch the host's.
    let d = Hulld::start_isolated();
    let tar = busybox_tar(d.dir.path());
    d.ok(&["load", "-i", tar.to_str().unwrap()]);

    // -p: reached from the daemon's namespace; ps's PORTS column; port.
    let web = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-p",
            "127.0.0.1:18080:80",
            "busybox",
            "sh",
            "-c",
            "echo served > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
        ])
        .trim()
        .to_string();
    eventually("httpd behind 127.0.0.1:18080", || {
        let o = d.in_ns(&[
            "/usr/bin/python3",
            "-c",
            "import urllib.request as u; print(u.urlopen('http://127.0.0.1:18080/', timeout=2).read().decode(), end='')",
        ]);
        String::from_utf8_lossy(&o.stdout) == "served\n"
    });
    let ps = d.ok(&["ps"]);
    let row = row_with(&ps, "web");
    assert!(row.contains("   127.0.0.1:18080->80/tcp   "), "{ps}");
    assert!(row.starts_with(&web[..12]), "{ps}");
    assert_eq!(d.ok(&["port", "web"]), "80/tcp -> 127.0.0.1:18080\n");
    assert_eq!(d.ok(&["port", "web", "80"]), "127.0.0.1:18080\n");
    let (code, _, err) = d.code(&["port", "web", "81/tcp"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("No public port '81/tcp'"), "{err}");

    // pause/unpause: ps's STATUS and info's counts; top; stats --no-stream.
    assert_eq!(d.ok(&["pause", "web"]), "web\n");
    let row = row_with(&d.ok(&["ps"]), "web").to_string();
    assert!(row.contains("Up ") && row.contains(" (Paused)"), "{row}");
    assert_eq!(
        d.ok(&["info", "-f", "{{.ContainersPaused}} {{.ContainersRunning}}"])
            .trim(),
        "1 0"
    );
    assert_eq!(d.ok(&["unpause", "web"]), "web\n");
    assert!(!d.ok(&["ps"]).contains("Paused"));
    let top = d.ok(&["top", "web"]);
    assert_eq!(
        header(&top),
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
        "{top}"
    );
    assert!(
        top.lines()
            .nth(1)
            .is_some_and(|l| l.ends_with("httpd -f -p 80 -h /tmp")),
        "{top}"
    );
    let stats = d.ok(&["stats", "--no-stream", "web"]);
    assert_eq!(
        header(&stats),
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{stats}"
    );
    let row = stats.lines().nth(1).expect(&stats);
    assert!(row.starts_with(&web[..12]), "{stats}");
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(cells.len(), 8, "{stats}");
    assert_eq!(cells[1], "web");
    assert!(
        cells[2].ends_with('%') && cells[3].contains(" / "),
        "{stats}"
    );
    assert_eq!(cells[7], "1", "one process: {stats}");
    let line = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "web",
    ]);
    assert_eq!(line, "web 1\n");

    // rename.
    d.ok(&["rename", "web", "site"]);
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "site\n");

    // run -i with piped stdin.
    let mut child = d
        .hull_cmd(&["run", "-i", "--rm", "busybox", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hi\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "hi\n")
    );

    // run -it on a pty: its size, a resize (SIGWINCH), the shell's exit code; exec -it.
    let (code, report) = on_pty(
        &d,
        serde_json::json!([
            ["expect", "# "],
            ["send", "stty size\r"],
            ["expect", "24 80"],
            ["resize_until", 30, 100, "stty size\r"],
            ["send", "exit 3\r"]
        ]),
        &["run", "-it", "--rm", "busybox", "sh"],
    );
    assert_eq!(code, 3, "{report}");
    let (code, report) = on_pty(
        &d,
        serde_json::json!([
            ["expect", "# "],
            ["send", "tty; stty size\r"],
            ["expect", "/dev/pts/"],
            ["expect", "24 80"],
            ["send", "exit 4\r"]
        ]),
        &["exec", "-it", "site", "sh"],
    );
    assert_eq!(code, 4, "{report}");

    // Volumes: create/ls/inspect, data kept across two runs, prune, rm (refused in use).
    assert_eq!(d.ok(&["volume", "create", "data"]), "data\n");
    let ls = d.ok(&["volume", "ls"]);
    assert_eq!(header(&ls), ["DRIVER", "VOLUME NAME"], "{ls}");
    assert!(ls.lines().any(|l| l == "local     data"), "{ls}");
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["volume", "inspect", "data"])).unwrap();
    assert_eq!(
        (v[0]["Name"].as_str(), v[0]["Driver"].as_str()),
        (Some("data"), Some("local"))
    );
    d.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/d",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /d/f",
    ]);
    assert_eq!(
        d.ok(&["run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f"]),
        "persisted\n"
    );
    let mp = v[0]["Mountpoint"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(Path::new(mp).join("f")).unwrap(),
        "persisted\n"
    );
    d.ok(&[
        "create", "--name", "keeper", "-v", "data:/d", "busybox", "true",
    ]);
    d.ok(&["volume", "create", "junk"]);
    let pruned = d.ok(&["volume", "prune", "-a", "-f"]);
    assert!(pruned.contains("Deleted Volumes:\njunk\n"), "{pruned}");
    assert!(
        !pruned.contains("data"),
        "a volume in use was pruned: {pruned}"
    );
    let (code, _, err) = d.code(&["volume", "rm", "data"]);
    assert_eq!(code, 1, "removed a volume in use: {err}");
    d.ok(&["rm", "keeper"]);
    assert_eq!(d.ok(&["volume", "rm", "data"]), "data\n");
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");

    // Networks: create/ls/inspect, DNS names on a user network, connect/disconnect, rm.
    let id = d.ok(&["network", "create", "--subnet", "10.89.0.0/24", "front"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    let ls = d.ok(&["network", "ls"]);
    assert_eq!(
        header(&ls),
        ["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
        "{ls}"
    );
    let row = row_with(&ls, "front");
    assert!(row.starts_with(&id[..12]) && row.contains("bridge"), "{ls}");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "front",
        "--ip",
        "10.89.0.50",
        "--network-alias",
        "alt",
        "--label",
        "role=peer",
        "busybox",
        "sh",
        "-c",
        "echo from-peer > /tmp/index.html; exec httpd -f -p 80 -h /tmp",
    ]);
    let fetch = |name: &str| {
        d.code(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "sh",
            "-c",
            &format!(
                "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://{name}/ && exit 0; sleep 0.3; done; exit 1"
            ),
        ])
    };
    let (code, out, err) = fetch("peer");
    assert_eq!((code, out.as_str()), (0, "from-peer\n"), "{err}");
    let (code, out, err) = fetch("alt");
    assert_eq!(
        (code, out.as_str()),
        (0, "from-peer\n"),
        "--network-alias: {err}"
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.front.IPAddress}}",
            "peer"
        ])
        .trim(),
        "10.89.0.50"
    );
    assert_eq!(
        d.ok(&[
            "ps",
            "--filter",
            "label=role=peer",
            "--format",
            "{{.Names}} {{.Labels}} {{.Networks}}"
        ]),
        "peer role=peer front\n"
    );
    assert_eq!(d.ok(&["network", "connect", "front", "site"]), "");
    let (code, out, err) = fetch("site");
    assert_eq!((code, out.as_str()), (0, "served\n"), "{err}");
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(n[0]["Name"], "front");
    assert_eq!(n[0]["Driver"], "bridge");
    assert_eq!(
        n[0]["Containers"].as_object().map(|m| m.len()),
        Some(2),
        "{n}"
    );
    d.ok(&["network", "disconnect", "front", "site"]);
    let n: serde_json::Value =
        serde_json::from_str(&d.ok(&["network", "inspect", "front"])).unwrap();
    assert_eq!(
        n[0]["Containers"].as_object().map(|m| m.len()),
        Some(1),
        "{n}"
    );
    let (code, _, err) = d.code(&["network", "rm", "front"]);
    assert_eq!(code, 1, "removed a network in use: {err}");
    d.ok(&["rm", "-f", "peer"]);
    assert_eq!(d.ok(&["network", "rm", "front"]), "front\n");
    assert!(!d.ok(&["network", "ls"]).contains("front"));
    let site_id = d
        .ok(&["inspect", "-f", "{{.Id}}", "site"])
        .trim()
        .to_string();
    let ev = d.ok(&[
        "events",
        "--filter",
        "network=front",
        "--since",
        "0",
        "--until",
        "0s",
    ]);
    let kinds: Vec<&str> = ev.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(
        (kinds.first(), kinds.last()),
        (Some(&"create"), Some(&"destroy")),
        "{ev}"
    );
    assert!(
        ev.lines()
            .all(|l| l.contains(" network ") && l.contains("name=front")),
        "{ev}"
    );
    for action in ["connect", "disconnect"] {
        assert!(
            ev.lines().any(|l| l.split(' ').nth(2) == Some(action)
                && l.contains(&format!("container={site_id}"))),
            "no {action} of site: {ev}"
        );
    }
    let ev = d.ok(&[
        "events",
        "--filter",
        "volume=data",
        "--since",
        "0",
        "--until",
        "0s",
    ]);
    let kinds: Vec<&str> = ev.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(
        (kinds.first(), kinds.last()),
        (Some(&"create"), Some(&"destroy")),
        "{ev}"
    );

    // --restart on-failure:2: two restarts, then it stays exited.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    eventually("flaky restarted twice and exited", || {
        d.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .trim()
            == "2 exited"
    });

    // logs -f ends when the container exits; events filtered by container, --since/--until.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "echo a; sleep 1; echo b",
    ]);
    let (code, out) = output_within(d.hull_cmd(&["logs", "-f", "talker"]), 20);
    assert_eq!((code, out.as_str()), (0, "a\nb\n"));
    let ev = d.ok(&[
        "events",
        "--filter",
        "container=talker",
        "--since",
        "0",
        "--until",
        "0s",
    ]);
    let kinds: Vec<&str> = ev.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert_eq!(kinds, ["create", "start", "die"], "{ev}");
    assert!(ev.lines().all(|l| l.contains("name=talker")), "{ev}");

    // diff, commit, export, import.
    d.ok(&["exec", "site", "sh", "-c", "echo committed > /made"]);
    assert!(d.ok(&["diff", "site"]).lines().any(|l| l == "A /made"));
    let img = d.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/made\"]",
        "site",
        "snap:v1",
    ]);
    assert!(
        img.starts_with("sha256:") && img.trim().len() == 71,
        "{img}"
    );
    assert_eq!(d.ok(&["run", "--rm", "snap:v1"]), "committed\n");
    let file = d.dir.path().join("site.tar");
    d.ok(&["export", "-o", file.to_str().unwrap(), "site"]);
    let img = d.ok(&["import", file.to_str().unwrap(), "flat:v1"]);
    assert!(img.starts_with("sha256:"), "{img}");
    assert_eq!(
        d.ok(&["run", "--rm", "flat:v1", "cat", "/made"]),
        "committed\n"
    );

    // info, system info, system df.
    let info = d.ok(&["system", "info"]);
    assert!(info.contains(" Containers: 3\n  Running: 1\n"), "{info}");
    let df = d.ok(&["system", "df"]);
    assert_eq!(
        header(&df),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{df}"
    );
    let row = row_with(&df, "Images");
    assert!(
        row.split("  ").any(|c| c.trim() == "3"),
        "busybox, snap, flat: {df}"
    );
}
