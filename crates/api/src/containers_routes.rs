//! `/containers/...` routes: parameters are parsed here, the work runs on tokio's blocking
//! pool in [`ContainerService`]. `wait` sends its headers at once and its body at the end
//! (the docker CLI waits for the headers before it starts the container); `logs` streams
//! Docker's multiplexed frames; `attach` is hijacked (101, then the raw frames).

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::body::{json_response, ok_json, read_bytes, response, ApiBody};
use crate::containers::logs::{self, LogOptions};
use crate::containers::{ContainerService, ContainersError, Outcome, WaitCondition};
use crate::errors::ApiError;
use crate::query::Query;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// [`crate::errors::blocking`] for this service's calls (the error type pinned for
/// closures that only say `Ok(..)`).
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ContainersError> + Send + 'static,
) -> Result<T> {
    crate::errors::blocking(what, f).await
}

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

fn no_content(o: Outcome) -> Response<ApiBody> {
    let status = match o {
        Outcome::Done => StatusCode::NO_CONTENT,
        Outcome::NotModified => StatusCode::NOT_MODIFIED,
    };
    response(status, "", ApiBody::empty())
}

/// `route` is the path after `/containers`.
pub async fn route(
    svc: Arc<ContainerService>,
    route: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let method = req.method().clone();
    match (&method, route) {
        (&Method::GET, "/json") => {
            let o = list_options(q)?;
            Ok(ok_json(&blocking("list", move || svc.list_with(&o)).await?))
        }
        (&Method::POST, "/prune") => {
            let f = q.filters()?.0;
            Ok(ok_json(&blocking("prune", move || svc.prune(&f)).await?))
        }
        (&Method::POST, "/create") => {
            let name = q.get("name").map(str::to_string).filter(|n| !n.is_empty());
            let body = read_bytes(req.into_body(), 1 << 20).await?;
            let id = blocking("create", move || {
                let id = svc.create(name.as_deref(), &body)?;
                svc.emit_id("create", &id, &[]);
                Ok(id)
            })
            .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &serde_json::json!({ "Id": id, "Warnings": [] }),
            ))
        }
        _ => {
            let rest = route.strip_prefix('/').unwrap_or(route);
            let (name, action) = match rest.split_once('/') {
                Some((n, a)) => (n.to_string(), a),
                None => (rest.to_string(), ""),
            };
            container_route(svc, &method, name, action, q, req).await
        }
    }
}

async fn container_route(
    svc: Arc<ContainerService>,
    method: &Method,
    name: String,
    action: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    match (method, action) {
        (&Method::GET, "json") => {
            let v = blocking("inspect", move || {
                let r = svc.get(&name)?;
                Ok(svc.inspect(&r))
            })
            .await?;
            Ok(ok_json(&v))
        }
        (&Method::POST, "start") => Ok(no_content(
            blocking("start", move || {
                let r = svc.start(&name);
                if r.is_err() {
                    svc.remove_after_failed_start(&name);
                }
                r
            })
            .await?,
        )),
        (&Method::POST, "stop") => {
            let t = stop_timeout(q)?;
            Ok(no_content(
                blocking("stop", move || svc.stop(&name, t)).await?,
            ))
        }
        (&Method::POST, "restart") => {
            let t = stop_timeout(q)?;
            blocking("restart", move || {
                svc.stop(&name, t)?;
                let o = svc.start(&name)?;
                svc.emit_id("restart", &name, &[]);
                Ok(o)
            })
            .await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::POST, "kill") => {
            let sig = q.get("signal").unwrap_or("").to_string();
            blocking("kill", move || svc.kill(&name, &sig)).await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::DELETE, "") => {
            let force = q.flag("force");
            let volumes = q.flag("v");
            blocking("remove", move || {
                let mounts = svc.get(&name).map(|r| r.mounts).unwrap_or_default();
                svc.remove(&name, force)?;
                if volumes {
                    svc.remove_anonymous_volumes(&mounts);
                }
                Ok(())
            })
            .await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::POST, "wait") => wait(svc, name, q).await,
        (&Method::POST, "exec") => {
            let body = read_bytes(req.into_body(), 1 << 20).await?;
            let id = blocking("exec create", move || {
                let id = svc.exec_create(&name, &body)?;
                svc.exec_event("exec_create", &id, None);
                Ok(id)
            })
            .await?;
            Ok(json_response(
                StatusCode::CREATED,
                &serde_json::json!({ "Id": id }),
            ))
        }
        (&Method::GET, "logs") => logs_route(svc, name, q).await,
        (&Method::HEAD | &Method::GET | &Method::PUT, "archive") => {
            archive(svc, name, q, req).await
        }
        (&Method::POST, "attach") => attach(svc, name, q, req).await,
        (&Method::POST, "resize") => resize(svc, name, q).await,
        (&Method::POST, "pause") => {
            blocking("pause", move || svc.pause(&name)).await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::POST, "unpause") => {
            blocking("unpause", move || svc.unpause(&name)).await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::POST, "rename") => {
            let new = q.get("name").unwrap_or("").to_string();
            blocking("rename", move || svc.rename(&name, &new)).await?;
            Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
        }
        (&Method::GET, "top") => {
            let args = q.get("ps_args").unwrap_or("").to_string();
            Ok(ok_json(
                &blocking("top", move || svc.top(&name, &args)).await?,
            ))
        }
        (&Method::GET, "stats") => crate::containers::stats::route(svc, name, q).await,
        (&Method::GET, "changes") => Ok(ok_json(
            &blocking("changes", move || svc.changes(&name)).await?,
        )),
        (&Method::GET, "export") => {
            let rx = blocking("export", move || svc.export(&name)).await?;
            Ok(response(
                StatusCode::OK,
                "application/x-tar",
                ApiBody::Stream(rx),
            ))
        }
        _ => Err(ApiError::NoRoute),
    }
}

