//! Each rule refused with its message, what a permissive policy lets through, and path tricks.

use std::collections::HashMap;

use super::*;
use crate::docker_types::parse_create_body;

/// A host where a few paths exist (path -> realpath) and some are block devices.
struct FakeHost {
    real: HashMap<PathBuf, PathBuf>,
    block: Vec<PathBuf>,
}

impl HostPaths for FakeHost {
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        self.real.get(path).cloned()
    }
    fn is_block_device(&self, path: &Path) -> bool {
        self.block.iter().any(|b| b == path)
    }
}

fn fake() -> FakeHost {
    let mut real = HashMap::new();
    for (p, r) in [
        ("/", "/"),
        ("/tmp", "/tmp"),
        ("/home", "/home"),
        ("/home/u", "/home/u"),
        ("/var", "/var"),
        ("/var/lib", "/var/lib"),
        ("/run", "/run"),
        ("/dev", "/dev"),
        ("/dev/disk", "/dev/disk"),
        ("/dev/disk/by-id", "/dev/disk/by-id"),
        ("/etc/ssl", "/etc/ssl"),
        ("/tmp/ssl", "/etc/ssl"),
        ("/etc", "/etc"),
        ("/srv", "/srv"),
        ("/srv/www", "/srv/www"),
        ("/tmp/root", "/"),
        ("/home/u/link-to-etc", "/etc"),
        ("/var/run", "/run"),
        ("/var/run/docker.sock", "/run/docker.sock"),
        ("/run/docker.sock", "/run/docker.sock"),
        ("/dev/sda", "/dev/sda"),
        ("/dev/disk/by-id/x", "/dev/sda"),
        ("/dev/mem", "/dev/mem"),
        ("/dev/fuse", "/dev/fuse"),
        ("/var/lib/hull", "/var/lib/hull"),
    ] {
        real.insert(PathBuf::from(p), PathBuf::from(r));
    }
    FakeHost {
        real,
        block: vec![PathBuf::from("/dev/sda")],
    }
}

fn policy() -> Policy {
    Policy::new(Path::new("/var/lib/hull"))
}

