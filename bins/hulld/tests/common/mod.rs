//! e2e helpers: a private hulld (temporary data root, exec root and socket, stopped by its
//! pid), the docker CLIs to drive it, a private Debian `docker-registry` on 127.0.0.1, and
//! the busybox image of `scripts/mk-busybox-image.sh`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether the e2e tests can run: root, busybox-static and Debian's docker CLI. A missing
/// one is a skip, or a failure with HULL_REQUIRE_PEERS=1 (CI).
pub fn preflight(extra: &[&str]) -> bool {
    let mut missing: Vec<String> = ["/usr/bin/docker", "/bin/busybox"]
        .iter()
        .chain(extra)
        .filter(|b| !Path::new(b).exists())
        .map(|b| b.to_string())
        .collect();
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        missing.push("root (scripts/mk-busybox-image.sh)".into());
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "hulld e2e tests need {} (scripts/install-deps)",
        missing.join(", ")
    );
    if std::env::var("HULL_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{msg}; HULL_REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIP {msg}");
    false
}

/// The docker CLIs present: Debian's 20.10 and, if installed, a newer one.
pub fn docker_clis() -> Vec<&'static str> {
    ["/usr/bin/docker", "/usr/local/bin/docker"]
        .into_iter()
        .filter(|p| Path::new(p).exists())
        .collect()
}

/// A running hulld with private state.
pub struct Hulld {
    child: Child,
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    /// DOCKER_CONFIG for the clients (no credentials unless a test writes some).
    pub docker_config: PathBuf,
    /// Runs in its own network namespace.
    pub isolated: bool,
    /// That namespace is pinned at this path (`start_isolated_pinned`), so that a restart
    /// finds it again; unmounted on drop.
    pub netns_file: Option<PathBuf>,
}

pub fn hulld_bin() -> &'static str {
    env!("CARGO_BIN_EXE_hulld")
}

impl Hulld {
    pub fn start() -> Hulld {
        Self::start_with(&[])
    }

    /// A hulld in a new network namespace (`unshare -n`): its bridge and veths stay
    /// there. For tests that run containers on the default network.
    pub fn start_isolated() -> Hulld {
        Self::start_in(&[], true)
    }

    /// [`Hulld::start_isolated`] with more hulld flags.
    pub fn start_isolated_with(extra: &[&str]) -> Hulld {
        Self::start_in(extra, true)
    }

    pub fn start_with(extra: &[&str]) -> Hulld {
        Self::start_in(extra, false)
    }

    /// A hulld in a network namespace of its own pinned at `<dir>/netns`, which
    /// [`Hulld::restart`] starts the new daemon in (its bridges, rules and containers'
    /// endpoints are still there).
    pub fn start_isolated_pinned() -> Hulld {
        Self::start_full(&[], true, true)
    }

    fn start_in(extra: &[&str], isolated: bool) -> Hulld {
        Self::start_full(extra, isolated, false)
    }

    fn start_full(extra: &[&str], isolated: bool, pinned: bool) -> Hulld {
        let dir = tempfile::tempdir().unwrap();
        // Containers' root users (unprivileged host uids) walk through it to their rootfs.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        )
        .unwrap();
        let socket = dir.path().join("run/hull.sock");
        let docker_config = dir.path().join("docker-config");
        std::fs::create_dir(&docker_config).unwrap();
        // Never the host's /etc/hull/daemon.json.
        std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
        let netns_file = pinned.then(|| {
            let f = dir.path().join("netns");
            std::fs::write(&f, "").unwrap();
            let st = Command::new("unshare")
                .arg(format!("--net={}", f.display()))
                .arg("true")
                .status()
                .unwrap();
            assert!(st.success(), "unshare --net={} failed", f.display());
            f
        });
        let child = Self::spawn_in(dir.path(), &socket, extra, isolated, netns_file.as_deref());
        let mut d = Hulld {
            child,
            dir,
            socket,
            docker_config,
            isolated,
            netns_file,
        };
        d.wait_ready();
        d
    }

    /// Stops this hulld and starts a new one on the same state (containers keep running).
    pub fn restart(&mut self) {
        assert!(self.stop(), "hulld did not stop cleanly: {}", self.log());
        assert!(
            !self.isolated || self.netns_file.is_some(),
            "a restart would leave the network namespace"
        );
        self.child = Self::spawn_in(
            self.dir.path(),
            &self.socket,
            &[],
            self.isolated,
            self.netns_file.as_deref(),
        );
        self.wait_ready();
    }

    /// Starts hulld again on the same state after [`Hulld::stop`].
    pub fn restart_stopped(&mut self) {
        assert!(!self.isolated, "the network namespace is gone");
        self.child = Self::spawn_in(self.dir.path(), &self.socket, &[], false, None);
        self.wait_ready();
    }

    /// SIGKILLs this hulld (it cleans up nothing) and starts a new one on the same state.
    pub fn kill9_and_restart(&mut self) {
        assert!(
            !self.isolated,
            "a restart would leave the network namespace"
        );
        self.child.kill().expect("SIGKILL to hulld");
        let _ = self.child.wait();
        self.child = Self::spawn_in(self.dir.path(), &self.socket, &[], false, None);
        self.wait_ready();
    }

