//! Unit tests: no root, nothing loaded into the test process.

use std::time::Instant;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};

use crate::docker::Profile;
use crate::{compile, default_profile, from_docker_json, from_docker_json_for_kernel};
use crate::{Arch, Error, KernelVersion};

/// Docker's default capability set.
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

/// Denied by hull's default profile whatever the capabilities.
const ALWAYS_DENIED: [&str; 13] = [
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "userfaultfd",
    "bpf",
    "perf_event_open",
    "kexec_load",
    "kexec_file_load",
    "open_by_handle_at",
    "name_to_handle_at",
];

/// Denied by hull's default profile without CAP_SYS_ADMIN.
const SYS_ADMIN_ONLY: [&str; 12] = [
    "unshare",
    "setns",
    "mount",
    "umount2",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "sethostname",
];

/// Names in profiles/default.json that libseccomp 2.5.4 (Debian 12) does not know yet;
/// `default_profile` leaves them out on such hosts. Anything else unknown is a typo.
const NEWER_THAN_LIBSECCOMP: [&str; 9] = [
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "setxattrat",
    "mseal",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "uretprobe",
    "open_tree_attr",
];

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn with(extra: &str) -> Vec<String> {
    let mut c = caps(&DOCKER_CAPS);
    c.push(extra.to_owned());
    c
}

fn syscalls(profile: &LinuxSeccomp) -> &[LinuxSyscall] {
    profile.syscalls().as_deref().unwrap_or_default()
}

/// The entries that give `name` an action other than the (errno) default.
fn rules_for<'a>(profile: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    syscalls(profile)
        .iter()
        .filter(|s| s.names().iter().any(|n| n == name))
        .collect()
}

/// Whether some rule allows `name` unconditionally.
fn allowed_always(profile: &LinuxSeccomp, name: &str) -> bool {
    rules_for(profile, name).iter().any(|s| {
        s.action() == LinuxSeccompAction::ScmpActAllow
            && s.args().as_deref().unwrap_or_default().is_empty()
    })
}

/// Whether `name` with these argument values is allowed, evaluating the OCI rules the way the
/// kernel filter does (an entry matches when all its comparisons hold).
fn allows(profile: &LinuxSeccomp, name: &str, args: [u64; 6]) -> bool {
    rules_for(profile, name).iter().any(|s| {
        s.action() == LinuxSeccompAction::ScmpActAllow
            && s.args().as_deref().unwrap_or_default().iter().all(|a| {
                let v = args[a.index()];
                match a.op() {
                    LinuxSeccompOperator::ScmpCmpNe => v != a.value(),
                    LinuxSeccompOperator::ScmpCmpLt => v < a.value(),
                    LinuxSeccompOperator::ScmpCmpLe => v <= a.value(),
                    LinuxSeccompOperator::ScmpCmpEq => v == a.value(),
                    LinuxSeccompOperator::ScmpCmpGe => v >= a.value(),
                    LinuxSeccompOperator::ScmpCmpGt => v > a.value(),
                    LinuxSeccompOperator::ScmpCmpMaskedEq => {
                        v & a.value() == a.value_two().unwrap_or(0)
                    }
                }
            })
    })
}

fn oci(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test spec is valid OCI")
}

