//! User namespaces: the mapping is applied and files land on the host as the mapped uid.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use hull_e2e_runtime::host::ns_link;
use hull_e2e_runtime::{require_root, spec, Case};

#[test]
fn user_namespace_maps_root_to_host_100000() {
    require_root!();
    let script = "cat /proc/self/uid_map /proc/self/gid_map; echo id=$(id -u):$(id -g); \
                  echo user=$(readlink /proc/self/ns/user); touch /data/made-in-userns; \
                  /probe touch /data/owned-by-host-root/x; true";
    let mut c = Case::new("userns", &["sh", "-c", script]);
    let data = c.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
    // A dir owned by host root (unmapped): root in the container must not write there.
    std::fs::create_dir(data.join("owned-by-host-root")).unwrap();
    c.user_namespace(100000);
    c.mount(spec::bind(&data, "/data", false));
    // The rootfs belongs to host root, which the container's root cannot write as: give the
    // mount point up front (an engine would chown the rootfs instead).
    std::fs::create_dir(c.rootfs.join("data")).unwrap();
    let out = c.run().ok();

    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "uid_map: {out}");
    assert_eq!(lines[1], ["0", "100000", "65536"], "gid_map: {out}");
    assert_eq!(out.must_line("id="), "id=0:0");
    assert_ne!(&out.must_line("user=")[5..], ns_link("/proc/self/ns/user"));
    let made = std::fs::metadata(data.join("made-in-userns")).expect("file made in container");
    assert_eq!(
        (made.uid(), made.gid()),
        (100000, 100000),
        "owner of the file on the host"
    );
    assert_eq!(out.must_line("touch:"), "touch: errno=13 (EACCES)", "{out}");
}
