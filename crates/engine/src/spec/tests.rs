//! build_spec: the golden `docker run busybox sh` request and Docker's merging rules.
//! `tests/flags.rs` and `tests/resources.rs` map each flag; `tests/runtime.rs` runs a spec through hull-runtime's
//! validation.

mod flags;
mod resources;
mod runtime;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction, PosixRlimitType, Spec};

use super::*;
use crate::docker_types::parse_create_body;

pub(super) const ID: &str = "0123456789abcdef0123456789abcdef";

/// The daemon's view of the host, as a few maps.
#[derive(Default)]
pub(super) struct MockHost {
    pub files: HashMap<String, String>,
    pub volumes: HashMap<String, PathBuf>,
    pub devices: HashMap<PathBuf, HostDevice>,
    pub containers: HashMap<String, u32>,
    pub nofile_hard: Option<u64>,
}

impl HostLookup for MockHost {
    fn bounding_set(&self) -> Option<u64> {
        None
    }
    fn online_cpus(&self) -> Option<String> {
        Some("0-3".into())
    }
    fn host_devices(&self) -> Vec<(PathBuf, HostDevice)> {
        vec![(
            PathBuf::from("/dev/sdz"),
            HostDevice {
                kind: 'b',
                major: 8,
                minor: 0,
                mode: 0o660,
                uid: 0,
                gid: 6,
            },
        )]
    }
    fn online_mems(&self) -> Option<String> {
        Some("0".into())
    }
    fn hard_limit(&self, typ: PosixRlimitType) -> Option<u64> {
        match typ {
            PosixRlimitType::RlimitNofile => self.nofile_hard,
            _ => None,
        }
    }
    fn volume_path(&self, name: &str, target: &str) -> Option<PathBuf> {
        if name.is_empty() {
            return Some(PathBuf::from(format!("/var/lib/hull/volumes/anon{target}")));
        }
        self.volumes.get(name).cloned()
    }
    fn device(&self, path: &Path) -> std::io::Result<HostDevice> {
        self.devices
            .get(path)
            .copied()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn container_namespace(&self, id: &str, typ: LinuxNamespaceType) -> Option<PathBuf> {
        let pid = self.containers.get(id)?;
        let name = match typ {
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Mount => "mnt",
            other => {
                return Some(PathBuf::from(format!(
                    "/proc/{pid}/ns/{}",
                    format!("{other:?}").to_lowercase()
                )))
            }
        };
        Some(PathBuf::from(format!("/proc/{pid}/ns/{name}")))
    }
    fn rootfs_file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }
}

pub(super) fn mock() -> MockHost {
    let mut h = MockHost {
        nofile_hard: Some(20000),
        ..Default::default()
    };
    h.files.insert(
        "/etc/passwd".into(),
        "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n".into(),
    );
    h.files.insert(
        "/etc/group".into(),
        "root:x:0:\ntty:x:5:\nwww-data:x:33:\nvideo:x:44:www-data\n".into(),
    );
    h.containers.insert("other".into(), 4242);
    h
}

pub(super) fn ctx(host: &MockHost) -> BuildContext<'_> {
    BuildContext {
        rootfs: PathBuf::from("/var/lib/hull/rootfs/abc"),
        userns: Some(UserNamespacePlan {
            host_uid_start: 1_000_000,
            size: 65536,
        }),
        userns_for_privileged: false,
        resolv_conf: Some("/run/hull/c/resolv.conf".into()),
        hosts: Some("/run/hull/c/hosts".into()),
        hostname_file: Some("/run/hull/c/hostname".into()),
        netns_path: Some("/run/hull/netns/abc".into()),
        ngroups_max: 65536,
        host,
    }
}

pub(super) fn busybox_image() -> ImageConfigSubset {
    crate::docker_types::parse_image_config(
        br#"{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]}"#,
    )
    .unwrap()
}

/// What `docker run -it busybox sh` sends (docker CLI 24), trimmed of nothing.
pub(super) const DOCKER_RUN_BUSYBOX: &str = r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":true,
"AttachStdout":true,"AttachStderr":true,"Tty":true,"OpenStdin":true,"StdinOnce":true,"Env":null,
"Cmd":["sh"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,
"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},
"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},
"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[24,80],"CapAdd":null,
"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,
"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
"Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,
"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,
"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"CpuPeriod":0,"CpuQuota":0,
"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],
"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":null,"Ulimits":null,"CpuCount":0,
"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,
"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#;

/// Builds the spec for a create body (JSON) with extra `HostConfig` fields merged in.
pub(super) fn build_with(body: &str, host: &MockHost) -> Result<Spec, SpecBuildError> {
    let (cfg, hc) = parse_create_body(body.as_bytes()).unwrap();
    build_spec(ID, &cfg, &hc, &busybox_image(), &ctx(host))
}

/// A busybox request with `host_config` (a JSON object's fields) and `config` fields.
pub(super) fn request(config: &str, host_config: &str) -> String {
    let sep = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!(",{s}")
        }
    };
    format!(
        r#"{{"Image":"busybox"{}, "HostConfig":{{"NetworkMode":"default"{}}}}}"#,
        sep(config),
        sep(host_config)
    )
}

