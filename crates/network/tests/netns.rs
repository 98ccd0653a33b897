//! Root tests: pinning a namespace to a path, and remaking bridges after a "reboot".

mod common;

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use hull_network::netlink::Netlink;
use hull_network::{netns, Attachment, EndpointOptions, Manager, NetworkConfig, NetworkMode};

use common::{env, link_names, links, root};

/// Unpins on drop, so a failing test leaves no mount behind.
struct Pinned(PathBuf);

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = netns::unpin(&self.0);
    }
}

fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(p))
}

#[test]
fn a_pinned_namespace_outlives_its_fd_and_unpin_removes_it() {
    if !root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c1.netns");
    let guard = Pinned(path.clone());
    {
        let c = netns::create().unwrap();
        netns::pin(c.as_fd(), &path).unwrap();
        assert!(netns::pin(c.as_fd(), &path).is_err()); // the file exists
    }
    assert!(mounted(&path));
    let c = netns::open(&path).unwrap();
    let env = env();
    let a = env
        .manager
        .setup(
            &NetworkMode::None,
            "c1",
            c.as_fd(),
            &EndpointOptions::default(),
        )
        .unwrap();
    assert_eq!(a, Attachment::Loopback);
    drop(c);
    let again = netns::open(&path).unwrap();
    let l = links(again.as_fd());
    assert!(l.len() == 1 && l[0].name == "lo" && l[0].up, "{l:?}");

    netns::unpin(&path).unwrap();
    assert!(!path.exists());
    assert!(!mounted(&path));
    netns::unpin(&path).unwrap(); // twice is fine
    drop(guard);
}

#[test]
fn restore_makes_every_bridge_again() {
    if !root() {
        return;
    }
    let env = env();
    env.manager.ensure_default().unwrap();
    let mine = env
        .manager
        .create_network(&NetworkConfig {
            name: "mine".into(),
            ..NetworkConfig::default()
        })
        .unwrap();
    // "reboot": a new, empty namespace for a new manager on the same records
    let host2 = netns::create().unwrap();
    let m2 = Manager::new(env.state.path(), host2.try_clone().unwrap()).unwrap();
    assert_eq!(link_names(host2.as_fd()), ["lo"]);
    assert_eq!(m2.restore().unwrap().len(), 2);
    let mut names = link_names(host2.as_fd());
    names.retain(|n| n != "lo");
    let mut want = vec!["hull0".to_owned(), mine.bridge.clone()];
    want.sort();
    assert_eq!(names, want);
    let addrs = Netlink::open_in(host2.as_fd())
        .unwrap()
        .addresses()
        .unwrap();
    assert!(addrs.iter().any(|a| a.address == mine.ipam.gateway));
    // restoring again changes nothing
    m2.restore().unwrap();
    assert_eq!(link_names(host2.as_fd()).len(), 3);
}
