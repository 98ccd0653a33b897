//! `/volumes` routes: create, list, inspect, remove, prune, over
//! [`ContainerService`]'s volumes (`crate::volumes`), on tokio's blocking pool.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::body::{json_response, ok_json, read_bytes, response, ApiBody};
use crate::containers::ContainerService;
use crate::errors::ApiError;
use crate::events::{Event, Events};
use crate::query::Query;
use crate::volumes::{CreateRequest, VolumeError};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// [`crate::errors::blocking`] for this service's calls (the error type pinned for
/// closures that only say `Ok(..)`).
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, VolumeError> + Send + 'static,
) -> Result<T> {
    crate::errors::blocking(what, f).await
}

fn older_than(version: &str, major: u32, minor: u32) -> bool {
    let mut it = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) < (major, minor)
}

fn event(events: &Events, action: &str, name: &str) {
    let attrs = std::collections::BTreeMap::from([("driver".to_string(), "local".to_string())]);
    events.publish(Event::new("volume", action, name, attrs));
}

/// `route` is the path after `/volumes`; `version` the API version of the request. Create
/// and removal are published as `volume` events.
pub async fn route(
    svc: Arc<ContainerService>,
    events: Arc<Events>,
    route: &str,
    q: &Query,
    version: &str,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let method = req.method().clone();
    match (&method, route) {
        (&Method::GET, "" | "/") => {
            let filters = q.filters()?;
            filters.only(&["name", "label", "dangling", "driver"])?;
            for d in filters.get("dangling") {
                if !["true", "false", "1", "0"].contains(&d.as_str()) {
                    return Err(ApiError::bad(
                        "filters",
                        format!("invalid filter 'dangling={d}': use true or false"),
                    ));
                }
            }
            let f = filters.0;
            let vols = blocking("volume list", move || svc.volume_list(&f)).await?;
            Ok(ok_json(&json!({ "Volumes": vols, "Warnings": [] })))
        }
        (&Method::POST, "/create") => {
            let body = read_bytes(req.into_body(), 1 << 20).await?;
            let create: CreateRequest = if body.iter().all(u8::is_ascii_whitespace) {
                CreateRequest::default()
            } else {
                let de = &mut serde_json::Deserializer::from_slice(&body);
                serde_path_to_error::deserialize(de).map_err(|e| {
                    let at = e.path().to_string();
                    let what = if at == "." {
                        "the body".to_string()
                    } else {
                        at
                    };
                    ApiError::from(VolumeError::Request(format!("{what}: {}", e.inner())))
                })?
            };
            let vol = blocking("volume create", move || svc.volume_create(create)).await?;
            event(&events, "create", &vol.name);
            Ok(json_response(StatusCode::CREATED, &vol))
        }
        (&Method::POST, "/prune") => {
            let filters = q.filters()?;
            filters.only(&["label", "label!", "all"])?;
            // API 1.42 made prune remove anonymous volumes only, unless all=true.
            let all = older_than(version, 1, 42)
                || filters
                    .get("all")
                    .iter()
                    .any(|v| matches!(v.as_str(), "true" | "1"));
            let f = filters.0;
            let (names, bytes) =
                blocking("volume prune", move || svc.volume_prune(&f, all)).await?;
            for n in &names {
                event(&events, "destroy", n);
            }
            Ok(ok_json(
                &json!({ "VolumesDeleted": names, "SpaceReclaimed": bytes }),
            ))
        }
        (m, r) if r.len() > 1 && !r[1..].contains('/') => {
            let name = r[1..].to_string();
            match *m {
                Method::GET => Ok(ok_json(
                    &blocking("volume inspect", move || svc.volume_get(&name)).await?,
                )),
                Method::DELETE => {
                    let force = q.flag("force");
                    let n = name.clone();
                    blocking("volume remove", move || svc.volume_remove(&n, force)).await?;
                    event(&events, "destroy", &name);
                    Ok(response(StatusCode::NO_CONTENT, "", ApiBody::empty()))
                }
                _ => Err(ApiError::NoRoute),
            }
        }
        _ => Err(ApiError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare() {
        assert!(super::older_than("1.41", 1, 42));
        assert!(!super::older_than("1.43", 1, 42));
        assert!(!super::older_than("1.42", 1, 42));
    }
}