fn check_with(hc: &str, policy: &Policy) -> Vec<PolicyViolation> {
    let body = format!(r#"{{"Image":"busybox","HostConfig":{{{hc}}}}}"#);
    let (cfg, host) = parse_create_body(body.as_bytes()).unwrap();
    violations(&cfg, &host, policy, &fake())
}

fn refused(hc: &str) -> String {
    let v = check_with(hc, &policy());
    assert_eq!(v.len(), 1, "{hc}: {v:?}");
    v[0].to_string()
}

#[test]
fn an_ordinary_request_passes() {
    let hc = r#""Binds":["/srv/www:/usr/share/nginx/html:ro","data:/data"],"CapAdd":["NET_RAW","SYS_NICE"],
        "Devices":[{"PathOnHost":"/dev/fuse"}],"Sysctls":{"net.core.somaxconn":"1024"},
        "SecurityOpt":["no-new-privileges"],"DeviceCgroupRules":["c 10:229 rwm"],"NetworkMode":"bridge""#;
    assert_eq!(check_with(hc, &policy()), []);
}

#[test]
fn each_rule_names_the_parameter_and_the_way_to_allow_it() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#""Privileged":true"#,
            &[
                "HostConfig.Privileged",
                "--allow-privileged",
                "--allow-privileged",
            ],
        ),
        (
            r#""CapAdd":["sys_admin"]"#,
            &[
                "HostConfig.CapAdd",
                "CAP_SYS_ADMIN",
                "--allow-cap CAP_SYS_ADMIN",
            ],
        ),
        (r#""CapAdd":["ALL"]"#, &["ALL", "--allow-cap ALL"]),
        (
            r#""PidMode":"host""#,
            &["HostConfig.PidMode", "--allow-host-namespaces"],
        ),
        (r#""NetworkMode":"host""#, &["HostConfig.NetworkMode"]),
        (r#""IpcMode":"host""#, &["HostConfig.IpcMode"]),
        (r#""UTSMode":"host""#, &["HostConfig.UTSMode"]),
        (r#""CgroupnsMode":"host""#, &["HostConfig.CgroupnsMode"]),
        (
            r#""UsernsMode":"host""#,
            &["HostConfig.UsernsMode", "--allow-userns-host"],
        ),
        (
            r#""Binds":["/:/host"]"#,
            &["HostConfig.Binds[0]", "denied_bind_paths"],
        ),
        (r#""Binds":["/etc:/h"]"#, &["HostConfig.Binds[0]", "/etc"]),
        (r#""Binds":["/proc/1/root:/h"]"#, &["/proc"]),
        (
            r#""Binds":["/var/run/docker.sock:/var/run/docker.sock"]"#,
            &["/run/docker.sock"],
        ),
        (r#""Binds":["/run/hull:/h"]"#, &["/run/hull"]),
        (r#""Binds":["/var/lib:/h"]"#, &["/var/lib/hull"]),
        (
            r#""Mounts":[{"Type":"bind","Source":"/boot","Target":"/b"}]"#,
            &["HostConfig.Mounts[0].Source", "/boot"],
        ),
        (
            r#""Devices":[{"PathOnHost":"/dev/sda"}]"#,
            &["HostConfig.Devices[0].PathOnHost", "--allow-host-devices"],
        ),
        (
            r#""Devices":[{"PathOnHost":"/dev/disk/by-id/x"}]"#,
            &["/dev/sda"],
        ),
        (r#""Devices":[{"PathOnHost":"/dev/mem"}]"#, &["/dev/mem"]),
        (
            r#""DeviceCgroupRules":["b 8:* rwm"]"#,
            &["HostConfig.DeviceCgroupRules[0]"],
        ),
        (
            r#""DeviceCgroupRules":["c 1:1 r"]"#,
            &["HostConfig.DeviceCgroupRules[0]"],
        ),
        (
            r#""SecurityOpt":["seccomp=unconfined"]"#,
            &["seccomp=unconfined", "--allow-unconfined-seccomp"],
        ),
        (
            r#""SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]"#,
            &["defaultAction"],
        ),
        (
            r#""SecurityOpt":["apparmor=unconfined"]"#,
            &["apparmor=unconfined", "--allow-unconfined-apparmor"],
        ),
        (
            r#""SecurityOpt":["systempaths=unconfined"]"#,
            &["systempaths=unconfined", "--allow-privileged"],
        ),
        (
            r#""MaskedPaths":[]"#,
            &["HostConfig.MaskedPaths", "/proc/asound"],
        ),
        (
            r#""ReadonlyPaths":["/proc/bus"]"#,
            &["HostConfig.ReadonlyPaths", "/proc/fs"],
        ),
        (
            r#""Sysctls":{"kernel.panic":"1"}"#,
            &["HostConfig.Sysctls", "kernel.panic"],
        ),
    ];
    for (hc, words) in cases {
        let msg = refused(hc);
        for w in *words {
            assert!(msg.contains(w), "{hc}: {msg:?} lacks {w:?}");
        }
    }
}

#[test]
fn path_tricks_are_seen_through() {
    for bind in [
        "/srv/../etc:/h",
        "//etc:/h",
        "/etc/:/h",
        "/srv/./../:/h",
        "/tmp/root:/h",
        "/tmp/root/etc/shadow:/h",
        "/home/u/link-to-etc:/h",
        "/var/run/docker.sock:/s",
        "/../../etc/passwd:/h",
        "/tmp/ssl/../shadow:/h",
        "/nowhere/../etc:/h",
    ] {
        let msg = refused(&format!(r#""Binds":["{bind}"]"#));
        assert!(msg.contains("refused by policy"), "{bind}: {msg}");
    }
    assert_eq!(normalize(Path::new("//a/./b/../c/")), PathBuf::from("/a/c"));
    assert_eq!(normalize(Path::new("/../..")), PathBuf::from("/"));
    assert_eq!(
        resolve(Path::new("/tmp/root/etc/x"), &fake()),
        PathBuf::from("/etc/x")
    );
}

#[test]
fn other_daemons_sockets_and_state_are_refused() {
    for bind in [
        "/run/containerd/containerd.sock:/s",
        "/run/crio/crio.sock:/s",
        "/run/podman/podman.sock:/s",
        "/run/systemd/private:/s",
        "/run/dbus/system_bus_socket:/s",
        "/var/lib/docker:/d",
        "/var/lib/containerd/x:/d",
        "/var/lib/hull/volumes/v/_data:/d",
        "/run:/r",
        "/var/lib:/l",
    ] {
        let msg = refused(&format!(r#""Binds":["{bind}"]"#));
        assert!(msg.contains("refused by policy"), "{bind}: {msg}");
    }
    let v = check_with(
        r#""Mounts":[{"Type":"bind","Source":"/run/containerd","Target":"/c"}]"#,
        &policy(),
    );
    assert!(
        matches!(v.as_slice(), [PolicyViolation::BindDenied { .. }]),
        "{v:?}"
    );
}

#[test]
fn a_permissive_policy_lets_it_through() {
    let mut p = policy();
    p.allow_privileged = true;
    p.allow_host_namespaces = true;
    p.allow_userns_host = true;
    p.allow_host_devices = true;
    p.allow_unconfined_seccomp = true;
    p.allow_unconfined_apparmor = true;
    p.allowed_caps = vec!["SYS_ADMIN".into(), "CAP_NET_ADMIN".into()];
    let hc = r#""Privileged":true,"CapAdd":["CAP_SYS_ADMIN","net_admin"],"PidMode":"host","NetworkMode":"host",
        "UsernsMode":"host","Devices":[{"PathOnHost":"/dev/sda"}],"SecurityOpt":["seccomp=unconfined","apparmor=unconfined"],
        "MaskedPaths":[]"#;
    assert_eq!(check_with(hc, &p), []);
    // Still never: host-wide sysctls.
    assert_eq!(
        check_with(r#""Sysctls":{"vm.swappiness":"0"}"#, &p).len(),
        1
    );
}

#[test]
fn bind_prefixes() {
    let mut p = policy();
    p.allowed_bind_prefixes = vec!["/srv".into(), "/etc/localtime".into()];
    assert_eq!(
        check_with(
            r#""Binds":["/srv/www:/w","/etc/localtime:/etc/localtime:ro"]"#,
            &p
        ),
        []
    );
    let v = check_with(r#""Binds":["/opt:/o"]"#, &p);
    assert!(v[0].to_string().contains("allowed_bind_prefixes"), "{v:?}");
    let v = check_with(r#""Binds":["/etc/shadow:/s","/etc:/e"]"#, &p);
    assert_eq!(
        v.len(),
        2,
        "an opened subtree opens nothing beside or above it: {v:?}"
    );
    // check() returns the first.
    let (cfg, host) =
        parse_create_body(br#"{"HostConfig":{"Privileged":true,"PidMode":"host"}}"#).unwrap();
    assert_eq!(
        check(&cfg, &host, &policy(), &fake()),
        Err(PolicyViolation::Privileged)
    );
}

#[test]
fn the_real_filesystem_resolves_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("root");
    std::os::unix::fs::symlink("/", &link).unwrap();
    assert_eq!(
        resolve(&link.join("etc/../etc"), &HostFs),
        PathBuf::from("/etc")
    );
    assert!(!HostFs.is_block_device(Path::new("/dev/null")));
    let bind = format!(r#""Binds":["{}:/h"]"#, link.display());
    let body = format!(r#"{{"HostConfig":{{{bind}}}}}"#);
    let (cfg, host) = parse_create_body(body.as_bytes()).unwrap();
    let e = check(&cfg, &host, &policy(), &HostFs).unwrap_err();
    assert!(matches!(e, PolicyViolation::BindDenied { .. }), "{e}");
}