#[test]
fn default_profile_compiles_fast_and_exports_bpf() {
    let profile = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    assert_eq!(profile.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(profile.default_errno_ret(), Some(1));
    let arches = profile.architectures().clone().unwrap();
    assert_eq!(
        arches.len(),
        2,
        "x86_64 filters x86 too (not x32): {arches:?}"
    );

    let filter = compile(&profile).unwrap(); // warm up libseccomp's API probing
    let runs = 20;
    let start = Instant::now();
    for _ in 0..runs {
        compile(&profile).unwrap();
    }
    let per_compile = start.elapsed() / runs;
    let start = Instant::now();
    for _ in 0..runs {
        compile(&default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap()).unwrap();
    }
    let per_resolve_and_compile = start.elapsed() / runs;
    println!(
        "default profile (x86_64 + x86): compile {per_compile:?}, default_profile + compile \
         {per_resolve_and_compile:?} ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    assert!(!filter.uses_notify());
    let bpf = filter.export_bpf().unwrap();
    assert!(!bpf.is_empty());
    assert_eq!(
        bpf.len() % 8,
        0,
        "a BPF program is a sequence of 8-byte instructions"
    );
}

#[test]
fn compiled_filter_holds_the_program_libseccomp_generates() {
    // `load` installs `Filter::program` without libseccomp: it must be exactly what libseccomp
    // generates for the filter's rules (what `seccomp_load` would have installed).
    for json in [
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ] {
        check_program(&compile(&oci(json)).unwrap());
    }
    let profile = default_profile(&caps(&DOCKER_CAPS), Arch::native()).unwrap();
    let filter = compile(&profile).unwrap();
    check_program(&filter);
    println!(
        "default profile BPF program: {} instructions",
        filter.program.len()
    );
}

fn check_program(filter: &crate::Filter) {
    let ctx = filter.context().unwrap();
    let fresh = crate::compile::export(&ctx, |ctx, file| ctx.export_bpf(file)).unwrap();
    let held = filter.export_bpf().unwrap();
    assert!(!held.is_empty());
    assert_eq!(held.len(), filter.program.len() * 8);
    assert_eq!(held, fresh, "Filter holds the program libseccomp generates");
}

#[test]
fn kernel_flags_follow_the_spec_and_notify() {
    use hull_sys::seccomp::{
        filter_flags_supported, FILTER_FLAG_LOG, FILTER_FLAG_NEW_LISTENER, FILTER_FLAG_SPEC_ALLOW,
        FILTER_FLAG_TSYNC, FILTER_FLAG_TSYNC_ESRCH,
    };

    let plain = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)).unwrap();
    assert_eq!(plain.kernel_flags, 0);
    let log = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#))
    .unwrap();
    assert_eq!(log.kernel_flags, FILTER_FLAG_LOG | FILTER_FLAG_SPEC_ALLOW);
    let notify = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert_eq!(notify.kernel_flags, FILTER_FLAG_NEW_LISTENER);

    // TSYNC comes with TSYNC_ESRCH where the kernel has it; with NOTIFY the kernel requires it.
    let esrch = if filter_flags_supported(FILTER_FLAG_TSYNC | FILTER_FLAG_TSYNC_ESRCH) {
        FILTER_FLAG_TSYNC_ESRCH
    } else {
        0
    };
    let tsync = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}"#,
    ))
    .unwrap();
    assert_eq!(tsync.kernel_flags, FILTER_FLAG_TSYNC | esrch);
    let tsync_notify = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ));
    match tsync_notify {
        Ok(filter) => {
            assert_eq!(
                filter.kernel_flags,
                FILTER_FLAG_TSYNC | FILTER_FLAG_TSYNC_ESRCH | FILTER_FLAG_NEW_LISTENER
            );
            assert!(filter_flags_supported(filter.kernel_flags));
        }
        // libseccomp refuses the combination itself on kernels without TSYNC_ESRCH.
        Err(err) => assert_eq!(esrch, 0, "{err}"),
    }
}

