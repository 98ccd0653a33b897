//! Registry failures mapped to errors that name the image and registry: 429/5xx with the
//! registry's message, a stalled transfer, a refused connection, TLS with a custom CA (and a
//! TLS failure with the wrong one). Only 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{ingest_busybox, options, preflight, Registry};
use hull_image::registry::{pull, push, Platform, Progress, RegistryError};
use hull_image::{ContentStore, Reference};

fn quiet(_: &Progress) {}

fn amd64() -> Platform {
    "linux/amd64".parse().unwrap()
}

/// A server that answers every request with `response` (or, with None, reads the request
/// and stays silent for a few seconds). Returns its host:port.
fn canned(response: Option<&'static str>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for c in l.incoming().take(8) {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                match response {
                    Some(resp) => {
                        let _ = c.write_all(resp.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(3)),
                }
            });
        }
    });
    host
}

fn pull_from(host: &str, opts: &hull_image::registry::RegistryOptions) -> RegistryError {
    let t = tempfile::tempdir().unwrap();
    let s = ContentStore::open(t.path()).unwrap();
    let r = Reference::parse(&format!("{host}/app/x:1")).unwrap();
    let err = pull(&s, &r, &amd64(), opts, &quiet).unwrap_err();
    assert!(s.list().unwrap().is_empty());
    err
}

#[test]
fn server_errors_name_status_and_message() {
    let cfg = tempfile::tempdir().unwrap();
    let opts = options(cfg.path());
    for (status, text) in [(429, "Too Many Requests"), (503, "Service Unavailable")] {
        let resp: &'static str = Box::leak(
            format!(
                "HTTP/1.1 {status} {text}\r\nContent-Type: application/json\r\nContent-Length: 63\r\nConnection: close\r\n\r\n{:<63}",
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#
            )
            .into_boxed_str(),
        );
        let host = canned(Some(resp));
        let err = pull_from(&host, &opts);
        let msg = err.to_string();
        eprintln!("error as shown: {msg}");
        assert!(
            matches!(err, RegistryError::Status { status: s, .. } if s == status),
            "{msg}"
        );
        assert!(
            msg.contains(&status.to_string()) && msg.contains("slow down"),
            "{msg}"
        );
        assert!(msg.contains(&host) && msg.contains("app/x:1"), "{msg}");
    }
}

#[test]
fn stalled_and_refused_connections() {
    let cfg = tempfile::tempdir().unwrap();
    let mut opts = options(cfg.path());
    opts.stall_timeout = Duration::from_millis(300);
    let host = canned(None);
    let err = pull_from(&host, &opts);
    assert!(matches!(err, RegistryError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&host), "{err}");

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let err = pull_from(&host, &opts);
    assert!(matches!(err, RegistryError::Connect { .. }), "{err}");
    assert!(err.to_string().contains("cannot reach registry"), "{err}");
}

#[test]
fn tls_with_a_custom_ca() {
    if !preflight() {
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::make_certs(certs.path());
    let reg = Registry::start_with(&[], Some((&cert, &key)));
    let cfg = tempfile::tempdir().unwrap();
    let mut opts = options(cfg.path());
    opts.ca_files = vec![(reg.host.clone(), ca)];
    let t = tempfile::tempdir().unwrap();
    let s1 = ContentStore::open(t.path()).unwrap();
    let img = ingest_busybox(&s1);
    let r = Reference::parse(&format!("{}/tls/busybox:1", reg.host)).unwrap();
    push(&s1, &img.manifest, &r, &[], &opts, &quiet).unwrap();
    let t2 = tempfile::tempdir().unwrap();
    let s2 = ContentStore::open(t2.path()).unwrap();
    assert_eq!(
        pull(&s2, &r, &amd64(), &opts, &quiet).unwrap().manifest,
        img.manifest
    );

    // Another CA: the server's certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    let (other_ca, _, _) = common::make_certs(other.path());
    opts.ca_files = vec![(reg.host.clone(), other_ca)];
    let err = pull_from(&reg.host, &opts);
    let msg = err.to_string();
    eprintln!("error as shown: {msg}");
    assert!(matches!(err, RegistryError::Tls { .. }), "{msg}");
    assert!(msg.contains(&reg.host) && msg.contains("TLS"), "{msg}");
}
