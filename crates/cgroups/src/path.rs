//! Where a container's cgroup lives, relative to each hierarchy's root.
//!
//! - no `linux.cgroupsPath`: `hull/<container id>`;
//! - a relative path `p`: `hull/p`;
//! - an absolute path `/docker/abc`: exactly `docker/abc` below each hierarchy's root (what runc
//!   does; containerd and dockerd pass such paths);
//! - systemd's `slice:prefix:name` form: not supported.

use std::path::{Component, Path, PathBuf};

/// The directory, below each hierarchy's root, shared by all containers that hull places.
pub const HULL_PARENT: &str = "hull";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "linux.cgroupsPath {path:?}: systemd-style \"slice:prefix:name\" paths are not supported \
         (hull manages cgroupfs directly); use a path such as \"/hull/<id>\""
    )]
    SystemdStyle { path: String },
    #[error("linux.cgroupsPath {path:?}: \"..\" and \".\" components are not allowed")]
    DotComponent { path: String },
    #[error("linux.cgroupsPath {path:?}: names the root cgroup or the shared \"hull\" parent")]
    SharedCgroup { path: String },
    #[error("linux.cgroupsPath {path:?}: contains a NUL byte")]
    Nul { path: String },
    #[error("container id {id:?} cannot name a cgroup (empty, \".\", \"..\", or contains '/')")]
    ContainerId { id: String },
}

/// Resolves the OCI `linux.cgroupsPath` to a path relative to each hierarchy's root.
pub fn resolve(cgroups_path: Option<&str>, container_id: &str) -> Result<PathBuf, Error> {
    let path = match cgroups_path {
        None | Some("") => {
            if container_id.is_empty()
                || container_id == "."
                || container_id == ".."
                || container_id.contains('/')
                || container_id.contains('\0')
            {
                return Err(Error::ContainerId {
                    id: container_id.to_owned(),
                });
            }
            return Ok(Path::new(HULL_PARENT).join(container_id));
        }
        Some(p) => p,
    };
    let owned = || path.to_owned();
    if path.contains('\0') {
        return Err(Error::Nul { path: owned() });
    }
    if !path.starts_with('/') && path.split(':').count() == 3 {
        return Err(Error::SystemdStyle { path: owned() });
    }
    // Path::components silently drops "." in the middle; look at the raw parts instead.
    if path.split('/').any(|part| part == "." || part == "..") {
        return Err(Error::DotComponent { path: owned() });
    }
    let mut rel = PathBuf::new();
    if !path.starts_with('/') {
        rel.push(HULL_PARENT);
    }
    for c in Path::new(path).components() {
        if let Component::Normal(part) = c {
            rel.push(part);
        }
    }
    if rel.as_os_str().is_empty() || rel == Path::new(HULL_PARENT) {
        return Err(Error::SharedCgroup { path: owned() });
    }
    Ok(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_under_hull() {
        assert_eq!(resolve(None, "abc").unwrap(), Path::new("hull/abc"));
        assert_eq!(resolve(Some(""), "abc").unwrap(), Path::new("hull/abc"));
    }

    #[test]
    fn relative_goes_under_hull() {
        assert_eq!(resolve(Some("x/y"), "abc").unwrap(), Path::new("hull/x/y"));
        assert_eq!(resolve(Some("x/"), "abc").unwrap(), Path::new("hull/x"));
    }

    #[test]
    fn absolute_is_taken_as_is() {
        assert_eq!(
            resolve(Some("/docker/abc"), "abc").unwrap(),
            Path::new("docker/abc")
        );
        assert_eq!(
            resolve(Some("/default/abc"), "zzz").unwrap(),
            Path::new("default/abc")
        );
        assert_eq!(
            resolve(Some("//hull//a/"), "zzz").unwrap(),
            Path::new("hull/a")
        );
    }

    #[test]
    fn systemd_style_rejected() {
        let e = resolve(Some("system.slice:docker:abc"), "abc").unwrap_err();
        assert!(matches!(e, Error::SystemdStyle { .. }));
        assert!(e.to_string().contains("not supported"));
    }

    #[test]
    fn escapes_and_shared_rejected() {
        for p in ["../etc", "/a/../b", "a/./b", "/.."] {
            assert!(
                matches!(resolve(Some(p), "x"), Err(Error::DotComponent { .. })),
                "{p}"
            );
        }
        for p in ["/", "/hull", "//"] {
            assert!(
                matches!(resolve(Some(p), "x"), Err(Error::SharedCgroup { .. })),
                "{p}"
            );
        }
        for id in ["", ".", "..", "a/b"] {
            assert!(matches!(resolve(None, id), Err(Error::ContainerId { .. })));
        }
    }
}