#[test]
fn default_profile_resolves_and_compiles_for_every_arch() {
    for arch in Arch::ALL {
        let profile = default_profile(&caps(&DOCKER_CAPS), arch).unwrap();
        let main = profile.architectures().clone().unwrap()[0];
        assert_eq!(main, arch.seccomp_arch());
        // libseccomp cannot mix byte orders in one filter: s390x filters only on big-endian hosts.
        if (arch == Arch::S390x) == cfg!(target_endian = "big") {
            compile(&profile).unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
    }
    // Architecture-specific entries follow the architecture.
    let x86_64 = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    let aarch64 = default_profile(&caps(&DOCKER_CAPS), Arch::Aarch64).unwrap();
    assert!(allowed_always(&x86_64, "arch_prctl"));
    assert!(!allowed_always(&aarch64, "arch_prctl"));
    assert!(allowed_always(&aarch64, "set_tls"));
}

#[test]
fn default_profile_data_is_sound() {
    let profile = Profile::parse(crate::DEFAULT_PROFILE_JSON).unwrap();
    assert!(
        !profile.uses_min_kernel(),
        "default_profile resolves without a kernel version"
    );
    for entry in &profile.syscalls {
        for name in &entry.names {
            assert!(
                crate::compile::known_syscall(name)
                    || NEWER_THAN_LIBSECCOMP.contains(&name.as_str()),
                "default.json: {name:?} is unknown to libseccomp and not a known newer syscall"
            );
        }
    }
}

#[test]
fn cap_sys_admin_opens_namespaces_and_mounts() {
    let without = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    let with_admin = default_profile(&with("CAP_SYS_ADMIN"), Arch::X86_64).unwrap();
    assert_ne!(without, with_admin);
    for name in SYS_ADMIN_ONLY {
        assert!(
            rules_for(&without, name).is_empty(),
            "{name} is allowed without CAP_SYS_ADMIN"
        );
        assert!(
            allowed_always(&with_admin, name),
            "{name} not allowed with CAP_SYS_ADMIN"
        );
    }

    // clone: namespace flags only with CAP_SYS_ADMIN.
    let clone_newuser = 0x1000_0000 | 17; // CLONE_NEWUSER | SIGCHLD
    let clone_thread = 0x003d_0f00; // what glibc's pthread_create passes
    assert!(allows(&without, "clone", [clone_thread, 0, 0, 0, 0, 0]));
    assert!(!allows(&without, "clone", [clone_newuser, 0, 0, 0, 0, 0]));
    assert!(!allows(
        &without,
        "clone",
        [0x2000_0000 | 17, 0, 0, 0, 0, 0]
    )); // CLONE_NEWCGROUP
    assert!(allows(&with_admin, "clone", [clone_newuser, 0, 0, 0, 0, 0]));

    // clone3: ENOSYS without CAP_SYS_ADMIN, so that libc falls back to clone.
    let clone3 = rules_for(&without, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(38));
    assert!(allowed_always(&with_admin, "clone3"));
}

#[test]
fn cap_sys_ptrace_and_other_caps_open_their_syscalls() {
    let base = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    for (cap, names) in [
        (
            "CAP_SYS_PTRACE",
            &["ptrace", "process_vm_readv", "process_vm_writev", "kcmp"][..],
        ),
        (
            "CAP_SYS_MODULE",
            &["init_module", "finit_module", "delete_module"],
        ),
        ("CAP_SYS_BOOT", &["reboot"]),
        ("CAP_SYS_TIME", &["settimeofday", "clock_settime"]),
        ("CAP_SYSLOG", &["syslog"]),
        ("CAP_SYS_NICE", &["mbind", "set_mempolicy"]),
        ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
        ("CAP_SYS_PACCT", &["acct"]),
        ("SYS_TTY_CONFIG", &["vhangup"]), // without the CAP_ prefix, as Docker users write it
    ] {
        let opened = default_profile(&with(cap), Arch::X86_64).unwrap();
        for name in names {
            assert!(!allowed_always(&base, name), "{name} allowed without {cap}");
            assert!(
                allowed_always(&opened, name),
                "{name} not allowed with {cap}"
            );
        }
    }
    // CAP_SYS_CHROOT is in Docker's default set.
    assert!(allowed_always(&base, "chroot"));
    let no_chroot: Vec<String> = caps(&DOCKER_CAPS)
        .into_iter()
        .filter(|c| c != "CAP_SYS_CHROOT")
        .collect();
    assert!(!allowed_always(
        &default_profile(&no_chroot, Arch::X86_64).unwrap(),
        "chroot"
    ));
}

#[test]
fn stricter_than_docker_denials_hold_even_with_every_capability() {
    let all_caps: Vec<String> = crate::docker::CAPABILITIES
        .iter()
        .map(|c| c.to_string())
        .collect();
    for arch in Arch::ALL {
        let profile = default_profile(&all_caps, arch).unwrap();
        for name in ALWAYS_DENIED {
            assert!(
                rules_for(&profile, name).is_empty(),
                "{arch}: {name} has a rule: {:?}",
                rules_for(&profile, name)
            );
        }
    }
    let base = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    for name in ALWAYS_DENIED.iter().chain(&SYS_ADMIN_ONLY) {
        assert!(
            !allows(&base, name, [0; 6]),
            "{name} allowed by the default profile"
        );
    }
}

#[test]
fn socket_denies_af_alg_and_af_vsock_only() {
    let profile = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    for family in 0..80u64 {
        let expected = family < 64 && family != 38 && family != 40;
        assert_eq!(
            allows(&profile, "socket", [family, 1, 0, 0, 0, 0]),
            expected,
            "family {family}"
        );
    }
    // The kernel truncates the int family; the filter must not be fooled by high bits.
    assert!(!allows(&profile, "socket", [(1 << 32) | 40, 1, 0, 0, 0, 0]));
    assert!(!allows(&profile, "socket", [(1 << 32) | 38, 1, 0, 0, 0, 0]));
    // Each socket entry has one comparison, so runc's one-rule-per-comparison split cannot
    // widen it.
    for rule in rules_for(&profile, "socket") {
        assert_eq!(rule.args().as_ref().map(Vec::len), Some(1));
    }
}

#[test]
fn personality_allows_only_the_listed_values() {
    let profile = default_profile(&caps(&DOCKER_CAPS), Arch::X86_64).unwrap();
    for ok in [0, 8, 0x20000, 0x20008, 0xffff_ffff] {
        assert!(
            allows(&profile, "personality", [ok, 0, 0, 0, 0, 0]),
            "{ok:#x}"
        );
    }
    for denied in [
        0x0040_0000, /* READ_IMPLIES_EXEC */
        0x0004_0000, /* ADDR_NO_RANDOMIZE */
    ] {
        assert!(
            !allows(&profile, "personality", [denied, 0, 0, 0, 0, 0]),
            "{denied:#x}"
        );
    }
}

#[test]
fn unknown_syscall_is_an_error_naming_the_index() {
    let spec = oci(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getppid", "fooo"], "action": "SCMP_ACT_ERRNO"}]}"#);
    let err = compile(&spec).unwrap_err();
    assert!(matches!(err, Error::UnknownSyscall { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        r#"linux.seccomp.syscalls[1].names[1]: unknown syscall "fooo""#
    );

    // A deny rule with an unknown name would leave the syscall allowed: an error.
    let err = from_docker_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}, {"name": "wrte", "action": "SCMP_ACT_ERRNO"}]}"#,
        &[],
        Arch::X86_64,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"syscalls[1].name: unknown syscall "wrte""#
    );
}

