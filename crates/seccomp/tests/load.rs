//! Behaviour tests: real filters loaded into real processes. No root needed.
//!
//! A loaded filter stays with a process for good, so each scenario runs in a child: the test
//! re-executes this test binary for itself alone (`--exact <name>`, with `HULL_SECCOMP_CHILD`
//! set), the child sets no_new_privs, loads a filter and checks syscall outcomes, and the parent
//! asserts on the child's exit status and on a marker line the child prints last (so that a
//! child that ran no test cannot pass).
//!
//! Every denial is checked against an errno the unfiltered call cannot return, or against a
//! baseline taken before the filter was loaded.

#![deny(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hull_seccomp::{compile, default_profile, Arch};
use nix::errno::Errno;
use oci_spec::runtime::LinuxSeccomp;

const CHILD_ENV: &str = "HULL_SECCOMP_CHILD";
const DONE: &str = "HULL_SECCOMP_CHILD_DONE";

/// Docker's default capability set (no CAP_SYS_ADMIN, no CAP_SYS_PTRACE).
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// In the child: set no_new_privs and run `scenario`. In the parent: run this test again in a
/// child and check that the scenario ran to its end there.
fn in_child(test_name: &str, scenario: fn()) {
    in_child_with(test_name, true, scenario);
}

/// [`in_child`], setting no_new_privs in the child only if `no_new_privs`.
fn in_child_with(test_name: &str, no_new_privs: bool, scenario: fn()) {
    if std::env::var(CHILD_ENV).as_deref() == Ok(test_name) {
        if no_new_privs {
            nix::sys::prctl::set_no_new_privs().expect("set no_new_privs");
        }
        scenario();
        println!("{DONE} {test_name}");
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test_name)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child for {test_name} failed: {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("{DONE} {test_name}")),
        "child for {test_name} did not run the scenario\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    print!("{stdout}");
}

fn spec(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test spec is valid OCI")
}

fn docker_caps() -> Vec<String> {
    DOCKER_CAPS.iter().map(|s| s.to_string()).collect()
}

/// Raw syscalls for the calls nix does not wrap (keyctl, userfaultfd, ...) and for argument
/// values a typed wrapper cannot express (a socket family with high bits set).
#[allow(unsafe_code)]
mod raw {
    use nix::errno::Errno;

    /// syscall(2) with integer arguments. A NULL pointer (0) is the only pointer callers pass.
    fn syscall(nr: libc::c_long, args: [u64; 5]) -> Result<i64, Errno> {
        let [a, b, c, d, e] = args.map(|v| v as libc::c_long);
        // SAFETY: the arguments are plain integers or NULL; the kernel validates them and fails
        // with EFAULT rather than touching memory for a NULL pointer, so no Rust-visible memory
        // is read or written.
        let ret = unsafe { libc::syscall(nr, a, b, c, d, e) };
        if ret == -1 {
            Err(Errno::last())
        } else {
            Ok(ret)
        }
    }

    pub fn getppid() -> Result<i64, Errno> {
        syscall(libc::SYS_getppid, [0; 5])
    }
    pub fn dup3(old: i32, new: i32) -> Result<i64, Errno> {
        syscall(libc::SYS_dup3, [old as u64, new as u64, 0, 0, 0])
    }
    pub fn close(fd: i64) {
        let _ = syscall(libc::SYS_close, [fd as u64, 0, 0, 0, 0]);
    }
    /// keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create = 0)
    pub fn keyctl_get_session_keyring() -> Result<i64, Errno> {
        syscall(libc::SYS_keyctl, [0, (-3i64) as u64, 0, 0, 0])
    }
    pub fn userfaultfd() -> Result<i64, Errno> {
        let r = syscall(libc::SYS_userfaultfd, [libc::O_CLOEXEC as u64, 0, 0, 0, 0]);
        if let Ok(fd) = r {
            close(fd);
        }
        r
    }
    pub fn socket(family: u64) -> Result<i64, Errno> {
        let r = syscall(
            libc::SYS_socket,
            [family, libc::SOCK_STREAM as u64, 0, 0, 0],
        );
        if let Ok(fd) = r {
            close(fd);
        }
        r
    }
    /// io_uring_setup(1, NULL): EFAULT where io_uring is allowed.
    pub fn io_uring_setup() -> Result<i64, Errno> {
        syscall(libc::SYS_io_uring_setup, [1, 0, 0, 0, 0])
    }
    /// perf_event_open(NULL, 0, -1, -1, 0): EFAULT where allowed.
    pub fn perf_event_open() -> Result<i64, Errno> {
        syscall(libc::SYS_perf_event_open, [0, 0, u64::MAX, u64::MAX, 0])
    }
    /// bpf(BPF_MAP_CREATE, NULL, 0).
    pub fn bpf() -> Result<i64, Errno> {
        syscall(libc::SYS_bpf, [0, 0, 0, 0, 0])
    }
    /// name_to_handle_at(AT_FDCWD, NULL, NULL, NULL, 0): EFAULT where allowed.
    pub fn name_to_handle_at() -> Result<i64, Errno> {
        syscall(
            libc::SYS_name_to_handle_at,
            [libc::AT_FDCWD as u64, 0, 0, 0, 0],
        )
    }
    /// clone3(NULL, 0): EINVAL where allowed.
    pub fn clone3() -> Result<i64, Errno> {
        syscall(libc::SYS_clone3, [0, 0, 0, 0, 0])
    }
}

