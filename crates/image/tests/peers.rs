//! Archives made and read by the peers: the busybox `docker save` archive of
//! scripts/mk-busybox-image.sh, skopeo's OCI archives, and `docker load` (Debian's
//! dockerd, private, in a network namespace) of what hull saves.
//!
//! Needs root (the busybox rootfs keeps root ownership; dockerd). A missing peer tool is a
//! printed skip, or a failure with HULL_REQUIRE_PEERS=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hull_e2e_peers::preflight::find_bin;
use hull_e2e_peers::{
    busybox_image, run_with_timeout, CgroupCleanup, Daemon, HostPathsCleanup, Sandbox,
};
use hull_image::archive::{self, LoadOptions};
use hull_image::progress::NoProgress;
use hull_image::ImageStore;

const LIMIT: Duration = Duration::from_secs(120);

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The tools, or None after printing why the test is skipped.
fn need(test: &str, tools: &[&str]) -> Option<Vec<PathBuf>> {
    if !is_root() {
        eprintln!("SKIP {test}: needs root");
        return None;
    }
    let found: Vec<Option<PathBuf>> = tools.iter().map(|t| find_bin(t)).collect();
    let missing: Vec<&str> = tools
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(t, _)| *t)
        .collect();
    if missing.is_empty() {
        return Some(found.into_iter().flatten().collect());
    }
    let msg = format!(
        "{test}: missing {} (scripts/install-deps installs them)",
        missing.join(", ")
    );
    if std::env::var("HULL_REQUIRE_PEERS").as_deref() == Ok("1") {
        panic!("{msg}; HULL_REQUIRE_PEERS=1 makes this a failure");
    }
    eprintln!("SKIP {msg}");
    None
}

fn config_digest_of(archive: &Path) -> String {
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let v: serde_json::Value = serde_json::from_reader(&mut e).unwrap();
            let c = v[0]["Config"].as_str().unwrap();
            let hex = c
                .trim_start_matches("blobs/sha256/")
                .trim_end_matches(".json");
            return format!("sha256:{hex}");
        }
    }
    panic!("no manifest.json in {}", archive.display());
}

#[test]
fn busybox_docker_save_archive_and_its_skopeo_oci_archive_load() {
    let Some(_) = need("busybox archives", &["busybox"]) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let bb = busybox_image(t.path());
    let s = ImageStore::open(&t.path().join("store")).unwrap();
    let recs = archive::load_file(&s, &bb, &LoadOptions::default(), &NoProgress).unwrap();
    assert_eq!(recs[0].id.to_string(), config_digest_of(&bb));
    assert_eq!(recs[0].repo_tags, vec!["busybox:latest"]);
    let diff_ids = recs[0].diff_ids.clone();

    let Some(tools) = need("skopeo OCI archive", &["skopeo"]) else {
        return;
    };
    let oci = t.path().join("bb-oci.tar");
    let res = run_with_timeout(
        Command::new(&tools[0])
            .args(["--insecure-policy", "copy"])
            .arg(format!("docker-archive:{}", bb.display()))
            .arg(format!("oci-archive:{}:busybox:oci", oci.display())),
        LIMIT,
    );
    assert!(res.success(), "skopeo copy failed:\n{}", res.describe());
    let s2 = ImageStore::open(&t.path().join("store2")).unwrap();
    let recs = archive::load_file(&s2, &oci, &LoadOptions::default(), &NoProgress).unwrap();
    // skopeo re-serialises the config (so a new ID); the layers are the same
    assert_eq!(recs[0].diff_ids, diff_ids, "same layers through skopeo");
    assert_eq!(recs[0].repo_tags, vec!["busybox:oci"]);

    // What hull saves is a docker-archive skopeo reads, with the same config.
    let saved = t.path().join("saved.tar");
    archive::save(
        &s2,
        &["busybox:oci"],
        std::fs::File::create(&saved).unwrap(),
    )
    .unwrap();
    let res = run_with_timeout(
        Command::new(&tools[0])
            .arg("inspect")
            .arg("--config")
            .arg(format!("docker-archive:{}", saved.display())),
        LIMIT,
    );
    assert!(res.success(), "skopeo inspect failed:\n{}", res.describe());
    let cfg: serde_json::Value = serde_json::from_str(&res.stdout).unwrap();
    assert_eq!(
        cfg["rootfs"]["diff_ids"][0].as_str(),
        Some(recs[0].diff_ids[0].to_string().as_str())
    );
    // a full copy reads every blob through the docker-archive reader podman load uses too
    let res = run_with_timeout(
        Command::new(&tools[0])
            .args(["--insecure-policy", "copy"])
            .arg(format!("docker-archive:{}", saved.display()))
            .arg(format!("oci:{}:copied", t.path().join("copied").display())),
        LIMIT,
    );
    assert!(
        res.success(),
        "skopeo copy of hull's save failed:\n{}",
        res.describe()
    );
}