#[test]
fn unknown_syscall_in_an_allow_rule_is_left_out() {
    // Docker's own profiles name syscalls newer than an older libseccomp; runc skips them.
    let s = from_docker_json(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "fooo_at"], "action": "SCMP_ACT_ALLOW"}, {"names": ["barr"], "action": "SCMP_ACT_ALLOW"}]}"#,
        &[],
        Arch::X86_64,
    )
    .unwrap();
    let names: Vec<String> = s
        .syscalls()
        .iter()
        .flatten()
        .flat_map(|e| e.names().clone())
        .collect();
    assert_eq!(names, ["read"]);
}

#[test]
fn names_missing_on_some_arch_are_skipped_there() {
    // socketcall exists on x86 only, _llseek on 32-bit arches only, arch_prctl not on aarch64.
    for archs in [
        r#"["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]"#,
        r#"["SCMP_ARCH_X86_64"]"#,
        r#"["SCMP_ARCH_AARCH64"]"#,
    ] {
        let spec = oci(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "architectures": {archs}, "syscalls": [
            {{"names": ["read", "socketcall", "_llseek", "arch_prctl"], "action": "SCMP_ACT_ALLOW"}}]}}"#
        ));
        compile(&spec).unwrap_or_else(|e| panic!("{archs}: {e}"));
    }
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"defaultAction": "SCMP_ACT_FOO"}"#, r#"defaultAction: unknown action "SCMP_ACT_FOO""#),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALOW"}]}"#,
            r#"syscalls[0].action: unknown action "SCMP_ACT_ALOW""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"]}"#,
            r#"architectures[1]: unknown architecture "SCMP_ARCH_Z80""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["x86"]}]}"#,
            r#"archMap[0].subArchitectures[0]: unknown architecture "x86""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd65"]}}]}"#,
            r#"syscalls[0].includes.arches[0]: unknown architecture "amd65""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQUAL"}]}]}"#,
            r#"syscalls[0].args[0].op: unknown operator "SCMP_CMP_EQUAL""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
            "syscalls[0].args[0].index: argument index 6 is out of range (0..=5)",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}"#,
            "syscalls[0].errnoRet: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}"#,
            "defaultErrnoRet: errnoRet 65536 is out of range (0..=65535)",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]}"#,
            r#"flags[1]: unknown flag "SECCOMP_FILTER_FLAG_FAST""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "exclude": {"caps": ["CAP_SYS_ADMIN"]}}]}"#,
            "syscalls[0].exclude: unknown field",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMN"]}}]}"#,
            r#"syscalls[0].includes.caps[0]: unknown capability "CAP_SYS_ADMN""#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
            r#"syscalls[0].includes.minKernel: invalid kernel version "4" (expected MAJOR.MINOR, e.g. "4.8")"#,
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0].name: cannot be combined with syscalls[0].names",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            "architectures: cannot be combined with archMap",
        ),
        (
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]}"#,
            "syscalls[0].names: expected an array of strings",
        ),
        (r#"{"syscalls": []}"#, "defaultAction: missing"),
    ];
    for (json, expected) in cases {
        let err = from_docker_json(json, &[], Arch::X86_64).unwrap_err();
        assert_eq!(err.to_string(), *expected, "for {json}");
    }
    assert!(matches!(
        from_docker_json("{", &[], Arch::X86_64),
        Err(Error::ParseJson(_))
    ));
}

