//! `hull cp`: files between a container and the local filesystem, as `docker cp` does, over
//! the daemon's archive endpoints (`HEAD`/`GET`/`PUT /containers/{id}/archive`).
//!
//! `CONTAINER:SRC_PATH DEST_PATH|-` copies out: into `DEST_PATH` when it is a directory,
//! else as `DEST_PATH` (the source's top entry renamed); `-` writes the tar to stdout.
//! `SRC_PATH|- CONTAINER:DEST_PATH` copies in the same way (`-` reads a tar from stdin).

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::client::{q, ApiError, Client};

/// One side of a copy.
#[derive(Debug, PartialEq)]
pub enum Side {
    Local(String),
    Container { name: String, path: String },
}

/// docker's rule: a path that starts with "/" or "." or has no ":" is local; else what is
/// before the first ":" names the container.
pub fn split(arg: &str) -> Side {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Local(arg.into());
    }
    match arg.split_once(':') {
        Some((name, path)) if !name.is_empty() => Side::Container {
            name: name.into(),
            path: path.into(),
        },
        _ => Side::Local(arg.into()),
    }
}

pub async fn cp(c: &Client, src: &str, dst: &str, keep_ids: bool) -> anyhow::Result<u8> {
    match (split(src), split(dst)) {
        (Side::Container { name, path }, Side::Local(local)) => {
            copy_out(c, &name, &path, &local).await
        }
        (Side::Local(local), Side::Container { name, path }) => {
            copy_in(c, &local, &name, &path, keep_ids).await
        }
        (Side::Local(_), Side::Local(_)) => {
            bail!("must specify at least one container source")
        }
        _ => bail!("copying between containers is not supported"),
    }
}

fn archive_path(name: &str, path: &str) -> String {
    format!("/containers/{}/archive?path={}", q(name), q(path))
}

/// The stat of a container path (HEAD), None when it is not there.
async fn stat(c: &Client, name: &str, path: &str) -> anyhow::Result<Option<Value>> {
    let resp = c
        .send(Method::HEAD, &archive_path(name, path), None, false)
        .await?;
    match resp.status().as_u16() {
        404 => {
            // the container or the path: HEAD has no body to tell, ask for the container
            c.get(&format!("/containers/{}/json", q(name))).await?;
            Ok(None)
        }
        s if s >= 400 => Err(ApiError {
            status: resp.status(),
            message: format!("stat {path} in {name}: status {s}"),
        }
        .into()),
        _ => Ok(resp
            .headers()
            .get("X-Docker-Container-Path-Stat")
            .and_then(|v| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_bytes())
                    .ok()
            })
            .and_then(|b| serde_json::from_slice(&b).ok())),
    }
}

fn is_dir(stat: &Value) -> bool {
    stat["mode"].as_u64().is_some_and(|m| m & (1 << 31) != 0)
}

async fn copy_out(c: &Client, name: &str, path: &str, local: &str) -> anyhow::Result<u8> {
    let resp = c.call(Method::GET, &archive_path(name, path), None).await?;
    let tar = resp.into_body().collect().await?.to_bytes();
    if local == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(&tar)?;
        out.flush()?;
        return Ok(0);
    }
    let dst = Path::new(local);
    // into an existing directory with the source's name, else as `local` itself
    let (dir, rename) = if dst.is_dir() {
        (dst.to_path_buf(), None)
    } else {
        let parent = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            bail!("{}: no such directory", parent.display());
        }
        let base = dst
            .file_name()
            .with_context(|| format!("{local}: not a file name"))?;
        (parent, Some(PathBuf::from(base)))
    };
    extract(&tar, &dir, rename.as_deref())
}

/// Unpacks `tar` into `dir`, the top entry renamed to `rename`; entries must stay below
/// `dir` and never go through a symlink already there.
fn extract(tar: &[u8], dir: &Path, rename: Option<&Path>) -> anyhow::Result<u8> {
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        let mut parts = Vec::new();
        for c in name.components() {
            match c {
                Component::Normal(n) => parts.push(PathBuf::from(n)),
                Component::CurDir => {}
                _ => bail!("archive entry {}: outside the destination", name.display()),
            }
        }
        if parts.is_empty() {
            continue;
        }
        if let Some(r) = rename {
            parts[0] = r.to_path_buf();
        }
        let mut target = dir.to_path_buf();
        for (i, p) in parts.iter().enumerate() {
            target.push(p);
            let last = i + 1 == parts.len();
            if !last && std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink())
            {
                bail!(
                    "archive entry {}: {} is a symlink",
                    name.display(),
                    target.display()
                );
            }
        }
        if entry.header().entry_type().is_dir() && target.is_dir() {
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("making {}", parent.display()))?;
        }
        entry
            .unpack(&target)
            .with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(0)
}

async fn copy_in(
    c: &Client,
    local: &str,
    name: &str,
    path: &str,
    keep_ids: bool,
) -> anyhow::Result<u8> {
    if local == "-" {
        let mut tar = Vec::new();
        std::io::stdin().read_to_end(&mut tar)?;
        return put(c, name, path, tar, keep_ids).await;
    }
    let src = Path::new(local);
    let meta = std::fs::symlink_metadata(src).with_context(|| format!("reading {local}"))?;
    let base = src
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    // into an existing directory with the source's name, else as `path` itself
    let (dir, top) = match stat(c, name, path).await? {
        Some(st) if is_dir(&st) => (path.to_string(), base),
        Some(_) if meta.is_dir() => {
            bail!("cannot copy a directory to {name}:{path}: not a directory")
        }
        _ => {
            let p = Path::new(path);
            let parent = p
                .parent()
                .map(|d| d.to_string_lossy().into_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "/".into());
            let top = p
                .file_name()
                .map(PathBuf::from)
                .with_context(|| format!("{path}: not a file name"))?;
            (parent, top)
        }
    };
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    if meta.is_dir() {
        b.append_dir_all(&top, src)?;
    } else {
        b.append_path_with_name(src, &top)?;
    }
    let tar = b.into_inner()?;
    put(c, name, &dir, tar, keep_ids).await
}

async fn put(
    c: &Client,
    name: &str,
    dir: &str,
    tar: Vec<u8>,
    keep_ids: bool,
) -> anyhow::Result<u8> {
    let mut path = format!("{}&noOverwriteDirNonDir=true", archive_path(name, dir));
    if keep_ids {
        path.push_str("&copyUIDGID=true");
    }
    c.call(
        Method::PUT,
        &path,
        Some((Bytes::from(tar), "application/x-tar")),
    )
    .await?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_split_as_dockers() {
        let ct = |n: &str, p: &str| Side::Container {
            name: n.into(),
            path: p.into(),
        };
        assert_eq!(split("web:/etc/hosts"), ct("web", "/etc/hosts"));
        assert_eq!(split("./a:b"), Side::Local("./a:b".into()));
        assert_eq!(split("/tmp/x"), Side::Local("/tmp/x".into()));
        assert_eq!(split("file"), Side::Local("file".into()));
        assert_eq!(split("-"), Side::Local("-".into()));
    }

    #[test]
    fn extraction_stays_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        assert!(extract(&tar, dir.path(), None).is_err());
        assert!(!dir.path().parent().unwrap().join("escape").exists());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "src/f", &b"ok"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        extract(&tar, dir.path(), Some(Path::new("renamed"))).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("renamed/f")).unwrap(),
            "ok"
        );
    }
}
