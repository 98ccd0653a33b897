//! `/containers/...` routes: parameters are parsed here, the work runs on tokio's blocking
//! pool in [`ContainerService`]. `wait` sends its headers at once and its body at the end
//! (the docker CLI waits for the headers before it starts the container); `logs` streams
//! Docker's multiplexed frames; `attach` is hijacked (101, then the raw frames).

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::body::{json_response, ok_json, read_bytes, response, ApiBody};
use crate::containers::logs::{self, LogOptions};
use crate::containers::{ContainerService, ContainersError, Outcome, WaitCondition};
use crate::errors::ApiError;
use crate::query::Query;

type Result<T, E = ApiError> = std::result::Result<T, E>;

const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ContainersError> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!("{what}: the blocking task failed: {e}");
            Err(ApiError::TaskFailed(what))
        }
    }
}

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
            let all = q.flag("all");
            Ok(ok_json(&blocking("list", move || Ok(svc.list(all))).await?))
        }
        (&Method::POST, "/create") => {
            let name = q.get("name").map(str::to_string).filter(|n| !n.is_empty());
            let body = read_bytes(req.into_body(), 1 << 20).await?;
            let id = blocking("create", move || svc.create(name.as_deref(), &body)).await?;
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
                svc.start(&name)
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
            let id = blocking("exec create", move || svc.exec_create(&name, &body)).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &serde_json::json!({ "Id": id }),
            ))
        }
        (&Method::GET, "logs") => logs_route(svc, name, q).await,
        (&Method::POST, "attach") => attach(svc, name, q, req).await,
        _ => Err(ApiError::NoRoute),
    }
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
    let file = std::fs::File::open(&path).map_err(crate::containers::io_err("opening", &path))?;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        logs::stream(file, offset, &o, &|| done(&svc), &mut |f| {
            tx.blocking_send(Bytes::from(f)).is_ok()
        });
    });
    Ok(rx)
}

async fn logs_route(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
) -> Result<Response<ApiBody>> {
    let o = log_options(q)?;
    let rx = blocking("logs", move || {
        let id = svc.resolve(&name)?;
        let id2 = id.clone();
        frames(svc, id, 0, o, move |s| {
            s.get(&id2).map_or(true, |r| !r.running())
        })
    })
    .await?;
    Ok(response(StatusCode::OK, MULTIPLEXED, ApiBody::Stream(rx)))
}

/// Hijacked attach: output from now until the container's next exit. stdin is not
/// forwarded yet (the container's stdin is /dev/null).
async fn attach(
    svc: Arc<ContainerService>,
    name: String,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let o = LogOptions {
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        timestamps: false,
        tail: None,
        follow: q.flag("stream"),
    };
    let rx = blocking("attach", move || {
        let rec = svc.get(&name)?;
        let offset = std::fs::metadata(svc.log_path(&rec.id)).map_or(0, |m| m.len());
        let (id, exits) = (rec.id.clone(), rec.state.exits);
        frames(svc, rec.id, offset, o, move |s| {
            s.get(&id).map_or(true, |r| r.state.exits > exits)
        })
    })
    .await?;
    Ok(hijack(hyper::upgrade::on(&mut req), rx))
}

/// Docker's hijacked stream: `101 UPGRADED` (`Upgrade: tcp`), then the frames from `rx` on
/// the raw connection, which is shut down when they end.
fn hijack(upgrade: hyper::upgrade::OnUpgrade, mut rx: mpsc::Receiver<Bytes>) -> Response<ApiBody> {
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach: the connection was not upgraded: {e}");
                return;
            }
        };
        let mut io = TokioIo::new(upgraded);
        while let Some(b) = rx.recv().await {
            if io.write_all(&b).await.is_err() {
                return;
            }
        }
        let _ = io.shutdown().await;
    });
    let mut r = response(
        StatusCode::SWITCHING_PROTOCOLS,
        MULTIPLEXED,
        ApiBody::empty(),
    );
    let h = r.headers_mut();
    h.insert("Connection", HeaderValue::from_static("Upgrade"));
    h.insert("Upgrade", HeaderValue::from_static("tcp"));
    r
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
        (Method::POST, "resize") => Ok(response(StatusCode::OK, "", ApiBody::empty())),
        (Method::POST, "start") => {
            let upgrade = hyper::upgrade::on(&mut req);
            let body = read_bytes(req.into_body(), 1 << 16).await?;
            let v: serde_json::Value = if body.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad("body", format!("not valid JSON: {e}")))?
            };
            if v["Tty"].as_bool() == Some(true) {
                return Err(ContainersError::TtyUnsupported.into());
            }
            let detach = v["Detach"].as_bool() == Some(true);
            let mut rx = blocking("exec start", move || svc.exec_start(&id)).await?;
            if detach {
                tokio::spawn(async move { while rx.recv().await.is_some() {} });
                return Ok(response(StatusCode::OK, "", ApiBody::empty()));
            }
            Ok(hijack(upgrade, rx))
        }
        _ => Err(ApiError::NoRoute),
    }
}