pub(super) fn spec(config: &str, host_config: &str) -> Spec {
    build_with(&request(config, host_config), &mock()).unwrap()
}

pub(super) fn err(config: &str, host_config: &str) -> String {
    build_with(&request(config, host_config), &mock())
        .unwrap_err()
        .to_string()
}

pub(super) fn caps(s: &Spec) -> Vec<String> {
    let set = s
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .clone()
        .unwrap();
    let mut v: Vec<String> = set.iter().map(|c| format!("CAP_{c}")).collect();
    v.sort();
    v
}

pub(super) fn mount_dests(s: &Spec) -> Vec<String> {
    s.mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().display().to_string())
        .collect()
}

#[test]
fn docker_run_busybox_gets_every_default() {
    let s = build_with(DOCKER_RUN_BUSYBOX, &mock()).unwrap();
    let p = s.process().as_ref().unwrap();
    let linux = s.linux().as_ref().unwrap();

    let mut want: Vec<String> = defaults::DEFAULT_CAPS
        .iter()
        .map(|c| c.to_string())
        .collect();
    want.sort();
    assert_eq!(caps(&s), want);
    let c = p.capabilities().as_ref().unwrap();
    assert_eq!(c.effective(), c.bounding());
    assert_eq!(c.permitted(), c.bounding());
    assert!(c.inheritable().as_ref().unwrap().is_empty());

    let seccomp = linux.seccomp().as_ref().expect("seccomp profile");
    assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
    let allowed = |name: &str| {
        seccomp.syscalls().iter().flatten().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow && r.names().iter().any(|n| n == name)
        })
    };
    assert!(allowed("read") && allowed("clone"));
    assert!(!allowed("keyctl") && !allowed("add_key") && !allowed("unshare") && !allowed("mount"));

    assert_eq!(p.no_new_privileges(), Some(true));
    assert_eq!(p.args().as_ref().unwrap(), &["sh"]);
    assert_eq!(p.terminal(), Some(true));
    let console = p.console_size().unwrap();
    assert_eq!((console.height(), console.width()), (24, 80));
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    let env = p.env().as_ref().unwrap();
    assert!(
        env.contains(&"HOSTNAME=0123456789ab".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&"TERM=xterm".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    assert_eq!(env.iter().filter(|e| e.starts_with("PATH=")).count(), 1);
    let r = p.rlimits().as_ref().unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].typ(), r[0].soft(), r[0].hard()),
        (PosixRlimitType::RlimitNofile, 1024, 20000)
    );

    assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert_eq!(
        linux.readonly_paths().as_ref().unwrap(),
        &defaults::READONLY_PATHS.map(String::from).to_vec()
    );
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(res.pids().as_ref().unwrap().limit(), 4096);
    let dev = &res.devices().as_ref().unwrap()[0];
    assert!(
        !dev.allow() && dev.access().as_deref() == Some("rwm"),
        "deny all devices first"
    );
    assert!(res.memory().is_none() && res.cpu().is_none());

    let uid = &linux.uid_mappings().as_ref().unwrap()[0];
    assert_eq!(
        (uid.container_id(), uid.host_id(), uid.size()),
        (0, 1_000_000, 65536)
    );
    let gid = &linux.gid_mappings().as_ref().unwrap()[0];
    assert_eq!(
        (gid.container_id(), gid.host_id(), gid.size()),
        (0, 1_000_000, 65536)
    );
    let ns: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    assert_eq!(ns, defaults::NAMESPACES.to_vec());
    let net = linux
        .namespaces()
        .iter()
        .flatten()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(
        net.path().as_deref(),
        Some(Path::new("/run/hull/netns/abc"))
    );
    assert_eq!(
        linux
            .sysctl()
            .as_ref()
            .unwrap()
            .get("net.ipv4.ping_group_range")
            .map(String::as_str),
        Some("0 65535"),
        "every gid the user namespace maps (the kernel refuses unmapped ones)"
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new("/hull/0123456789abcdef0123456789abcdef"))
    );

    assert_eq!(
        mount_dests(&s),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hosts",
            "/etc/hostname"
        ]
    );
    let pts = &s.mounts().as_ref().unwrap()[2];
    for o in ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] {
        assert!(
            pts.options().as_ref().unwrap().contains(&o.to_string()),
            "devpts {o}"
        );
    }
    let shm = &s.mounts().as_ref().unwrap()[6];
    assert!(shm
        .options()
        .as_ref()
        .unwrap()
        .contains(&"size=67108864".to_string()));
    let sys = &s.mounts().as_ref().unwrap()[3];
    assert!(sys.options().as_ref().unwrap().contains(&"ro".to_string()));
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(s.root().as_ref().unwrap().readonly(), Some(false));
    assert!(s.annotations().as_ref().unwrap().is_empty());
}

