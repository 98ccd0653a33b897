//! The default bridge network for a container: a new network namespace pinned at
//! `<exec-dir>/netns` (the spec joins it by path), a veth on `hull0` with an address from
//! the network's pool, and the container's hosts, resolv.conf and hostname files. Made at
//! create, undone at remove.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use hull_network::{netns, EndpointOptions, NetworkMode};

use super::{ContainerService, ContainersError};

/// What the spec needs from the network.
pub(crate) struct Wired {
    pub netns: PathBuf,
    pub dir: PathBuf,
}

fn net_err(step: &'static str) -> impl Fn(String) -> ContainersError {
    move |message| ContainersError::Network { step, message }
}

/// Whether `mode` is the default bridge (the only network this slice wires).
pub(crate) fn is_bridge(mode: &str) -> bool {
    matches!(mode, "" | "default" | "bridge")
}

/// The sysctl hulld sets itself in a namespace it made ([`ContainerService::wire`]).
pub(crate) const PING_SYSCTL: &str = "net.ipv4.ping_group_range";

impl ContainerService {
    /// Wires container `id` to the default bridge; None when hulld has no network manager.
    ///
    /// The namespace belongs to hulld's user namespace, so the container (in its own) may
    /// not write its sysctls: hulld sets `ping_group_range` to the container's host gids
    /// here, and the spec leaves it out.
    pub(crate) fn wire(
        &self,
        id: &str,
        dir: &Path,
        hostname: &str,
        gids: (u32, u32),
    ) -> Result<Option<Wired>, ContainersError> {
        let Some(mgr) = &self.network else {
            return Ok(None);
        };
        let path = dir.join("netns");
        let ns =
            netns::create().map_err(|e| net_err("creating a network namespace")(e.to_string()))?;
        netns::pin(ns.as_fd(), &path)
            .map_err(|e| net_err("pinning the namespace")(e.to_string()))?;
        let attached = mgr
            .setup(
                &NetworkMode::Bridge,
                id,
                ns.as_fd(),
                &EndpointOptions::default(),
            )
            .map_err(|e| net_err("attaching to the bridge")(e.to_string()));
        let range = format!("{} {}", gids.0, gids.1);
        let ping = netns::run_in(ns.as_fd(), move || {
            std::fs::write("/proc/sys/net/ipv4/ping_group_range", range)
        });
        if let Err(e) = ping
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            tracing::warn!("container {id}: setting ping_group_range: {e}");
        }
        let address = match attached {
            Ok(hull_network::Attachment::Bridge(ep)) => Some(std::net::IpAddr::V4(ep.address)),
            Ok(_) => None,
            Err(e) => {
                let _ = netns::unpin(&path);
                return Err(e);
            }
        };
        let spec = hull_network::files::FilesSpec {
            hostname: hostname.to_string(),
            address,
            ..Default::default()
        };
        if let Err(e) = hull_network::files::write(dir, &spec, Path::new("/etc/resolv.conf")) {
            self.unwire(id, dir);
            return Err(net_err("writing hosts and resolv.conf")(e.to_string()));
        }
        Ok(Some(Wired {
            netns: path,
            dir: dir.to_path_buf(),
        }))
    }

    /// Undoes [`ContainerService::wire`]; what is not there is skipped.
    pub(crate) fn unwire(&self, id: &str, dir: &Path) {
        if let Some(mgr) = &self.network {
            if let Err(e) = mgr.teardown(&NetworkMode::Bridge, id) {
                tracing::warn!("container {id}: removing its network endpoint: {e}");
            }
        }
        let path = dir.join("netns");
        if path.exists() {
            if let Err(e) = netns::unpin(&path) {
                tracing::warn!("container {id}: {e}");
            }
        }
    }
}
