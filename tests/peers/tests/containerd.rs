//! containerd (Debian's, as a private child) runs a busybox container through the
//! OCI runtime under test: `ctr run --runc-binary $HULL_RUNTIME`.
//!
//! Needs root; skips when containerd/ctr are missing unless HULL_REQUIRE_PEERS=1.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hull_e2e_peers::{
    busybox_image, preflight, run_with_timeout, CgroupCleanup, Daemon, HostPathsCleanup, Sandbox,
};

const NS: &str = "hull-e2e";
const IMAGE: &str = "docker.io/library/busybox:latest";
const CMD_LIMIT: Duration = Duration::from_secs(60);

fn config_toml(dir: &Path) -> String {
    let d = dir.display();
    // No CRI (it wants CNI and networking); plugins that cannot load (btrfs,
    // zfs, devmapper, aufs) only log a warning.
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "info"

[metrics]
  address = ""
"#
    )
}

struct Ctr<'a> {
    bin: &'a Path,
    address: String,
}

impl Ctr<'_> {
    fn cmd(&self) -> Command {
        let mut c = Command::new(self.bin);
        c.arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(NS);
        c
    }
}

#[test]
fn ctr_run_busybox_through_runtime() {
    let Some(peers) = preflight("containerd", &["containerd", "ctr"]) else {
        return;
    };
    let (containerd, ctr_bin) = (&peers.bins[0], &peers.bins[1]);

    // Guards: dropped in reverse order (daemon, sandbox, cgroups, host paths).
    let _host = HostPathsCleanup::new(&[
        "/run/containerd",
        "/run/containerd/s",
        "/run/containerd/runc",
        "/run/containerd/fifo",
    ]);
    let cgroup = CgroupCleanup::new(&format!("hull/e2e-ctr-{}", std::process::id()));
    let sandbox = Sandbox::new("ctrd");
    let dir = sandbox.path().to_path_buf();
    std::fs::write(dir.join("config.toml"), config_toml(&dir)).unwrap();

    let mut daemon = Daemon::spawn(
        "containerd",
        Command::new(containerd)
            .arg("--config")
            .arg(dir.join("config.toml")),
        &dir.join("containerd.log"),
        Duration::from_secs(10),
    );
    let ctr = Ctr {
        bin: ctr_bin,
        address: dir.join("containerd.sock").display().to_string(),
    };
    daemon.wait_ready(Duration::from_secs(30), || {
        let mut c = ctr.cmd();
        c.arg("version");
        run_with_timeout(&mut c, Duration::from_secs(5)).success()
    });

    let image = busybox_image(&dir);
    let res = run_with_timeout(ctr.cmd().args(["images", "import"]).arg(&image), CMD_LIMIT);
    assert!(res.success(), "ctr import failed:\n{}", res.describe());

    let mut run = ctr.cmd();
    run.arg("run")
        .arg("--runc-binary")
        .arg(&peers.runtime)
        .arg("--runc-root")
        .arg(dir.join("runc-root"))
        .arg("--fifo-dir")
        .arg(dir.join("fifo"))
        .arg("--cgroup")
        .arg(cgroup.abs())
        .arg("--rm")
        .args([IMAGE, "t1", "sh", "-c", "echo hello-from-ctr; exit 3"]);
    let res = run_with_timeout(&mut run, CMD_LIMIT);
    eprintln!("{}", res.describe());

    // Whatever happened, take the container down before asserting.
    let _ = run_with_timeout(
        ctr.cmd()
            .args(["task", "kill", "--signal", "SIGKILL", "t1"]),
        Duration::from_secs(10),
    );
    let _ = run_with_timeout(
        ctr.cmd().args(["task", "rm", "--force", "t1"]),
        Duration::from_secs(10),
    );
    let _ = run_with_timeout(
        ctr.cmd().args(["containers", "rm", "t1"]),
        Duration::from_secs(10),
    );
    let context = || {
        format!(
            "{}\n--- containerd log\n{}",
            res.describe(),
            daemon.log_tail(40)
        )
    };
    assert!(
        res.stdout.lines().any(|l| l.trim() == "hello-from-ctr"),
        "container output missing:\n{}",
        context()
    );
    assert_eq!(res.code, Some(3), "exit code:\n{}", context());
    daemon.assert_running();
}