#[test]
fn umoci_layout_loads() {
    let Some(tools) = need("umoci OCI layout", &["busybox", "skopeo", "umoci"]) else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let bb = busybox_image(t.path());
    let layout = t.path().join("layout");
    let res = run_with_timeout(
        Command::new(&tools[1])
            .args(["--insecure-policy", "copy"])
            .arg(format!("docker-archive:{}", bb.display()))
            .arg(format!("oci:{}:base", layout.display())),
        LIMIT,
    );
    assert!(res.success(), "{}", res.describe());
    // umoci re-tags and rewrites the index (umoci's own index.json)
    let res = run_with_timeout(
        Command::new(&tools[2])
            .args(["tag", "--image"])
            .arg(format!("{}:base", layout.display()))
            .arg("umoci-tag"),
        LIMIT,
    );
    assert!(res.success(), "{}", res.describe());
    let ar = t.path().join("umoci.tar");
    let res = run_with_timeout(
        Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&ar)
            .arg("."),
        LIMIT,
    );
    assert!(res.success(), "{}", res.describe());
    let s = ImageStore::open(&t.path().join("store")).unwrap();
    let recs = archive::load_file(&s, &ar, &LoadOptions::default(), &NoProgress).unwrap();
    assert_eq!(recs.len(), 2, "both index entries");
    assert_eq!(recs[0].id, recs[1].id);
    assert_eq!(recs[0].diff_ids.len(), 1);
    let names: Vec<String> = s
        .list()
        .unwrap()
        .into_iter()
        .flat_map(|r| r.repo_tags)
        .collect();
    assert!(
        names.is_empty(),
        "umoci's bare ref names (base, umoci-tag) name no repository: {names:?}"
    );
}

/// Debian's CLI matches Debian's dockerd.
fn docker_cli() -> Option<PathBuf> {
    let debian = Path::new("/usr/bin/docker");
    if debian.is_file() {
        return Some(debian.to_path_buf());
    }
    find_bin("docker")
}

