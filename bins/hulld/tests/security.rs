//! hull's secure defaults (crates/engine/src/defaults.rs) and Docker's security and resource
//! flags, each checked from inside a busybox container run through hulld with the docker CLI.
//!
//! Test name -> what it proves:
//! - `defaults_caps_nnp_seccomp_ping`: DEFAULT_CAPS (CapEff = CapPrm = CapBnd, no NET_RAW,
//!   MKNOD, AUDIT_WRITE: mknod fails), NO_NEW_PRIVILEGES, seccomp mode 2, PING_GROUP_RANGE
//!   (ping 127.0.0.1 works without CAP_NET_RAW).
//! - `defaults_seccomp_denies_syscalls`: the default seccomp profile denies keyctl, add_key,
//!   request_key, io_uring_setup, userfaultfd, bpf, perf_event_open, unshare of namespaces,
//!   AF_ALG and AF_VSOCK sockets; raw and packet sockets fail (no CAP_NET_RAW). The probe is
//!   the host's python3 (ctypes), bound read-only into the container: busybox has no tool
//!   for these syscalls. With `seccomp=unconfined` the same probe succeeds (the probe works).
//! - `defaults_masked_and_readonly_paths`: MASKED_PATHS are empty, READONLY_PATHS are mounted
//!   read-only and writes to them fail.
//! - `defaults_userns_and_pids`: user namespace on by default (uid_map from hull's range; a
//!   root-only host file is unreadable to container root), PIDS_LIMIT 4096, rlimits
//!   (nofile 1024), and a fork bomb under `--pids-limit 20` stops at the limit while the
//!   container and hulld survive.
//! - `flags_refused_by_policy`: `--privileged`, `--cap-add SYS_ADMIN/NET_ADMIN/ALL`,
//!   `seccomp=unconfined`, `--userns=host` answer 403 naming the flag and how to allow it.
//! - `flags_allowed_by_daemon_policy`: with hulld's --allow-* flags, the same requests work:
//!   full CapEff, NET_ADMIN in CapEff, Seccomp 0, identity uid_map.
//! - `flags_caps_and_security_opts`: `--cap-add NET_RAW`, `--cap-drop CHOWN`,
//!   `no-new-privileges`, `seccomp=<Docker JSON profile>` that leaves out mkdir.
//! - `flags_user_readonly_ulimit_sysctl_device`: `--user`, `--read-only`, `--ulimit`,
//!   `--sysctl`, `--device` (and no extra devices by default).
//! - `flags_memory_cpu_limits`: `-m` (limit visible; allocating beyond it: exit 137 and
//!   State.OOMKilled), `--cpus`, `--cpuset-cpus`.

mod common;

use std::path::Path;

use common::{busybox_tar, preflight, Hulld};

const CLI: &str = "/usr/bin/docker";

/// hull's 11 capabilities: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
/// NET_BIND_SERVICE SYS_CHROOT SETFCAP (no NET_RAW 13, MKNOD 27, AUDIT_WRITE 29).
const CAP_MASK: u64 = 0x8004_05fb;

fn run(d: &Hulld, args: &[&str]) -> (i32, String, String) {
    let out = d.docker(CLI, args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `docker run --rm [opts] busybox sh -c script`, asserting exit 0; stdout.
fn sh(d: &Hulld, opts: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    d.ok(CLI, &args)
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("not hex: {s}"))
}

fn daemon(extra: &[&str]) -> Option<Hulld> {
    daemon_in(extra, false)
}

/// `isolated`: in its own network namespace, with the default bridge (and so a network
/// manager that brings each container's lo up; `--bridge none` leaves lo down).
fn daemon_in(extra: &[&str], isolated: bool) -> Option<Hulld> {
    if !preflight(&[]) {
        return None;
    }
    let d = if isolated {
        Hulld::start_isolated_with(extra)
    } else {
        Hulld::start_with(extra)
    };
    d.ok(CLI, &["load", "-i", busybox_tar().to_str().unwrap()]);
    Some(d)
}

/// Every capability the running kernel knows.
fn full_caps() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (1u64 << (last + 1)) - 1
}

