//! Operations on existing containers through hulld, driven by the docker CLI and the raw
//! API: pause/unpause, top, stats, rename, changes, export, commit, prune, list filters,
//! system df and the container events they publish. Every hulld here runs with
//! `--bridge none` and every container with `--network none` (the host's namespace).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{busybox_tar, docker_clis, preflight, Hulld};
use serde_json::Value;

const CLI: &str = "/usr/bin/docker";

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// On drop after a failure (before the daemon's drop, so declared after it): thaws this
/// daemon's containers' freezer cgroups (a frozen process would not die of a SIGKILL) and
/// has the daemon remove them, so that their shims clean up cgroups and mounts.
struct CleanupOnFailure<'a>(&'a Hulld);

impl Drop for CleanupOnFailure<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let data = self.0.dir.path().join("data/containers");
        let ids: Vec<String> = std::fs::read_dir(data)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for id in &ids {
            let v1 = std::path::Path::new("/sys/fs/cgroup/freezer/hull")
                .join(id)
                .join("freezer.state");
            if v1.exists() {
                let _ = std::fs::write(v1, "THAWED");
            }
            // cgroup v2, or the unified hierarchy of a hybrid host.
            for root in ["/sys/fs/cgroup/hull", "/sys/fs/cgroup/unified/hull"] {
                let v2 = std::path::Path::new(root).join(id).join("cgroup.freeze");
                if v2.exists() {
                    let _ = std::fs::write(v2, "0");
                }
            }
        }
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.0.docker(CLI, &args);
        }
    }
}

/// Lines the container has logged so far.
fn log_lines(d: &Hulld, cli: &str, name: &str) -> usize {
    d.ok(cli, &["logs", name]).lines().count()
}

#[test]
fn pause_top_stats_rename_and_their_events() {
    if !preflight(&[]) {
        return;
    }
    for cli in docker_clis() {
        pause_top_stats_rename(cli);
    }
}

