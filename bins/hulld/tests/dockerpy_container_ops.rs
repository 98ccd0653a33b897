//! docker-py (Debian's python3-docker) drives the container operations of hulld: see
//! dockerpy_container_ops.py.

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_tar, preflight, Hulld};

#[test]
fn docker_py_container_ops() {
    if !preflight(&[]) {
        return;
    }
    let has_sdk = Command::new("/usr/bin/python3")
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        let msg =
            "docker-py test needs /usr/bin/python3 with python3-docker (scripts/install-deps)";
        assert!(
            std::env::var("HULL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{msg}; HULL_REQUIRE_PEERS=1 makes this a failure"
        );
        eprintln!("SKIP {msg}");
        return;
    }
    let d = Hulld::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerpy_container_ops.py");
    let out = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(busybox_tar())
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.docker_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dockerpy_container_ops.py failed:\n{}\n{}\n--- hulld log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
}