#[test]
fn defaults_caps_nnp_seccomp_ping() {
    let Some(d) = daemon(&[]) else { return };
    let status = sh(&d, &[], "cat /proc/self/status");
    for key in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(hex(field(&status, key)), CAP_MASK, "{key} {status}");
    }
    assert_eq!(hex(field(&status, "CapInh:")), 0, "{status}");
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "{status}");
    assert_eq!(field(&status, "Seccomp:"), "2", "{status}");
    // The runtime's rule for a root process: ambient caps stay empty.
    assert_eq!(hex(field(&status, "CapAmb:")), 0, "{status}");

    // No CAP_MKNOD: a device node cannot be made.
    let (code, _, err) = run(
        &d,
        &[
            "run",
            "--rm",
            "busybox",
            "mknod",
            "/tmp/null2",
            "c",
            "1",
            "3",
        ],
    );
    assert_ne!(code, 0, "mknod must fail without CAP_MKNOD: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    // ping_group_range covers every group the user namespace maps (the kernel takes only
    // mapped gids), so ping works without CAP_NET_RAW; `defaults_seccomp_denies_syscalls`
    // pings through an ICMP datagram socket (busybox 1.35's ping only tries a raw socket).
    let out = sh(
        &d,
        &["--network", "none"],
        "cat /proc/sys/net/ipv4/ping_group_range; cat /proc/self/gid_map",
    );
    let nums: Vec<u64> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(nums[0], 0, "{out}");
    assert_eq!(nums[1] + 1, nums[4], "every mapped gid may ping: {out}");
}

