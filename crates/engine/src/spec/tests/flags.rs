//! Each `docker run` flag about security and namespaces mapped into the spec, and its bad
//! values refused by name (`resources.rs`: limits, devices and mounts).

use std::path::Path;

use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, PosixRlimitType};

use super::*;

fn ns_of(s: &Spec, t: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    s.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == t)
        .map(|n| n.path().clone())
}

#[test]
fn cap_add_and_drop() {
    let c = caps(&spec(
        "",
        r#""CapAdd":["net_raw","CAP_SYS_NICE"],"CapDrop":["chown","KILL"]"#,
    ));
    assert!(c.contains(&"CAP_NET_RAW".into()) && c.contains(&"CAP_SYS_NICE".into()));
    assert!(!c.contains(&"CAP_CHOWN".into()) && !c.contains(&"CAP_KILL".into()));
    assert_eq!(c.len(), 11);
    assert_eq!(
        caps(&spec(
            "",
            r#""CapDrop":["ALL"],"CapAdd":["NET_BIND_SERVICE"]"#
        )),
        ["CAP_NET_BIND_SERVICE"]
    );
    let all = caps(&spec("", r#""CapAdd":["ALL"],"CapDrop":["SYS_ADMIN"]"#));
    assert_eq!(all.len(), 40);
    assert!(!all.contains(&"CAP_SYS_ADMIN".into()));
    let e = err("", r#""CapAdd":["NET_RAW","SYS_ADMINN"]"#);
    assert!(
        e.starts_with("CapAdd[1]") && e.contains("SYS_ADMINN"),
        "{e}"
    );
    let e = err("", r#""CapDrop":["bogus"]"#);
    assert!(e.starts_with("CapDrop[0]"), "{e}");
}

#[test]
fn seccomp_follows_the_capabilities_and_security_opts() {
    let allowed = |s: &Spec, name: &str| {
        s.linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .as_ref()
            .unwrap()
            .syscalls()
            .iter()
            .flatten()
            .any(|r| {
                r.action() == oci_spec::runtime::LinuxSeccompAction::ScmpActAllow
                    && r.names().iter().any(|n| n == name)
            })
    };
    assert!(!allowed(&spec("", ""), "ptrace"));
    assert!(
        allowed(&spec("", r#""CapAdd":["SYS_PTRACE"]"#), "ptrace"),
        "profile resolved for the final caps"
    );
    let s = spec("", r#""SecurityOpt":["seccomp=unconfined"]"#);
    assert!(s.linux().as_ref().unwrap().seccomp().is_none());
    let profile = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}"#;
    let opt = serde_json::to_string(&format!("seccomp={profile}")).unwrap();
    let s = spec("", &format!(r#""SecurityOpt":[{opt}]"#));
    assert!(allowed(&s, "write") && !allowed(&s, "open"));
    let e = err("", r#""SecurityOpt":["seccomp={\"defaultAction\":"]"#);
    assert!(e.contains("seccomp profile") && e.contains("JSON"), "{e}");
    let e = err(
        "",
        r#""SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[{\"names\":[\"nosuch\"],\"action\":\"SCMP_ACT_ERRNO\"}]}"]"#,
    );
    assert!(e.contains("syscalls[0].names[0]"), "{e}");
    // An unknown name in an allow rule is left out (runc skips it; it stays denied).
    spec(
        "",
        r#""SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":[{\"names\":[\"nosuch\",\"write\"],\"action\":\"SCMP_ACT_ALLOW\"}]}"]"#,
    );
    let nnp = |opts: &str| {
        spec("", &format!(r#""SecurityOpt":{opts}"#))
            .process()
            .as_ref()
            .unwrap()
            .no_new_privileges()
    };
    assert_eq!(nnp(r#"["no-new-privileges:false"]"#), Some(false));
    assert_eq!(nnp(r#"["no-new-privileges=true"]"#), Some(true));
    assert_eq!(nnp(r#"["no-new-privileges"]"#), Some(true));
    let s = spec(
        "",
        r#""SecurityOpt":["apparmor=hull-default","label=disable"]"#,
    );
    assert_eq!(
        s.process().as_ref().unwrap().apparmor_profile().as_deref(),
        Some("hull-default")
    );
    let e = err("", r#""SecurityOpt":["bogus=1"]"#);
    assert!(e.starts_with("SecurityOpt") && e.contains("bogus=1"), "{e}");
    let s = spec("", r#""SecurityOpt":["systempaths=unconfined"]"#);
    assert!(s
        .linux()
        .as_ref()
        .unwrap()
        .masked_paths()
        .as_ref()
        .unwrap()
        .is_empty());
}

#[test]
fn privileged_gets_everything_and_no_user_namespace() {
    let s = spec("", r#""Privileged":true"#);
    assert_eq!(caps(&s).len(), defaults::ALL_CAPS.len());
    let linux = s.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    assert!(linux.uid_mappings().is_none());
    assert_eq!(ns_of(&s, LinuxNamespaceType::User), None);
    let dev = &linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()[0];
    assert!(dev.allow() && dev.typ() == Some(LinuxDeviceType::A));
    assert_eq!(
        s.process().as_ref().unwrap().no_new_privileges(),
        Some(false)
    );
    let sys = s
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(sys.options().as_ref().unwrap().contains(&"rw".into()));
    // The host's device nodes, as Docker's --privileged (made by the runtime: no userns).
    let nodes = linux.devices().as_ref().unwrap();
    assert!(
        nodes.iter().any(|d| d.path() == Path::new("/dev/sdz")
            && d.typ() == LinuxDeviceType::B
            && (d.major(), d.minor()) == (8, 0)),
        "{nodes:?}"
    );
    let plain = spec("", "");
    let none = plain.linux().as_ref().unwrap().devices().as_ref();
    assert!(none.is_none_or(|d| d.is_empty()), "{none:?}");
    // A daemon that forces user namespaces keeps it; the nodes are then bound.
    let host = mock();
    let mut c = ctx(&host);
    c.userns_for_privileged = true;
    let (cfg, hc) = parse_create_body(request("", r#""Privileged":true"#).as_bytes()).unwrap();
    let s = build_spec(ID, &cfg, &hc, &busybox_image(), &c).unwrap();
    assert!(s.linux().as_ref().unwrap().uid_mappings().is_some());
    assert!(s
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/dev/sdz")
            && m.source().as_deref() == Some(Path::new("/dev/sdz"))));
}

#[test]
fn userns_host_and_daemon_without_userns() {
    let s = spec("", r#""UsernsMode":"host""#);
    assert_eq!(ns_of(&s, LinuxNamespaceType::User), None);
    assert!(s.linux().as_ref().unwrap().uid_mappings().is_none());
    let e = err("", r#""UsernsMode":"keep-id""#);
    assert!(e.starts_with("UsernsMode"), "{e}");
    let host = mock();
    let mut c = ctx(&host);
    c.userns = None;
    let (cfg, hc) = parse_create_body(request("", "").as_bytes()).unwrap();
    let s = build_spec(ID, &cfg, &hc, &busybox_image(), &c).unwrap();
    assert_eq!(ns_of(&s, LinuxNamespaceType::User), None);
}

#[test]
fn pids_readonly_oom_init_labels() {
    let pids = |v: &str| {
        spec("", &format!(r#""PidsLimit":{v}"#))
            .linux()
            .as_ref()
            .unwrap()
            .resources()
            .as_ref()
            .unwrap()
            .pids()
            .as_ref()
            .map(|p| p.limit())
    };
    assert_eq!(pids("100"), Some(100));
    assert_eq!(
        pids("0"),
        Some(4096),
        "0 is what the CLI sends when --pids-limit was not given"
    );
    assert_eq!(pids("-1"), None);
    assert_eq!(pids("null"), Some(4096));
    let s = spec(
        r#""Labels":{"com.docker.compose.service":"web"}"#,
        r#""ReadonlyRootfs":true,"OomScoreAdj":500,"Init":true"#,
    );
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    let resolv = s
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/etc/resolv.conf"))
        .unwrap();
    assert!(resolv.options().as_ref().unwrap().contains(&"ro".into()));
    assert_eq!(s.process().as_ref().unwrap().oom_score_adj(), Some(500));
    let a = s.annotations().as_ref().unwrap();
    assert_eq!(a.get(INIT_ANNOTATION).map(String::as_str), Some("true"));
    assert_eq!(
        a.get("com.docker.compose.service").map(String::as_str),
        Some("web")
    );
    assert!(err("", r#""OomScoreAdj":1001"#).starts_with("OomScoreAdj"));
}

#[test]
fn ulimits() {
    let s = spec(
        "",
        r#""Ulimits":[{"Name":"nofile","Soft":4096,"Hard":8192},{"Name":"core","Soft":0,"Hard":-1}]"#,
    );
    let r = s.process().as_ref().unwrap().rlimits().clone().unwrap();
    assert_eq!(r.len(), 2, "nofile replaced, core added");
    let nofile = r
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (4096, 8192));
    let core = r
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitCore)
        .unwrap();
    assert_eq!(core.hard(), u64::MAX);
    let e = err(
        "",
        r#""Ulimits":[{"Name":"nofile","Soft":1024,"Hard":30000}]"#,
    );
    assert!(
        e.starts_with("Ulimits[0] (nofile)") && e.contains("host's hard limit 20000"),
        "{e}"
    );
    let e = err(
        "",
        r#""Ulimits":[{"Name":"nofile","Soft":2048,"Hard":1024}]"#,
    );
    assert!(
        e.contains("soft limit 2048 is above the hard limit 1024"),
        "{e}"
    );
    let e = err("", r#""Ulimits":[{"Name":"nofiles","Soft":1,"Hard":1}]"#);
    assert!(
        e.starts_with("Ulimits[0]") && e.contains("\"nofiles\""),
        "{e}"
    );
    assert!(
        err("", r#""Ulimits":[{"Name":"nproc","Soft":-5,"Hard":1}]"#).contains("soft limit -5")
    );
}

#[test]
fn sysctls_need_their_namespace() {
    let s = spec(
        "",
        r#""Sysctls":{"net.core.somaxconn":"1024","kernel.shmmax":"1000000","net.ipv4.ping_group_range":"0 0"}"#,
    );
    let sys = s.linux().as_ref().unwrap().sysctl().clone().unwrap();
    assert_eq!(sys["net.core.somaxconn"], "1024");
    assert_eq!(
        sys["net.ipv4.ping_group_range"], "0 0",
        "the request overrides hull's default"
    );
    let e = err("", r#""Sysctls":{"kernel.panic":"1"}"#);
    assert!(
        e.contains("\"kernel.panic\"") && e.contains("not a namespaced"),
        "{e}"
    );
    let e = err(
        "",
        r#""UsernsMode":"host","NetworkMode":"host","Sysctls":{"net.core.somaxconn":"1"}"#,
    );
    assert!(
        e.contains("network namespace") && e.contains("NetworkMode"),
        "{e}"
    );
    let s = spec("", r#""NetworkMode":"host","UsernsMode":"host""#);
    assert!(
        s.linux()
            .as_ref()
            .unwrap()
            .sysctl()
            .as_ref()
            .unwrap()
            .is_empty(),
        "no ping sysctl on the host's netns"
    );
}

#[test]
fn namespace_modes() {
    let s = spec(
        "",
        r#""PidMode":"host","IpcMode":"host","UTSMode":"host","NetworkMode":"host","CgroupnsMode":"host","UsernsMode":"host""#,
    );
    let ns: Vec<LinuxNamespaceType> = s
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    assert_eq!(ns, [LinuxNamespaceType::Mount]);
    assert!(
        s.hostname().is_none(),
        "no hostname on the host's uts namespace"
    );
    let dests = mount_dests(&s);
    let sys = s
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert_eq!(sys.typ().as_deref(), Some("bind"), "{dests:?}");
    let e = err("", r#""PidMode":"host""#);
    assert!(
        e.starts_with("PidMode") && e.contains("UsernsMode=host"),
        "{e}"
    );
    let s = spec(
        "",
        r#""PidMode":"container:other","NetworkMode":"container:other""#,
    );
    assert_eq!(
        ns_of(&s, LinuxNamespaceType::Pid),
        Some(Some("/proc/4242/ns/pid".into()))
    );
    assert_eq!(
        ns_of(&s, LinuxNamespaceType::Network),
        Some(Some("/proc/4242/ns/net".into()))
    );
    assert_eq!(
        ns_of(&s, LinuxNamespaceType::User),
        Some(Some("/proc/4242/ns/user".into())),
        "joins the other's user namespace"
    );
    assert!(s.linux().as_ref().unwrap().uid_mappings().is_none());
    let e = err("", r#""IpcMode":"container:ghost""#);
    assert!(e.starts_with("IpcMode") && e.contains("\"ghost\""), "{e}");
    let e = err("", r#""IpcMode":"sideways""#);
    assert!(e.starts_with("IpcMode"), "{e}");
    let s = spec("", r#""NetworkMode":"none""#);
    assert_eq!(ns_of(&s, LinuxNamespaceType::Network), Some(None));
    let s = spec(r#""NetworkDisabled":true"#, "");
    assert_eq!(ns_of(&s, LinuxNamespaceType::Network), Some(None));
    let host = mock();
    let mut c = ctx(&host);
    c.netns_path = None;
    let (cfg, hc) = parse_create_body(request("", "").as_bytes()).unwrap();
    let e = build_spec(ID, &cfg, &hc, &busybox_image(), &c)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("NetworkMode") && e.contains("\"default\""),
        "{e}"
    );
    let s = spec("", r#""CgroupParent":"tenants/a""#);
    assert_eq!(
        s.linux().as_ref().unwrap().cgroups_path().as_deref(),
        Some(Path::new("/tenants/a/0123456789abcdef0123456789abcdef"))
    );
    let e = err("", r#""CgroupParent":"../../system.slice""#);
    assert!(e.starts_with("CgroupParent"), "{e}");
}

#[test]
fn joining_containers_and_the_host_ipc() {
    let mut host = mock();
    host.containers.insert("db".into(), 7);
    let shm_type = |s: &Spec| {
        let m = s
            .mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new("/dev/shm"));
        m.unwrap().typ().clone().unwrap()
    };
    let s = build_with(&request("", r#""IpcMode":"container:other""#), &host).unwrap();
    assert_eq!(
        shm_type(&s),
        "tmpfs",
        "never the host's /dev/shm for a joined ipc namespace"
    );
    let s = build_with(&request("", r#""IpcMode":"host""#), &host).unwrap();
    assert_eq!(shm_type(&s), "bind");
    let e = build_with(
        &request(
            "",
            r#""IpcMode":"container:other","PidMode":"container:db""#,
        ),
        &host,
    )
    .unwrap_err();
    assert!(matches!(e, SpecBuildError::TwoUserNamespaces { .. }), "{e}");
    let two = request(
        "",
        r#""IpcMode":"container:other","PidMode":"container:db","UsernsMode":"host""#,
    );
    assert!(
        build_with(&two, &host).is_ok(),
        "without a user namespace any mix works"
    );
}