fn pause_top_stats_rename(cli: &str) {
    let d = Hulld::start();
    let _cleanup = CleanupOnFailure(&d);
    let t0 = now();
    d.ok(cli, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let id = d
        .ok(
            cli,
            &[
                "run",
                "-d",
                "--network",
                "none",
                "-m",
                "64m",
                "--name",
                "counter",
                "busybox",
                "sh",
                "-c",
                "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done",
            ],
        )
        .trim()
        .to_string();
    wait_for("the counter to count", || log_lines(&d, cli, "counter") > 2);

    // Pause: state paused, the counter stops; a second pause and exec are conflicts.
    let out = d.docker(cli, &["exec", "counter", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    d.ok(cli, &["pause", "counter"]);
    let st = d.ok(
        cli,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
            "counter",
        ],
    );
    assert_eq!(st.trim(), "paused true true");
    let ps = d.ok(
        cli,
        &[
            "ps",
            "--filter",
            "status=paused",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(ps.contains("counter") && ps.contains("(Paused)"), "{ps}");
    let frozen = log_lines(&d, cli, "counter");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        log_lines(&d, cli, "counter"),
        frozen,
        "a paused container kept counting"
    );
    let (code, body) = d.curl(&["-X", "POST"], "/containers/counter/pause");
    assert_eq!(code, 409, "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/containers/counter/start");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("unpause"), "{body}");
    let err = d.fails(cli, &["exec", "counter", "true"]);
    assert!(err.contains("paused"), "{err}");

    // Unpause: it counts again; unpausing a running container is a conflict.
    d.ok(cli, &["unpause", "counter"]);
    wait_for("the counter to resume", || {
        log_lines(&d, cli, "counter") > frozen + 2
    });
    let (code, body) = d.curl(&["-X", "POST"], "/containers/counter/unpause");
    assert_eq!(code, 409, "{body}");

    // top: Docker's default columns and the container's shell; ps_args choose columns.
    let top = d.ok(cli, &["top", "counter"]);
    let header = top.lines().next().unwrap();
    for col in ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"] {
        assert!(header.split_whitespace().any(|c| c == col), "{top}");
    }
    assert!(top.contains("while true"), "{top}");
    let pid = d.ok(cli, &["inspect", "-f", "{{.State.Pid}}", "counter"]);
    assert!(
        top.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(pid.trim())),
        "init {pid} not in {top}"
    );
    let (code, body) = d.curl(&[], "/containers/counter/top?ps_args=-o%20pid,comm");
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["Titles"], serde_json::json!(["PID", "COMMAND"]), "{body}");
    assert!(
        v["Processes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == pid.trim() && p[1] == "sh"),
        "{body}"
    );
    assert!(!body.contains("hulld"), "host processes in top: {body}");

    // stats: the memory limit of -m, pids, cpu figures.
    let out = d.ok(
        cli,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
            "counter",
        ],
    );
    let f: Vec<&str> = out.trim().split('|').collect();
    assert_eq!(f[0], "counter", "{out}");
    assert!(f[1].ends_with("/ 64MiB"), "{out}");
    assert!(f[2].parse::<u32>().unwrap() >= 1, "{out}");
    assert!(f[3].ends_with('%'), "{out}");
    let (code, body) = d.curl(&[], "/containers/counter/stats?stream=false");
    assert_eq!(code, 200, "{body}");
    let s = json(&body);
    assert_eq!(s["memory_stats"]["limit"], 64 << 20, "{body}");
    assert!(s["memory_stats"]["usage"].as_u64().unwrap() > 0, "{body}");
    assert!(s["pids_stats"]["current"].as_u64().unwrap() >= 1, "{body}");
    assert!(s["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(s["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert!(
        s["precpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0,
        "{body}"
    );
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["name"], "/counter");
    // Streaming: several samples, a second apart.
    let out = std::process::Command::new("curl")
        .args(["-s", "-N", "--max-time", "3", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://hull/containers/counter/stats")
        .output()
        .unwrap();
    let samples = String::from_utf8_lossy(&out.stdout).lines().count();
    assert!(samples >= 2, "{samples} samples in 3 seconds");

    // rename: inspect by the new name; taken and bad names refused.
    d.ok(cli, &["rename", "counter", "counter2"]);
    let name = d.ok(cli, &["inspect", "-f", "{{.Name}}", "counter2"]);
    assert_eq!(name.trim(), "/counter2");
    d.fails(cli, &["inspect", "counter"]);
    d.ok(
        cli,
        &["create", "--network", "none", "--name", "other", "busybox"],
    );
    let (code, body) = d.curl(&["-X", "POST"], "/containers/counter2/rename?name=other");
    assert_eq!(code, 409, "{body}");
    let (code, body) = d.curl(&["-X", "POST"], "/containers/counter2/rename?name=-bad");
    assert_eq!(code, 400, "{body}");

    // A paused container stops like a running one.
    d.ok(cli, &["pause", "counter2"]);
    d.ok(cli, &["stop", "-t", "1", "counter2"]);
    let st = d.ok(
        cli,
        &[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Paused}}",
            "counter2",
        ],
    );
    assert_eq!(st.trim(), "exited false");
    d.ok(cli, &["rm", "counter2", "other"]);

    // Events of the container, in order, from history (since/until).
    let until = now() + 1;
    let (code, body) = d.curl(
        &[],
        &format!(
            "/events?since={t0}&until={until}&filters=%7B%22type%22:%5B%22container%22%5D,%22container%22:%5B%22{}%22%5D%7D",
            &id[..12]
        ),
    );
    assert_eq!(code, 200, "{body}");
    let evs: Vec<Value> = body.lines().map(json).collect();
    let actions: Vec<&str> = evs.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    let want = [
        "create",
        "start",
        "exec_create: sh -c exit 3",
        "exec_start: sh -c exit 3",
        "exec_die",
        "pause",
        "unpause",
        "rename",
        "pause",
        "kill",
        "die",
        "stop",
        "destroy",
    ];
    let mut it = actions.iter();
    for w in want {
        assert!(it.any(|a| *a == w), "no {w} in order in {actions:?}");
    }
    for e in &evs {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["Actor"]["ID"], id.as_str());
        assert_eq!(e["Actor"]["Attributes"]["image"], "busybox");
    }
    let die = evs.iter().find(|e| e["Action"] == "die").unwrap();
    // sh as pid 1 ignores SIGTERM: SIGKILL after the timeout.
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "137", "{die}");
    let exec_die = evs.iter().find(|e| e["Action"] == "exec_die").unwrap();
    assert_eq!(
        exec_die["Actor"]["Attributes"]["exitCode"], "3",
        "{exec_die}"
    );
    assert!(
        exec_die["Actor"]["Attributes"]["execID"]
            .as_str()
            .unwrap()
            .len()
            > 10
    );
    let rename = evs.iter().find(|e| e["Action"] == "rename").unwrap();
    assert_eq!(rename["Actor"]["Attributes"]["oldName"], "/counter");
    assert_eq!(rename["Actor"]["Attributes"]["name"], "counter2");
    let kills: Vec<&Value> = evs
        .iter()
        .filter(|e| e["Action"] == "kill")
        .map(|e| &e["Actor"]["Attributes"]["signal"])
        .collect();
    assert_eq!(kills, ["15", "9"], "{actions:?}");

    // The docker CLI's own filter shows them too.
    let out = d.ok(
        cli,
        &[
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "container=counter2",
            "--filter",
            "event=destroy",
        ],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("container destroy") && out.contains(&id),
        "{out}"
    );
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
}

