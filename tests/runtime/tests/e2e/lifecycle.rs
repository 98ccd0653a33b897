//! Lifecycle: create, state, start, ps, exec, pause/resume, kill, delete.

use std::thread;
use std::time::{Duration, Instant};

use hull_e2e_runtime::host::{alive, cgroup_read, cmdline, ns_link};
use hull_e2e_runtime::spec::PATH_ENV;
use hull_e2e_runtime::{require_root, Case};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

#[track_caller]
fn wait_cmdline(pid: i64, want: &str) {
    let deadline = Instant::now() + WAIT;
    while cmdline(pid) != want {
        assert!(
            Instant::now() < deadline,
            "pid {pid} runs {:?}, want {want:?}",
            cmdline(pid)
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn full_lifecycle() {
    require_root!();
    let c = Case::new("life", &["sleep", "300"]);
    let pid_file = c.dir.join("pid");

    // create: the init exists, the user's process does not run yet.
    c.create(&["--pid-file", pid_file.to_str().unwrap()]).ok();
    let st = c.state();
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], json!(c.id), "{st}");
    let pid = st["pid"].as_i64().unwrap_or(0);
    assert!(pid > 0 && alive(pid), "{st}");
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    let bundle = std::path::Path::new(st["bundle"].as_str().unwrap())
        .canonicalize()
        .unwrap();
    assert_eq!(bundle, c.bundle.canonicalize().unwrap());
    assert_ne!(cmdline(pid), "sleep 300", "the process runs before start");

    // start: the same pid now runs the process.
    c.start().ok();
    wait_cmdline(pid, "sleep 300");
    assert_eq!(c.state()["status"], "running");

    // ps lists the init.
    let ps = c.cmd(&["ps", "--format", "json", &c.id]).ok();
    let pids: Vec<i64> = serde_json::from_str(&ps.stdout).unwrap_or_else(|e| panic!("{e}: {ps}"));
    assert!(pids.contains(&pid), "{pids:?} lacks {pid}");

    // exec joins the container: same pid namespace, exit code and output passed back.
    let out = c.exec(&[
        "sh",
        "-c",
        "echo exec-out; readlink /proc/self/ns/pid; exit 5",
    ]);
    assert_eq!(out.code(), Some(5), "{out}");
    let want = format!("exec-out\n{}\n", ns_link(format!("/proc/{pid}/ns/pid")));
    assert_eq!(out.stdout, want);

    // exec --process with a process.json.
    let p = json!({ "terminal": false, "cwd": "/tmp", "env": [PATH_ENV, "FOO=from-json"],
                    "user": { "uid": 0, "gid": 0 },
                    "args": ["sh", "-c", "echo $FOO $(pwd) $(hostname)"] });
    let p_file = c.dir.join("process.json");
    std::fs::write(&p_file, p.to_string()).unwrap();
    let out = c
        .cmd(&["exec", "--process", p_file.to_str().unwrap(), &c.id])
        .ok();
    assert_eq!(out.stdout, "from-json /tmp hull-e2e\n");

    // pause / resume, as seen by state and the freezer.
    let rel = c.cgroup_rel();
    c.cmd(&["pause", &c.id]).ok();
    assert_eq!(c.state()["status"], "paused");
    let (f, frozen) = cgroup_read(&rel, "freezer", "freezer.state", "cgroup.freeze");
    assert!(
        frozen == "FROZEN" || frozen == "1",
        "{}: {frozen}",
        f.display()
    );
    c.cmd(&["resume", &c.id]).ok();
    assert_eq!(c.state()["status"], "running");
    let (f, thawed) = cgroup_read(&rel, "freezer", "freezer.state", "cgroup.freeze");
    assert!(
        thawed == "THAWED" || thawed == "0",
        "{}: {thawed}",
        f.display()
    );

    // delete refuses a running container and leaves it running.
    let out = c.cmd(&["delete", &c.id]);
    assert!(!out.success(), "deleted a running container: {out}");
    assert!(alive(pid));
    assert_eq!(c.state()["status"], "running");

    // kill, then the container is stopped and can be deleted.
    c.cmd(&["kill", &c.id, "KILL"]).ok();
    c.wait_status("stopped", WAIT);
    c.cmd(&["delete", &c.id]).ok();
    assert!(!c.state_dir().exists(), "state dir left");
    assert!(
        !c.cmd(&["state", &c.id]).success(),
        "state of a deleted container"
    );
    assert!(!alive(pid));
    c.assert_clean();
}

#[test]
fn delete_force_kills_running_container() {
    require_root!();
    let c = Case::new("life-force", &["sleep", "300"]);
    c.create(&[]).ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    c.start().ok();
    wait_cmdline(pid, "sleep 300");
    c.cmd(&["delete", "--force", &c.id]).ok();
    assert!(!alive(pid), "process survived delete --force");
    assert!(!c.state_dir().exists());
    c.assert_clean();
}

#[test]
fn state_lists_annotations() {
    require_root!();
    let mut c = Case::new("life-annot", &["sleep", "300"]);
    c.spec["annotations"] = json!({ "org.hull.test": "yes" });
    c.create(&[]).ok();
    let st: Value = c.state();
    assert_eq!(st["annotations"]["org.hull.test"], "yes", "{st}");
    assert!(st["ociVersion"].is_string(), "{st}");
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_clean();
}
