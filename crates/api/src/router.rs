//! Request dispatch: the optional `/v1.xx` prefix (checked against the versions hulld
//! speaks), then the route; every response carries Docker's version headers.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response};

use crate::body::ApiBody;
use crate::errors::ApiError;
use crate::query::Query;
use crate::{
    containers_routes, events, images_routes, system, Daemon, API_VERSION, MIN_API_VERSION,
};

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Splits `/v1.41/images/json` into ("1.41", "/images/json"); other paths are left whole.
fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let (v, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if parse_version(v).is_some() {
            return (Some(v), tail);
        }
    }
    (None, path)
}

fn check_version(v: &str) -> Result<(), ApiError> {
    let have = parse_version(v).ok_or(ApiError::NoRoute)?;
    let max = parse_version(API_VERSION).expect("valid");
    let min = parse_version(MIN_API_VERSION).expect("valid");
    if have > max {
        return Err(ApiError::VersionTooNew(v.to_string()));
    }
    if have < min {
        return Err(ApiError::VersionTooOld(v.to_string()));
    }
    Ok(())
}

pub async fn handle(d: Arc<Daemon>, req: Request<Incoming>) -> Response<ApiBody> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = match dispatch(d, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    tracing::debug!(%method, %path, status = %resp.status(), "request");
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("hull/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

async fn dispatch(d: Arc<Daemon>, req: Request<Incoming>) -> Result<Response<ApiBody>, ApiError> {
    let path = req.uri().path().to_string();
    let (version, route) = split_version(&path);
    if let Some(v) = version {
        check_version(v)?;
    }
    let q = Query::parse(req.uri().query())?;
    let method = req.method().clone();
    match (&method, route) {
        (&Method::GET | &Method::HEAD, "/_ping") => Ok(system::ping(&method)),
        (&Method::GET, "/version") => Ok(system::version()),
        (&Method::GET, "/info") => system::info(d).await,
        (&Method::GET, "/events") => events::route(d.events.clone(), &q),
        (&Method::POST, "/auth") => images_routes::login(d.images.clone(), req).await,
        (_, r) if r.starts_with("/images/") => {
            images_routes::route(d.images.clone(), &r["/images".len()..], &q, req).await
        }
        (_, r) if r.starts_with("/exec/") => {
            containers_routes::exec_route(d.containers.clone(), &r["/exec/".len()..], req).await
        }
        (_, r) if r.starts_with("/containers/") => {
            containers_routes::route(d.containers.clone(), &r["/containers".len()..], &q, req).await
        }
        (&Method::POST, "/commit") => {
            containers_routes::commit(d.containers.clone(), &q, req).await
        }
        (&Method::GET, "/system/df") => containers_routes::system_df(d.containers.clone()).await,
        (_, r) if r == "/networks" || r.starts_with("/networks/") => {
            crate::networks_routes::route(
                d.containers.clone(),
                d.events.clone(),
                &r["/networks".len()..],
                &q,
                req,
            )
            .await
        }
        (_, r) if r == "/volumes" || r.starts_with("/volumes/") => {
            let version = version.unwrap_or(API_VERSION).to_string();
            crate::volumes_routes::route(
                d.containers.clone(),
                d.events.clone(),
                &r["/volumes".len()..],
                &q,
                &version,
                req,
            )
            .await
        }
        (&Method::POST, "/build") => Err(ApiError::NotImplemented("building images is")),
        _ => Err(ApiError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            split_version("/v1.41/images/json"),
            (Some("1.41"), "/images/json")
        );
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert_eq!(split_version("/v1.43/_ping"), (Some("1.43"), "/_ping"));
        assert!(check_version("1.41").is_ok());
        assert!(matches!(
            check_version("1.50"),
            Err(ApiError::VersionTooNew(_))
        ));
        assert!(matches!(
            check_version("1.12"),
            Err(ApiError::VersionTooOld(_))
        ));
    }
}
