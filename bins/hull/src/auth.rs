//! Registry credentials for pull and push: `docker login`'s `auths` in
//! `$DOCKER_CONFIG/config.json` (else `~/.docker/config.json`), sent as Docker's
//! `X-Registry-Auth` header (base64url of `{"username", "password", "serveraddress"}`).
//! Credential helpers (`credsStore`) are not run.

use base64::Engine as _;
use serde_json::{json, Value};

const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry of an image reference: its first component when that names a host
/// (has '.' or ':', or is localhost), else Docker Hub.
pub fn registry_of(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => DOCKER_HUB.to_string(),
    }
}

fn config() -> Option<Value> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".docker")))?;
    let text = std::fs::read(dir.join("config.json")).ok()?;
    serde_json::from_slice(&text).ok()
}

/// The `X-Registry-Auth` value for `reference` ("e30=", i.e. `{}`, without credentials).
pub fn header_for(reference: &str) -> String {
    let registry = registry_of(reference);
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let creds = config().and_then(|c| {
        let auths = c.get("auths")?.as_object()?.clone();
        let entry = auths.iter().find_map(|(k, v)| {
            let host = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/');
            let want = registry
                .trim_start_matches("https://")
                .trim_end_matches('/');
            (host == want || (registry == DOCKER_HUB && host.ends_with("docker.io/v1")))
                .then(|| v.clone())
        })?;
        let raw = entry.get("auth")?.as_str()?;
        let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_string(), pass.to_string()))
    });
    match creds {
        Some((u, p)) => {
            b64.encode(json!({"username": u, "password": p, "serveraddress": registry}).to_string())
        }
        None => "e30=".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), DOCKER_HUB);
        assert_eq!(registry_of("library/busybox:1"), DOCKER_HUB);
        assert_eq!(registry_of("127.0.0.1:5000/a/b:v"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/x/y"), "ghcr.io");
        assert_eq!(registry_of("localhost/x"), "localhost");
    }
}
