//! Terminal: with `process.terminal`, the runtime sends the pty master over --console-socket,
//! and the container's stdio is the pty.

use std::os::fd::AsRawFd;
use std::time::Duration;

use hull_e2e_runtime::console::{read_pty, ConsoleSocket};
use hull_e2e_runtime::{require_root, Case};
use serde_json::json;

#[test]
fn console_socket_receives_pty_master() {
    require_root!();
    let script = "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-is-tty; stty size";
    let mut c = Case::new("tty", &["sh", "-c", script]);
    c.spec["process"]["terminal"] = json!(true);
    c.spec["process"]["consoleSize"] = json!({ "height": 25, "width": 80 });
    let sock_path = c.dir.join("console.sock");
    let sock = ConsoleSocket::bind(&sock_path);
    c.create(&["--console-socket", sock_path.to_str().unwrap()])
        .ok();
    let master = sock.receive(Duration::from_secs(10));
    let target = std::fs::read_link(format!("/proc/self/fd/{}", master.as_raw_fd())).unwrap();
    assert!(
        target.to_string_lossy().ends_with("ptmx"),
        "received fd is {target:?}, not a pty master"
    );
    c.start().ok();
    let text = read_pty(master, Duration::from_secs(10));
    assert_eq!(text, "/dev/pts/0\nstdio-is-tty\n25 80\n", "{text:?}");
    c.wait_status("stopped", Duration::from_secs(10));
    c.cmd(&["delete", &c.id]).ok();
    c.assert_clean();
}
