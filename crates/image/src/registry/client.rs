//! One registry repository over HTTP(S): the transport (rustls, timeouts, plain HTTP only for
//! insecure registries), authentication with one retry on 401, and HTTP errors mapped to
//! [`RegistryError`]s that name the image and the registry.

use std::io::{self, Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::digest::Digest;
use crate::reference::Reference;
use crate::store::ContentStore;

use super::auth::{self, Challenge, Credentials, TokenResponse};
use super::error::{RegistryError, Result};

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries ("host" or "host:port") that may be reached over plain HTTP. Loopback
    /// registries (127.0.0.0/8, ::1, localhost) always may.
    pub insecure: Vec<String>,
    /// Extra CA certificates (PEM) trusted for one registry ("host:port", path); such a
    /// registry is always reached over HTTPS, even on loopback.
    pub ca_files: Vec<(String, PathBuf)>,
    /// A directory holding a Docker `config.json` with credentials; else `$DOCKER_CONFIG`, else
    /// `~/.docker`.
    pub docker_config: Option<PathBuf>,
    pub connect_timeout: Duration,
    /// A transfer that moves no byte for this long fails.
    pub stall_timeout: Duration,
    /// Blobs transferred at once.
    pub parallel: usize,
    /// Blobs larger than this are pushed in chunks (PATCH) of this size.
    pub chunk_size: u64,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            ca_files: Vec::new(),
            docker_config: None,
            connect_timeout: Duration::from_secs(15),
            stall_timeout: Duration::from_secs(60),
            parallel: 3,
            chunk_size: 32 << 20,
        }
    }
}

/// Whether `host` ("127.0.0.1:5000", "[::1]:5000", "localhost") is a loopback address.
pub fn is_loopback(host: &str) -> bool {
    let h = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or(host),
        None => host,
    };
    h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A request body that can be sent again (after an authentication retry).
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of a stored blob from `offset`.
    Blob {
        store: &'a ContentStore,
        digest: &'a Digest,
        offset: u64,
        len: u64,
    },
}

/// A client for one repository of one registry.
pub(crate) struct Client {
    agent: ureq::Agent,
    base: String,
    pub registry: String,
    pub image: String,
    pub repo: String,
    creds: Option<Credentials>,
    actions: &'static str,
    extra_scopes: Vec<String>,
    auth: Mutex<Option<String>>,
}

impl Client {
    /// `push` asks for push access too; `mount_from` adds pull scopes on other repositories.
    pub fn new(
        r: &Reference,
        opts: &RegistryOptions,
        push: bool,
        mount_from: &[String],
    ) -> Result<Client> {
        let host = r.registry_host().to_string();
        let ca = opts
            .ca_files
            .iter()
            .find(|(h, _)| h == &host || h == &r.domain);
        // A CA given for a registry means TLS with it, even on loopback.
        let plain = ca.is_none()
            && (is_loopback(&host) || opts.insecure.iter().any(|i| i == &host || i == &r.domain));
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(opts.connect_timeout)
            .timeout_read(opts.stall_timeout)
            .timeout_write(opts.stall_timeout)
            .max_idle_connections_per_host(opts.parallel.max(1) * 2)
            .user_agent(concat!("hull/", env!("CARGO_PKG_VERSION")));
        if let Some((_, path)) = ca {
            b = b.tls_config(tls_with_ca(&host, path)?);
        }
        let creds = match auth::docker_config_path(opts.docker_config.as_deref()) {
            Some(p) => auth::load_credentials(&p, &r.domain)?,
            None => None,
        };
        Ok(Client {
            agent: b.build(),
            base: format!("{}://{host}", if plain { "http" } else { "https" }),
            registry: r.domain.clone(),
            image: r.familiar(),
            repo: r.path.clone(),
            creds,
            actions: if push { "pull,push" } else { "pull" },
            extra_scopes: mount_from
                .iter()
                .map(|m| format!("repository:{m}:pull"))
                .collect(),
            auth: Mutex::new(None),
        })
    }