/// `all`, `limit`/`last`, `size` and `filters` of `GET /containers/json`.
fn list_options(q: &Query) -> Result<crate::containers::ops::ListOptions> {
    let limit = match q.get("limit").or(q.get("last")).filter(|s| !s.is_empty()) {
        None => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad("limit", "not a number")),
        },
    };
    Ok(crate::containers::ops::ListOptions {
        all: q.flag("all"),
        limit,
        size: q.flag("size"),
        filters: q.filters()?.0,
    })
}

/// `t` (or the older `timeout`): seconds before SIGKILL.
fn stop_timeout(q: &Query) -> Result<Option<i64>> {
    match q.get("t").or(q.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad("t", "not a number")),
    }
}

async fn wait(svc: Arc<ContainerService>, name: String, q: &Query) -> Result<Response<ApiBody>> {
    let cond = match q.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad(
                "condition",
                format!("{other:?} is not one of not-running, next-exit, removed"),
            ))
        }
    };
    // Unknown containers are a 404 before the headers go out.
    let s2 = svc.clone();
    let n2 = name.clone();
    blocking("wait", move || s2.get(&n2).map(|_| ())).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::task::spawn_blocking(move || {
        let closed = || tx.is_closed();
        let body = match svc.wait(&name, cond, &closed) {
            Ok(Some(code)) => serde_json::json!({ "StatusCode": code, "Error": null }),
            Ok(None) => return,
            Err(e) => {
                serde_json::json!({ "StatusCode": -1, "Error": { "Message": e.to_string() } })
            }
        };
        let _ = tx.blocking_send(Bytes::from(format!("{body}\n")));
    });
    Ok(response(
        StatusCode::OK,
        "application/json",
        ApiBody::Stream(rx),
    ))
}

fn log_options(q: &Query) -> Result<LogOptions> {
    let tail = match q.get("tail").unwrap_or("all") {
        "all" | "" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| ApiError::bad("tail", "not a number or \"all\""))?,
        ),
    };
    let o = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        timestamps: q.flag("timestamps"),
        tail,
        follow: q.flag("follow"),
        raw: false,
    };
    if !o.stdout && !o.stderr {
        return Err(ApiError::bad(
            "stdout",
            "you must choose at least one stream",
        ));
    }
    Ok(o)
}

/// Streams frames from the log into a channel on a blocking thread.
fn frames(
    svc: Arc<ContainerService>,
    id: String,
    offset: u64,
    o: LogOptions,
    done: impl Fn(&ContainerService) -> bool + Send + 'static,
) -> Result<mpsc::Receiver<Bytes>, ContainersError> {
    let path = svc.log_path(&id);
    if svc
        .get(&id)
        .is_ok_and(|r| crate::containers::interactive::no_log(&r))
    {
        return Err(ContainersError::LogsUnsupported(id));
    }
    let file = std::fs::File::open(&path).map_err(crate::containers::io_err("opening", &path))?;
    let prefix = if offset == 0 {
        logs::rotated_prefix(&path)
    } else {
        Vec::new()
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        logs::stream(
            file,
            offset,
            prefix,
            Some(&path),
            &o,
            &|| done(&svc),
            &mut |f| tx.blocking_send(Bytes::from(f)).is_ok(),
        );
    });
    Ok(rx)
}