#[test]
fn compile_checks_errno_ret_and_arg_index() {
    let err = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1}]}"#,
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.seccomp.syscalls[0].errnoRet: errnoRet is only valid"),
        "{err}"
    );

    let err = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5}"#,
    ))
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("linux.seccomp.defaultErrnoRet:"),
        "{err}"
    );

    let err = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.seccomp.syscalls[0].args[0].index: argument index 7 is out of range (0..=5)"
    );
}

#[test]
fn conflicting_rules_are_an_error() {
    // An unconditional allow and a conditional errno for one syscall: libseccomp would keep
    // only the allow.
    let err = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read", "socket"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap_err();
    assert!(matches!(err, Error::ConflictingRules { .. }), "{err:?}");
    assert!(err.to_string().starts_with(
        r#"linux.seccomp.syscalls[1].names[0]: syscall "socket" conflicts with linux.seccomp.syscalls[0].names[1]"#
    ), "{err}");

    // The same action twice, rules equal to the default, and conditional rules with
    // different actions are fine.
    compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["dup"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["dup"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]}]}"#,
    ))
    .unwrap();
}

#[test]
fn comparisons_of_one_argument_become_separate_rules() {
    let filter = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["dup3"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 1, "value": 100, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 110, "op": "SCMP_CMP_LE"}]},
        {"names": ["dup2"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 100, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 110, "op": "SCMP_CMP_LE"}]}]}"#,
    ))
    .unwrap();
    let counts: Vec<usize> = filter.rules.iter().map(|r| r.conditions.len()).collect();
    assert_eq!(counts, [1, 1, 2]);
}