/// A scratch directory removed when dropped, also when an assertion fails first.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn enosys_errno_rule() {
    let scratch = Scratch::new("hull-seccomp");
    let dir = &scratch.0;
    // Unfiltered, both work.
    assert!(raw::getppid().expect("getppid") > 0);
    std::fs::create_dir(dir).expect("mkdir before the filter");

    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid", "mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    ))
    .unwrap();
    assert!(filter.load().unwrap().is_none());

    assert_eq!(raw::getppid(), Err(Errno::ENOSYS));
    let err = std::fs::create_dir(dir.join("sub")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSYS), "{err}");
    // Everything else still works.
    assert_eq!(nix::unistd::getpid().as_raw() as u32, std::process::id());
    std::fs::write(dir.join("file"), b"data").unwrap();
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"data");
}

#[test]
fn errno_rule_returns_its_errno() {
    in_child("errno_rule_returns_its_errno", enosys_errno_rule);
}

fn argument_conditions() {
    let fd = std::fs::File::open("/proc/self/stat").unwrap();
    let fd = fd.as_raw_fd();
    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
         "args": [{"index": 1, "value": 100, "op": "SCMP_CMP_EQ"}]},
        {"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 18,
         "args": [{"index": 1, "value": 65280, "valueTwo": 512, "op": "SCMP_CMP_MASKED_EQ"},
                  {"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
    filter.load().unwrap();

    // Denied: newfd 100 exactly; newfd 512..=767 with flags 0 (both comparisons hold).
    assert_eq!(raw::dup3(fd, 100), Err(Errno::EXDEV));
    assert_eq!(raw::dup3(fd, 600), Err(Errno::EXDEV));
    // Allowed: the neighbours.
    for newfd in [99, 101, 300, 800] {
        let got = raw::dup3(fd, newfd).unwrap_or_else(|e| panic!("dup3(_, {newfd}): {e}"));
        assert_eq!(got, i64::from(newfd));
        raw::close(got);
    }
}

#[test]
fn argument_condition_denies_only_matching_values() {
    in_child(
        "argument_condition_denies_only_matching_values",
        argument_conditions,
    );
}

/// What the default profile must deny, each with the errno it must give.
fn default_profile_denials(expected: Errno) {
    assert_eq!(raw::keyctl_get_session_keyring(), Err(expected), "keyctl");
    assert_eq!(raw::userfaultfd(), Err(expected), "userfaultfd");
    assert_eq!(raw::io_uring_setup(), Err(expected), "io_uring_setup");
    assert_eq!(raw::perf_event_open(), Err(expected), "perf_event_open");
    assert_eq!(raw::bpf(), Err(expected), "bpf");
    assert_eq!(raw::name_to_handle_at(), Err(expected), "name_to_handle_at");
    assert_eq!(
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER),
        Err(expected),
        "unshare(CLONE_NEWUSER)"
    );
    assert_eq!(
        raw::socket(libc::AF_VSOCK as u64),
        Err(expected),
        "socket(AF_VSOCK)"
    );
    assert_eq!(
        raw::socket(libc::AF_ALG as u64),
        Err(expected),
        "socket(AF_ALG)"
    );
    if cfg!(target_pointer_width = "64") {
        // The kernel reads the family as an int: 1 << 32 | AF_VSOCK would be AF_VSOCK.
        let sneaky = (1u64 << 32) | libc::AF_VSOCK as u64;
        assert_eq!(
            raw::socket(sneaky),
            Err(expected),
            "socket(1 << 32 | AF_VSOCK)"
        );
    }
    // clone3 fails with ENOSYS so that libc falls back to clone.
    assert_eq!(raw::clone3(), Err(Errno::ENOSYS), "clone3");
}

/// What the default profile must keep working.
fn default_profile_keeps_working() {
    assert_eq!(nix::unistd::getpid().as_raw() as u32, std::process::id());
    let scratch = Scratch::new("hull-seccomp-default");
    let dir = &scratch.0;
    std::fs::create_dir(dir).unwrap();
    std::fs::write(dir.join("file"), b"data").unwrap();
    assert_eq!(std::fs::read(dir.join("file")).unwrap(), b"data");
    drop(scratch);
    for family in [libc::AF_UNIX, libc::AF_INET] {
        let fd = raw::socket(family as u64).unwrap_or_else(|e| panic!("socket({family}): {e}"));
        assert!(fd >= 0);
    }
    // A thread (glibc tries clone3, gets ENOSYS, falls back to clone) and a process.
    assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7);
    let status = Command::new("true").status().expect("spawn true");
    assert!(status.success());
}