async fn logs_route(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
) -> Result<Response<ApiBody>> {
    let mut o = log_options(q)?;
    let (rx, raw) = blocking("logs", move || {
        let rec = svc.get(&name)?;
        o.raw = crate::containers::interactive::is_tty(&rec);
        let raw = o.raw;
        let id2 = rec.id.clone();
        frames(svc, rec.id, 0, o, move |s| {
            s.get(&id2).map_or(true, |r| !r.running())
        })
        .map(|rx| (rx, raw))
    })
    .await?;
    let ct = if raw {
        "application/vnd.docker.raw-stream"
    } else {
        MULTIPLEXED
    };
    Ok(response(StatusCode::OK, ct, ApiBody::Stream(rx)))
}

/// `docker cp` (containers/archive.rs): HEAD stats a path, GET streams a tar of it, PUT
/// extracts a tar into a directory. The stat goes in `X-Docker-Container-Path-Stat`.
async fn archive(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    use base64::Engine;
    let path = q
        .get("path")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::bad("path", "missing: name a path in the container"))?
        .to_string();
    let stat_header = |s: &crate::containers::archive::PathStat| {
        let json = serde_json::to_vec(s).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    };
    let with_stat = |mut r: Response<ApiBody>, value: String| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
        }
        r
    };
    match *req.method() {
        Method::HEAD => {
            let s = blocking("archive", move || svc.archive_stat(&name, &path)).await?;
            Ok(with_stat(
                response(StatusCode::OK, "", ApiBody::empty()),
                stat_header(&s),
            ))
        }
        Method::GET => {
            let (s, rx) = blocking("archive", move || svc.archive_get(&name, &path)).await?;
            Ok(with_stat(
                response(StatusCode::OK, "application/x-tar", ApiBody::Stream(rx)),
                stat_header(&s),
            ))
        }
        _ => {
            let no_overwrite = q.flag("noOverwriteDirNonDir");
            let copy_ids = q.flag("copyUIDGID");
            let body = crate::body::body_reader(req.into_body());
            blocking("archive", move || {
                svc.archive_put(&name, &path, no_overwrite, copy_ids, body)
            })
            .await?;
            Ok(response(StatusCode::OK, "", ApiBody::empty()))
        }
    }
}

/// Hijacked attach through the container's shim (containers/bridge.rs): output from now
/// until the process exits (raw with a tty, else multiplexed), and with `stdin=1` the
/// client's input to the container's stdin. Before the container runs, the attach waits for
/// its start (the shim holds the process until this client is connected).
async fn attach(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    use crate::containers::bridge::{self, Want};
    let s2 = svc.clone();
    let n2 = name.clone();
    let rec = blocking("attach", move || {
        let r = s2.get(&n2)?;
        s2.emit("attach", &r, &[]);
        s2.attach_register(&r.id);
        Ok(r)
    })
    .await?;
    let detach_keys = bridge::parse_detach_keys(q.get("detachKeys").unwrap_or(""))
        .map_err(|e| ApiError::bad("detachKeys", e))?;
    let want = Want {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty: crate::containers::interactive::is_tty(&rec),
    };
    let run = rec.running().then(|| rec.state.started_at.clone());
    let id = rec.id;
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach: the connection was not upgraded: {e}");
                let _ = tokio::task::spawn_blocking(move || svc.attach_cancel(&id)).await;
                return;
            }
        };
        let (r, w) = bridge::split(upgraded);
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (input, reader) = bridge::read_client(r, failed.clone());
        let connected = tokio::task::spawn_blocking(move || {
            let cancelled = || failed.load(std::sync::atomic::Ordering::SeqCst);
            svc.attach_connect(&id, run.as_deref(), &cancelled)
        })
        .await;
        if let Ok(Ok(Some(shim))) = connected {
            bridge::run(shim, w, input, None, want, None, detach_keys).await;
        }
        reader.abort();
    });
    Ok(bridge::upgraded_response(want.tty))
}

