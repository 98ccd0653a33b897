//! The API sockets: `unix://` paths only. A socket is created 0660 with group `--group` when
//! that group exists, else 0600 (root only); its directory must not be writable by others;
//! a stale socket is replaced, a live one (another daemon) is an error. `tcp://` is refused:
//! it needs mutual TLS, which hulld does not have yet.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};
use nix::unistd::{chown, Group};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("-H {0}: tcp:// needs mutual TLS, which this hulld does not support yet; listen on unix:// (and reach it remotely over ssh)")]
    TcpWithoutTls(String),
    #[error("-H {0}: unsupported address; use unix:///path/to/hull.sock")]
    Scheme(String),
    #[error("-H {0}: the socket path must be absolute")]
    Relative(String),
    #[error("creating the socket directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the socket directory {0} is writable by other users, who could replace the socket; use a directory only root can write")]
    DirWritable(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("another daemon is listening on {0}")]
    InUse(PathBuf),
    #[error("removing the stale socket {path}: {source}")]
    RemoveStale {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("listening on {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("giving the socket {path} to group {group}: {source}")]
    Chown {
        path: PathBuf,
        group: String,
        source: nix::Error,
    },
    #[error("looking up group {group}: {source}")]
    Group { group: String, source: nix::Error },
    #[error("setting the mode of socket {path}: {source}")]
    Chmod {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The socket path of a `-H` address.
pub fn socket_path(host: &str) -> Result<PathBuf, ListenError> {
    if host.starts_with("tcp://") {
        return Err(ListenError::TcpWithoutTls(host.into()));
    }
    let path = host
        .strip_prefix("unix://")
        .ok_or_else(|| ListenError::Scheme(host.into()))?;
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(ListenError::Relative(host.into()));
    }
    Ok(p)
}

fn prepare_dir(dir: &Path) -> Result<(), ListenError> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|source| ListenError::CreateDir {
                path: dir.into(),
                source,
            })?;
    }
    let meta = std::fs::metadata(dir).map_err(|source| ListenError::CreateDir {
        path: dir.into(),
        source,
    })?;
    if meta.permissions().mode() & 0o002 != 0 {
        return Err(ListenError::DirWritable(dir.into()));
    }
    Ok(())
}

fn remove_stale(path: &Path) -> Result<(), ListenError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(ListenError::NotASocket(path.into()));
    }
    if UnixStream::connect(path).is_ok() {
        return Err(ListenError::InUse(path.into()));
    }
    std::fs::remove_file(path).map_err(|source| ListenError::RemoveStale {
        path: path.into(),
        source,
    })
}

/// Binds `path` with the access described above. Returns the listener and whether the group
/// was found.
pub fn bind(path: &Path, group: &str) -> Result<(UnixListener, bool), ListenError> {
    if let Some(dir) = path.parent() {
        prepare_dir(dir)?;
    }
    remove_stale(path)?;
    // The socket is born without access for others: no window between bind and chmod.
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    umask(old);
    let listener = bound.map_err(|source| ListenError::Bind {
        path: path.into(),
        source,
    })?;
    let gid = Group::from_name(group).map_err(|source| ListenError::Group {
        group: group.into(),
        source,
    })?;
    let mode = match gid {
        Some(ref g) => {
            chown(path, None, Some(g.gid)).map_err(|source| ListenError::Chown {
                path: path.into(),
                group: group.into(),
                source,
            })?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        ListenError::Chmod {
            path: path.into(),
            source,
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ListenError::Bind {
            path: path.into(),
            source,
        })?;
    Ok((listener, gid.is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            socket_path("unix:///run/hull/hull.sock").unwrap(),
            PathBuf::from("/run/hull/hull.sock")
        );
        let e = socket_path("tcp://0.0.0.0:2375").unwrap_err();
        assert!(e.to_string().contains("mutual TLS"), "{e}");
        assert!(socket_path("unix://rel.sock").is_err());
        assert!(socket_path("fd://").is_err());
    }

    #[test]
    fn refuses_writable_dirs_and_live_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            bind(&open.join("s.sock"), "no-such-group-hull"),
            Err(ListenError::DirWritable(_))
        ));
        let p = dir.path().join("priv/s.sock");
        let (l, found) = bind(&p, "no-such-group-hull").unwrap();
        assert!(!found);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            bind(&p, "no-such-group-hull"),
            Err(ListenError::InUse(_))
        ));
        drop(l);
        // Stale now: replaced.
        bind(&p, "no-such-group-hull").unwrap();
        let f = dir.path().join("file");
        std::fs::write(&f, "x").unwrap();
        assert!(matches!(
            bind(&f, "no-such-group-hull"),
            Err(ListenError::NotASocket(_))
        ));
    }
}
