//! Mounts: the rootfs is the root, spec mounts land where and how they are asked, masked and
//! read-only paths hold, /dev is minimal, and nothing of the host shows.

use std::collections::BTreeSet;
use std::path::Path;

use hull_e2e_runtime::spec::{self, DEFAULT_MOUNTS, MASKED_PATHS, READONLY_PATHS};
use hull_e2e_runtime::{require_root, Case, Out};
use serde_json::json;

/// (mount point, fs type, options) of each line of the container's /proc/mounts in `out`,
/// printed between "mounts-begin" and "mounts-end" lines.
fn proc_mounts(out: &Out) -> Vec<(String, String, String)> {
    out.stdout
        .lines()
        .skip_while(|l| *l != "mounts-begin")
        .skip(1)
        .take_while(|l| *l != "mounts-end")
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f[1].to_string(), f[2].to_string(), f[3].to_string())
        })
        .collect()
}

const SHOW_MOUNTS: &str = "echo mounts-begin; cat /proc/mounts; echo mounts-end";

#[test]
fn rootfs_is_root_and_no_host_mount_shows() {
    require_root!();
    let c = Case::new(
        "mnt-root",
        &["sh", "-c", &format!("cat /marker; {SHOW_MOUNTS}")],
    );
    std::fs::write(c.rootfs.join("marker"), format!("{}\n", c.id)).unwrap();
    let out = c.run().ok();
    assert_eq!(
        out.stdout.lines().next(),
        Some(c.id.as_str()),
        "/ is not the rootfs: {out}"
    );
    let allowed: BTreeSet<&str> = ["/"]
        .iter()
        .chain(DEFAULT_MOUNTS)
        .chain(MASKED_PATHS)
        .chain(READONLY_PATHS)
        .copied()
        .collect();
    let mounts = proc_mounts(&out);
    assert!(mounts.iter().any(|m| m.0 == "/"), "no / in {mounts:?}");
    for (point, ..) in &mounts {
        assert!(
            allowed.contains(point.as_str()),
            "unexpected mount {point} in container: {out}"
        );
    }
    let dir = c.dir.to_string_lossy();
    assert!(
        !out.stdout.contains(dir.as_ref()),
        "host path {dir} shows in /proc/mounts: {out}"
    );
}

#[test]
fn tmpfs_mount_with_options() {
    require_root!();
    let script = format!(
        "stat -c mode=%a /mnt/t; cp /probe /mnt/t/p && /mnt/t/p fds >/dev/null; echo exec=$?; \
         {SHOW_MOUNTS}"
    );
    let mut c = Case::new("mnt-tmpfs", &["sh", "-c", &script]);
    c.mount(
        json!({ "destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"] }),
    );
    let out = c.run().ok();
    assert_eq!(out.must_line("mode="), "mode=1770");
    assert_eq!(
        out.must_line("exec="),
        "exec=126",
        "noexec not applied: {out}"
    );
    let mounts = proc_mounts(&out);
    let (_, fstype, opts) = mounts
        .iter()
        .find(|m| m.0 == "/mnt/t")
        .expect("no /mnt/t mount");
    assert_eq!(fstype, "tmpfs");
    let opts: Vec<&str> = opts.split(',').collect();
    for want in ["rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=1770"] {
        assert!(opts.contains(&want), "{want} missing from {opts:?}");
    }
}

#[test]
fn bind_mounts_rw_and_ro() {
    require_root!();
    let script = "cat /rw/host-file /ro/host-file; echo from-container > /rw/new; \
                  /probe touch /ro/new";
    let mut c = Case::new("mnt-bind", &["sh", "-c", script]);
    let (rw, ro) = (c.dir.join("rw"), c.dir.join("ro"));
    for (d, text) in [(&rw, "rw-content\n"), (&ro, "ro-content\n")] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("host-file"), text).unwrap();
    }
    c.mount(spec::bind(&rw, "/rw", false))
        .mount(spec::bind(&ro, "/ro", true));
    let out = c.run();
    assert!(out.stdout.starts_with("rw-content\nro-content\n"), "{out}");
    assert_eq!(
        std::fs::read_to_string(rw.join("new")).unwrap(),
        "from-container\n"
    );
    assert_eq!(
        out.must_line("touch:"),
        "touch: errno=30 (EROFS)",
        "ro bind is writable"
    );
    assert!(!ro.join("new").exists());
}

#[test]
fn readonly_root() {
    require_root!();
    let script = "/probe touch /x; /probe touch /tmp/x; /probe touch /dev/shm/x";
    let mut c = Case::new("mnt-roroot", &["sh", "-c", script]);
    let out = c.run();
    assert_eq!(
        out.stdout, "touch: ok\ntouch: ok\ntouch: ok\n",
        "rw root: {out}"
    );
    c.spec["root"]["readonly"] = json!(true);
    let out = c.run();
    let want = "touch: errno=30 (EROFS)\ntouch: errno=30 (EROFS)\ntouch: ok\n";
    assert_eq!(out.stdout, want, "readonly root: {out}");
}

