//! Commands around the lifecycle: `kill --all`, `list` and `features`.

use std::thread;
use std::time::{Duration, Instant};

use hull_e2e_runtime::host::{alive, cmdline};
use hull_e2e_runtime::{is_hull, require_root, Case};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

/// Host pids of the container's processes running `want` (via `ps --format json`), waiting
/// until there are `count` of them.
#[track_caller]
fn pids_running(c: &Case, want: &[&str]) -> Vec<i64> {
    let deadline = Instant::now() + WAIT;
    loop {
        let ps = c.cmd(&["ps", "--format", "json", &c.id]).ok();
        let pids: Vec<i64> =
            serde_json::from_str(&ps.stdout).unwrap_or_else(|e| panic!("{e}: {ps}"));
        let found: Vec<i64> = want
            .iter()
            .filter_map(|w| pids.iter().copied().find(|&p| cmdline(p) == *w))
            .collect();
        if found.len() == want.len() {
            return found;
        }
        assert!(Instant::now() < deadline, "{want:?} not all in {pids:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_all_signals_every_process() {
    require_root!();
    // The shell is the container's init: a SIGTERM from outside without a handler is ignored
    // by a pid namespace's init, but not by its children.
    let c = Case::new("kill-all", &["sh", "-c", "sleep 300 & sleep 301 & wait"]);
    c.create(&[]).ok();
    c.start().ok();
    let sleeps = pids_running(&c, &["sleep 300", "sleep 301"]);

    // Plain kill reaches the init only.
    c.cmd(&["kill", &c.id, "TERM"]).ok();
    thread::sleep(Duration::from_millis(200));
    assert!(
        sleeps.iter().all(|&p| alive(p)),
        "kill without --all reached a child"
    );
    assert_eq!(c.status().as_deref(), Some("running"));

    c.cmd(&["kill", "--all", &c.id, "TERM"]).ok();
    c.wait_status("stopped", WAIT);
    for p in sleeps {
        assert!(!alive(p), "pid {p} survived kill --all");
    }
    c.cmd(&["delete", &c.id]).ok();
    c.assert_clean();
}

/// `list` (table, then JSON) shows exactly this container with `status`.
#[track_caller]
fn assert_listed(c: &Case, status: &str, pid: i64) {
    let table = c.cmd(&["list"]).ok();
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header.first(), Some(&"ID"), "{table}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 1, "{table}");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    assert_eq!(rows[0][0], c.id, "{table}");
    assert_eq!(rows[0][col("STATUS")], status, "{table}");
    assert_eq!(rows[0][col("PID")], pid.to_string(), "{table}");

    let out = c.cmd(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    let list = v
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {out}"));
    assert_eq!(list.len(), 1, "{out}");
    assert_eq!(list[0]["id"], json!(c.id), "{out}");
    assert_eq!(list[0]["status"], status, "{out}");
    assert_eq!(list[0]["pid"].as_i64(), Some(pid), "{out}");

    let quiet = c.cmd(&["list", "-q"]).ok();
    assert_eq!(quiet.stdout, format!("{}\n", c.id));
}

#[test]
fn list_shows_id_and_status() {
    require_root!();
    let c = Case::new("list", &["sleep", "300"]);
    let empty = c.cmd(&["list", "--format", "json"]).ok();
    let v: Value = serde_json::from_str(&empty.stdout).unwrap_or_else(|e| panic!("{e}: {empty}"));
    assert!(
        v.is_null() || v.as_array().is_some_and(|a| a.is_empty()),
        "{empty}"
    );
    c.create(&[]).ok();
    let pid = c.state()["pid"].as_i64().unwrap();
    assert_listed(&c, "created", pid);
    c.start().ok();
    c.wait_status("running", WAIT);
    assert_listed(&c, "running", pid);
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_clean();
}

#[test]
fn list_table_columns_line_up() {
    require_root!();
    let c = Case::new("list-align", &["sleep", "300"]);
    c.create(&[]).ok();
    let pid = c.state()["pid"].as_i64().unwrap().to_string();
    let table = c.cmd(&["list"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    // Each value starts in the column of its header, as with runc's tabwriter.
    for (name, value) in [("ID", c.id.as_str()), ("PID", &pid), ("STATUS", "created")] {
        let col = lines[0]
            .find(name)
            .unwrap_or_else(|| panic!("no {name} header: {table}"));
        assert!(
            lines[1].get(col..).is_some_and(|r| r.starts_with(value)),
            "{name} value {value:?} not at column {col}:\n{}",
            table.stdout
        );
    }
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_clean();
}

#[test]
fn features_document() {
    require_root!();
    let c = Case::new("features", &["true"]);
    let out = c.cmd(&["features"]).ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(
        v["ociVersionMin"].is_string() && v["ociVersionMax"].is_string(),
        "{v}"
    );
    let names = |p: &Value| -> Vec<String> {
        p.as_array()
            .unwrap_or_else(|| panic!("not a list: {p} in {v}"))
            .iter()
            .map(|n| n.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let ns = names(&v["linux"]["namespaces"]);
    let mut want_ns = vec!["cgroup", "ipc", "mount", "network", "pid", "user", "uts"];
    // runc 1.1 has no time namespace support (added in runc 1.2).
    if is_hull() {
        want_ns.push("time");
    }
    for n in want_ns {
        assert!(ns.iter().any(|x| x == n), "namespace {n} not in {ns:?}");
    }
    let hooks = names(&v["hooks"]);
    for h in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        assert!(hooks.iter().any(|x| x == h), "hook {h} not in {hooks:?}");
    }
}