/// The probe: one line per attempt, `name ok` or `name ERRNO`.
#[cfg(target_arch = "x86_64")]
const PROBE: &str = r#"
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def sc(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
    print(name, "ok" if r >= 0 else errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
def sock(name, *a):
    try:
        socket.socket(*a).close()
        print(name, "ok")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
sock("af_alg", 38, socket.SOCK_SEQPACKET, 0)
sock("af_vsock", 40, socket.SOCK_STREAM, 0)
sock("raw_icmp", socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
sock("packet", 17, socket.SOCK_RAW, 0)
sock("icmp_dgram", socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
try:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    s.settimeout(10)
    s.sendto(b"\x08\x00\x00\x00\x00\x00\x00\x01hull", ("127.0.0.1", 0))
    reply = s.recv(64)
    print("ping", "ok" if reply[0] == 0 and reply.endswith(b"hull") else reply)
except OSError as e:
    print("ping", errno.errorcode.get(e.errno, e.errno))
sc("getpid", 39)
sc("keyctl", 250, 0, -3, 0)
sc("add_key", 248, b"user", b"hull", b"x", 1, -2)
sc("request_key", 249, b"user", b"hull", None, 0)
sc("io_uring_setup", 425, 1, None)
sc("userfaultfd", 323, 1)
sc("bpf", 321, 0, None, 0)
sc("perf_event_open", 298, None, 0, -1, -1, 0)
sc("mknod", 133, b"/tmp/n", 0o20600, 0x103)
sc("unshare_mount", 272, 0x00020000)
sc("unshare_net", 272, 0x40000000)
sc("unshare_user", 272, 0x10000000)
"#;

/// Runs the probe with the host's python3 (bound read-only) under `opts`: name -> result.
#[cfg(target_arch = "x86_64")]
fn probe(d: &Hulld, opts: &[&str]) -> std::collections::BTreeMap<String, String> {
    assert!(
        Path::new("/usr/bin/python3").exists(),
        "the syscall probe needs the host's /usr/bin/python3 (scripts/install-deps)"
    );
    let mut args = vec![
        "run",
        "--rm",
        "-v",
        "/usr:/usr:ro",
        "-v",
        "/usr/lib:/lib:ro",
        "-v",
        "/usr/lib64:/lib64:ro",
    ];
    args.extend_from_slice(opts);
    args.extend_from_slice(&["busybox", "/usr/bin/python3", "-S", "-c", PROBE]);
    let out = d.ok(CLI, &args);
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn defaults_seccomp_denies_syscalls() {
    let Some(d) = daemon_in(&["--allow-unconfined-seccomp"], true) else {
        return;
    };
    let got = probe(&d, &[]);
    assert_eq!(got.get("getpid").map(String::as_str), Some("ok"), "{got:?}");
    for name in [
        "keyctl",
        "add_key",
        "request_key",
        "io_uring_setup",
        "userfaultfd",
        "bpf",
        "perf_event_open",
        "unshare_user",
        "unshare_mount",
        "unshare_net",
        "mknod",
        "af_alg",
        "af_vsock",
        "raw_icmp",
        "packet",
    ] {
        assert_eq!(
            got.get(name).map(String::as_str),
            Some("EPERM"),
            "{name} must be denied: {got:?}"
        );
    }
    for name in ["icmp_dgram", "ping"] {
        assert_eq!(got.get(name).map(String::as_str), Some("ok"), "{got:?}");
    }
    // ping as a user other than root too (ping_group_range).
    let user = probe(&d, &["--user", "1000:1000"]);
    assert_eq!(user.get("ping").map(String::as_str), Some("ok"), "{user:?}");

    // The same probe without the filter: the syscalls the profile denies now reach the
    // kernel (so the EPERMs above are the filter's).
    let open = probe(&d, &["--security-opt", "seccomp=unconfined"]);
    assert_eq!(
        open.get("keyctl").map(String::as_str),
        Some("ok"),
        "{open:?}"
    );
    assert_eq!(
        open.get("io_uring_setup").map(String::as_str),
        Some("EFAULT"),
        "{open:?}"
    );
    assert_eq!(
        open.get("unshare_user").map(String::as_str),
        Some("ok"),
        "{open:?}"
    );
    // Still no CAP_NET_RAW without the filter (the sockets are tried before unshare).
    assert_eq!(
        open.get("raw_icmp").map(String::as_str),
        Some("EPERM"),
        "{open:?}"
    );
    assert_eq!(
        open.get("af_vsock").map(String::as_str),
        Some("ok"),
        "{open:?}"
    );
}

#[test]
fn defaults_masked_and_readonly_paths() {
    let Some(d) = daemon(&[]) else { return };
    let masked = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    let script = format!(
        "for p in {}; do if [ -d $p ]; then echo \"$p $(ls -A $p | wc -l)\"; \
         elif [ -e $p ]; then echo \"$p $(cat $p 2>/dev/null | wc -c)\"; \
         else echo \"$p absent\"; fi; done",
        masked.join(" ")
    );
    let out = sh(&d, &[], &script);
    let mut checked = 0;
    for p in masked {
        let line = out
            .lines()
            .find(|l| l.split(' ').next() == Some(p))
            .unwrap_or_else(|| panic!("no line for {p}: {out}"));
        if Path::new(p).exists() {
            assert_eq!(line, format!("{p} 0"), "{p} must be empty inside: {out}");
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "the host has too few of the masked paths: {out}"
    );

    // /sys is a sysfs of the container's own network namespace, read-only, even though
    // hulld made that namespace outside the container's user namespace: the host's
    // interfaces are not listed (the fallback, the host's /sys bound, listed them).
    let out = sh(&d, &[], "ls /sys/class/net; grep ' /sys ' /proc/mounts");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("lo"), "/sys/class/net: {out}");
    let mount = lines.next().unwrap_or_default();
    assert!(
        mount.starts_with("sysfs /sys sysfs ro,"),
        "/sys must be a read-only sysfs: {out}"
    );
    assert!(
        std::fs::read_dir("/sys/class/net").unwrap().count() > 1,
        "the host has only lo: the check above proves nothing"
    );

    let readonly = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    let script = format!(
        "for p in {}; do awk -v p=$p '$5 == p {{ print p, $6 }}' /proc/self/mountinfo; done",
        readonly.join(" ")
    );
    let out = sh(&d, &[], &script);
    for p in readonly {
        if !Path::new(p).exists() {
            continue;
        }
        let line = out
            .lines()
            .find(|l| l.split(' ').next() == Some(p))
            .unwrap_or_else(|| panic!("{p} is not a mount of its own: {out}"));
        let opts = line.split(' ').nth(1).unwrap_or("");
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{p} must be read-only: {line}"
        );
    }
    // Writes fail even where the container owns the namespace behind the file.
    for (what, script) in [
        ("/proc/sysrq-trigger", "echo h > /proc/sysrq-trigger"),
        (
            "/proc/sys/net/ipv4/ip_forward",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ),
        (
            "/proc/sys/kernel/hostname",
            "echo x > /proc/sys/kernel/hostname",
        ),
        ("/sys/kernel/mm/ksm/run", "echo 1 > /sys/kernel/mm/ksm/run"),
    ] {
        if !Path::new(what).exists() {
            continue; // not in this kernel
        }
        let (code, _, err) = run(&d, &["run", "--rm", "busybox", "sh", "-c", script]);
        assert_ne!(code, 0, "{what}: the write must fail");
        assert!(
            err.contains("Read-only file system") || err.contains("Permission denied"),
            "{what}: {err}"
        );
    }
}

#[test]
fn defaults_userns_and_pids() {
    let Some(d) = daemon(&[]) else { return };
    let out = sh(
        &d,
        &[],
        "cat /proc/self/uid_map /proc/self/gid_map; \
         cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         ulimit -n; ulimit -Hn",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for map in &lines[..2] {
        let cols: Vec<u64> = map.split_whitespace().map(|c| c.parse().unwrap()).collect();
        assert_eq!(cols[0], 0, "{out}");
        assert!(
            cols[1] >= 65536,
            "container root must be an unprivileged host id: {out}"
        );
        assert!(cols[2] >= 65536, "room for the image's users: {out}");
    }
    // hulld's range: /etc/subuid's `hull` entry, else its built-in hull:1000000:65536000.
    let mut subuid = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    if !subuid.lines().any(|l| l.starts_with("hull:")) {
        subuid = "hull:1000000:65536000".into();
    }
    let host_start: u64 = lines[0].split_whitespace().nth(1).unwrap().parse().unwrap();
    let in_range = subuid.lines().any(|l| {
        let f: Vec<&str> = l.split(':').collect();
        f.len() == 3 && f[0] == "hull" && {
            let (s, n): (u64, u64) = (f[1].parse().unwrap_or(0), f[2].parse().unwrap_or(0));
            host_start >= s && host_start < s + n
        }
    });
    assert!(
        in_range,
        "host uid {host_start} is not in /etc/subuid's hull range: {subuid}"
    );
    assert_eq!(lines[2], "4096", "default pids limit: {out}");
    assert_eq!(lines[3], "1024", "default RLIMIT_NOFILE soft: {out}");
    let hard: u64 = lines[4].parse().unwrap();
    assert!((1024..=1_048_576).contains(&hard), "{out}");

    // Each container its own range: two at once do not share host ids.
    let a = d.ok(CLI, &["run", "-d", "busybox", "sleep", "60"]);
    let b = d.ok(CLI, &["run", "-d", "busybox", "sleep", "60"]);
    let start = |id: &str| -> u64 {
        let map = d.ok(CLI, &["exec", id.trim(), "cat", "/proc/self/uid_map"]);
        map.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (sa, sb) = (start(&a), start(&b));
    assert!(sa.abs_diff(sb) >= 65536, "overlapping ranges: {sa} {sb}");
    d.ok(CLI, &["rm", "-f", a.trim(), b.trim()]);

    // Container root is not host root: a root-only host file stays closed to it.
    let secret = d.dir.path().join("secret");
    std::fs::create_dir(&secret).unwrap();
    std::fs::write(secret.join("key"), "top secret\n").unwrap();
    std::fs::set_permissions(
        secret.join("key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let bind = format!("{}:/secret:ro", secret.display());
    let (code, out, err) = run(
        &d,
        &["run", "--rm", "-v", &bind, "busybox", "cat", "/secret/key"],
    );
    assert_ne!(code, 0, "container root read a root-only host file: {out}");
    assert!(err.contains("Permission denied"), "{err}");

    // A fork bomb under --pids-limit 20 stops at the limit; the container and hulld live on.
    // An inner shell forks until refused (ash gives up at the first refusal); the outer
    // one counts with builtins only (no fork is left), kills the rest and carries on.
    let out = sh(
        &d,
        &["--pids-limit", "20"],
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max; \
         sh -c 'for i in $(seq 40); do sleep 30 & done' 2>/tmp/err; echo inner $?; \
         set -- /proc/[0-9]*; echo running $#; kill -9 -1; wait; \
         cat /tmp/err; echo alive",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"20"), "{out}");
    assert_ne!(lines[1], "inner 0", "the fork bomb must be stopped: {out}");
    let running: u32 = lines[2].strip_prefix("running ").unwrap().parse().unwrap();
    assert!(
        (15..=20).contains(&running),
        "processes up to the limit, not past it: {out}"
    );
    assert!(
        out.contains("can't fork: Resource temporarily unavailable"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"alive"), "{out}");
    d.ok(CLI, &["version"]);
}

#[test]
fn flags_refused_by_policy() {
    let Some(d) = daemon(&[]) else { return };
    for (opts, names) in [
        (
            &["--privileged"][..],
            &["Privileged", "--allow-privileged", "\"allow-privileged\""][..],
        ),
        (
            &["--cap-add", "SYS_ADMIN"],
            &[
                "CAP_SYS_ADMIN",
                "--allow-cap CAP_SYS_ADMIN",
                "\"allow-caps\"",
            ],
        ),
        (
            &["--cap-add", "NET_ADMIN"],
            &["CAP_NET_ADMIN", "--allow-cap CAP_NET_ADMIN"],
        ),
        (&["--cap-add", "ALL"], &["ALL", "--allow-cap ALL"]),
        (
            &["--security-opt", "seccomp=unconfined"],
            &["seccomp=unconfined", "--allow-unconfined-seccomp"],
        ),
        (
            &["--userns", "host"],
            &[
                "--userns=host",
                "--allow-userns-host",
                "\"allow-userns-host\"",
            ],
        ),
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["busybox", "true"]);
        let err = d.fails(CLI, &args);
        assert!(err.contains("refused by policy"), "{opts:?}: {err}");
        for n in names {
            assert!(err.contains(n), "{opts:?}: the message names {n}: {err}");
        }
    }
    // The status code is 403.
    let (code, body) = d.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"Image":"busybox","HostConfig":{"Privileged":true}}"#,
        ],
        "/v1.41/containers/create",
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("\"message\""), "{body}");
}

#[test]
fn flags_allowed_by_daemon_policy() {
    let Some(d) = daemon(&[
        "--allow-privileged",
        "--allow-cap",
        "NET_ADMIN",
        "--allow-unconfined-seccomp",
        "--allow-userns-host",
    ]) else {
        return;
    };
    let status = sh(&d, &["--privileged"], "cat /proc/self/status");
    let hulld = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let bounding = hex(field(&hulld, "CapBnd:"));
    assert_eq!(bounding & !full_caps(), 0);
    assert_eq!(hex(field(&status, "CapEff:")), bounding, "{status}");
    assert_eq!(hex(field(&status, "CapBnd:")), bounding, "{status}");
    // The host's devices, as Docker's --privileged; none of them without it.
    let dev = [
        "/dev/net/tun",
        "/dev/fuse",
        "/dev/loop-control",
        "/dev/kmsg",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("the host has none of /dev/net/tun, /dev/fuse, /dev/loop-control, /dev/kmsg");
    let check = format!("test -c {dev} && echo present || echo absent");
    assert_eq!(sh(&d, &["--privileged"], &check).trim(), "present", "{dev}");
    assert_eq!(sh(&d, &[], &check).trim(), "absent", "{dev}");
    assert_eq!(field(&status, "Seccomp:"), "0", "{status}");

    let status = sh(&d, &["--cap-add", "NET_ADMIN"], "cat /proc/self/status");
    assert_eq!(
        hex(field(&status, "CapEff:")),
        CAP_MASK | 1 << 12,
        "{status}"
    );
    // SYS_ADMIN was not allowed by this daemon.
    let err = d.fails(
        CLI,
        &["run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "true"],
    );
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");

    let status = sh(
        &d,
        &["--security-opt", "seccomp=unconfined"],
        "cat /proc/self/status",
    );
    assert_eq!(field(&status, "Seccomp:"), "0", "{status}");
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "{status}");

    let map = sh(&d, &["--userns", "host"], "cat /proc/self/uid_map");
    let cols: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(cols, ["0", "0", "4294967295"], "{map}");
}

#[test]
fn flags_caps_and_security_opts() {
    let Some(d) = daemon(&[]) else { return };
    // A capability outside the policy's list may be added: NET_RAW, and raw sockets work.
    let status = sh(&d, &["--cap-add", "NET_RAW"], "cat /proc/self/status");
    assert_eq!(
        hex(field(&status, "CapEff:")),
        CAP_MASK | 1 << 13,
        "{status}"
    );

    // --cap-drop CHOWN: chown fails; without it, it works.
    let script = "touch /tmp/f && chown 1000 /tmp/f && stat -c %u /tmp/f";
    assert_eq!(sh(&d, &[], script).trim(), "1000");
    let (code, _, err) = run(
        &d,
        &[
            "run",
            "--rm",
            "--cap-drop",
            "CHOWN",
            "busybox",
            "sh",
            "-c",
            script,
        ],
    );
    assert_ne!(code, 0, "chown without CAP_CHOWN");
    assert!(err.contains("Operation not permitted"), "{err}");
    let status = sh(&d, &["--cap-drop", "chown"], "cat /proc/self/status");
    assert_eq!(hex(field(&status, "CapEff:")), CAP_MASK & !1, "{status}");

    // no-new-privileges: on by default and when asked; off when asked explicitly.
    let status = sh(
        &d,
        &["--security-opt", "no-new-privileges"],
        "cat /proc/self/status",
    );
    assert_eq!(field(&status, "NoNewPrivs:"), "1", "{status}");
    let status = sh(
        &d,
        &["--security-opt", "no-new-privileges=false"],
        "cat /proc/self/status",
    );
    assert_eq!(field(&status, "NoNewPrivs:"), "0", "{status}");

    // A profile in Docker's JSON format: hull's own, less mkdir and mkdirat.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/seccomp/profiles/default.json"),
    )
    .unwrap();
    let mut profile: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut removed = 0;
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            let before = names.len();
            names.retain(|n| n != "mkdir" && n != "mkdirat");
            removed += before - names.len();
        }
    }
    assert!(removed >= 2, "the default profile allows mkdir and mkdirat");
    let file = d.dir.path().join("no-mkdir.json");
    std::fs::write(&file, serde_json::to_vec(&profile).unwrap()).unwrap();
    let opt = format!("seccomp={}", file.display());
    let (code, _, err) = run(
        &d,
        &[
            "run",
            "--rm",
            "--security-opt",
            &opt,
            "busybox",
            "mkdir",
            "/tmp/d",
        ],
    );
    assert_ne!(code, 0, "mkdir under a profile without it");
    assert!(err.contains("Operation not permitted"), "{err}");
    let out = sh(
        &d,
        &["--security-opt", &opt],
        "touch /tmp/f && echo touched && grep Seccomp: /proc/self/status",
    );
    assert!(out.contains("touched"), "{out}");
    // A profile that is not JSON is a 400 naming the problem.
    std::fs::write(&file, "{not json").unwrap();
    let err = d.fails(
        CLI,
        &["run", "--rm", "--security-opt", &opt, "busybox", "true"],
    );
    assert!(err.to_lowercase().contains("seccomp"), "{err}");
}

#[test]
fn flags_user_readonly_ulimit_sysctl_device() {
    let Some(d) = daemon(&[]) else { return };
    let out = sh(&d, &["--user", "1000:1000"], "id -u; id -g");
    assert_eq!(out, "1000\n1000\n");
    // exec -u: names and groups from the container's /etc/passwd and /etc/group, with
    // that user's HOME; an unknown name is refused with its name.
    d.ok(
        CLI,
        &["run", "-d", "--name", "users", "busybox", "sleep", "60"],
    );
    let script = "id -u; id -g; echo $HOME";
    let out = d.ok(CLI, &["exec", "-u", "nobody", "users", "sh", "-c", script]);
    assert_eq!(out, "65534\n65534\n/nonexistent\n");
    let out = d.ok(
        CLI,
        &["exec", "-u", "daemon:root", "users", "sh", "-c", script],
    );
    assert_eq!(out, "1\n0\n/usr/sbin\n");
    let out = d.ok(
        CLI,
        &[
            "exec",
            "-u",
            "1000:1000",
            "users",
            "sh",
            "-c",
            "id -u; id -g",
        ],
    );
    assert_eq!(out, "1000\n1000\n");
    let err = d.fails(CLI, &["exec", "-u", "nosuch", "users", "true"]);
    assert!(err.contains("nosuch"), "{err}");
    d.ok(CLI, &["rm", "-f", "users"]);

    for target in ["/x", "/tmp/x", "/etc/x"] {
        let (code, _, err) = run(
            &d,
            &["run", "--rm", "--read-only", "busybox", "touch", target],
        );
        assert_ne!(code, 0, "--read-only: {target} was written");
        assert!(err.contains("Read-only file system"), "{target}: {err}");
    }
    // /dev/shm stays writable, as in Docker.
    sh(&d, &["--read-only"], "touch /dev/shm/x");

    let out = sh(&d, &["--ulimit", "nofile=100:200"], "ulimit -n; ulimit -Hn");
    assert_eq!(out, "100\n200\n");
    let out = sh(&d, &["--ulimit", "nproc=50:60"], "ulimit -u; ulimit -Hu");
    assert_eq!(out, "50\n60\n");

    let out = sh(
        &d,
        &["--network", "none", "--sysctl", "net.ipv4.ip_forward=1"],
        "cat /proc/sys/net/ipv4/ip_forward",
    );
    assert_eq!(out.trim(), "1");
    let err = d.fails(
        CLI,
        &[
            "run",
            "--rm",
            "--sysctl",
            "kernel.panic=1",
            "busybox",
            "true",
        ],
    );
    assert!(err.contains("kernel.panic"), "{err}");

    // No device but the standard ones by default.
    let out = sh(&d, &[], "ls /dev");
    let devs: Vec<&str> = out.split_whitespace().collect();
    for absent in [
        "kmsg", "mem", "kmem", "port", "sda", "vda", "nvme0", "xnull",
    ] {
        assert!(!devs.contains(&absent), "/dev/{absent}: {out}");
    }
    for present in ["null", "zero", "full", "random", "urandom", "tty"] {
        assert!(devs.contains(&present), "/dev/{present}: {out}");
    }
    let out = sh(
        &d,
        &["--device", "/dev/null:/dev/xnull"],
        "test -c /dev/xnull && echo hi > /dev/xnull && stat -c %t:%T /dev/xnull",
    );
    assert_eq!(out.trim(), "1:3");
    // /dev/kmsg is not there to open, and the device cgroup denies it anyway.
    let (code, _, _) = run(&d, &["run", "--rm", "busybox", "head", "-c1", "/dev/kmsg"]);
    assert_ne!(code, 0);
}

/// The first of `paths` the container can read.
fn cgroup_value(d: &Hulld, opts: &[&str], paths: &[&str]) -> String {
    let script = paths
        .iter()
        .map(|p| format!("cat {p} 2>/dev/null"))
        .collect::<Vec<_>>()
        .join(" || ");
    sh(d, opts, &script).trim().to_string()
}

#[test]
fn flags_memory_cpu_limits() {
    let Some(d) = daemon(&[]) else { return };
    let mem = cgroup_value(
        &d,
        &["-m", "32m"],
        &[
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory.max",
        ],
    );
    assert_eq!(mem, "33554432");

    // Beyond the limit (no swap): the kernel kills it; docker sees 137 and OOMKilled.
    let (code, _, err) = run(
        &d,
        &[
            "run",
            "--name",
            "oom",
            "-m",
            "32m",
            "--memory-swap",
            "32m",
            "busybox",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=128M",
            "count=1",
        ],
    );
    assert_eq!(code, 137, "{err}");
    let oom = d.ok(CLI, &["inspect", "-f", "{{.State.OOMKilled}}", "oom"]);
    assert_eq!(oom.trim(), "true");
    d.ok(CLI, &["rm", "oom"]);
    // A container that stays below is not OOMKilled.
    d.ok(
        CLI,
        &["run", "--name", "fine", "-m", "32m", "busybox", "true"],
    );
    let oom = d.ok(CLI, &["inspect", "-f", "{{.State.OOMKilled}}", "fine"]);
    assert_eq!(oom.trim(), "false");
    d.ok(CLI, &["rm", "fine"]);

    let cpu = cgroup_value(
        &d,
        &["--cpus", "0.5"],
        &[
            "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us",
            "/sys/fs/cgroup/cpu.max",
        ],
    );
    assert!(cpu == "50000" || cpu == "50000 100000", "{cpu}");

    // Beyond the host: 400 at create, as Docker (a cgroup write would fail at start).
    let err = d.fails(CLI, &["run", "--rm", "--cpus", "1000", "busybox", "true"]);
    assert!(err.contains("CPUs available"), "{err}");
    let err = d.fails(
        CLI,
        &["run", "--rm", "--cpuset-cpus", "999", "busybox", "true"],
    );
    assert!(
        err.contains("CpusetCpus") && err.contains("available"),
        "{err}"
    );
    let err = d.fails(
        CLI,
        &["run", "--rm", "--cpuset-mems", "999", "busybox", "true"],
    );
    assert!(
        err.contains("CpusetMems") && err.contains("available"),
        "{err}"
    );
    let err = d.fails(CLI, &["run", "--rm", "-m", "1m", "busybox", "true"]);
    assert!(err.contains("Memory") && err.contains("6MB"), "{err}");

    let out = sh(
        &d,
        &["--cpuset-cpus", "0"],
        "grep Cpus_allowed_list /proc/self/status; nproc",
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["Cpus_allowed_list:", "0", "1"],
        "{out}"
    );
}
