//! hulld on tcp:// with mutual TLS: a CA, a server certificate for 127.0.0.1 and client
//! certificates made with openssl in a temporary directory; the docker CLI with the CA's
//! client certificate reaches the daemon, without one or with another CA's it does not, and
//! plain HTTP to the port gets no answer. TCP without --tlsverify is refused at start.

mod common;
mod pki;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{docker_clis, hulld_bin, preflight, Hulld};
use pki::{ca, leaf};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_needs_mutual_tls() {
    if !preflight(&["/usr/bin/openssl"]) {
        return;
    }
    let pki = tempfile::tempdir().unwrap();
    let p = pki.path();
    ca(p, "good");
    ca(p, "other");
    leaf(
        p,
        "good",
        "server",
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    );
    leaf(p, "good", "client", "extendedKeyUsage=clientAuth\n");
    leaf(p, "other", "stranger", "extendedKeyUsage=clientAuth\n");
    let f = |n: &str| p.join(n).display().to_string();

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let tcp = format!("tcp://{addr}");
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
    assert!(d.log().contains("mutual TLS"), "{}", d.log());

    let tls_docker = |cli: &str, cert: &str, key: &str| {
        let mut c = d.docker_cmd(cli, &[]);
        c.env_remove("DOCKER_HOST")
            .args(["-H", &tcp, "--tlsverify", "--tlscacert"])
            .arg(f("good-ca.pem"))
            .arg("--tlscert")
            .arg(f(cert))
            .arg("--tlskey")
            .arg(f(key))
            .args(["version", "--format", "{{.Server.Version}}"]);
        c.output().unwrap()
    };
    for cli in docker_clis() {
        // The CA's client: served over TCP.
        let out = tls_docker(cli, "client.pem", "client-key.pem");
        assert!(
            out.status.success(),
            "{cli} with the CA's client cert: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            d.log()
        );
        assert!(!String::from_utf8_lossy(&out.stdout).trim().is_empty());
        // A certificate from another CA: the handshake fails.
        let out = tls_docker(cli, "stranger.pem", "stranger-key.pem");
        assert!(
            !out.status.success(),
            "{cli}: another CA's client was served"
        );
        // No client certificate at all.
        let out = d
            .docker_cmd(cli, &[])
            .env_remove("DOCKER_HOST")
            .args(["-H", &tcp, "--tlsverify", "--tlscacert"])
            .arg(f("good-ca.pem"))
            .args(["--tlscert", "/nonexistent", "--tlskey", "/nonexistent"])
            .arg("version")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{cli}: served without a client cert");
    }
    // curl with only the CA (no client certificate): the handshake is refused.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(f("good-ca.pem"))
        .arg(format!("https://{addr}/_ping"))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl without a client cert was served"
    );
    // curl with the client certificate: 200.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(f("good-ca.pem"))
        .arg("--cert")
        .arg(f("client.pem"))
        .arg("--key")
        .arg(f("client-key.pem"))
        .arg(format!("https://{addr}/_ping"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "curl with the client cert"
    );
    // Plain HTTP: no HTTP answer.
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /_ping HTTP/1.0\r\n\r\n").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    assert!(
        !String::from_utf8_lossy(&out).contains("200 OK"),
        "plain HTTP was served"
    );
}

#[test]
fn tcp_without_tlsverify_is_refused() {
    if !preflight(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("daemon.json"), "{}").unwrap();
    let port = free_port();
    for extra in [&[][..], &["--tls"][..]] {
        let out = Command::new(hulld_bin())
            .args(["--bridge", "none", "-H"])
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--config-file")
            .arg(dir.path().join("daemon.json"))
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "hulld served tcp:// with {extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--tlsverify"), "{extra:?}: {err}");
        // Nothing listens on the port.
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