#[test]
fn changes_export_commit_prune_and_filters() {
    if !preflight(&[]) {
        return;
    }
    let d = Hulld::start();
    let _cleanup = CleanupOnFailure(&d);
    let t0 = now();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d.ok(
        CLI,
        &[
            "run",
            "--network",
            "none",
            "--name",
            "fsc",
            "-e",
            "FROMRUN=1",
            "busybox",
            "sh",
            "-c",
            "echo hello > /newfile && echo x >> /etc/group && rm /etc/nsswitch.conf && mkdir -p /var/made",
        ],
    );

    // changes: added, modified, deleted.
    let (code, body) = d.curl(&[], "/containers/fsc/changes");
    assert_eq!(code, 200, "{body}");
    let ch: Vec<(String, u64)> = json(&body)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["Path"].as_str().unwrap().to_string(),
                c["Kind"].as_u64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("/newfile", 1),
        ("/etc", 0),
        ("/etc/group", 0),
        ("/etc/nsswitch.conf", 2),
        ("/var/made", 1),
    ] {
        assert!(
            ch.iter().any(|(p, k)| p == want.0 && *k == want.1),
            "{want:?} not in {ch:?}"
        );
    }
    assert!(!ch.iter().any(|(p, _)| p == "/bin/busybox"), "{ch:?}");
    let diff = d.ok(CLI, &["diff", "fsc"]);
    assert!(
        diff.contains("A /newfile") && diff.contains("D /etc/nsswitch.conf"),
        "{diff}"
    );

    // export: the merged rootfs, with the file the container wrote, without the deleted one,
    // owned by container root.
    let tar = d.dir.path().join("fsc.tar");
    d.ok(CLI, &["export", "-o", tar.to_str().unwrap(), "fsc"]);
    let list = std::process::Command::new("tar")
        .args(["-tvf", tar.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(list.status.success());
    let list = String::from_utf8_lossy(&list.stdout);
    let line = list
        .lines()
        .find(|l| l.ends_with(" newfile"))
        .unwrap_or_else(|| panic!("newfile not exported: {list}"));
    assert!(line.contains(" 0/0 "), "{line}");
    assert!(list.lines().any(|l| l.contains("bin/busybox")), "{list}");
    assert!(!list.contains("nsswitch.conf"), "{list}");
    let content = std::process::Command::new("tar")
        .args(["-xOf", tar.to_str().unwrap(), "newfile"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&content.stdout), "hello\n");

    // A rootfs that is not mounted is mounted read-only for the export, and unmounted after.
    let fsc_id = d.ok(CLI, &["inspect", "-f", "{{.Id}}", "fsc"]);
    let rootfs = d
        .dir
        .path()
        .join(format!("exec/containers/{}/rootfs", fsc_id.trim()));
    let st = std::process::Command::new("umount")
        .arg(&rootfs)
        .status()
        .unwrap();
    assert!(st.success(), "umount {}", rootfs.display());
    let again_tar = d.dir.path().join("again.tar");
    let st = std::process::Command::new("curl")
        .args(["-sf", "-o"])
        .arg(&again_tar)
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg("http://hull/containers/fsc/export")
        .status()
        .unwrap();
    assert!(st.success(), "export of an unmounted rootfs: {}", d.log());
    let again = std::process::Command::new("tar")
        .args([
            "-xOf",
            d.dir.path().join("again.tar").to_str().unwrap(),
            "newfile",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        "hello\n",
        "{}\n{}",
        String::from_utf8_lossy(&again.stderr),
        d.log()
    );
    // (a stopped container of a --bridge none daemon keeps its lo-only namespace pinned)
    wait_for("the export's mount to go", || {
        d.mounts().iter().all(|m| m.ends_with("/netns"))
    });

    // commit with changes; the new image runs with the file, the committed CMD and ENV, and
    // without the deleted file.
    let img = d.ok(
        CLI,
        &[
            "commit",
            "-m",
            "made by a test",
            "--change",
            "ENV COMMITTED=yes",
            "--change",
            r#"CMD ["sh", "-c", "cat /newfile; echo $COMMITTED; ls /etc/nsswitch.conf || echo gone"]"#,
            "fsc",
            "committed:v1",
        ],
    );
    assert!(img.trim().starts_with("sha256:"), "{img}");
    let out = d.ok(CLI, &["run", "--rm", "--network", "none", "committed:v1"]);
    assert_eq!(out, "hello\nyes\ngone\n");
    let cfg = d.ok(
        CLI,
        &[
            "image",
            "inspect",
            "-f",
            "{{.Id}} {{json .Config.Env}} {{len .RootFS.Layers}}",
            "committed:v1",
        ],
    );
    assert!(cfg.starts_with(img.trim()), "{cfg}");
    assert!(
        cfg.contains("PATH=") && cfg.contains("COMMITTED=yes") && cfg.contains("FROMRUN=1"),
        "{cfg}"
    );
    assert!(cfg.trim().ends_with(" 2"), "{cfg}");
    let hist = d.ok(CLI, &["history", "--no-trunc", "committed:v1"]);
    assert!(hist.contains("made by a test"), "{hist}");

    // A running container is paused for its commit, and runs on afterwards.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "busy",
            "busybox",
            "sh",
            "-c",
            "echo run > /ran; sleep 1000",
        ],
    );
    wait_for("the running container's file", || {
        d.curl(&[], "/containers/busy/changes").1.contains("/ran")
    });
    d.ok(CLI, &["commit", "busy", "committed:running"]);
    let st = d.ok(CLI, &["inspect", "-f", "{{.State.Status}}", "busy"]);
    assert_eq!(st.trim(), "running");
    let out = d.ok(
        CLI,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "committed:running",
            "cat",
            "/ran",
        ],
    );
    assert_eq!(out, "run\n");
    d.ok(CLI, &["rm", "-f", "busy"]);

    // List filters, limit, size.
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "live",
            "--label",
            "tier=web",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    d.ok(
        CLI,
        &["create", "--network", "none", "--name", "fresh", "busybox"],
    );
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "{{.Names}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = d.ok(CLI, &a).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names(&[]), ["live"]);
    assert_eq!(names(&["-a", "--filter", "status=exited"]), ["fsc"]);
    assert_eq!(names(&["-a", "--filter", "status=created"]), ["fresh"]);
    assert_eq!(names(&["-a", "--filter", "label=tier=web"]), ["live"]);
    assert_eq!(names(&["-a", "--filter", "name=fre"]), ["fresh"]);
    assert_eq!(names(&["-a", "--filter", "exited=0"]), ["fsc"]);
    assert_eq!(names(&["-a", "--filter", "since=fsc"]), ["fresh", "live"]);
    assert_eq!(names(&["-a", "--filter", "before=live"]), ["fsc"]);
    assert_eq!(names(&["-n", "1"]), ["fresh"]);
    assert_eq!(
        names(&["-a", "--filter", "ancestor=busybox"]),
        ["fresh", "fsc", "live"]
    );
    let (code, body) = d.curl(
        &[],
        "/containers/json?all=1&size=1&filters=%7B%22name%22:%5B%22fsc%22%5D%7D",
    );
    assert_eq!(code, 200, "{body}");
    let rw = json(&body)[0]["SizeRw"].as_u64().unwrap();
    assert!(rw >= 6, "SizeRw {rw}: {body}");
    assert_eq!(
        names(&["-a", "--filter", "health=none"]),
        ["fresh", "fsc", "live"]
    );
    assert!(names(&["-a", "--filter", "health=healthy"]).is_empty());
    let (code, body) = d.curl(
        &[],
        "/containers/json?filters=%7B%22bogus%22:%5B%22x%22%5D%7D",
    );
    assert_eq!(code, 400, "{body}");

    // system df: both images, the containers.
    let df = d.ok(CLI, &["system", "df"]);
    let images = df.lines().find(|l| l.starts_with("Images")).unwrap();
    assert_eq!(images.split_whitespace().nth(1), Some("3"), "{df}");
    let containers = df.lines().find(|l| l.starts_with("Containers")).unwrap();
    assert_eq!(containers.split_whitespace().nth(1), Some("3"), "{df}");

    // prune: stopped containers only.
    // Nothing was created before an hour ago: `until` keeps everything.
    let (code, body) = d.curl(
        &["-X", "POST"],
        "/containers/prune?filters=%7B%22until%22:%5B%221h%22%5D%7D",
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body)["ContainersDeleted"],
        serde_json::json!([]),
        "{body}"
    );
    let (code, body) = d.curl(&["-X", "POST"], "/containers/prune");
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(
        v["ContainersDeleted"].as_array().unwrap().len(),
        2,
        "{body}"
    );
    assert!(v["SpaceReclaimed"].as_u64().unwrap() >= rw, "{body}");
    assert_eq!(names(&["-a"]), ["live"]);
    let (code, body) = d.curl(
        &["-X", "POST"],
        "/containers/prune?filters=%7B%22nope%22:%5B%22x%22%5D%7D",
    );
    assert_eq!(code, 400, "{body}");
    d.ok(CLI, &["rm", "-f", "live"]);

    // The first container's events: create, start, die with its exit code, destroy.
    let until = now() + 1;
    let out = d.ok(
        CLI,
        &[
            "events",
            "--since",
            &t0.to_string(),
            "--until",
            &until.to_string(),
            "--filter",
            "container=fsc",
            "--format",
            "{{.Action}} {{index .Actor.Attributes \"exitCode\"}}",
        ],
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    let pos = |a: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(a))
            .unwrap_or_else(|| panic!("no {a} in {lines:?}"))
    };
    assert!(
        pos("create") < pos("start") && pos("start") < pos("die") && pos("die") < pos("destroy"),
        "{lines:?}"
    );
    assert_eq!(lines[pos("die")], "die 0", "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("commit")), "{lines:?}");
    // `docker run` attached to it before starting it.
    assert!(pos("attach") < pos("start"), "{lines:?}");
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
}

