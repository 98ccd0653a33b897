//! `/_ping`, `/version`, `/info`: what the daemon is and what host it runs on.

use std::sync::Arc;

use hyper::{Method, Response, StatusCode};
use serde_json::json;

use crate::body::{ok_json, response, ApiBody};
use crate::errors::ApiError;
use crate::{Daemon, API_VERSION, MIN_API_VERSION};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn kernel_version() -> String {
    read("/proc/sys/kernel/osrelease")
}

fn operating_system() -> String {
    let text = read("/etc/os-release");
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub fn ping(method: &Method) -> Response<ApiBody> {
    let body = if method == Method::HEAD {
        ApiBody::empty()
    } else {
        ApiBody::Full(Some(bytes::Bytes::from_static(b"OK")))
    };
    let mut r = response(StatusCode::OK, "text/plain; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(
        "Cache-Control",
        "no-cache, no-store, must-revalidate".parse().unwrap(),
    );
    h.insert("Pragma", "no-cache".parse().unwrap());
    r
}

pub fn version() -> Response<ApiBody> {
    let arch = hull_image::images::host_arch();
    let kernel = kernel_version();
    ok_json(&json!({
        "Platform": { "Name": "hull" },
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch,
                "KernelVersion": kernel,
                "Experimental": "false",
            }
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    }))
}

pub async fn info(d: Arc<Daemon>) -> Result<Response<ApiBody>, ApiError> {
    let images = d.images.clone();
    let count = match tokio::task::spawn_blocking(move || images.count()).await {
        Ok(r) => r?,
        Err(_) => return Err(ApiError::TaskFailed("info")),
    };
    // docker's counts: paused ones are not running; created, exited and dead are stopped.
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    if let serde_json::Value::Array(all) = d.containers.list(true) {
        for c in &all {
            match c["State"].as_str() {
                Some("running") | Some("restarting") => running += 1,
                Some("paused") => paused += 1,
                _ => stopped += 1,
            }
        }
    }
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let s = &d.system;
    Ok(ok_json(&json!({
        "ID": s.id,
        "Name": read("/proc/sys/kernel/hostname"),
        "Containers": running + paused + stopped, "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": stopped,
        "Images": count,
        "Driver": "hull-overlay",
        "DriverStatus": [["Backing Filesystem", "overlayfs lower dirs, one per layer chain"]],
        "DockerRootDir": s.data_root,
        "Debug": s.debug,
        "OperatingSystem": operating_system(),
        "OSType": "linux",
        "OSVersion": "",
        "KernelVersion": kernel_version(),
        "Architecture": std::env::consts::ARCH,
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "ServerVersion": VERSION,
        "CgroupVersion": cgroup_version(),
        "CgroupDriver": "cgroupfs",
        "SecurityOptions": ["name=seccomp,profile=hull", "name=userns", "name=no-new-privileges"],
        "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
        "CPUShares": true, "CPUSet": true, "PidsLimit": true, "OomKillDisable": false,
        "IPv4Forwarding": true, "BridgeNfIptables": true, "BridgeNfIp6tables": true,
        "LoggingDriver": "json-file",
        "DefaultRuntime": "hull",
        "Runtimes": { "hull": { "path": "hull-runtime" } },
        "Plugins": { "Volume": [], "Network": [], "Authorization": null, "Log": ["json-file"] },
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {},
            "Mirrors": [],
        },
        "InsecureRegistries": s.insecure_registries,
        "Swarm": { "LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": "", "RemoteManagers": null, "Error": "" },
        "Labels": [],
        "ExperimentalBuild": false,
        "LiveRestoreEnabled": false,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": { "ID": "", "Expected": "" },
        "RuncCommit": { "ID": "", "Expected": "" },
        "InitCommit": { "ID": "", "Expected": "" },
        "Warnings": [],
    })))
}
