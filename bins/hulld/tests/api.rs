//! The API at the HTTP level (curl and raw requests): version negotiation, Docker's error
//! shape and codes, malformed requests, clients that go away mid-stream; the daemon keeps
//! serving through all of it. Also the daemon's own startup checks.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;

use common::{busybox_tar, hulld_bin, preflight, Hulld};

fn message(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message: {body}"))
        .to_string()
}

#[test]
fn errors_are_docker_json_and_the_daemon_keeps_serving() {
    if !preflight(&[]) {
        return;
    }
    let d = Hulld::start();
    // hull's user-namespace range exists once a daemon has started ("created if missing").
    for f in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        assert!(
            text.lines().any(|l| l.starts_with("hull:")),
            "{f} has no hull entry: {text:?}"
        );
    }
    let ping = d.raw("HEAD /_ping HTTP/1.0\r\n\r\n").unwrap();
    assert!(ping.to_lowercase().contains("api-version: 1.43"), "{ping}");
    let (code, body) = d.curl(&[], "/v1.41/version");
    assert_eq!(code, 200);
    assert!(body.contains("\"ApiVersion\":\"1.43\""), "{body}");

    let (code, body) = d.curl(&[], "/v1.41/no/such/endpoint");
    assert_eq!((code, message(&body).as_str()), (404, "page not found"));
    let (code, body) = d.curl(&[], "/v1.99/_ping");
    assert_eq!(code, 400);
    assert!(message(&body).contains("too new"), "{body}");
    let (code, body) = d.curl(&[], "/v1.12/_ping");
    assert_eq!(code, 400);
    assert!(message(&body).contains("too old"), "{body}");
    let (code, body) = d.curl(&[], "/images/json?filters=%7Bnot-json");
    assert_eq!(code, 400);
    assert!(message(&body).contains("filters"), "{body}");
    let (code, body) = d.curl(
        &[],
        "/images/json?filters=%7B%22since%22%3A%5B%22x%22%5D%7D",
    );
    assert_eq!(code, 400);
    assert!(message(&body).contains("invalid filter 'since'"), "{body}");
    let (code, body) = d.curl(&[], "/images/%zz/json");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl(&[], "/images/nosuch/json");
    assert_eq!(
        (code, message(&body).as_str()),
        (404, "No such image: nosuch")
    );
    let (code, body) = d.curl(&["-X", "POST"], "/images/create");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/images/create?fromImage=x/UPPER");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/images/create?fromImage=x&platform=nope");
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/images/busybox/tag?repo=x");
    assert_eq!(code, 404, "{body}");
    let (code, body) = d.curl(
        &["-X", "POST", "-H", "X-Registry-Auth: !!!"],
        "/images/x/push",
    );
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("X-Registry-Auth"), "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/containers/create");
    assert_eq!(code, 400, "an empty body is not a create request: {body}");
    let (code, _) = d.curl(&[], "/containers/abc/json");
    assert_eq!(code, 404);

    // A load of garbage fails in the stream, in Docker's errorDetail shape.
    let (code, body) = d.curl(&["-X", "POST", "--data-binary", "garbage"], "/images/load");
    assert_eq!(code, 200);
    assert!(body.contains("\"errorDetail\""), "{body}");

    // Malformed HTTP: an error or a closed connection, never a dead daemon.
    for junk in [
        "GARBAGE\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "\0\0\0\0\r\n\r\n",
    ] {
        let _ = d.raw(junk);
    }
    // A client that sends half a request and goes away.
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"POST /images/load HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab")
        .unwrap();
    drop(s);

    // A client that leaves mid-save.
    let tar = busybox_tar().to_str().unwrap();
    d.ok("/usr/bin/docker", &["load", "-i", tar]);
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(b"GET /images/busybox/get HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("200 OK"));
    drop(s);

    let (code, body) = d.curl(&[], "/_ping");
    assert_eq!((code, body.as_str()), (200, "OK"));
    let (code, body) = d.curl(&[], "/images/json");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v[0]["RepoTags"][0], "busybox:latest");
    assert_eq!(v[0]["SharedSize"], -1);
    assert_eq!(v[0]["Containers"], -1);
}

#[test]
fn startup_checks() {
    if !preflight(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        // --bridge none: should a check pass by mistake, no bridge lands on the host
        let out = Command::new(hulld_bin())
            .args(["--bridge", "none"])
            .args(args)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "hulld {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["-H", "tcp://127.0.0.1:2375"]);
    assert!(e.contains("mutual TLS"), "{e}");
    let e = run(&["-H", "unix:///tmp/hull-world-writable.sock"]);
    assert!(e.contains("writable by other users"), "{e}");

    // A second daemon on a live socket refuses to start; the first keeps serving.
    let d = Hulld::start();
    let e = run(&["-H", &d.host()]);
    assert!(e.contains("another daemon is listening"), "{e}");
    let (code, _) = d.curl(&[], "/_ping");
    assert_eq!(code, 200);

    // Socket: 0600 without the group (no group "hull" here) or 0660 with it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert!(mode == 0o600 || mode == 0o660, "{mode:o}");
    // With a group that exists: 0660 and that group.
    use std::os::unix::fs::MetadataExt;
    let g = Hulld::start_with(&["-G", "root"]);
    let meta = std::fs::metadata(&g.socket).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.gid()), (0o660, 0));

    // Stopping removes the socket.
    let mut d = d;
    assert!(d.stop(), "hulld exits 0 on SIGTERM");
    assert!(!d.socket.exists());
}

#[test]
fn concurrent_clients() {
    if !preflight(&[]) {
        return;
    }
    let d = Hulld::start();
    let tar = busybox_tar().to_str().unwrap();
    std::thread::scope(|s| {
        for i in 0..4 {
            let d = &d;
            s.spawn(move || {
                d.ok("/usr/bin/docker", &["load", "-i", tar]);
                d.ok("/usr/bin/docker", &["tag", "busybox", &format!("c/bb:{i}")]);
                for _ in 0..5 {
                    d.ok("/usr/bin/docker", &["images"]);
                    let (code, _) = d.curl(&[], "/info");
                    assert_eq!(code, 200);
                }
                let out = d.dir.path().join(format!("save-{i}.tar"));
                let out = out.to_str().unwrap();
                d.ok(
                    "/usr/bin/docker",
                    &["save", "-o", out, &format!("c/bb:{i}")],
                );
            });
        }
    });
    let list = d.ok(
        "/usr/bin/docker",
        &["images", "--format", "{{.Repository}}:{{.Tag}}"],
    );
    for i in 0..4 {
        assert!(list.contains(&format!("c/bb:{i}")), "{list}");
    }
}