#[test]
fn entrypoint_and_cmd_merge_like_docker() {
    let img = |ep: Option<&[&str]>, cmd: Option<&[&str]>| ImageConfigSubset {
        entrypoint: ep.map(|v| v.iter().map(|s| s.to_string()).collect()),
        cmd: cmd.map(|v| v.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    let req = |json: &str| parse_create_body(json.as_bytes()).unwrap().0;
    let run = |json: &str, image: &ImageConfigSubset| process::command(&req(json), image);
    let both = img(Some(&["/entry.sh"]), Some(&["serve"]));
    assert_eq!(run("{}", &both), ["/entry.sh", "serve"]);
    assert_eq!(run(r#"{"Cmd":["debug"]}"#, &both), ["/entry.sh", "debug"]);
    assert_eq!(
        run(r#"{"Entrypoint":["/bin/sh"]}"#, &both),
        ["/bin/sh"],
        "a new entrypoint drops the image's Cmd"
    );
    assert_eq!(
        run(r#"{"Entrypoint":["/bin/sh"],"Cmd":["-c","id"]}"#, &both),
        ["/bin/sh", "-c", "id"]
    );
    assert_eq!(
        run(r#"{"Entrypoint":[""],"Cmd":["ls"]}"#, &both),
        ["ls"],
        "--entrypoint '' resets it"
    );
    assert_eq!(
        run(r#"{"Entrypoint":[]}"#, &both),
        ["serve"],
        "an empty entrypoint keeps the image's Cmd"
    );
    assert_eq!(
        run(r#"{"Cmd":[],"Entrypoint":null}"#, &both),
        ["/entry.sh", "serve"]
    );
    assert_eq!(
        run(r#"{"Cmd":"echo hi"}"#, &img(None, None)),
        ["echo hi"],
        "Cmd as a string"
    );
    let e = build_spec(
        ID,
        &req("{}"),
        &HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        },
        &img(None, None),
        &ctx(&mock()),
    )
    .unwrap_err();
    assert!(matches!(e, SpecBuildError::NoCommand), "{e}");
}

#[test]
fn env_merges_image_then_request() {
    let image = ImageConfigSubset {
        env: vec!["PATH=/img/bin".into(), "A=image".into(), "B=image".into()],
        ..Default::default()
    };
    let cfg = parse_create_body(br#"{"Env":["B=request","C=1","A"],"Hostname":"web"}"#)
        .unwrap()
        .0;
    let env = process::environment(&cfg, &image, "web", Some("/root")).unwrap();
    assert_eq!(
        env,
        [
            "HOSTNAME=web",
            "PATH=/img/bin",
            "B=request",
            "C=1",
            "HOME=/root"
        ]
    );
    let env = process::environment(&Default::default(), &Default::default(), "h", None).unwrap();
    assert_eq!(env, [defaults::PATH_ENV, "HOSTNAME=h"]);
    let e = err(r#""Env":["=x"]"#, "");
    assert!(e.starts_with("Env[0]"), "{e}");
    let s = spec(r#""Env":["HOME=/data"]"#, "");
    let env = s.process().as_ref().unwrap().env().clone().unwrap();
    assert!(env.contains(&"HOME=/data".to_string()) && !env.contains(&"HOME=/root".to_string()));
}

#[test]
fn working_dir_user_and_groups() {
    let s = spec(
        r#""WorkingDir":"/srv","User":"www-data","Hostname":"web","Domainname":"example.org""#,
        r#""GroupAdd":["tty","1234"]"#,
    );
    let p = s.process().as_ref().unwrap();
    assert_eq!(p.cwd(), Path::new("/srv"));
    assert_eq!((p.user().uid(), p.user().gid()), (33, 33));
    assert_eq!(p.user().additional_gids().as_ref().unwrap(), &[5, 44, 1234]);
    assert_eq!(s.hostname().as_deref(), Some("web"));
    assert_eq!(s.domainname().as_deref(), Some("example.org"));
    let e = err(r#""WorkingDir":"srv""#, "");
    assert!(e.starts_with("WorkingDir") && e.contains("absolute"), "{e}");
    let e = err(r#""User":"nobody""#, "");
    assert!(e.contains("\"nobody\"") && e.contains("/etc/passwd"), "{e}");
    let s = spec(r#""User":"1000:1000""#, "");
    assert_eq!(s.process().as_ref().unwrap().user().uid(), 1000);
}

#[test]
fn bad_types_name_the_field() {
    let e = parse_create_body(br#"{"HostConfig":{"Memory":"1g"}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("HostConfig.Memory:"), "{e}");
    let e = parse_create_body(br#"{"HostConfig":{"Ulimits":[{"Name":"nofile","Soft":"x"}]}}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("HostConfig.Ulimits[0].Soft:"), "{e}");
    let e = parse_create_body(br#"{"Env":"A=1"}"#)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Env:"), "{e}");
    let e = parse_create_body(b"{not json").unwrap_err().to_string();
    assert!(e.contains("not valid JSON"), "{e}");
    // Unknown fields are tolerated (newer clients send more).
    assert!(parse_create_body(br#"{"Future":1,"HostConfig":{"Future":2}}"#).is_ok());
}