fn default_profile_scenario() {
    // Baselines: unfiltered, none of these fails with EPERM for a root or unprivileged user on
    // a usual kernel; if one does, the errno-marker test below still proves the filter.
    let baselines = [
        ("keyctl", raw::keyctl_get_session_keyring()),
        ("io_uring_setup", raw::io_uring_setup()),
        ("name_to_handle_at", raw::name_to_handle_at()),
        ("socket(AF_VSOCK)", raw::socket(libc::AF_VSOCK as u64)),
        ("clone3", raw::clone3()),
    ];
    for (name, result) in &baselines {
        println!("baseline {name}: {result:?}");
    }

    let profile = default_profile(&docker_caps(), Arch::native()).unwrap();
    let start = Instant::now();
    let filter = compile(&profile).unwrap();
    let compiled = start.elapsed();
    let start = Instant::now();
    assert!(filter.load().unwrap().is_none());
    println!(
        "default profile: compile {compiled:?} (first in this process), load {:?}",
        start.elapsed()
    );

    for (name, before) in &baselines {
        if *name != "clone3" && *before != Err(Errno::EPERM) {
            println!("{name}: {before:?} before the filter, EPERM after");
        }
    }
    default_profile_denials(Errno::EPERM);
    default_profile_keeps_working();
}

#[test]
fn default_profile_denies_with_eperm_and_keeps_basics_working() {
    in_child(
        "default_profile_denies_with_eperm_and_keeps_basics_working",
        default_profile_scenario,
    );
}

fn default_profile_marker_scenario() {
    // The same profile with a default errno no unfiltered call returns: each denial below is
    // then provably the filter's default action, whatever the kernel or the user.
    let mut profile = default_profile(&docker_caps(), Arch::native()).unwrap();
    profile.set_default_errno_ret(Some(Errno::ENOTUNIQ as u32));
    compile(&profile).unwrap().load().unwrap();
    default_profile_denials(Errno::ENOTUNIQ);
    default_profile_keeps_working();
}

#[test]
fn default_profile_denials_come_from_the_default_action() {
    in_child(
        "default_profile_denials_come_from_the_default_action",
        default_profile_marker_scenario,
    );
}

fn notify_scenario() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags, ScmpSyscall};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/unused.sock",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(filter.uses_notify());
    let fd: OwnedFd = filter.load().unwrap().expect("a notify fd");

    // A thread created after the load inherits the filter; its getppid waits for us.
    let caller = std::thread::spawn(raw::getppid);
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        PollFlags::POLLIN,
    )];
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(Duration::from_secs(10)).unwrap(),
    )
    .unwrap();
    assert_eq!(ready, 1, "no notification within 10 s");
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    assert_eq!(req.data.syscall, ScmpSyscall::from_name("getppid").unwrap());
    ScmpNotifResp::new_val(req.id, 4242, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .unwrap();
    assert_eq!(
        caller.join().unwrap(),
        Ok(4242),
        "getppid answered by the notify fd"
    );
}

#[test]
fn notify_returns_a_working_listener_fd() {
    in_child("notify_returns_a_working_listener_fd", notify_scenario);
}

fn tsync_scenario() {
    // A thread that exists before the load, and waits to call getppid until after it.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let early = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        raw::getppid()
    });
    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    ))
    .unwrap();
    filter.load().unwrap();
    go_tx.send(()).unwrap();
    assert_eq!(
        early.join().unwrap(),
        Err(Errno::ENOSYS),
        "TSYNC reached the other thread"
    );
}

