//! The commands docker has that the first CLI lacked: port, rename, diff, commit, export,
//! import and system df. Output as docker's.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

use crate::client::{json_lines, q, Client};
use crate::fmt::{self, table};
use crate::stream;

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`: `80/tcp -> 127.0.0.1:18080` lines, or only the
/// host addresses of one port.
pub async fn port(c: &Client, container: &str, private: Option<&str>) -> anyhow::Result<u8> {
    let v = c.get(&format!("/containers/{}/json", q(container))).await?;
    let ports = &v["NetworkSettings"]["Ports"];
    let mut keys: Vec<&String> = ports
        .as_object()
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    keys.sort_by_key(|k| {
        let (n, proto) = k.split_once('/').unwrap_or((k, "tcp"));
        (n.parse::<u32>().unwrap_or(0), proto.to_string())
    });
    let want = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for k in keys {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k.as_str()].as_array().into_iter().flatten() {
            let ip = b["HostIp"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("0.0.0.0");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let addr = format!("{ip}:{}", b["HostPort"].as_str().unwrap_or(""));
            found = true;
            match want {
                Some(_) => println!("{addr}"),
                None => println!("{k} -> {addr}"),
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        bail!("Error: No public port '{w}' published for {container}");
    }
    Ok(0)
}

pub async fn rename(c: &Client, old: &str, new: &str) -> anyhow::Result<u8> {
    c.post(
        &format!("/containers/{}/rename?name={}", q(old), q(new)),
        None,
    )
    .await?;
    Ok(0)
}

/// `diff`: `A /path`, `C /path`, `D /path`.
pub async fn diff(c: &Client, container: &str) -> anyhow::Result<u8> {
    let v = c
        .get(&format!("/containers/{}/changes", q(container)))
        .await?;
    for ch in v.as_array().into_iter().flatten() {
        let kind = match ch["Kind"].as_i64() {
            Some(1) => "A",
            Some(2) => "D",
            _ => "C",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(0)
}

pub struct CommitArgs<'a> {
    pub container: &'a str,
    pub reference: Option<&'a str>,
    pub message: Option<&'a str>,
    pub author: Option<&'a str>,
    pub changes: &'a [String],
    pub pause: bool,
}

/// `commit`: prints the new image's ID (`sha256:...`), as docker does.
pub async fn commit(c: &Client, a: CommitArgs<'_>) -> anyhow::Result<u8> {
    let mut path = format!(
        "/commit?container={}&pause={}",
        q(a.container),
        if a.pause { "1" } else { "0" }
    );
    if let Some(r) = a.reference {
        let (repo, tag) = split_tag(r);
        path.push_str(&format!("&repo={}", q(&repo)));
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", q(&t)));
        }
    }
    if let Some(m) = a.message {
        path.push_str(&format!("&comment={}", q(m)));
    }
    if let Some(au) = a.author {
        path.push_str(&format!("&author={}", q(au)));
    }
    for ch in a.changes {
        path.push_str(&format!("&changes={}", q(ch)));
    }
    let v = c.post(&path, None).await?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(0)
}

/// `repo[:tag]` (a `:` after the last `/` is the tag).
fn split_tag(r: &str) -> (String, Option<String>) {
    match r.rsplit_once(':') {
        Some((repo, t)) if !t.contains('/') => (repo.to_string(), Some(t.to_string())),
        _ => (r.to_string(), None),
    }
}

/// `export`: the container's filesystem as a tar, to `-o FILE` or a non-terminal stdout.
pub async fn export(c: &Client, container: &str, output: Option<&PathBuf>) -> anyhow::Result<u8> {
    if output.is_none() && stream::stdout_is_tty() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let resp = c
        .call(
            Method::GET,
            &format!("/containers/{}/export", q(container)),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    let mut out: Box<dyn std::io::Write> = match output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    while let Some(f) = body.frame().await {
        if let Some(d) = f?.data_ref() {
            out.write_all(d)?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// `import FILE|- [REPOSITORY[:TAG]]`: a filesystem tar as an image; prints its ID.
pub async fn import(
    c: &Client,
    file: &str,
    reference: Option<&str>,
    message: Option<&str>,
    changes: &[String],
) -> anyhow::Result<u8> {
    let data = if file == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
        v
    } else {
        std::fs::read(file).with_context(|| format!("reading {file}"))?
    };
    let mut path = "/images/create?fromSrc=-".to_string();
    if let Some(r) = reference {
        let (repo, tag) = split_tag(r);
        path.push_str(&format!("&repo={}", q(&repo)));
        if let Some(t) = tag {
            path.push_str(&format!("&tag={}", q(&t)));
        }
    }
    if let Some(m) = message {
        path.push_str(&format!("&message={}", q(m)));
    }
    for ch in changes {
        path.push_str(&format!("&changes={}", q(ch)));
    }
    let resp = c
        .call(
            Method::POST,
            &path,
            Some((Bytes::from(data), "application/x-tar")),
        )
        .await?;
    let mut last = String::new();
    let mut err = None;
    json_lines(resp, |v: Value| {
        if let Some(e) = v["error"].as_str().or(v["errorDetail"]["message"].as_str()) {
            err = Some(e.to_string());
            return Ok(false);
        }
        if let Some(s) = v["status"].as_str() {
            last = s.to_string();
        }
        Ok(true)
    })
    .await?;
    if let Some(e) = err {
        bail!("{e}");
    }
    println!("{last}");
    Ok(0)
}

/// `system df`: docker's summary table of images, containers, volumes and build cache.
pub async fn df(c: &Client) -> anyhow::Result<u8> {
    let v = c.get("/system/df").await?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let images = arr("Images");
    let containers = arr("Containers");
    let volumes = arr("Volumes");
    let cache = arr("BuildCache");
    let pct = |part: f64, total: f64| {
        if total > 0.0 {
            format!(" ({:.0}%)", part * 100.0 / total)
        } else {
            String::new()
        }
    };
    let mut rows = vec![vec![
        "TYPE".to_string(),
        "TOTAL".into(),
        "ACTIVE".into(),
        "SIZE".into(),
        "RECLAIMABLE".into(),
    ]];
    // Images: active when a container uses them; reclaimable what no container uses.
    let img_total: f64 = v["LayersSize"]
        .as_f64()
        .unwrap_or_else(|| images.iter().filter_map(|i| i["Size"].as_f64()).sum());
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    // Layers shared with an image in use are not reclaimable.
    let img_used: f64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .filter_map(|i| i["Size"].as_f64())
        .sum();
    let img_unused = (img_total - img_used).max(0.0);
    rows.push(vec![
        "Images".into(),
        images.len().to_string(),
        img_active.to_string(),
        fmt::human_size(img_total),
        format!(
            "{}{}",
            fmt::human_size(img_unused),
            pct(img_unused, img_total)
        ),
    ]);
    let running = |c: &Value| matches!(c["State"].as_str(), Some("running" | "paused"));
    let ct_total: f64 = containers.iter().filter_map(|c| c["SizeRw"].as_f64()).sum();
    let ct_idle: f64 = containers
        .iter()
        .filter(|c| !running(c))
        .filter_map(|c| c["SizeRw"].as_f64())
        .sum();
    rows.push(vec![
        "Containers".into(),
        containers.len().to_string(),
        containers.iter().filter(|c| running(c)).count().to_string(),
        fmt::human_size(ct_total),
        format!("{}{}", fmt::human_size(ct_idle), pct(ct_idle, ct_total)),
    ]);
    let vsize = |v: &Value| v["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0);
    let vused = |v: &Value| v["UsageData"]["RefCount"].as_i64().unwrap_or(0) > 0;
    let vol_total: f64 = volumes.iter().map(vsize).sum();
    let vol_idle: f64 = volumes.iter().filter(|v| !vused(v)).map(vsize).sum();
    rows.push(vec![
        "Local Volumes".into(),
        volumes.len().to_string(),
        volumes.iter().filter(|v| vused(v)).count().to_string(),
        fmt::human_size(vol_total),
        format!("{}{}", fmt::human_size(vol_idle), pct(vol_idle, vol_total)),
    ]);
    let cache_total: f64 = cache.iter().filter_map(|b| b["Size"].as_f64()).sum();
    rows.push(vec![
        "Build Cache".into(),
        cache.len().to_string(),
        "0".into(),
        fmt::human_size(cache_total),
        fmt::human_size(cache_total),
    ]);
    print!("{}", table(&rows));
    Ok(0)
}
