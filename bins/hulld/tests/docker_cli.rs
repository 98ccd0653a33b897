//! The real docker CLIs (Debian's 20.10 and a newer one when installed) against hulld: system
//! commands, load, images, inspect, history, tag, rmi, save | load, prune, and `docker run`
//! of an unknown image failing clearly (containers: `containers.rs`).

mod common;

use common::{busybox_tar, docker_clis, preflight, Hulld};

fn images_and_system(cli: &str) {
    let d = Hulld::start();
    let v = d.ok(cli, &["version"]);
    assert!(v.contains("Server: hull"), "{v}");
    assert!(v.contains("1.43 (minimum version 1.24)"), "{v}");
    let fmt = d.ok(cli, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(fmt.trim(), "1.43");
    let info = d.ok(cli, &["info"]);
    assert!(info.contains("hull-overlay"), "{info}");
    assert!(info.contains("Images: 0"), "{info}");
    let root = d.ok(cli, &["info", "--format", "{{.DockerRootDir}}"]);
    assert_eq!(root.trim(), d.dir.path().join("data").to_str().unwrap());

    let tar = busybox_tar().to_str().unwrap();
    let out = d.ok(cli, &["load", "-i", tar]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    let list = d.ok(cli, &["images"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("busybox ") && l.contains("latest")),
        "{list}"
    );
    let id = d.ok(cli, &["images", "-q", "--no-trunc", "busybox"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");

    let inspect: serde_json::Value =
        serde_json::from_str(&d.ok(cli, &["inspect", "busybox"])).unwrap();
    assert_eq!(inspect[0]["Id"], id.trim());
    assert_eq!(inspect[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(inspect[0]["Config"]["Cmd"][0], "sh");
    let hist = d.ok(cli, &["history", "--no-trunc", "busybox"]);
    assert!(hist.contains(id.trim()), "{hist}");

    d.ok(cli, &["tag", "busybox", "team/bb:1"]);
    let list = d.ok(cli, &["images", "team/bb"]);
    assert!(list.contains("team/bb") && list.contains(" 1 "), "{list}");
    assert_eq!(
        d.ok(cli, &["info", "--format", "{{.Images}}"]).trim(),
        "1",
        "one image, two names"
    );

    // save | load round trip, through a file and through a pipe.
    let saved = d.dir.path().join("saved.tar");
    d.ok(
        cli,
        &[
            "save",
            "-o",
            saved.to_str().unwrap(),
            "busybox",
            "team/bb:1",
        ],
    );
    let rmi = d.ok(cli, &["rmi", "team/bb:1"]);
    assert!(rmi.contains("Untagged: team/bb:1"), "{rmi}");
    let rmi = d.ok(cli, &["rmi", "busybox"]);
    assert!(rmi.contains("Deleted: sha256:"), "{rmi}");
    assert!(d.ok(cli, &["images", "-q"]).trim().is_empty());
    let out = d.ok(cli, &["load", "-i", saved.to_str().unwrap()]);
    assert!(
        out.contains("team/bb:1") && out.contains("busybox:latest"),
        "{out}"
    );
    let id2 = d.ok(cli, &["images", "-q", "--no-trunc", "busybox"]);
    assert_eq!(id.trim(), id2.trim(), "same image ID after save and load");
    let piped = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{cli} save busybox | {cli} load"))
        .env("DOCKER_HOST", d.host())
        .env("DOCKER_CONFIG", &d.docker_config)
        .output()
        .unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(String::from_utf8_lossy(&piped.stdout).contains("Loaded image: busybox:latest"));

    // Errors are Docker's.
    let e = d.fails(cli, &["rmi", "nosuch"]);
    assert!(e.to_lowercase().contains("no such image: nosuch"), "{e}");
    let e = d.fails(cli, &["inspect", "nosuch"]);
    assert!(e.contains("No such object") || e.contains("nosuch"), "{e}");
    let e = d.fails(cli, &["tag", "busybox", "Bad:Name"]);
    assert!(
        e.contains("invalid reference format") || e.contains("invalid"),
        "{e}"
    );
    let e = d.fails(cli, &["run", "--rm", "--pull", "never", "nosuch", "true"]);
    assert!(e.contains("No such image: nosuch"), "{e}");
    let ps = d.ok(cli, &["ps", "-a"]);
    assert!(ps.starts_with("CONTAINER ID"), "{ps}");

    // docker import: a rootfs tarball (busybox's layer) with --change and --message.
    let layer = d.dir.path().join("rootfs.tar");
    let st = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -xOf {tar} --wildcards '*/layer.tar' > {}",
            layer.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let layer = layer.to_str().unwrap();
    let args = [
        "import",
        "-c",
        "CMD [\"sh\"]",
        "-m",
        "from a test",
        layer,
        "imported:1",
    ];
    let id = d.ok(cli, &args);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let cmd = d.ok(
        cli,
        &["inspect", "-f", "{{json .Config.Cmd}}", "imported:1"],
    );
    assert_eq!(cmd.trim(), r#"["sh"]"#);
    let hist = d.ok(cli, &["history", "--format", "{{.Comment}}", "imported:1"]);
    assert!(hist.contains("from a test"), "{hist}");

    let pruned = d.ok(cli, &["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("deleted: sha256:"), "{pruned}");
    assert!(d.ok(cli, &["images", "-q"]).trim().is_empty());
}

#[test]
fn docker_clis_drive_images_and_system() {
    if !preflight(&[]) {
        return;
    }
    for cli in docker_clis() {
        images_and_system(cli);
    }
}
