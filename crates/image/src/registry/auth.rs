//! Registry authentication: `WWW-Authenticate` challenges (Basic, Bearer) and credentials from
//! a Docker-style `config.json`. Secrets are never printed: [`Credentials`]' Debug hides them.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading the registry credentials file {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the registry credentials file {path} is not valid JSON: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("the registry credentials file {path}: the \"auth\" entry for {registry} is not base64 of user:password")]
    BadAuth { path: PathBuf, registry: String },
}

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// The `Authorization` header value for HTTP Basic.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// One authentication challenge from a 401's `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="https://auth",service="registry",scope="repository:a:pull"` or
/// `Basic realm="x"`. Quoted values may hold commas and escaped quotes.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest)?;
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic {
            realm: params.get("realm").cloned(),
        }),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

fn parse_params(s: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        chars.next()?; // '='
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

/// The token endpoint's answer (`token`, or OAuth2's `access_token`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    pub token: Option<String>,
    pub access_token: Option<String>,
}

/// The Docker config file to read: `dir/config.json` if a directory is given, else
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_path(dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(d) = dir {
        return Some(d.join("config.json"));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

#[derive(Default, serde::Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Default, serde::Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The host part of an `auths` key ("https://index.docker.io/v1/" -> "index.docker.io").
fn auth_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, domain: &str) -> bool {
    let host = auth_key_host(key);
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    host == domain || (hub.contains(&host) && hub.contains(&domain))
}

/// Credentials for `domain` (a reference's domain, "docker.io" for Docker Hub) from the
/// config file at `path`; a missing file means none.
pub fn load_credentials(
    path: &Path,
    domain: &str,
) -> Result<Option<Credentials>, CredentialsError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let cfg: ConfigFile =
        serde_json::from_slice(&text).map_err(|source| CredentialsError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    let Some((key, entry)) = cfg.auths.iter().find(|(k, _)| same_registry(k, domain)) else {
        return Ok(None);
    };
    let bad = || CredentialsError::BadAuth {
        path: path.to_path_buf(),
        registry: key.clone(),
    };
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = raw.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    if let Some(tok) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials {
            username: "<token>".into(),
            password: tok.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) => Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic {
                realm: Some("Registry Realm".into())
            })
        );
        assert_eq!(
            parse_challenge("basic"),
            Some(Challenge::Basic { realm: None })
        );
        let c = parse_challenge(r#"Bearer realm=http://127.0.0.1:1/t, service = "a\"b""#).unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("a\"b".into()),
                scope: None
            }
        );
        assert_eq!(
            parse_challenge("Bearer service=x"),
            None,
            "realm is required"
        );
        assert_eq!(parse_challenge(r#"Bearer realm="unterminated"#), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn reads_docker_config() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"aHViOnNlY3JldA=="},
                "127.0.0.1:5000":{"username":"alice","password":"pw:with:colons"},
                "http://localhost:6000/v2/":{"auth":"Ym9iOnB3"},
                "broken.example":{"auth":"!!!"}
            },"credsStore":"desktop"}"#,
        )
        .unwrap();
        let hub = load_credentials(&p, "docker.io").unwrap().unwrap();
        assert_eq!(
            (hub.username.as_str(), hub.password.as_str()),
            ("hub", "secret")
        );
        let a = load_credentials(&p, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(a.password, "pw:with:colons");
        let b = load_credentials(&p, "localhost:6000").unwrap().unwrap();
        assert_eq!(b.basic_header(), "Basic Ym9iOnB3");
        assert!(load_credentials(&p, "other:1").unwrap().is_none());
        assert!(matches!(
            load_credentials(&p, "broken.example"),
            Err(CredentialsError::BadAuth { .. })
        ));
        assert!(!format!("{a:?}").contains("pw"), "Debug hides the password");
        assert!(load_credentials(&t.path().join("none.json"), "x")
            .unwrap()
            .is_none());
        std::fs::write(&p, "{").unwrap();
        assert!(matches!(
            load_credentials(&p, "x"),
            Err(CredentialsError::Parse { .. })
        ));
    }
}
