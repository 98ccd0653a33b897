//! The API sockets. A `unix://` socket is created 0660 with group `--group` when that group
//! exists, else 0600 (root only); its directory must not be writable by others; a stale socket
//! is replaced, a live one (another daemon) is an error. A `tcp://` address is served only
//! with mutual TLS (`--tlsverify` with `--tlscacert`, `--tlscert`, `--tlskey`): every client
//! must present a certificate that chains to the CA. hull has no plain TCP listener.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};
use nix::unistd::{chown, Group};

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("-H {0}: tcp:// is served only with mutual TLS: add --tlsverify --tlscacert CA.pem --tlscert SERVER.pem --tlskey SERVER-KEY.pem (or listen on unix:// and reach it over ssh)")]
    TcpWithoutTls(String),
    #[error("-H {0}: expected tcp://HOST:PORT with an IP address and a port")]
    TcpAddr(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("listening on {addr}: {source}")]
    BindTcp {
        addr: String,
        source: std::io::Error,
    },
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

/// A `-H` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    Unix(PathBuf),
    Tcp(std::net::SocketAddr),
}

/// Parses a `-H` address; `tcp://` only when `tls` (mutual TLS) is configured.
pub fn parse_addr(host: &str, tls: bool) -> Result<Addr, ListenError> {
    if let Some(rest) = host.strip_prefix("tcp://") {
        if !tls {
            return Err(ListenError::TcpWithoutTls(host.into()));
        }
        let rest = rest.trim_end_matches('/');
        return rest
            .parse()
            .map(Addr::Tcp)
            .map_err(|_| ListenError::TcpAddr(host.into()));
    }
    socket_path(host).map(Addr::Unix)
}

/// The socket path of a `unix://` address.
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

/// The files of `--tlsverify`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A rustls server configuration that requires a client certificate chaining to `files.ca`.
pub fn tls_acceptor(files: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor, ListenError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let certs = |p: &Path, what: &str| -> Result<Vec<CertificateDer<'static>>, ListenError> {
        let v: Vec<_> = CertificateDer::pem_file_iter(p)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ListenError::Tls(format!("reading {what} {}: {e}", p.display())))?;
        if v.is_empty() {
            return Err(ListenError::Tls(format!(
                "{what} {}: no PEM certificate in it",
                p.display()
            )));
        }
        Ok(v)
    };
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(&files.ca, "--tlscacert")? {
        roots
            .add(c)
            .map_err(|e| ListenError::Tls(format!("--tlscacert {}: {e}", files.ca.display())))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .map_err(|e| ListenError::Tls(format!("client verifier: {e}")))?;
    let chain = certs(&files.cert, "--tlscert")?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| ListenError::Tls(format!("reading --tlskey {}: {e}", files.key.display())))?;
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            ListenError::Tls(format!(
                "--tlscert {} with --tlskey {}: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg)))
}

/// Binds a TCP address (nonblocking, for tokio).
pub fn bind_tcp(addr: std::net::SocketAddr) -> Result<std::net::TcpListener, ListenError> {
    let l = std::net::TcpListener::bind(addr).map_err(|source| ListenError::BindTcp {
        addr: addr.to_string(),
        source,
    })?;
    l.set_nonblocking(true)
        .map_err(|source| ListenError::BindTcp {
            addr: addr.to_string(),
            source,
        })?;
    Ok(l)
}

/// Serves the API on `listener` to clients that complete a mutual-TLS handshake; a failed
/// handshake (no certificate, another CA, plain HTTP) ends only that connection.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    daemon: std::sync::Arc<hull_api::Daemon>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::time::Duration;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accepting a TCP connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let d = daemon.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(Duration::from_secs(30), acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::info!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::info!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, std::convert::Infallible>(hull_api::router::handle(d, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
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
        assert!(parse_addr("tcp://127.0.0.1:2376", false).is_err());
        assert_eq!(
            parse_addr("tcp://127.0.0.1:2376", true).unwrap(),
            Addr::Tcp("127.0.0.1:2376".parse().unwrap())
        );
        assert!(matches!(
            parse_addr("tcp://localhost", true),
            Err(ListenError::TcpAddr(_))
        ));
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