#[test]
fn masked_paths_are_empty() {
    require_root!();
    let mut c = Case::new("mnt-masked", &["true"]);
    std::fs::create_dir(c.rootfs.join("secret-dir")).unwrap();
    std::fs::write(c.rootfs.join("secret-dir/s"), "secret").unwrap();
    std::fs::write(c.rootfs.join("secret-file"), "secret").unwrap();
    let mut paths: Vec<&str> = MASKED_PATHS
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    paths.extend(["/secret-dir", "/secret-file"]);
    let mut script = String::new();
    for p in &paths {
        script.push_str(&format!(
            "if [ -d {p} ]; then echo \"{p} $(ls -A {p} | wc -l)\"; \
             else echo \"{p} $(cat {p} | wc -c)\"; fi; "
        ));
    }
    script.push_str(&format!("/probe touch /secret-dir/x; {SHOW_MOUNTS}"));
    c.args(&["sh", "-c", &script]);
    c.spec["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .extend(["/secret-dir", "/secret-file"].map(|p| json!(p)));
    let out = c.run().ok();
    for p in &paths {
        assert_eq!(
            out.must_line(&format!("{p} ")),
            format!("{p} 0"),
            "{p} not masked: {out}"
        );
    }
    assert_eq!(
        out.must_line("touch:"),
        "touch: errno=30 (EROFS)",
        "masked dir writable"
    );
    let mounts = proc_mounts(&out);
    let m = mounts
        .iter()
        .find(|m| m.0 == "/secret-dir")
        .expect("masked dir not a mount");
    assert_eq!(m.1, "tmpfs", "masked dir is not a tmpfs: {m:?}");
    assert!(
        m.2.split(',').any(|o| o == "ro"),
        "masked dir mount not ro: {m:?}"
    );
}

#[test]
fn readonly_paths_refuse_writes() {
    require_root!();
    let script = "cat /proc/sys/kernel/hostname; /probe write /proc/sys/kernel/hostname x; \
                  /probe write /proc/sysrq-trigger h; cat /ro-dir/f; /probe touch /ro-dir/x";
    let mut c = Case::new("mnt-ropaths", &["sh", "-c", script]);
    std::fs::create_dir(c.rootfs.join("ro-dir")).unwrap();
    std::fs::write(c.rootfs.join("ro-dir/f"), "readable\n").unwrap();
    c.spec["linux"]["readonlyPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/ro-dir"));
    let out = c.run();
    // Some kernels have no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ=n).
    let sysrq = if Path::new("/proc/sysrq-trigger").exists() {
        "30 (EROFS)"
    } else {
        "2 (ENOENT)"
    };
    let want = format!(
        "hull-e2e\nwrite: errno=30 (EROFS)\nwrite: errno={sysrq}\nreadable\n\
         touch: errno=30 (EROFS)\n"
    );
    assert_eq!(out.stdout, want, "{out}");
}

#[test]
fn dev_is_minimal_and_complete() {
    require_root!();
    let script = format!(
        "for d in null zero full random urandom tty; do echo \"$d $(stat -c '%F %t:%T' /dev/$d)\"; \
         done; echo ptmx $(readlink /dev/ptmx || stat -c '%t:%T' /dev/ptmx); \
         for l in fd stdin stdout stderr; do echo \"$l $(readlink /dev/$l)\"; done; \
         echo zeroread $(head -c 4 /dev/zero | wc -c); echo full; echo x > /dev/full; echo full=$?; \
         echo blocks $(find /dev -type b | wc -l); echo ls $(ls -A /dev); {SHOW_MOUNTS}"
    );
    let c = Case::new("mnt-dev", &["sh", "-c", &script]);
    let out = c.run().ok();
    for (d, num) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
    ] {
        assert_eq!(
            out.must_line(&format!("{d} ")),
            format!("{d} character special file {num}")
        );
    }
    assert_eq!(out.must_line("tty "), "tty character special file 5:0");
    let ptmx = out.must_line("ptmx ");
    assert!(
        ["ptmx pts/ptmx", "ptmx /dev/pts/ptmx", "ptmx 5:2"].contains(&ptmx),
        "{ptmx}"
    );
    assert_eq!(out.must_line("fd "), "fd /proc/self/fd");
    assert_eq!(out.must_line("stdin "), "stdin /proc/self/fd/0");
    assert_eq!(out.must_line("stdout "), "stdout /proc/self/fd/1");
    assert_eq!(out.must_line("stderr "), "stderr /proc/self/fd/2");
    assert_eq!(out.must_line("zeroread "), "zeroread 4");
    assert_ne!(
        out.must_line("full="),
        "full=0",
        "write to /dev/full succeeded"
    );
    assert_eq!(
        out.must_line("blocks "),
        "blocks 0",
        "block devices in /dev: {out}"
    );
    let allowed = [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd",
        "stdin", "stdout", "stderr", "console", "core",
    ];
    for e in out.must_line("ls ")[3..].split(' ') {
        assert!(
            allowed.contains(&e),
            "unexpected /dev/{e} in container: {out}"
        );
    }
    let mounts = proc_mounts(&out);
    for (point, fstype) in [
        ("/dev", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
    ] {
        assert!(
            mounts.iter().any(|m| m.0 == point && m.1 == fstype),
            "{point} {fstype}: {out}"
        );
    }
    assert!(
        mounts
            .iter()
            .any(|m| m.0 == "/dev/mqueue" && m.1 == "mqueue"),
        "{out}"
    );
}
