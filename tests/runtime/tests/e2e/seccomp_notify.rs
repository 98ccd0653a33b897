//! Seccomp user notification: the runtime sends the notify fd and the container process state
//! to `listenerPath`, and an agent holding that fd decides what the filtered calls return.

use std::time::Duration;

use hull_e2e_runtime::seccomp_agent::{Listener, Responder};
use hull_e2e_runtime::{require_root, Case};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);
/// The errno the agent answers every notification with.
const ANSWER: i32 = libc::ENOSPC;

#[test]
fn notify_agent_answers_mkdir() {
    require_root!();
    let script = "/probe mkdir /tmp/x; mkdir /tmp/y 2>&1; echo rc=$?; /probe touch /tmp/z";
    let mut c = Case::new("seccomp-notify", &["sh", "-c", script]);
    let sock = c.dir.join("seccomp.sock");
    let listener = Listener::bind(&sock);
    c.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "hull-e2e-agent-meta",
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY" }]
    });
    c.create(&[]).ok();
    let pid = c.state()["pid"].as_i64().expect("pid");

    // The notify filter is loaded before `start`: the agent has the fd once `create` returns.
    let got = listener
        .receive(Duration::from_millis(500))
        .unwrap_or_else(|e| panic!("notify fd not sent during create: {e}"));
    let state: Value = serde_json::from_str(&got.text)
        .unwrap_or_else(|e| panic!("listener message is not JSON ({e}): {:?}", got.text));
    assert_eq!(got.fds.len(), 1, "want one fd (the notify fd): {state}");
    // The version the state complies with: the runtime's (runc says 1.0.2-dev).
    assert!(
        state["ociVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{state}"
    );
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["pid"].as_i64(), Some(pid), "{state}");
    assert_eq!(state["metadata"], "hull-e2e-agent-meta", "{state}");
    assert_eq!(state["state"]["id"], json!(c.id), "{state}");
    assert_eq!(state["state"]["pid"].as_i64(), Some(pid), "{state}");
    let fd = got.fds.into_iter().next().unwrap();
    let target = std::fs::read_link(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ))
    .unwrap();
    assert_eq!(target.to_string_lossy(), "anon_inode:seccomp notify");

    let agent = Responder::spawn(fd, ANSWER, WAIT * 2);
    c.start().ok();
    c.wait_status("stopped", WAIT);
    let seen = agent.finish().unwrap_or_else(|e| panic!("agent: {e}"));
    let out = c.output();
    assert_eq!(
        out.lines().next(),
        Some("mkdir: errno=28 (ENOSPC)"),
        "probe mkdir: {out}"
    );
    assert!(
        out.contains("No space left on device\nrc=1\n"),
        "busybox mkdir did not get the agent's errno: {out}"
    );
    assert!(
        out.ends_with("touch: ok\n"),
        "an unfiltered call failed: {out}"
    );
    assert!(!c.rootfs.join("tmp/x").exists() && !c.rootfs.join("tmp/y").exists());
    let mkdir_calls = [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32];
    assert!(
        seen.len() >= 2
            && seen
                .iter()
                .all(|n| mkdir_calls.contains(&n.nr) && n.pid > 0),
        "notifications: {seen:?}"
    );
    c.cmd(&["delete", &c.id]).ok();
    c.assert_clean();
}