/// `POST /containers/{id}/resize?h=&w=`.
async fn resize(svc: Arc<ContainerService>, name: String, q: &Query) -> Result<Response<ApiBody>> {
    let (h, w) = size_params(q)?;
    blocking("resize", move || svc.resize(&name, h, w)).await?;
    Ok(response(StatusCode::OK, "", ApiBody::empty()))
}

fn size_params(q: &Query) -> Result<(u16, u16)> {
    let num = |k: &'static str| -> Result<u16> {
        q.get(k)
            .unwrap_or("0")
            .parse::<u16>()
            .map_err(|_| ApiError::bad(k, "not a number of rows or columns"))
    };
    Ok((num("h")?, num("w")?))
}

/// `/exec/{id}/start` and `/exec/{id}/json`; `route` is the path after `/exec/`.
pub async fn exec_route(
    svc: Arc<ContainerService>,
    route: &str,
    mut req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let (id, action) = route.split_once('/').unwrap_or((route, ""));
    let id = id.to_string();
    match (req.method().clone(), action) {
        (Method::GET, "json") => {
            let v = blocking("exec inspect", move || svc.exec_inspect(&id)).await?;
            Ok(ok_json(&v))
        }
        (Method::POST, "resize") => {
            let q = Query::parse(req.uri().query())?;
            let (h, w) = size_params(&q)?;
            blocking("exec resize", move || svc.exec_resize(&id, h, w)).await?;
            Ok(response(StatusCode::OK, "", ApiBody::empty()))
        }
        (Method::POST, "start") => {
            use crate::containers::bridge::{self, Want};
            let upgrade = hyper::upgrade::on(&mut req);
            let body = read_bytes(req.into_body(), 1 << 16).await?;
            let v: serde_json::Value = if body.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))?
            };
            let detach = v["Detach"].as_bool() == Some(true);
            let exec = blocking("exec start", move || {
                let exec = svc.exec_start(&id)?;
                svc.exec_event("exec_start", &id, None);
                Ok(exec)
            })
            .await?;
            let want = Want {
                stdin: exec.stdin,
                stdout: true,
                stderr: true,
                tty: exec.tty,
            };
            if detach {
                // Nobody attached: the helper's output is read and dropped until it ends.
                tokio::spawn(async move {
                    let (_tx, input) = tokio::sync::mpsc::channel(1);
                    let sink = tokio::io::sink();
                    bridge::run(exec.socket, sink, input, None, want, None, Vec::new()).await;
                });
                return Ok(response(StatusCode::OK, "", ApiBody::empty()));
            }
            tokio::spawn(async move {
                let upgraded = match upgrade.await {
                    Ok(u) => u,
                    Err(e) => {
                        tracing::debug!("exec start: the connection was not upgraded: {e}");
                        return;
                    }
                };
                let (r, w) = bridge::split(upgraded);
                let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let (input, reader) = bridge::read_client(r, failed);
                bridge::run(
                    exec.socket,
                    w,
                    input,
                    Some(exec.extra),
                    want,
                    Some(exec.done),
                    exec.detach_keys,
                )
                .await;
                reader.abort();
            });
            Ok(bridge::upgraded_response(want.tty))
        }
        _ => Err(ApiError::NoRoute),
    }
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`; the body, when
/// not empty, is a container Config whose fields replace the container's.
pub async fn commit(
    svc: Arc<ContainerService>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let body = read_bytes(req.into_body(), 1 << 20).await?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))?;
        Some(v).filter(|v| !v.is_null())
    };
    let o = crate::containers::commit::CommitOptions {
        container: q.get("container").unwrap_or("").to_string(),
        repo: q.get("repo").unwrap_or("").to_string(),
        tag: q.get("tag").unwrap_or("").to_string(),
        comment: q.get("comment").unwrap_or("").to_string(),
        author: q.get("author").unwrap_or("").to_string(),
        changes: q
            .all("changes")
            .into_iter()
            .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|c| !c.trim().is_empty())
            .collect(),
        pause: q.get("pause").is_none() || q.flag("pause"),
        config,
    };
    if o.container.is_empty() {
        return Err(ApiError::bad(
            "container",
            "which container to commit is required",
        ));
    }
    let id = blocking("commit", move || svc.commit(&o)).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": id }),
    ))
}

/// `GET /system/df`: images, containers and their sizes (volumes: none yet).
pub async fn system_df(svc: Arc<ContainerService>) -> Result<Response<ApiBody>> {
    Ok(ok_json(
        &blocking("system df", move || svc.system_df()).await?,
    ))
}
