//! `/networks/...` routes: parameters are parsed here, the work runs on tokio's blocking
//! pool in [`NetworkService`]; errors leave as Docker's `{"message": ...}` with its codes.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::body::{json_response, ok_json, read_bytes, response, ApiBody};
use crate::containers::ContainerService;
use crate::errors::{spawn_blocking as blocking, ApiError};
use crate::events::{Event, Events};
use crate::networks_service::{NetError, NetworkService};
use crate::query::Query;

fn failed(e: NetError) -> Response<ApiBody> {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        tracing::error!("{}", e.message);
    }
    json_response(status, &serde_json::json!({ "message": e.message }))
}

fn done<T>(r: Result<T, NetError>, ok: impl FnOnce(T) -> Response<ApiBody>) -> Response<ApiBody> {
    match r {
        Ok(v) => ok(v),
        Err(e) => failed(e),
    }
}

/// Docker's network events: the network's ID as the actor, its name and driver type, and the
/// container for connect/disconnect.
fn event(events: &Events, action: &str, net: &serde_json::Value, container: Option<&str>) {
    let mut attrs = std::collections::BTreeMap::from([
        (
            "name".to_string(),
            net["Name"].as_str().unwrap_or("").to_string(),
        ),
        (
            "type".to_string(),
            net["Driver"].as_str().unwrap_or("bridge").to_string(),
        ),
    ]);
    if let Some(c) = container {
        attrs.insert("container".into(), c.to_string());
    }
    let id = net["Id"].as_str().unwrap_or("");
    events.publish(Event::new("network", action, id, attrs));
}

/// The container a connect/disconnect body names, as its full ID (the name when unknown).
fn body_container(svc: &NetworkService, body: &[u8]) -> String {
    let c = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["Container"].as_str().map(str::to_string))
        .unwrap_or_default();
    svc.containers.resolve(&c).unwrap_or(c)
}

/// `route` is the path after `/networks`. Create, connect, disconnect and removal are
/// published as `network` events.
pub async fn route(
    containers: Arc<ContainerService>,
    events: Arc<Events>,
    route: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>, ApiError> {
    let svc = Arc::new(NetworkService { containers });
    let method = req.method().clone();
    let no_content = |()| response(StatusCode::NO_CONTENT, "", ApiBody::empty());
    match (&method, route) {
        (&Method::GET, "" | "/") => {
            let f = q.filters()?;
            f.only(&["name", "id", "driver", "label", "type", "scope", "dangling"])?;
            let r = blocking("network list", move || svc.list(&f)).await?;
            Ok(done(r, |v| ok_json(&v)))
        }
        (&Method::POST, "/create") => {
            let body = read_bytes(req.into_body(), 1 << 20).await?;
            let r = blocking("network create", move || {
                let id = svc.create(&body)?;
                if let Ok(v) = svc.inspect(&id) {
                    event(&events, "create", &v, None);
                }
                Ok(id)
            })
            .await?;
            Ok(done(r, |id| {
                json_response(
                    StatusCode::CREATED,
                    &serde_json::json!({ "Id": id, "Warning": "" }),
                )
            }))
        }
        (&Method::POST, "/prune") => {
            let f = q.filters()?;
            f.only(&["label", "until"])?;
            let r = blocking("network prune", move || svc.prune(&f)).await?;
            Ok(done(r, |v| ok_json(&v)))
        }
        _ => {
            let rest = route.strip_prefix('/').unwrap_or(route);
            let (name, action) = match rest.split_once('/') {
                Some((n, a)) => (n.to_string(), a.to_string()),
                None => (rest.to_string(), String::new()),
            };
            match (&method, action.as_str()) {
                (&Method::GET, "") => {
                    let r = blocking("network inspect", move || svc.inspect(&name)).await?;
                    Ok(done(r, |v| ok_json(&v)))
                }
                (&Method::DELETE, "") => {
                    let r = blocking("network remove", move || {
                        let v = svc.inspect(&name)?;
                        svc.remove(&name)?;
                        event(&events, "destroy", &v, None);
                        Ok(())
                    })
                    .await?;
                    Ok(done(r, no_content))
                }
                (&Method::POST, "connect") => {
                    let body = read_bytes(req.into_body(), 1 << 20).await?;
                    let r = blocking("network connect", move || {
                        svc.connect(&name, &body)?;
                        if let Ok(v) = svc.inspect(&name) {
                            event(&events, "connect", &v, Some(&body_container(&svc, &body)));
                        }
                        Ok(())
                    })
                    .await?;
                    Ok(done(r, |()| response(StatusCode::OK, "", ApiBody::empty())))
                }
                (&Method::POST, "disconnect") => {
                    let body = read_bytes(req.into_body(), 1 << 20).await?;
                    let r = blocking("network disconnect", move || {
                        svc.disconnect(&name, &body)?;
                        if let Ok(v) = svc.inspect(&name) {
                            event(
                                &events,
                                "disconnect",
                                &v,
                                Some(&body_container(&svc, &body)),
                            );
                        }
                        Ok(())
                    })
                    .await?;
                    Ok(done(r, |()| response(StatusCode::OK, "", ApiBody::empty())))
                }
                _ => Err(ApiError::NoRoute),
            }
        }
    }
}