#[test]
fn notify_and_flags() {
    let plain = compile(&oci(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#)).unwrap();
    assert!(!plain.uses_notify());
    let notify = compile(&oci(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"],
        "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    ))
    .unwrap();
    assert!(notify.uses_notify());
    assert!(!notify.export_bpf().unwrap().is_empty());
}

const DOCKER_STYLE: &str = r#"{
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [
        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
        {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}
    ],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "always"},
        {"name": "getpid", "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]}},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
         "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
        {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
        {"names": ["set_tls"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm", "arm64"]}},
        {"names": ["process_vm_readv"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW", "excludes": {"minKernel": "5.10"}},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["SYS_ADMIN"]}}
    ]
}"#;

fn names(profile: &LinuxSeccomp) -> Vec<String> {
    syscalls(profile)
        .iter()
        .flat_map(|s| s.names().clone())
        .collect()
}

#[test]
fn docker_profile_includes_and_excludes() {
    let k = |major, minor| KernelVersion { major, minor };
    let plain = from_docker_json_for_kernel(DOCKER_STYLE, &[], Arch::X86_64, k(6, 1)).unwrap();
    assert_eq!(
        names(&plain),
        [
            "read",
            "write",
            "getpid",
            "clone",
            "arch_prctl",
            "process_vm_readv",
            "clone3"
        ]
    );
    let arches = plain.architectures().clone().unwrap();
    assert_eq!(arches.len(), 3);
    assert_eq!(plain.flags().clone().unwrap().len(), 1);
    let clone = &syscalls(&plain)[2];
    let arg = clone.args().clone().unwrap()[0];
    assert_eq!(
        (arg.value(), arg.value_two(), arg.op()),
        (2114060288, None, LinuxSeccompOperator::ScmpCmpMaskedEq)
    );
    assert_eq!(syscalls(&plain)[5].errno_ret(), Some(38));

    // includes.caps needs all listed caps; excludes.caps drops the entry for any of them.
    let admin = from_docker_json_for_kernel(
        DOCKER_STYLE,
        &caps(&["CAP_SYS_ADMIN"]),
        Arch::X86_64,
        k(6, 1),
    )
    .unwrap();
    assert_eq!(
        names(&admin),
        [
            "read",
            "write",
            "getpid",
            "mount",
            "arch_prctl",
            "process_vm_readv"
        ]
    );
    let both = from_docker_json_for_kernel(
        DOCKER_STYLE,
        &caps(&["sys_admin", "CAP_SYS_PTRACE"]),
        Arch::X86_64,
        k(6, 1),
    )
    .unwrap();
    assert!(names(&both).contains(&"ptrace".to_owned()));

    // Arches use Go's names; archMap picks the sub-architectures.
    let arm = from_docker_json_for_kernel(DOCKER_STYLE, &[], Arch::Aarch64, k(6, 1)).unwrap();
    assert_eq!(
        names(&arm),
        [
            "read",
            "write",
            "getpid",
            "clone",
            "set_tls",
            "process_vm_readv",
            "clone3"
        ]
    );
    assert_eq!(arm.architectures().clone().unwrap().len(), 2);
    let riscv = from_docker_json_for_kernel(DOCKER_STYLE, &[], Arch::Riscv64, k(6, 1)).unwrap();
    assert_eq!(riscv.architectures().clone().unwrap().len(), 1);
    let ppc = from_docker_json_for_kernel(DOCKER_STYLE, &[], Arch::Ppc64le, k(6, 1)).unwrap();
    assert_eq!(
        ppc.architectures(),
        &None,
        "no archMap entry: libseccomp's native architecture only"
    );

    // minKernel: includes needs kernel >= version, excludes drops the entry on such kernels.
    let old = from_docker_json_for_kernel(DOCKER_STYLE, &[], Arch::X86_64, k(4, 4)).unwrap();
    assert!(!names(&old).contains(&"process_vm_readv".to_owned()));
    assert!(names(&old).contains(&"kcmp".to_owned()));

    // The resolved profile compiles, and the running kernel works too.
    compile(&admin).unwrap();
    compile(&from_docker_json(DOCKER_STYLE, &[], Arch::X86_64).unwrap()).unwrap();
}

#[test]
fn kernel_versions_parse() {
    use crate::docker::parse_version;
    assert_eq!(
        parse_version("6.1.0-18-amd64", true),
        Some(KernelVersion { major: 6, minor: 1 })
    );
    assert_eq!(
        parse_version("5.15", false),
        Some(KernelVersion {
            major: 5,
            minor: 15
        })
    );
    assert_eq!(parse_version("5.15.1", false), None);
    assert_eq!(parse_version("5", false), None);
    assert!(KernelVersion::running().is_ok());
}

#[test]
fn arch_names() {
    assert_eq!("amd64".parse::<Arch>().unwrap(), Arch::X86_64);
    assert_eq!("aarch64".parse::<Arch>().unwrap(), Arch::Aarch64);
    assert!("z80".parse::<Arch>().is_err());
    assert!(Arch::ALL.contains(&Arch::native()));
}

#[test]
fn x32_syscalls_do_not_bypass_an_x86_64_filter() {
    // The default profile leaves x32 out. x32 syscalls arrive as AUDIT_ARCH_X86_64 with bit 30
    // set in the number: libseccomp must send them to the bad-arch action, or a deny rule for
    // x86_64 would not apply to their x32 twins.
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    for json in [
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}"#,
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ALLOW"}]}"#,
    ] {
        let bpf = compile(&oci(json)).unwrap().export_bpf().unwrap();
        let x32_check = bpf.chunks(8).any(|insn| {
            let code = u16::from_ne_bytes([insn[0], insn[1]]);
            let k = u32::from_ne_bytes([insn[4], insn[5], insn[6], insn[7]]);
            // BPF_JMP | BPF_JGE | BPF_K against 0x40000000 (or JGT against 0x3fffffff)
            (code == 0x35 && k == 0x4000_0000) || (code == 0x25 && k == 0x3fff_ffff)
        });
        assert!(x32_check, "no x32 check in the BPF for {json}");
    }
}

#[test]
fn filter_can_cross_threads() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send_sync<T: Send + Sync>() {}
    send_sync_clone::<crate::Filter>();
    send_sync::<Error>();
}

#[test]
fn exported_program_bytes_are_checked() {
    use crate::program::from_bytes;

    let ret_allow = 0x0006u16
        .to_ne_bytes()
        .into_iter()
        .chain([0, 0])
        .chain(0x7fff_0000u32.to_ne_bytes())
        .collect::<Vec<u8>>();
    assert_eq!(from_bytes(&ret_allow).unwrap().len(), 1);
    for bad in [&[][..], &ret_allow[..7], &[0u8; 12][..]] {
        let err = from_bytes(bad).unwrap_err();
        assert!(matches!(err, Error::ExportBpf(_)), "{err:?}");
    }
    let err = from_bytes(&ret_allow.repeat(4097)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProgramTooLong {
                instructions: 4097,
                max: 4096
            }
        ),
        "{err:?}"
    );
    assert_eq!(from_bytes(&ret_allow.repeat(4096)).unwrap().len(), 4096);
}
