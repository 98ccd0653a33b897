//! `docker run` flags for limits, devices and mounts mapped into the spec, and their bad
//! values refused by name.

use std::path::Path;

use super::*;

#[test]
fn memory_cpu_blkio() {
    let s = spec(
        "",
        r#""Memory":268435456,"MemoryReservation":134217728,"MemorySwappiness":10,"OomKillDisable":true,"NanoCpus":1500000000,"CpuShares":512,"CpusetCpus":"0-1","CpusetMems":"0","BlkioWeight":300"#,
    );
    let res = s.linux().as_ref().unwrap().resources().clone().unwrap();
    let m = res.memory().unwrap();
    assert_eq!(
        (m.limit(), m.reservation(), m.swap(), m.swappiness()),
        (Some(268435456), Some(134217728), Some(536870912), Some(10))
    );
    assert_eq!(m.disable_oom_killer(), Some(true));
    let c = res.cpu().clone().unwrap();
    assert_eq!(
        (c.quota(), c.period(), c.shares()),
        (Some(150000), Some(100000), Some(512))
    );
    assert_eq!(
        (c.cpus().as_deref(), c.mems().as_deref()),
        (Some("0-1"), Some("0"))
    );
    assert_eq!(res.block_io().as_ref().unwrap().weight(), Some(300));
    let m = spec("", r#""Memory":268435456,"MemorySwap":-1"#)
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap()
        .memory()
        .unwrap();
    assert_eq!(m.swap(), Some(-1));
    let c = spec("", r#""CpuQuota":50000,"CpuPeriod":200000"#)
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap()
        .cpu()
        .clone()
        .unwrap();
    assert_eq!((c.quota(), c.period()), (Some(50000), Some(200000)));
    for (hc, field) in [
        (r#""Memory":1024"#, "Memory"),
        (r#""MemorySwap":1073741824"#, "MemorySwap"),
        (r#""Memory":268435456,"MemorySwap":1048576"#, "MemorySwap"),
        (
            r#""Memory":268435456,"MemoryReservation":536870912"#,
            "MemoryReservation",
        ),
        (r#""MemorySwappiness":101"#, "MemorySwappiness"),
        (r#""NanoCpus":1000000000,"CpuQuota":1000"#, "NanoCpus"),
        (r#""NanoCpus":1000"#, "NanoCpus"),
        (r#""CpuShares":1"#, "CpuShares"),
        (r#""CpusetCpus":"0-a""#, "CpusetCpus"),
        // The mock host has CPUs 0-3 and memory node 0.
        (
            r#""CpusetCpus":"2-5""#,
            "CpusetCpus: requested CPUs \"2-5\" are not available; available: 0-3",
        ),
        (r#""CpusetMems":"1""#, "CpusetMems"),
        (
            r#""NanoCpus":5000000000"#,
            "NanoCpus: 5000000000 is out of range; the range of CPUs is from 0.01 to 4.00",
        ),
        (r#""BlkioWeight":5"#, "BlkioWeight"),
        (r#""ShmSize":-1"#, "ShmSize"),
    ] {
        let e = err("", hc);
        assert!(e.starts_with(field), "{hc}: {e}");
    }
    let shm = spec("", r#""ShmSize":1048576"#);
    let m = shm
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/dev/shm"))
        .unwrap();
    assert!(m
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=1048576".into()));
}

fn with_devices(userns: bool, hc: &str) -> Result<Spec, SpecBuildError> {
    let mut host = mock();
    host.devices.insert(
        "/dev/fuse".into(),
        HostDevice {
            kind: 'c',
            major: 10,
            minor: 229,
            mode: 0o20666,
            uid: 0,
            gid: 0,
        },
    );
    host.devices.insert(
        "/dev/null2".into(),
        HostDevice {
            kind: '-',
            major: 0,
            minor: 0,
            mode: 0o644,
            uid: 0,
            gid: 0,
        },
    );
    let mut c = ctx(&host);
    if !userns {
        c.userns = None;
    }
    let (cfg, hc) = parse_create_body(request("", hc).as_bytes()).unwrap();
    build_spec(ID, &cfg, &hc, &busybox_image(), &c)
}

#[test]
fn devices_and_cgroup_rules() {
    let hc = r#""Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/myfuse","CgroupPermissions":"rw"}],"DeviceCgroupRules":["c 42:* rmw"]"#;
    let s = with_devices(true, hc).unwrap();
    let rules = s
        .linux()
        .as_ref()
        .unwrap()
        .resources()
        .clone()
        .unwrap()
        .devices()
        .clone()
        .unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(
        (
            rules[1].major(),
            rules[1].minor(),
            rules[1].access().as_deref()
        ),
        (Some(10), Some(229), Some("rw"))
    );
    assert_eq!((rules[2].major(), rules[2].minor()), (Some(42), None));
    let bind = s
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/dev/myfuse"))
        .expect("bound in a user namespace");
    assert_eq!(bind.source().as_deref(), Some(Path::new("/dev/fuse")));
    assert!(s
        .linux()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap()
        .is_empty());
    let s = with_devices(false, hc).unwrap();
    let d = &s.linux().as_ref().unwrap().devices().clone().unwrap()[0];
    assert_eq!(
        (d.path(), d.major(), d.minor(), d.file_mode()),
        (&PathBuf::from("/dev/myfuse"), 10, 229, Some(0o666))
    );
    let e = with_devices(
        true,
        r#""Devices":[{"PathOnHost":"/dev/fuse","CgroupPermissions":"rwx"}]"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("Devices[0].CgroupPermissions"), "{e}");
    let e = with_devices(true, r#""Devices":[{"PathOnHost":"/dev/nope"}]"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("Devices[0]") && e.contains("/dev/nope"),
        "{e}"
    );
    let e = with_devices(true, r#""Devices":[{"PathOnHost":"/dev/null2"}]"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a character or block device"), "{e}");
}

#[test]
fn binds_mounts_tmpfs_and_volumes() {
    let mut host = mock();
    host.volumes
        .insert("data".into(), "/var/lib/hull/volumes/data/_data".into());
    let body = request(
        r#""Volumes":{"/cache":{}}"#,
        r#""Binds":["/srv/www:/usr/share/nginx/html:ro,rshared","data:/data"],
        "Mounts":[{"Type":"bind","Source":"/srv/conf","Target":"/etc/nginx","ReadOnly":true,"BindOptions":{"Propagation":"rslave","NonRecursive":true}},
                  {"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1048576,"Mode":1023}}],
        "Tmpfs":{"/run":"size=64m,exec"}"#,
    );
    let s = build_with(&body, &host).unwrap();
    let get = |d: &str| {
        s.mounts()
            .iter()
            .flatten()
            .find(|m| m.destination() == Path::new(d))
            .unwrap_or_else(|| panic!("{d}"))
            .clone()
    };
    let www = get("/usr/share/nginx/html");
    assert_eq!(www.options().clone().unwrap(), ["rbind", "rshared", "ro"]);
    let data = get("/data");
    assert_eq!(
        data.source().as_deref(),
        Some(Path::new("/var/lib/hull/volumes/data/_data"))
    );
    assert_eq!(
        get("/etc/nginx").options().clone().unwrap(),
        ["bind", "rslave", "ro"]
    );
    assert_eq!(
        get("/scratch").options().clone().unwrap(),
        ["nosuid", "nodev", "noexec", "size=1048576", "mode=1777"]
    );
    assert_eq!(
        get("/run").options().clone().unwrap(),
        ["nosuid", "nodev", "noexec", "size=64m", "exec"]
    );
    assert_eq!(
        get("/cache").source().as_deref(),
        Some(Path::new("/var/lib/hull/volumes/anon/cache"))
    );
    for (hc, field) in [
        (r#""Binds":["/a"]"#, "Binds[0]"),
        (r#""Binds":["/a:rel"]"#, "Binds[0]"),
        (r#""Binds":["/a:/b:rx"]"#, "Binds[0]"),
        (r#""Binds":["missing:/b"]"#, "Binds[0]"),
        (
            r#""Mounts":[{"Type":"npipe","Source":"/a","Target":"/b"}]"#,
            "Mounts[0].Type",
        ),
        (
            r#""Mounts":[{"Type":"bind","Source":"a","Target":"/b"}]"#,
            "Mounts[0].Source",
        ),
        (
            r#""Mounts":[{"Type":"bind","Source":"/a","Target":"/b","BindOptions":{"Propagation":"up"}}]"#,
            "Mounts[0].BindOptions.Propagation",
        ),
        (r#""Tmpfs":{"run":""}"#, "Tmpfs"),
    ] {
        let e = build_with(&request("", hc), &host).unwrap_err().to_string();
        assert!(e.starts_with(field), "{hc}: {e}");
    }
    for hc in [
        r#""Binds":["/a:/"]"#,
        r#""Binds":["/a:/x","/b:/x/"]"#,
        r#""Binds":["/a:/x"],"Tmpfs":{"/x":""}"#,
    ] {
        let e = build_with(&request("", hc), &host).unwrap_err().to_string();
        assert!(e.contains("mount target"), "{hc}: {e}");
    }
    // A user mount over a default one replaces it.
    let s = spec("", r#""Binds":["/srv/shm:/dev/shm"]"#);
    assert_eq!(
        mount_dests(&s).iter().filter(|d| *d == "/dev/shm").count(),
        1
    );
}
