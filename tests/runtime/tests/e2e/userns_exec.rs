//! `exec` into a container with a user namespace joins that namespace: same mapping, root
//! inside, host uid 100000 outside.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use hull_e2e_runtime::host::ns_link;
use hull_e2e_runtime::{require_root, spec, Case};

#[test]
fn exec_joins_user_namespace() {
    require_root!();
    let mut c = Case::new("userns-exec", &["sleep", "300"]);
    let data = c.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    c.user_namespace(100000);
    c.mount(spec::bind(&data, "/data", false));
    std::fs::create_dir(c.rootfs.join("data")).unwrap();
    c.create(&[]).ok();
    c.start().ok();
    c.wait_status("running", Duration::from_secs(10));
    let pid = c.state()["pid"].as_i64().unwrap();

    let script = "cat /proc/self/uid_map /proc/self/gid_map; echo id=$(id -u):$(id -g); \
                  echo user=$(readlink /proc/self/ns/user); touch /data/made-by-exec";
    let out = c.exec(&["sh", "-c", script]).ok();
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map: {out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "gid_map: {out}");
    let init_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        init_map.split_whitespace().collect::<Vec<_>>(),
        lines[0],
        "exec's uid_map differs from the init's"
    );
    assert_eq!(out.must_line("id="), "id=0:0", "{out}");
    assert_eq!(
        &out.must_line("user=")[5..],
        ns_link(format!("/proc/{pid}/ns/user")),
        "exec is not in the container's user namespace"
    );
    let made = std::fs::metadata(data.join("made-by-exec")).expect("file made by exec");
    assert_eq!(
        (made.uid(), made.gid()),
        (100000, 100000),
        "owner on the host of the file exec made"
    );
    c.cmd(&["delete", "--force", &c.id]).ok();
    c.assert_clean();
}