    /// `/v2/<repo>/<rest>` as an absolute URL.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.repo)
    }

    /// A `Location` header made absolute.
    pub fn resolve_location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else if loc.starts_with('/') {
            format!("{}{loc}", self.base)
        } else {
            format!("{}/{loc}", self.base)
        }
    }

    /// Sends a request, authenticating and retrying once on 401. Statuses >= 400 become
    /// errors ([`RegistryError::Status`] unless more is known).
    pub fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, &str)],
        query: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::Response> {
        let mut retried = false;
        loop {
            let mut req = self.agent.request(method, url);
            for (k, v) in headers {
                req = req.set(k, v);
            }
            for (k, v) in query {
                req = req.query(k, v);
            }
            let sent = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone();
            if let Some(a) = &sent {
                req = req.set("Authorization", a);
            }
            let res = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::Blob {
                    store,
                    digest,
                    offset,
                    len,
                } => {
                    let mut f = store
                        .open_blob(digest)
                        .map_err(|cause| RegistryError::Store {
                            image: self.image.clone(),
                            cause: Box::new(cause),
                        })?;
                    f.seek(SeekFrom::Start(*offset))
                        .map_err(|cause| RegistryError::ReadBlob {
                            image: self.image.clone(),
                            digest: (*digest).clone(),
                            cause,
                        })?;
                    req.set("Content-Length", &len.to_string())
                        .send(f.take(*len))
                }
            };
            match &res {
                Ok(r) => tracing::debug!(method, url, status = r.status(), "registry request"),
                Err(ureq::Error::Status(status, _)) => {
                    tracing::debug!(method, url, status, "registry request")
                }
                Err(ureq::Error::Transport(t)) => {
                    tracing::debug!(method, url, error = %t, "registry request failed")
                }
            }
            match res {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, resp)) if !retried => {
                    retried = true;
                    let challenge = resp.header("www-authenticate").unwrap_or("").to_string();
                    let message = error_message(resp);
                    self.authenticate(&challenge, message, sent.as_deref())?;
                }
                Err(ureq::Error::Status(401, resp)) => {
                    return Err(RegistryError::Unauthorized {
                        image: self.image.clone(),
                        registry: self.registry.clone(),
                        credentials_sent: self.creds.is_some(),
                        message: error_message(resp),
                    })
                }
                Err(ureq::Error::Status(403, resp)) => {
                    return Err(RegistryError::Forbidden {
                        image: self.image.clone(),
                        registry: self.registry.clone(),
                        message: error_message(resp),
                    })
                }
                Err(ureq::Error::Status(status, resp)) => {
                    return Err(RegistryError::Status {
                        image: self.image.clone(),
                        registry: self.registry.clone(),
                        method,
                        url: url.to_string(),
                        status,
                        message: error_message(resp),
                    })
                }
                Err(ureq::Error::Transport(t)) => return Err(self.transport_error(url, t)),
            }
        }
    }

    /// Sets the `Authorization` for the next try. `sent` is what the refused request had: if
    /// another thread has changed it since, that newer one is tried first. The lock is held
    /// while a token is fetched, so parallel requests share one token.
    fn authenticate(&self, challenge: &str, message: String, sent: Option<&str>) -> Result<()> {
        let mut current = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if current.as_deref() != sent {
            return Ok(());
        }
        let unauthorized = |credentials_sent| RegistryError::Unauthorized {
            image: self.image.clone(),
            registry: self.registry.clone(),
            credentials_sent,
            message: message.clone(),
        };
        let header = match auth::parse_challenge(challenge) {
            Some(Challenge::Basic { .. }) => match &self.creds {
                Some(c) => c.basic_header(),
                None => return Err(unauthorized(false)),
            },
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => format!("Bearer {}", self.fetch_token(&realm, service, scope)?),
            None if challenge.is_empty() => return Err(unauthorized(self.creds.is_some())),
            None => {
                return Err(RegistryError::Challenge {
                    image: self.image.clone(),
                    registry: self.registry.clone(),
                    challenge: challenge.to_string(),
                })
            }
        };
        *current = Some(header);
        Ok(())
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<String>,
        scope: Option<String>,
    ) -> Result<String> {
        let token_err = |reason: String| RegistryError::Token {
            image: self.image.clone(),
            registry: self.registry.clone(),
            realm: realm.to_string(),
            reason,
        };
        let realm_host = realm
            .strip_prefix("http://")
            .map(|r| r.split('/').next().unwrap_or(r));
        if let (Some(h), Some(_)) = (realm_host, &self.creds) {
            if !is_loopback(h) && !self.base.starts_with("http://") {
                return Err(token_err(
                    "refusing to send credentials to a token server over plain HTTP".into(),
                ));
            }
        }
        let mut req = self.agent.get(realm);
        if let Some(s) = &service {
            req = req.query("service", s);
        }
        let own = format!("repository:{}:{}", self.repo, self.actions);
        let mut scopes = vec![scope.unwrap_or(own.clone())];
        if !scopes.contains(&own) {
            scopes.push(own);
        }
        scopes.extend(self.extra_scopes.iter().cloned());
        for s in &scopes {
            req = req.query("scope", s);
        }
        if let Some(c) = &self.creds {
            req = req.set("Authorization", &c.basic_header());
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(401, resp)) => {
                return Err(RegistryError::Unauthorized {
                    image: self.image.clone(),
                    registry: self.registry.clone(),
                    credentials_sent: self.creds.is_some(),
                    message: error_message(resp),
                })
            }
            Err(ureq::Error::Status(s, resp)) => {
                return Err(token_err(format!("status {s}: {}", error_message(resp))))
            }
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(realm, t)),
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(1 << 20)
            .read_to_end(&mut body)
            .map_err(|e| token_err(e.to_string()))?;
        let t: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| token_err(format!("bad answer: {e}")))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| token_err("the answer holds no token".into()))
    }

    /// Maps a transport failure: timeouts, TLS, the rest (with the innermost cause).
    pub fn transport_error(&self, url: &str, t: ureq::Transport) -> RegistryError {
        let (image, registry, url) = (self.image.clone(), self.registry.clone(), url.to_string());
        let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&t);
        let (mut timeout, mut tls) = (false, false);
        let mut detail = t
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| t.kind().to_string());
        while let Some(e) = src {
            if let Some(io) = e.downcast_ref::<io::Error>() {
                timeout |= matches!(
                    io.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                );
                tls |= io.get_ref().is_some_and(|i| i.is::<rustls::Error>());
            }
            tls |= e.is::<rustls::Error>();
            detail = e.to_string();
            src = e.source();
        }
        if timeout {
            RegistryError::Timeout {
                image,
                registry,
                url,
            }
        } else if tls {
            RegistryError::Tls {
                image,
                registry,
                url,
                detail,
            }
        } else {
            RegistryError::Connect {
                image,
                registry,
                url,
                detail,
            }
        }
    }

    /// A body read error: a stall is a timeout.
    pub fn body_error(&self, what: String, source: io::Error) -> RegistryError {
        if matches!(
            source.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        ) {
            return RegistryError::Timeout {
                image: self.image.clone(),
                registry: self.registry.clone(),
                url: what,
            };
        }
        RegistryError::Body {
            image: self.image.clone(),
            registry: self.registry.clone(),
            what,
            cause: source,
        }
    }
}