    fn spawn_in(
        dir: &Path,
        socket: &Path,
        extra: &[&str],
        isolated: bool,
        netns_file: Option<&Path>,
    ) -> Child {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("hulld.log"))
            .unwrap();
        // Only a hulld in its own network namespace may make a bridge: the others run
        // with `--bridge none`, so that no test touches the host's links.
        let mut cmd = if let Some(f) = netns_file {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", f.display())).arg(hulld_bin());
            c
        } else if isolated {
            let mut c = Command::new("unshare");
            c.args(["-n", hulld_bin()]);
            c
        } else {
            let mut c = Command::new(hulld_bin());
            c.args(["--bridge", "none"]);
            c
        };
        cmd.arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--config-file")
            .arg(dir.join("daemon.json"))
            .args(["--log-level", "debug"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting hulld")
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("hulld exited ({st}): {}", self.log());
            }
            if self
                .raw("GET /_ping HTTP/1.0\r\n\r\n")
                .is_some_and(|r| r.contains("200 OK"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hulld did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hulld.log")).unwrap_or_default()
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs `cli args...` against this daemon.
    pub fn docker(&self, cli: &str, args: &[&str]) -> Output {
        self.docker_cmd(cli, args).output().expect("running docker")
    }

    pub fn docker_cmd(&self, cli: &str, args: &[&str]) -> Command {
        let mut c = Command::new(cli);
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .stdin(Stdio::null());
        c
    }

    /// Runs docker and asserts success; returns stdout.
    pub fn ok(&self, cli: &str, args: &[&str]) -> String {
        let out = self.docker(cli, args);
        assert!(
            out.status.success(),
            "{cli} {args:?} failed: {}\n--- hulld log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs docker and asserts failure; returns stderr.
    pub fn fails(&self, cli: &str, args: &[&str]) -> String {
        let out = self.docker(cli, args);
        assert!(
            !out.status.success(),
            "{cli} {args:?} should fail: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Sends raw bytes on a new connection; the response, or None if it could not connect.
    pub fn raw(&self, request: &str) -> Option<String> {
        let mut s = UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// `curl --unix-socket` to a path: (status, body).
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(&self.socket)
            .args(args)
            .arg(format!("http://hull{path}"))
            .output()
            .expect("running curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait (SIGKILL after 10 s). Returns the exit status's success.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Hulld {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
        self.kill_leftovers();
        if let Some(f) = &self.netns_file {
            let _ = Command::new("umount").arg(f).status();
        }
    }
}

impl Hulld {
    /// After a failed test: kills the shims and containers this daemon started (by the
    /// pids in its records) and unmounts their root filesystems.
    pub fn kill_leftovers(&self) {
        for rec in self.records() {
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
        for m in self.mounts() {
            let _ = Command::new("umount").args(["-l", &m]).status();
        }
    }

    /// The container records in this daemon's state store (and any `container.json` files
    /// of the older file store), as JSON.
    pub fn records(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let db = self.dir.path().join("data/hull.db");
        if db.exists() {
            if let Ok(store) = hull_api::containers::record::Store::open(&db) {
                for r in store.containers().unwrap_or_default() {
                    out.extend(serde_json::to_value(r).ok());
                }
            }
        }
        let data = self.dir.path().join("data/containers");
        for e in std::fs::read_dir(&data).into_iter().flatten().flatten() {
            let Ok(text) = std::fs::read(e.path().join("container.json")) else {
                continue;
            };
            out.extend(serde_json::from_slice::<serde_json::Value>(&text).ok());
        }
        out
    }

    /// The stored record of container `id` (panics when there is none).
    pub fn record(&self, id: &str) -> serde_json::Value {
        self.records()
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no stored record of container {id}"))
    }

    /// Mount points under this daemon's directory.
    pub fn mounts(&self) -> Vec<String> {
        let me = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&me))
            .collect()
    }
}

/// The busybox image archive, made once per test process.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let tmp = dir.join(format!("hulld-test-busybox-{}.tar", std::process::id()));
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/mk-busybox-image.sh");
        let st = Command::new("bash")
            .arg(script)
            .arg(&tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "scripts/mk-busybox-image.sh failed");
        let out = dir.join("hulld-test-busybox.tar");
        std::fs::rename(&tmp, &out).unwrap();
        out
    })
}

/// A private Debian `docker-registry` on 127.0.0.1 (free port, temporary storage, plain
/// HTTP, optional htpasswd users), stopped by its pid on drop.
pub struct Registry {
    child: Child,
    pub dir: tempfile::TempDir,
    pub host: String,
}

impl Registry {
    pub fn start(users: &[(&str, &str)]) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let mut auth = String::new();
        if !users.is_empty() {
            let htpasswd = dir.path().join("htpasswd");
            let mut lines = String::new();
            for (u, p) in users {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", u, p])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "htpasswd failed");
                lines.push_str(String::from_utf8(out.stdout).unwrap().trim());
                lines.push('\n');
            }
            std::fs::write(&htpasswd, lines).unwrap();
            auth = format!(
                "auth:\n  htpasswd:\n    realm: hull-test\n    path: {}\n",
                htpasswd.display()
            );
        }
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut r = Registry {
            child,
            dir,
            host: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&r.host).is_err() {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("docker-registry exited ({st})");
            }
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

/// Writes `dir/config.json` with credentials for `host`, as `docker login` would.
pub fn write_docker_config(dir: &Path, host: &str, user: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}
