//! docker push and pull through hulld against a private Debian `docker-registry` on
//! 127.0.0.1, anonymous and with credentials (docker login through hulld's /auth, then
//! X-Registry-Auth from the CLI's config.json).

mod common;

use common::{busybox_tar, docker_clis, preflight, write_docker_config, Hulld, Registry};

#[test]
fn push_and_pull_through_the_cli() {
    if !preflight(&["/usr/bin/docker-registry", "/usr/bin/htpasswd"]) {
        return;
    }
    let reg = Registry::start(&[]);
    let d = Hulld::start();
    let tar = busybox_tar().to_str().unwrap();
    for (i, cli) in docker_clis().into_iter().enumerate() {
        let name = format!("{}/bb:v{i}", reg.host);
        d.ok(cli, &["load", "-i", tar]);
        d.ok(cli, &["tag", "busybox", &name]);
        let out = d.ok(cli, &["push", &name]);
        assert!(out.contains(&format!("v{i}: digest: sha256:")), "{out}");
        d.ok(cli, &["rmi", &name, "busybox"]);
        assert!(d.ok(cli, &["images", "-q"]).trim().is_empty());
        let out = d.ok(cli, &["pull", &name]);
        assert!(out.contains("Status: Downloaded newer image for"), "{out}");
        let out = d.ok(cli, &["pull", &name]);
        assert!(out.contains("Image is up to date"), "{out}");
        let digests = d.ok(cli, &["images", "--digests", "--format", "{{.Digest}}"]);
        let digest = digests.trim().to_string();
        assert!(digest.starts_with("sha256:"), "{digests}");
        let by_digest = format!("{}/bb@{digest}", reg.host);
        d.ok(cli, &["pull", &by_digest]);
        let e = d.fails(cli, &["pull", &format!("{}/nope:v1", reg.host)]);
        assert!(e.contains("manifest unknown"), "{e}");
        d.ok(cli, &["image", "prune", "-a", "-f"]);
    }
}

#[test]
fn push_with_credentials() {
    if !preflight(&["/usr/bin/docker-registry", "/usr/bin/htpasswd"]) {
        return;
    }
    let reg = Registry::start(&[("alice", "s3cret")]);
    let d = Hulld::start();
    let cli = "/usr/bin/docker";
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let name = format!("{}/private/bb:1", reg.host);
    d.ok(cli, &["tag", "busybox", &name]);
    let e = d.fails(cli, &["push", &name]);
    assert!(e.contains("401") || e.contains("unauthorized"), "{e}");
    // docker login checks the password through hulld, then stores it for the CLI.
    let e = d.fails(cli, &["login", "-u", "alice", "-p", "wrong", &reg.host]);
    assert!(e.contains("401") || e.contains("unauthorized"), "{e}");
    let out = d.ok(cli, &["login", "-u", "alice", "-p", "s3cret", &reg.host]);
    assert!(out.contains("Login Succeeded"), "{out}");
    let out = d.ok(cli, &["push", &name]);
    assert!(out.contains("1: digest: sha256:"), "{out}");
    d.ok(cli, &["rmi", &name]);
    d.ok(cli, &["pull", &name]);
    // Credentials written by hand (as another tool would) work too.
    std::fs::remove_file(d.docker_config.join("config.json")).unwrap();
    d.fails(cli, &["pull", &name]);
    write_docker_config(&d.docker_config, &reg.host, "alice", "s3cret");
    d.ok(cli, &["pull", &name]);
    // The daemon keeps no credentials after the request.
    let auth = d.dir.path().join("exec/auth");
    let left: Vec<_> = std::fs::read_dir(&auth).unwrap().collect();
    assert!(left.is_empty(), "credentials left in {}", auth.display());
}