/// The registry's error text: `{"errors":[{"code":..,"message":..}]}`, or the raw start of the
/// body. Tokens and credentials are never in it (it comes from the server).
fn error_message(resp: ureq::Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let mut body = Vec::new();
    let _ = resp.into_reader().take(64 << 10).read_to_end(&mut body);
    if let Ok(e) = serde_json::from_slice::<Errors>(&body) {
        return e
            .errors
            .iter()
            .map(|i| format!("{} {}", i.code, i.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; ");
    }
    String::from_utf8_lossy(&body)
        .trim()
        .chars()
        .take(200)
        .collect()
}

fn tls_with_ca(registry: &str, path: &std::path::Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let ca_err = |cause| RegistryError::CaFile {
        registry: registry.to_string(),
        path: path.to_path_buf(),
        cause,
    };
    let pem = std::fs::read(path).map_err(ca_err)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem).flatten() {
        if roots.add(cert).is_ok() {
            added += 1;
        }
    }
    if added == 0 {
        return Err(RegistryError::CaFileEmpty {
            registry: registry.to_string(),
            path: path.to_path_buf(),
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ca_err(io::Error::other(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:80",
            "[::1]:5000",
            "::1",
            "localhost",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "10.0.0.1:5000",
            "registry-1.docker.io",
            "localhost.example:5000",
            "[::2]:1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