#[test]
fn docker_load_accepts_what_hull_saves() {
    let Some(tools) = need("docker load", &["busybox", "dockerd", "unshare"]) else {
        return;
    };
    let Some(docker_bin) = docker_cli() else {
        need("docker load", &["docker"]);
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let bb = busybox_image(t.path());
    let s = ImageStore::open(&t.path().join("store")).unwrap();
    let rec = archive::load_file(&s, &bb, &LoadOptions::default(), &NoProgress)
        .unwrap()
        .remove(0);
    s.tag("busybox", "hull/saved:v1").unwrap();
    // the busybox layer again, as gzip and zstd layers of imported images
    let layer = std::fs::read(s.content.blob_path(&rec.layers[0])).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &layer).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&layer[..], 3).unwrap();
    let mut compressed = Vec::new();
    for (name, bytes) in [("hull/gz:1", gz), ("hull/zst:1", zst)] {
        let opts = archive::ImportOptions {
            changes: vec!["CMD [\"sh\"]".into()],
            ..Default::default()
        };
        let r = hull_image::Reference::parse(name).unwrap();
        let imported = archive::import(&s, &bytes[..], name, Some(&r), &opts, &NoProgress).unwrap();
        compressed.push((name, imported.id));
    }
    let saved = t.path().join("saved.tar");
    archive::save(
        &s,
        &["busybox:latest", "hull/saved:v1", "hull/gz:1", "hull/zst:1"],
        std::fs::File::create(&saved).unwrap(),
    )
    .unwrap();

    let _host = HostPathsCleanup::new(&[
        "/etc/docker",
        "/etc/docker/key.json",
        "/run/docker",
        "/run/docker/plugins",
        "/run/containerd",
        "/run/containerd/s",
    ]);
    let cgroup = CgroupCleanup::new(&format!("hull/e2e-image-docker-{}", std::process::id()));
    let sandbox = Sandbox::new("image-dockerd");
    let dir = sandbox.path().to_path_buf();
    std::fs::write(dir.join("daemon.json"), "{}\n").unwrap();
    let sock = dir.join("docker.sock");
    let mut cmd = Command::new(&tools[2]);
    cmd.arg("--net")
        .arg("--")
        .arg(&tools[1])
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
        .args([
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
        ])
        .arg("--storage-driver=overlay2")
        .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
        .arg(format!("--cgroup-parent={}", cgroup.abs()));
    let mut daemon = Daemon::spawn(
        "dockerd",
        &mut cmd,
        &dir.join("dockerd.log"),
        Duration::from_secs(20),
    );
    let docker = |args: &[&str]| {
        let mut c = Command::new(&docker_bin);
        c.env("DOCKER_CONFIG", dir.join("cli"))
            .env_remove("DOCKER_CONTEXT")
            .arg("--host")
            .arg(format!("unix://{}", sock.display()))
            .args(args);
        c
    };
    daemon.wait_ready(Duration::from_secs(60), || {
        sock.exists()
            && run_with_timeout(&mut docker(&["version"]), Duration::from_secs(5)).success()
    });
    let res = run_with_timeout(
        &mut docker(&["load", "--input", saved.to_str().unwrap()]),
        LIMIT,
    );
    assert!(
        res.success(),
        "docker load refused hull's archive:\n{}\n{}",
        res.describe(),
        daemon.log_tail(30)
    );
    assert!(
        res.stdout.contains("Loaded image: busybox:latest")
            && res.stdout.contains("Loaded image: hull/saved:v1"),
        "{}",
        res.describe()
    );
    let res = run_with_timeout(
        &mut docker(&["image", "inspect", "--format", "{{.Id}}", "hull/saved:v1"]),
        LIMIT,
    );
    assert!(res.success(), "{}", res.describe());
    assert_eq!(
        res.stdout.trim(),
        rec.id.to_string(),
        "docker sees the same image ID"
    );
    for (name, id) in compressed {
        let res = run_with_timeout(
            &mut docker(&["image", "inspect", "--format", "{{.Id}}", name]),
            LIMIT,
        );
        assert!(res.success(), "{name}: {}", res.describe());
        assert_eq!(
            res.stdout.trim(),
            id.to_string(),
            "{name}: same image ID in docker"
        );
    }
    daemon.stop();
}

/// `podman load` (containers/storage, private root) accepts what hull saves, with the same ID.
#[test]
fn podman_load_accepts_what_hull_saves() {
    let Some(tools) = need("podman load", &["busybox", "podman"]) else {
        return;
    };
    // podman 4 makes /run/containers/networks whatever it is told; remove it if it is new.
    struct RemoveIfNew(&'static str, bool);
    impl Drop for RemoveIfNew {
        fn drop(&mut self) {
            if self.1 {
                let _ = std::fs::remove_dir_all(self.0);
            }
        }
    }
    let _run_dir = RemoveIfNew("/run/containers", !Path::new("/run/containers").exists());
    let t = tempfile::tempdir().unwrap();
    let bb = busybox_image(t.path());
    let s = ImageStore::open(&t.path().join("store")).unwrap();
    let recs = archive::load_file(&s, &bb, &LoadOptions::default(), &NoProgress).unwrap();
    let saved = t.path().join("hull-save.tar");
    archive::save(&s, &["busybox"], std::fs::File::create(&saved).unwrap()).unwrap();
    let podman = |args: &[&str]| {
        let mut c = Command::new(&tools[1]);
        c.arg("--root")
            .arg(t.path().join("podman-root"))
            .arg("--runroot")
            .arg(t.path().join("podman-run"))
            .arg("--tmpdir")
            .arg(t.path().join("podman-tmp"))
            .arg("--network-config-dir")
            .arg(t.path().join("podman-net"))
            .args([
                "--storage-driver",
                "vfs",
                "--events-backend",
                "none",
                "--cgroup-manager",
                "cgroupfs",
            ])
            .args(args);
        run_with_timeout(&mut c, LIMIT)
    };
    let res = podman(&["load", "-i", saved.to_str().unwrap()]);
    assert!(res.success(), "podman load failed:\n{}", res.describe());
    let res = podman(&[
        "images",
        "--no-trunc",
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    assert!(res.success(), "podman images failed:\n{}", res.describe());
    let listed = res.describe();
    assert!(
        listed.contains(recs[0].id.hex()) && listed.contains("docker.io/library/busybox:latest"),
        "podman does not show hull's image {} as busybox:latest:\n{listed}",
        recs[0].id
    );
}
