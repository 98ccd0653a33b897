//! A small Docker Engine API client: one HTTP/1.1 connection per request (hyper's client
//! connection over a UNIX socket, or TCP with mutual TLS), JSON bodies as
//! `serde_json::Value`, streamed bodies read frame by frame, and hijacked (`Upgrade: tcp`)
//! streams for attach and exec.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

/// The API version this client speaks (hulld's newest).
pub const API_VERSION: &str = "1.43";

/// A daemon error: the HTTP status and Docker's `message`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for ApiError {}

/// Where the daemon is.
#[derive(Clone)]
pub enum Host {
    Unix(PathBuf),
    Tcp {
        addr: String,
        server_name: rustls::pki_types::ServerName<'static>,
        tls: Arc<rustls::ClientConfig>,
    },
}

/// `--tlsverify` and its files.
pub struct TlsOpts {
    pub verify: bool,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

fn tls_config(o: &TlsOpts) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert_dir = std::env::var_os("DOCKER_CERT_PATH")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")));
    let pick = |p: &Option<PathBuf>, name: &str| -> Option<PathBuf> {
        p.clone()
            .or_else(|| cert_dir.as_ref().map(|d| d.join(name)))
    };
    let ca = pick(&o.ca, "ca.pem").ok_or_else(|| anyhow!("--tlsverify needs --tlscacert"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the CA certificate {}", ca.display()))?
    {
        roots
            .add(c)
            .with_context(|| format!("the CA certificate {}", ca.display()))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let cert = pick(&o.cert, "cert.pem");
    let key = pick(&o.key, "key.pem");
    let cfg = match (cert, key) {
        (Some(c), Some(k)) if c.exists() && k.exists() => {
            let chain = CertificateDer::pem_file_iter(&c)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .with_context(|| format!("reading the client certificate {}", c.display()))?;
            let key = PrivateKeyDer::from_pem_file(&k)
                .with_context(|| format!("reading the client key {}", k.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .context("the client certificate and key")?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

impl Host {
    /// `-H`/`HULL_HOST`/`DOCKER_HOST`: unix:///path or tcp://host:port (TLS verified).
    pub fn parse(s: &str, tls: &TlsOpts) -> anyhow::Result<Host> {
        if let Some(p) = s.strip_prefix("unix://") {
            return Ok(Host::Unix(PathBuf::from(p)));
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let addr = rest.trim_end_matches('/').to_string();
            if !tls.verify && tls.ca.is_none() {
                return Err(anyhow!(
                    "{s}: hull talks TCP only over mutual TLS: add --tlsverify with --tlscacert, --tlscert and --tlskey (or DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH)"
                ));
            }
            let host = addr
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&addr)
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let server_name =
                rustls::pki_types::ServerName::try_from(host).map_err(|e| anyhow!("{s}: {e}"))?;
            return Ok(Host::Tcp {
                addr,
                server_name,
                tls: tls_config(tls)?,
            });
        }
        Err(anyhow!(
            "{s}: unsupported host; use unix:///path/to/hull.sock or tcp://HOST:PORT with --tlsverify"
        ))
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

#[derive(Clone)]
pub struct Client {
    pub host: Host,
}

fn cannot_connect(host: &Host, e: impl std::fmt::Display) -> anyhow::Error {
    let h = match host {
        Host::Unix(p) => format!("unix://{}", p.display()),
        Host::Tcp { addr, .. } => format!("tcp://{addr}"),
    };
    anyhow!("Cannot connect to the hull daemon at {h}. Is hulld running? ({e})")
}

impl Client {
    async fn connect(&self) -> anyhow::Result<Pin<Box<dyn Io>>> {
        match &self.host {
            Host::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| cannot_connect(&self.host, e))?;
                Ok(Box::pin(s))
            }
            Host::Tcp {
                addr,
                server_name,
                tls,
            } => {
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| cannot_connect(&self.host, e))?;
                let c = tokio_rustls::TlsConnector::from(tls.clone())
                    .connect(server_name.clone(), s)
                    .await
                    .map_err(|e| cannot_connect(&self.host, format!("TLS: {e}")))?;
                Ok(Box::pin(c))
            }
        }
    }

    /// Sends one request; `path` without the version prefix.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
        upgrade: bool,
    ) -> anyhow::Result<Response<Incoming>> {
        self.send_with(method, path, body, upgrade, &[]).await
    }

    /// [`Client::send`] with extra request headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
        upgrade: bool,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Response<Incoming>> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| cannot_connect(&self.host, e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{API_VERSION}{path}"))
            .header("Host", "hull")
            .header(
                "User-Agent",
                concat!("hull-cli/", env!("CARGO_PKG_VERSION")),
            );
        if upgrade {
            req = req.header("Connection", "Upgrade").header("Upgrade", "tcp");
        }
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let body = match body {
            Some((b, ct)) => {
                req = req.header("Content-Type", ct);
                b
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| cannot_connect(&self.host, e))?;
        Ok(resp)
    }

    /// Sends a request; a status >= 400 becomes an [`ApiError`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
    ) -> anyhow::Result<Response<Incoming>> {
        self.call_with(method, path, body, &[]).await
    }

    /// [`Client::call`] with extra request headers.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        body: Option<(Bytes, &str)>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Response<Incoming>> {
        let resp = self.send_with(method, path, body, false, headers).await?;
        if resp.status().as_u16() >= 400 {
            let status = resp.status();
            let bytes = resp.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ApiError { status, message }.into());
        }
        Ok(resp)
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let body = body.map(|v| (Bytes::from(v.to_string()), "application/json"));
        let resp = self.call(method, path, body).await?;
        let bytes = resp.into_body().collect().await?.to_bytes();
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).context("the daemon's answer is not JSON")
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.json(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.json(Method::POST, path, body).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.json(Method::DELETE, path, None).await
    }

    /// A hijacked stream (attach, exec start): `101 Switching Protocols`, then raw bytes both
    /// ways.
    pub async fn hijack(&self, path: &str, body: Option<Value>) -> anyhow::Result<Upgraded> {
        let body = body.map(|v| (Bytes::from(v.to_string()), "application/json"));
        let resp = self.send(Method::POST, path, body, true).await?;
        let status = resp.status();
        if status.as_u16() >= 400 {
            let bytes = resp.into_body().collect().await?.to_bytes();
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ApiError { status, message }.into());
        }
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(anyhow!(
                "{path}: the daemon did not upgrade the connection ({status})"
            ));
        }
        let up = hyper::upgrade::on(resp).await?;
        Ok(TokioIo::new(up))
    }
}

/// Splits a stream of newline-separated JSON messages (pull, push, load, events, stats).
pub async fn json_lines(
    resp: Response<Incoming>,
    mut each: impl FnMut(Value) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            if let Ok(v) = serde_json::from_slice(line) {
                if !each(v)? {
                    return Ok(());
                }
            }
        }
    }
    let rest = buf.trim_ascii();
    if !rest.is_empty() {
        if let Ok(v) = serde_json::from_slice(rest) {
            each(v)?;
        }
    }
    Ok(())
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
