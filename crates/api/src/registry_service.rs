//! Pull and push for [`ImageService`], with the credentials of one request (Docker's
//! `X-Registry-Auth`) written to a private, per-request Docker config that the registry
//! client reads and that is removed when the request ends. Without credentials the client
//! gets a config path that does not exist: the daemon never reads anyone's `~/.docker`.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use hull_image::registry::{self, Credentials, Platform, Progress, RegistryOptions};
use hull_image::Reference;

use crate::images_api::{Emit, PullRequest, PushRequest};
use crate::images_service::{ImageService, ImagesError};

/// A per-request Docker config directory, removed on drop.
struct AuthDir(Option<PathBuf>);

impl Drop for AuthDir {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn options(
    svc: &ImageService,
    domain: &str,
    auth: Option<&Credentials>,
) -> Result<(RegistryOptions, AuthDir), ImagesError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = &svc.registry.auth_dir;
    let (dir, guard) = match auth {
        None => (base.join("none"), AuthDir(None)),
        Some(c) => {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("req-{}-{n}", std::process::id()));
            let err = |source| ImagesError::WriteCredentials {
                path: dir.clone(),
                source,
            };
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(err)?;
            let guard = AuthDir(Some(dir.clone()));
            let cfg = serde_json::json!({ "auths": { domain: {
                "username": c.username, "password": c.password } } });
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join("config.json"))
                .and_then(|mut f| f.write_all(cfg.to_string().as_bytes()))
                .map_err(err)?;
            (dir, guard)
        }
    };
    let opts = RegistryOptions {
        insecure: svc.registry.insecure.clone(),
        docker_config: Some(dir),
        ..RegistryOptions::default()
    };
    Ok((opts, guard))
}

fn forward(emit: Emit<'_>) -> impl Fn(&Progress) + Sync + '_ {
    move |p: &Progress| emit(serde_json::to_string(p).unwrap_or_default())
}

pub fn pull(svc: &ImageService, req: &PullRequest, emit: Emit) -> Result<(), ImagesError> {
    let reference = Reference::parse(&req.reference)?;
    let platform = match &req.platform {
        Some(p) => p.parse()?,
        None => Platform::host(),
    };
    let (opts, _auth) = options(svc, &reference.domain, req.auth.as_ref())?;
    let pulled = registry::pull(
        &svc.store.content,
        &reference,
        &platform,
        &opts,
        &forward(emit),
    )?;
    // The registry client has already reported "Digest:" and "Status:".
    registry::register_pulled(&svc.store, &reference, &pulled)?;
    let name = reference.familiar();
    svc.events.image("pull", &name, &name);
    Ok(())
}

pub fn push(svc: &ImageService, req: &PushRequest, emit: Emit) -> Result<(), ImagesError> {
    let repo = Reference::parse_untagged(&req.name)?;
    let targets: Vec<Reference> = if !req.tag.is_empty() {
        vec![Reference::parse(&format!("{}:{}", req.name, req.tag))?]
    } else if repo.tag.is_some() || repo.digest.is_some() {
        vec![repo.clone()]
    } else {
        // Every local tag of the repository, as `docker push REPO` without a tag.
        let mut v = Vec::new();
        for rec in svc.store.list()? {
            for t in &rec.repo_tags {
                if let Ok(r) = Reference::parse(t) {
                    if r.repository() == repo.repository() {
                        v.push(r);
                    }
                }
            }
        }
        v.sort();
        v
    };
    if targets.is_empty() {
        return Err(ImagesError::NothingToPush(repo.familiar()));
    }
    let (opts, _auth) = options(svc, &repo.domain, req.auth.as_ref())?;
    for target in targets {
        let record = svc
            .store
            .resolve(&target.to_string())
            .map_err(|e| match e {
                hull_image::ImageError::NotFound(_) => {
                    ImagesError::NothingToPush(target.familiar())
                }
                e => e.into(),
            })?;
        // Same-registry names the image already has are candidates for blob mounts.
        let mut mount_from = Vec::new();
        for name in record.repo_digests.iter().chain(&record.repo_tags) {
            if let Ok(r) = Reference::parse(name) {
                if r.domain == target.domain && !mount_from.contains(&r.path) {
                    mount_from.push(r.path);
                }
            }
        }
        let pushed = registry::push(
            &svc.store.content,
            &record.manifest,
            &target,
            &mount_from,
            &opts,
            &forward(emit),
        )?;
        let size = svc.store.content.size(&pushed.digest).unwrap_or(0);
        let name = target.familiar();
        svc.events.image("push", &name, &name);
        // The client has reported "<tag>: digest: ... size: ..."; the CLI also reads aux.
        let tag = target.tag.clone().unwrap_or_default();
        emit(
            serde_json::json!({ "progressDetail": {}, "aux": {
                "Tag": tag, "Digest": pushed.digest.to_string(), "Size": size } })
            .to_string(),
        );
    }
    Ok(())
}

/// The registry host of Docker's `serveraddress`: "https://index.docker.io/v1/" is Docker
/// Hub ("docker.io"), "127.0.0.1:5000" itself.
fn server_host(server: &str) -> &str {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    match s.split('/').next().unwrap_or("") {
        "" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    }
}

pub fn login(svc: &ImageService, server: &str, auth: &Credentials) -> Result<(), ImagesError> {
    let host = server_host(server);
    // Any repository does: the check is /v2/ (or the token for pulling from it).
    let reference = Reference::parse(&format!("{host}/library/hull-login"))?;
    let (opts, _auth) = options(svc, &reference.domain, Some(auth))?;
    registry::login(&reference, &opts)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_hosts() {
        use super::server_host;
        assert_eq!(server_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(server_host(""), "docker.io");
        assert_eq!(server_host("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_host("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
    }
}