/// On the default bridge (hulld in its own network namespace): stats show the container's
/// eth0 from its namespace, and a live `docker events --filter container=` sees a pause.
#[test]
fn bridged_stats_and_live_events() {
    if !preflight(&[]) {
        return;
    }
    let d = Hulld::start_isolated();
    let _cleanup = CleanupOnFailure(&d);
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d.ok(
        CLI,
        &["run", "-d", "--name", "net", "busybox", "sleep", "1000"],
    );
    let (code, body) = d.curl(&[], "/containers/net/stats?stream=0&one-shot=1");
    assert_eq!(code, 200, "{body}");
    let s = json(&body);
    assert!(s["networks"]["eth0"]["rx_bytes"].is_u64(), "{body}");
    assert!(s["networks"].get("lo").is_none(), "{body}");
    assert_eq!(
        s["preread"], "0001-01-01T00:00:00Z",
        "one-shot has no previous sample"
    );

    let mut ev = d
        .docker_cmd(
            CLI,
            &[
                "events",
                "--filter",
                "container=net",
                "--format",
                "{{.Action}} {{.Actor.Attributes.name}}",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = ev.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    // The client is subscribed once a first event reaches it.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let has = |seen: &[String], l: &str| seen.iter().any(|x| x == l);
    while !(has(&seen, "pause net") && has(&seen, "unpause net")) {
        assert!(Instant::now() < deadline, "live events: {seen:?}");
        d.ok(CLI, &["pause", "net"]);
        d.ok(CLI, &["unpause", "net"]);
        while let Ok(l) = rx.recv_timeout(Duration::from_millis(500)) {
            seen.push(l);
        }
    }
    let _ = std::process::Command::new("kill")
        .arg(ev.id().to_string())
        .status();
    let _ = ev.wait();
    assert!(seen.iter().all(|l| l.ends_with(" net")), "{seen:?}");
    d.ok(CLI, &["rm", "-f", "net"]);
}

/// A paused container stays paused across a hulld restart, and the new daemon unpauses and
/// removes it.
#[test]
fn paused_across_a_hulld_restart() {
    if !preflight(&[]) {
        return;
    }
    let mut d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    d.ok(
        CLI,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "p",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    d.ok(CLI, &["pause", "p"]);
    d.restart();
    let _cleanup = CleanupOnFailure(&d);
    let st = d.ok(CLI, &["inspect", "-f", "{{.State.Status}}", "p"]);
    assert_eq!(st.trim(), "paused");
    d.ok(CLI, &["unpause", "p"]);
    let top = d.ok(CLI, &["top", "p"]);
    assert!(top.contains("sleep 1000"), "{top}");
    d.ok(CLI, &["rm", "-f", "p"]);
    assert_eq!(d.mounts(), Vec::<String>::new(), "mounts left");
}

/// `docker run -d --network none --name NAME ARGS...`.
fn run_detached(d: &Hulld, name: &str, args: &[&str]) {
    let mut all = vec!["run", "-d", "--network", "none", "--name", name];
    all.extend_from_slice(args);
    d.ok(CLI, &all);
}

/// Health checks as Docker runs them: `--health-*` flags, the probe in the container,
/// failures until `retries` make it unhealthy, a success makes it healthy, a test that
/// outlives its timeout is a failure with Docker's message, `ps` shows the status and
/// filters by it, status changes are events, and a restart of hulld keeps checking.
#[test]
fn health_checks() {
    if !preflight(&[]) {
        return;
    }
    let mut d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let since = now().to_string();
    let health = |d: &Hulld, name: &str| -> Value {
        json(&d.ok(CLI, &["inspect", "-f", "{{json .State.Health}}", name]))
    };
    // unhealthy until /tmp/ok exists, then healthy
    run_detached(
        &d,
        "hc",
        &[
            "--health-cmd",
            "test -e /tmp/ok && echo fine",
            "--health-interval",
            "200ms",
            "--health-retries",
            "2",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    let cleanup = CleanupOnFailure(&d);
    wait_for("hc unhealthy", || health(&d, "hc")["Status"] == "unhealthy");
    let h = health(&d, "hc");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(
        h["Log"].as_array().unwrap().last().unwrap()["ExitCode"],
        1,
        "{h}"
    );
    let ps = d.ok(
        CLI,
        &[
            "ps",
            "--filter",
            "health=unhealthy",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(
        ps.starts_with("hc Up") && ps.contains("(unhealthy)"),
        "{ps}"
    );
    d.ok(CLI, &["exec", "hc", "touch", "/tmp/ok"]);
    wait_for("hc healthy", || health(&d, "hc")["Status"] == "healthy");
    let h = health(&d, "hc");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some("fine\n")),
        "{h}"
    );
    assert_eq!(h["FailingStreak"], 0);
    assert!(h["Log"].as_array().unwrap().len() <= 5, "{h}");
    let ps = d.ok(
        CLI,
        &[
            "ps",
            "--filter",
            "health=healthy",
            "--format",
            "{{.Names}} {{.Status}}",
        ],
    );
    assert!(ps.contains("(healthy)"), "{ps}");
    let ev = d.ok(
        CLI,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &(now() + 1).to_string(),
            "--filter",
            "container=hc",
            "--format",
            "{{.Action}}",
        ],
    );
    assert!(ev.contains("health_status: unhealthy"), "{ev}");
    assert!(ev.contains("health_status: healthy"), "{ev}");

    // a probe that outlives its timeout fails with Docker's message, at its timeout:
    // the test's processes are killed with it (they held the output pipe for 5 s)
    let t0 = Instant::now();
    run_detached(
        &d,
        "slow",
        &[
            "--health-cmd",
            "sleep 5",
            "--health-interval",
            "200ms",
            "--health-timeout",
            "300ms",
            "--health-retries",
            "1",
            "busybox",
            "sleep",
            "1000",
        ],
    );
    wait_for("slow unhealthy", || {
        health(&d, "slow")["Status"] == "unhealthy"
    });
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    let h = health(&d, "slow");
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], -1, "{h}");
    assert_eq!(
        last["Output"], "Health check exceeded timeout (300ms)",
        "{h}"
    );
    // and the timed-out tests are killed, not left running (one may be in flight)
    std::thread::sleep(Duration::from_millis(1500));
    let top = d.ok(CLI, &["top", "slow"]);
    assert!(top.matches("sleep 5").count() <= 1, "{top}");

    // bad values are refused with Docker's words; --no-healthcheck has none
    let err = d.fails(
        CLI,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--health-cmd",
            "true",
            "--health-interval",
            "500us",
            "busybox",
            "true",
        ],
    );
    assert!(
        err.contains("Interval in Healthcheck cannot be less than 1ms"),
        "{err}"
    );
    run_detached(
        &d,
        "none",
        &["--no-healthcheck", "busybox", "sleep", "1000"],
    );
    assert_eq!(
        d.ok(CLI, &["inspect", "-f", "{{json .State.Health}}", "none"])
            .trim(),
        "null"
    );

    // after a restart of hulld the monitor of a running container goes on
    d.ok(CLI, &["exec", "hc", "rm", "/tmp/ok"]);
    drop(cleanup);
    d.restart();
    let _cleanup = CleanupOnFailure(&d);
    wait_for("hc unhealthy after restart", || {
        health(&d, "hc")["Status"] == "unhealthy"
    });
    // and a restart of the container starts over with the same check
    d.ok(CLI, &["restart", "-t", "0", "hc"]);
    d.ok(CLI, &["exec", "hc", "touch", "/tmp/ok"]);
    wait_for("hc healthy after docker restart", || {
        health(&d, "hc")["Status"] == "healthy"
    });
    d.ok(CLI, &["rm", "-f", "hc", "slow", "none"]);
}

/// `docker cp` both ways (the archive endpoints), with the path always resolved in the
/// container's root: symlinks in the container lead to its own files, never the host's;
/// tar entries that name something outside the destination are refused; copies belong
/// to the container's root; a volume's files are reached in the volume; a tmpfs and
/// read-only roots are refused with a reason.
#[test]
fn cp_in_and_out_stays_in_the_container() {
    if !preflight(&[]) {
        return;
    }
    let d = Hulld::start();
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    let setup = "mkdir -p /data/sub && echo hello > /data/sub/f && chmod 640 /data/sub/f \
                 && ln -s /etc/passwd /data/link && ln -s / /data/up && ln -s / /escape \
                 && touch /ready && sleep 1000";
    run_detached(
        &d,
        "c",
        &[
            "-v",
            "vol:/data/vol",
            "--tmpfs",
            "/scratch",
            "busybox",
            "sh",
            "-c",
            setup,
        ],
    );
    let _cleanup = CleanupOnFailure(&d);
    wait_for("the container's files", || {
        d.docker_cmd(CLI, &["exec", "c", "test", "-e", "/ready"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let tmp = tempfile::tempdir().unwrap();
    let at = |p: &str| tmp.path().join(p).to_str().unwrap().to_string();

    // out: a file, a directory (links kept as links), -L, a path through a symlink to "/"
    d.ok(CLI, &["cp", "c:/data/sub/f", &at("f")]);
    assert_eq!(std::fs::read_to_string(at("f")).unwrap(), "hello\n");
    d.ok(CLI, &["cp", "c:/data", &at("data")]);
    assert_eq!(
        std::fs::read_link(at("data/link")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(std::fs::read_link(at("data/up")).unwrap(), Path::new("/"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(at("data/sub/f"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let image_passwd = d.ok(CLI, &["exec", "c", "cat", "/etc/passwd"]);
    d.ok(CLI, &["cp", "-L", "c:/data/link", &at("passwd")]);
    assert_eq!(std::fs::read_to_string(at("passwd")).unwrap(), image_passwd);
    d.ok(CLI, &["cp", "c:/data/up/etc/passwd", &at("passwd2")]);
    assert_eq!(
        std::fs::read_to_string(at("passwd2")).unwrap(),
        image_passwd
    );
    assert_ne!(
        image_passwd,
        std::fs::read_to_string("/etc/passwd").unwrap()
    );
    // /etc/hostname is hulld's file bound over the image's: the container's, not the image's
    d.ok(CLI, &["cp", "c:/etc/hostname", &at("hostname")]);
    assert_eq!(
        std::fs::read_to_string(at("hostname")).unwrap(),
        d.ok(CLI, &["exec", "c", "cat", "/etc/hostname"])
    );
    let err = d.fails(CLI, &["cp", "c:/nonexistent", &at("x")]);
    // the docker CLI words the HEAD's 404 itself
    assert!(
        err.contains("No such container:path: c:/nonexistent"),
        "{err}"
    );

    // in: a file and a directory, owned by the container's root, modes kept
    std::fs::write(at("in.txt"), "in\n").unwrap();
    std::fs::set_permissions(at("in.txt"), std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::create_dir_all(at("dir/s")).unwrap();
    std::fs::write(at("dir/s/y"), "y\n").unwrap();
    d.ok(CLI, &["cp", &at("in.txt"), "c:/tmp/"]);
    d.ok(CLI, &["cp", &at("dir"), "c:/tmp/dir"]);
    let out = d.ok(
        CLI,
        &[
            "exec",
            "c",
            "sh",
            "-c",
            "cat /tmp/in.txt /tmp/dir/s/y; stat -c '%u:%g %a' /tmp/in.txt /tmp/dir/s/y",
        ],
    );
    assert_eq!(out, "in\ny\n0:0 604\n0:0 644\n");

    // through the container's symlink to "/": into the container's /tmp, not the host's
    let sentinel = format!("/tmp/hull-cp-escape-{}", std::process::id());
    let name = sentinel.trim_start_matches("/tmp/");
    d.ok(
        CLI,
        &["cp", &at("in.txt"), &format!("c:/escape/tmp/{name}")],
    );
    assert!(
        !Path::new(&sentinel).exists(),
        "{sentinel} was written on the host"
    );
    d.ok(CLI, &["exec", "c", "test", "-f", &sentinel]);

    // crafted archives: names outside the destination are refused, and nothing is made
    for (label, entry) in [("dotdot", "../../evil"), ("absolute", "/evil")] {
        let tar_path = at(&format!("{label}.tar"));
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses "..": write the name into the header as it is
        h.as_old_mut().name[..entry.len()].copy_from_slice(entry.as_bytes());
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap();
        let (code, body) = d.curl(
            &["-X", "PUT", "-T", &tar_path],
            "/containers/c/archive?path=/tmp",
        );
        assert_eq!(code, 400, "{label}: {body}");
        assert!(body.contains("outside the destination"), "{label}: {body}");
    }
    assert!(!Path::new("/evil").exists() && !Path::new("/tmp/evil").exists());

    // a volume: in and out through the volume's own files, owned by the container's root
    d.ok(CLI, &["cp", &at("in.txt"), "c:/data/vol/"]);
    let out = d.ok(
        CLI,
        &["exec", "c", "stat", "-c", "%u:%g %a", "/data/vol/in.txt"],
    );
    assert_eq!(out, "0:0 604\n");
    d.ok(
        CLI,
        &[
            "exec",
            "c",
            "sh",
            "-c",
            "echo from-volume > /data/vol/made-inside",
        ],
    );
    d.ok(CLI, &["cp", "c:/data/vol/made-inside", &at("made-inside")]);
    assert_eq!(
        std::fs::read_to_string(at("made-inside")).unwrap(),
        "from-volume\n"
    );
    // a directory copied out goes into the mounts below it: the volume's files, and
    // hulld's /etc/hostname
    d.ok(CLI, &["cp", "c:/data", &at("data2")]);
    assert_eq!(
        std::fs::read_to_string(at("data2/vol/made-inside")).unwrap(),
        "from-volume\n"
    );
    assert_eq!(
        std::fs::read_to_string(at("data2/sub/f")).unwrap(),
        "hello\n"
    );
    d.ok(CLI, &["cp", "c:/etc", &at("etc")]);
    assert_eq!(
        std::fs::read_to_string(at("etc/hostname")).unwrap(),
        d.ok(CLI, &["exec", "c", "cat", "/etc/hostname"])
    );

    // a tmpfs (only in the container) and read-only roots: refused, saying why
    let err = d.fails(CLI, &["cp", "c:/scratch", &at("scratch")]);
    assert!(err.contains("tmpfs"), "{err}");
    run_detached(&d, "ro", &["--read-only", "busybox", "sleep", "1000"]);
    let err = d.fails(CLI, &["cp", &at("in.txt"), "ro:/"]);
    assert!(err.contains("read-only"), "{err}");
    d.ok(CLI, &["rm", "-f", "-v", "c", "ro"]);
    d.ok(CLI, &["volume", "rm", "vol"]);
}
