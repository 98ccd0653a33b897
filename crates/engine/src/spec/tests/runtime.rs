//! The spec hull-engine builds passes hull-runtime's own validation of config.json, and its
//! seccomp section compiles.

use super::*;

/// This process's RLIMIT_NOFILE hard limit, from /proc/self/limits (what the runtime checks
/// against).
fn nofile_hard() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let hard = line.split_whitespace().nth(4).unwrap();
    hard.parse().unwrap_or(u64::MAX)
}

#[test]
fn built_spec_passes_runtime_validation() {
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.0.0.1\n").unwrap();
    let mut host = mock();
    host.nofile_hard = Some(nofile_hard());
    let mut c = ctx(&host);
    c.rootfs = rootfs;
    c.resolv_conf = Some(resolv);
    c.hosts = None;
    c.hostname_file = None;
    let requests = [
        request(
            r#""Tty":true,"Cmd":["sh"]"#,
            r#""NetworkMode":"none","Memory":268435456,"NanoCpus":500000000,
                "Sysctls":{"kernel.shmmax":"1000000"},"Tmpfs":{"/run":""},"CapAdd":["NET_RAW"],
                "Ulimits":[{"Name":"nproc","Soft":100,"Hard":200}],"ReadonlyRootfs":true"#,
        ),
        request("", r#""NetworkMode":"none","Privileged":true"#),
        request(
            "",
            r#""NetworkMode":"none","UsernsMode":"host","PidsLimit":-1"#,
        ),
    ];
    for body in requests {
        let (cfg, hc) = parse_create_body(body.as_bytes()).unwrap();
        let spec = build_spec(ID, &cfg, &hc, &busybox_image(), &c).unwrap();

        // Through JSON, as hulld hands it to the shim.
        let json = serde_json::to_vec_pretty(&spec).unwrap();
        let parsed: Spec = hull_runtime::spec::parse_json(&json).unwrap();
        let limits = hull_runtime::spec::HostLimits {
            can_raise_rlimits: false,
        };
        hull_runtime::spec::validate(&parsed, dir.path(), &limits)
            .unwrap_or_else(|e| panic!("{body}: {e}"));
        if let Some(seccomp) = parsed.linux().as_ref().unwrap().seccomp() {
            hull_seccomp::compile(seccomp).unwrap();
        }
    }
}