#[test]
fn tsync_flag_filters_existing_threads() {
    in_child("tsync_flag_filters_existing_threads", tsync_scenario);
}

fn load_timing_scenario() {
    // `load` installs the program `compile` generated with one seccomp(2) call; libseccomp's
    // seccomp_load regenerated the BPF and took about 5 ms for this profile. Printed, not
    // asserted: the figure depends on the machine.
    let profile = default_profile(&docker_caps(), Arch::native()).unwrap();
    compile(&profile).unwrap(); // warm up libseccomp's API probing
    let runs = 10u32;
    let start = Instant::now();
    for _ in 0..runs - 1 {
        compile(&profile).unwrap();
    }
    let filter = compile(&profile).unwrap();
    let per_compile = start.elapsed() / runs;
    let bpf = filter.export_bpf().unwrap();

    // Each load stacks one more filter; the kernel allows 32768 instructions over all of them
    // (each counting 4 more), so a few loads of the default profile fit.
    let loads = 4u32;
    let mut times = Vec::new();
    for _ in 0..loads {
        let start = Instant::now();
        assert!(filter.load().unwrap().is_none());
        times.push(start.elapsed());
    }
    println!(
        "default profile ({} BPF instructions, {} build): compile {per_compile:?}, load {:?} \
         (first), {:?} (mean of {loads})",
        bpf.len() / 8,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        times[0],
        times.iter().sum::<Duration>() / loads,
    );
    default_profile_denials(Errno::EPERM);
    default_profile_keeps_working();
}

#[test]
fn default_profile_load_installs_the_compiled_program() {
    in_child(
        "default_profile_load_installs_the_compiled_program",
        load_timing_scenario,
    );
}

fn no_nnp_scenario() {
    // Without no_new_privs, the kernel takes a filter only from a holder of CAP_SYS_ADMIN. Give
    // up every capability (root: switch to nobody), so that a load that set no_new_privs itself
    // would succeed where `load` must fail.
    if nix::unistd::geteuid().is_root() {
        let nobody = nix::unistd::Uid::from_raw(65534);
        nix::unistd::setresuid(nobody, nobody, nobody).expect("setresuid to nobody");
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status.lines().any(|l| l == "CapEff:\t0000000000000000"),
        "capabilities left:\n{status}"
    );
    assert!(!nix::sys::prctl::get_no_new_privs().unwrap());

    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
    ))
    .unwrap();
    match filter.load() {
        Err(hull_seccomp::Error::Load(e)) => {
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}")
        }
        other => panic!("load without no_new_privs or CAP_SYS_ADMIN: {other:?}"),
    }
    assert!(
        !nix::sys::prctl::get_no_new_privs().unwrap(),
        "load set no_new_privs"
    );
    assert!(raw::getppid().expect("getppid unfiltered") > 0);

    nix::sys::prctl::set_no_new_privs().unwrap();
    filter.load().unwrap();
    assert_eq!(raw::getppid(), Err(Errno::ENOSYS));
}

#[test]
fn load_leaves_no_new_privs_to_the_caller() {
    in_child_with(
        "load_leaves_no_new_privs_to_the_caller",
        false,
        no_nnp_scenario,
    );
}

fn tsync_notify_scenario() {
    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    // The kernel takes TSYNC with NEW_LISTENER only together with TSYNC_ESRCH.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let early = std::thread::spawn(move || {
        go_rx.recv().unwrap();
        raw::getppid()
    });
    let filter = compile(&spec(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/unused.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    let fd: OwnedFd = filter.load().unwrap().expect("a notify fd");
    go_tx.send(()).unwrap();

    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        PollFlags::POLLIN,
    )];
    let ready = poll(
        &mut fds,
        PollTimeout::try_from(Duration::from_secs(10)).unwrap(),
    )
    .unwrap();
    assert_eq!(ready, 1, "no notification from the thread TSYNC reached");
    let req = ScmpNotifReq::receive(fd.as_raw_fd()).unwrap();
    ScmpNotifResp::new_val(req.id, 4343, ScmpNotifRespFlags::empty())
        .respond(fd.as_raw_fd())
        .unwrap();
    assert_eq!(early.join().unwrap(), Ok(4343));
}

#[test]
fn tsync_with_notify_filters_existing_threads_and_returns_the_fd() {
    in_child(
        "tsync_with_notify_filters_existing_threads_and_returns_the_fd",
        tsync_notify_scenario,
    );
}
