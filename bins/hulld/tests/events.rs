//! `docker events`: past image events (`--since/--until`) and live ones, with filters.

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{busybox_tar, preflight, Hulld};

#[test]
fn docker_events_past_and_live() {
    if !preflight(&[]) {
        return;
    }
    let cli = "/usr/bin/docker";
    let d = Hulld::start();
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d.ok(cli, &["tag", "busybox", "team/bb:1"]);
    d.ok(cli, &["rmi", "team/bb:1"]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let fmt = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}";
    let past = d.ok(
        cli,
        &[
            "events",
            "--since",
            "0",
            "--until",
            &now.to_string(),
            "--format",
            fmt,
        ],
    );
    let lines: Vec<&str> = past.lines().collect();
    assert_eq!(
        lines,
        [
            "image load busybox:latest",
            "image tag team/bb:1",
            "image untag team/bb:1"
        ],
        "{past}"
    );

    let mut live = d
        .docker_cmd(
            cli,
            &[
                "events",
                "--filter",
                "type=image",
                "--filter",
                "event=tag",
                "--format",
                fmt,
            ],
        )
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = live.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    // Give the client time to subscribe; each tag is an event, so retry until one arrives.
    let mut got = None;
    for i in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        d.ok(cli, &["tag", "busybox", &format!("live/bb:{i}")]);
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            got = Some(line);
            break;
        }
    }
    let _ = live.kill();
    let _ = live.wait();
    let got = got.expect("no live event");
    assert!(got.starts_with("image tag live/bb:"), "{got}");

    let (code, _) = d.curl(&[], "/events?since=yesterday");
    assert_eq!(code, 400);
    let (code, _) = d.curl(&[], "/events?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D");
    assert_eq!(code, 400);
    let (code, _) = d.curl(&[], "/_ping");
    assert_eq!(code, 200);
}
