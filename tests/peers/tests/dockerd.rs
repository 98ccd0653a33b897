//! dockerd (Debian's, as a private child in a network namespace made for the
//! test) runs a busybox container through the OCI runtime under test, registered
//! as `--add-runtime hull=$HULL_RUNTIME`.
//!
//! Needs root; skips when dockerd/docker are missing unless HULL_REQUIRE_PEERS=1.
//! dockerd starts its own containerd (pid in <exec-root>/containerd/containerd.pid);
//! stopping dockerd stops it, and the sandbox kills whatever still names our
//! private directories (containerd, shims).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hull_e2e_peers::preflight::find_bin;
use hull_e2e_peers::{
    busybox_image, preflight, run_with_timeout, CgroupCleanup, Daemon, HostPathsCleanup, Sandbox,
};

const CMD_LIMIT: Duration = Duration::from_secs(60);

/// Debian's CLI (/usr/bin/docker) matches Debian's dockerd; prefer it to another
/// docker earlier in PATH. `HULL_DOCKER_CLI` overrides.
fn docker_cli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HULL_DOCKER_CLI").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    find_bin("docker")
}

struct Docker {
    bin: PathBuf,
    host: String,
    config: PathBuf,
}

impl Docker {
    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("DOCKER_CONFIG", &self.config)
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .arg("--host")
            .arg(&self.host);
        c
    }
}

#[test]
fn docker_run_busybox_with_runtime_hull() {
    let Some(peers) = preflight("dockerd", &["dockerd", "docker", "unshare"]) else {
        return;
    };
    let (dockerd, unshare) = (&peers.bins[0], &peers.bins[2]);
    let docker_bin = docker_cli().expect("docker CLI found by preflight");
    let driver = std::env::var("HULL_DOCKER_STORAGE_DRIVER").unwrap_or_else(|_| "overlay2".into());

    // Guards: dropped in reverse order (daemon, sandbox, cgroups, host paths).
    let _host = HostPathsCleanup::new(&[
        "/etc/docker",
        "/etc/docker/key.json",
        "/run/docker",
        "/run/docker/plugins",
        "/run/containerd",
        "/run/containerd/s",
    ]);
    let cgroup = CgroupCleanup::new(&format!("hull/e2e-docker-{}", std::process::id()));
    let sandbox = Sandbox::new("dockerd");
    let dir = sandbox.path().to_path_buf();
    std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
    let sock = dir.join("docker.sock");

    // `unshare -n` execs dockerd in a fresh network namespace (only a down
    // loopback), so nothing dockerd does to networking reaches the host; the mount
    // namespace stays the host's, so /sys/fs/cgroup stays visible.
    let mut cmd = Command::new(unshare);
    cmd.arg("--net")
        .arg("--")
        .arg(dockerd)
        .arg("--config-file")
        .arg(dir.join("daemon.json"))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .arg("--host")
        .arg(format!("unix://{}", sock.display()))
        .args(["--bridge=none", "--iptables=false", "--ip6tables=false"])
        .args([
            "--ip-forward=false",
            "--ip-masq=false",
            "--userland-proxy=false",
        ])
        .arg(format!("--storage-driver={driver}"))
        .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
        .arg(format!("--cgroup-parent={}", cgroup.abs()))
        .arg(format!("--add-runtime=hull={}", peers.runtime.display()));
    let mut daemon = Daemon::spawn(
        "dockerd",
        &mut cmd,
        &dir.join("dockerd.log"),
        Duration::from_secs(20),
    );
    let docker = Docker {
        bin: docker_bin,
        host: format!("unix://{}", sock.display()),
        config: dir.join("cli"),
    };
    daemon.wait_ready(Duration::from_secs(60), || {
        sock.exists()
            && run_with_timeout(docker.cmd().arg("version"), Duration::from_secs(5)).success()
    });

    let image = busybox_image(&dir);
    let res = run_with_timeout(
        docker.cmd().arg("load").arg("--input").arg(&image),
        CMD_LIMIT,
    );
    assert!(res.success(), "docker load failed:\n{}", res.describe());

    let name = format!("hull-e2e-{}", std::process::id());
    let mut run = docker.cmd();
    run.args([
        "run",
        "--runtime",
        "hull",
        "--network",
        "none",
        "--rm",
        "--name",
        &name,
    ])
    .args(["busybox", "sh", "-c", "echo hello-from-docker; exit 5"]);
    let res = run_with_timeout(&mut run, CMD_LIMIT);
    eprintln!("{}", res.describe());
    let _ = run_with_timeout(
        docker.cmd().args(["rm", "--force", &name]),
        Duration::from_secs(20),
    );

    let context = || {
        format!(
            "{}\n--- dockerd log\n{}",
            res.describe(),
            daemon.log_tail(40)
        )
    };
    assert!(
        res.stdout.lines().any(|l| l.trim() == "hello-from-docker"),
        "container output missing:\n{}",
        context()
    );
    assert_eq!(res.code, Some(5), "exit code:\n{}", context());
    daemon.assert_running();

    // Stop dockerd now, then make sure the containerd it spawned went with it.
    let containerd_pid = std::fs::read_to_string(dir.join("exec/containerd/containerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    daemon.stop();
    if let Some(pid) = containerd_pid {
        let alive = Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
                .unwrap_or(false);
        // The sandbox kills it anyway; this only reports it.
        if alive {
            eprintln!("dockerd: its containerd (pid {pid}) outlived it; the sandbox kills it");
        }
    }
}
