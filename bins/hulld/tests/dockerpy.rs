//! docker-py (from PyPI, in scripts/install-deps' venv /opt/hull-venv) drives hulld: see
//! dockerpy.py.

mod common;

use std::path::Path;
use std::process::Command;

use common::{busybox_tar, preflight, Hulld, Registry};

/// The venv scripts/install-deps makes with `pip install docker==7.*`.
const PYTHON: &str = "/opt/hull-venv/bin/python3";

#[test]
fn docker_py_drives_images() {
    if !preflight(&["/usr/bin/docker-registry", "/usr/bin/htpasswd"]) {
        return;
    }
    let has_sdk = Command::new(PYTHON)
        .args(["-c", "import docker"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_sdk {
        let msg =
            "docker-py test needs /opt/hull-venv with docker-py from PyPI (scripts/install-deps)";
        assert!(
            std::env::var("HULL_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{msg}; HULL_REQUIRE_PEERS=1 makes this a failure"
        );
        eprintln!("SKIP {msg}");
        return;
    }
    let reg = Registry::start(&[]);
    let d = Hulld::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerpy.py");
    let out = Command::new(PYTHON)
        .arg(script)
        .arg(busybox_tar())
        .arg(&reg.host)
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.docker_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dockerpy.py failed:\n{}\n{}\n--- hulld log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
}
