//! `/images/...` routes: parameters are parsed and checked here, the work runs on tokio's
//! blocking pool through the [`Images`] trait, and long operations (load, pull, push, import)
//! stream Docker's JSON progress messages while they run.

use std::io::BufWriter;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use hull_image::registry::Credentials;
use hull_image::Reference;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::body::{body_reader, ok_json, response, ApiBody, ChannelWriter};
use crate::errors::{stream_error_line, ApiError};
use crate::images_api::{Emit, Images, ImportRequest, ListFilter, PullRequest, PushRequest};
use crate::images_service::ImagesError;
use crate::query::{decode, Query};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// [`crate::errors::blocking`] for this service's calls (the error type pinned for
/// closures that only say `Ok(..)`).
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ImagesError> + Send + 'static,
) -> Result<T> {
    crate::errors::blocking(what, f).await
}

/// A 200 response streaming the JSON lines `f` emits while it runs on the blocking pool; an
/// error after the start becomes Docker's `errorDetail` line. A client that goes away only
/// stops the messages: the operation itself completes, leaving the store consistent.
fn progress_stream(
    what: &'static str,
    f: impl FnOnce(Emit) -> Result<(), ImagesError> + Send + 'static,
) -> Response<ApiBody> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        let emit = |line: String| {
            let _ = tx.blocking_send(Bytes::from(line + "\n"));
        };
        if let Err(e) = f(&emit) {
            let e = ApiError::from(e);
            tracing::warn!("{what}: {e}");
            emit(stream_error_line(&e));
        }
    });
    response(StatusCode::OK, "application/json", ApiBody::Stream(rx))
}

/// Decodes Docker's `X-Registry-Auth` header: base64url of `{"username", "password", ...}`.
fn registry_auth(req: &Request<Incoming>) -> Result<Option<Credentials>> {
    let Some(h) = req.headers().get("x-registry-auth") else {
        return Ok(None);
    };
    let bad = |r: &str| ApiError::bad("X-Registry-Auth", r.to_string());
    let raw = h.to_str().map_err(|_| bad("not ASCII"))?.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let engines = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
    ];
    let json = engines
        .iter()
        .find_map(|e| e.decode(raw).ok())
        .ok_or_else(|| bad("not base64"))?;
    #[derive(serde::Deserialize, Default)]
    struct Auth {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
    }
    let a: Auth =
        serde_json::from_slice(&json).map_err(|e| bad(&format!("not an auth JSON object: {e}")))?;
    if a.username.is_empty() && a.password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: a.username,
        password: a.password,
    }))
}

pub async fn route(
    images: Arc<dyn Images>,
    rest: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Response<ApiBody>> {
    let method = req.method().clone();
    match (&method, rest) {
        (&Method::GET, "/json") => list(images, q).await,
        (&Method::POST, "/load") => load(images, q, req),
        (&Method::GET, "/get") => save(images, q.all("names")).await,
        (&Method::POST, "/create") => create(images, q, req),
        (&Method::POST, "/prune") => prune(images, q).await,
        _ => {
            let rest = rest.strip_prefix('/').ok_or(ApiError::NoRoute)?;
            let (name, action) = match &method {
                &Method::DELETE => (rest, ""),
                _ => rest.rsplit_once('/').ok_or(ApiError::NoRoute)?,
            };
            if name.is_empty() {
                return Err(ApiError::NoRoute);
            }
            let name = decode(name, false, "name")?;
            match (&method, action) {
                (&Method::DELETE, "") => {
                    let force = q.flag("force");
                    let items = blocking("remove", move || images.remove(&name, force)).await?;
                    Ok(ok_json(&items))
                }
                (&Method::GET, "json") => Ok(ok_json(
                    &blocking("inspect", move || images.inspect(&name)).await?,
                )),
                (&Method::GET, "history") => Ok(ok_json(
                    &blocking("history", move || images.history(&name)).await?,
                )),
                (&Method::GET, "get") => save(images, vec![name]).await,
                (&Method::POST, "tag") => {
                    let repo = q.get("repo").unwrap_or("").to_string();
                    if repo.is_empty() {
                        return Err(ApiError::bad("repo", "a repository name is required"));
                    }
                    let tag = q.get("tag").unwrap_or("").to_string();
                    blocking("tag", move || images.tag(&name, &repo, &tag)).await?;
                    Ok(response(StatusCode::CREATED, "", ApiBody::empty()))
                }
                (&Method::POST, "push") => {
                    let push = PushRequest {
                        name,
                        tag: q.get("tag").unwrap_or("").to_string(),
                        auth: registry_auth(&req)?,
                    };
                    Reference::parse_untagged(&push.name).map_err(ImagesError::from)?;
                    Ok(progress_stream("push", move |emit| {
                        images.push(&push, emit)
                    }))
                }
                _ => Err(ApiError::NoRoute),
            }
        }
    }
}

async fn list(images: Arc<dyn Images>, q: &Query) -> Result<Response<ApiBody>> {
    let f = q.filters()?;
    f.only(&["dangling", "reference", "label"])?;
    let dangling = match f.get("dangling") {
        [] => None,
        [v] if v == "true" || v == "1" => Some(true),
        [v] if v == "false" || v == "0" => Some(false),
        _ => {
            return Err(ApiError::bad(
                "filters",
                "dangling takes one of true, false",
            ))
        }
    };
    let filter = ListFilter {
        dangling,
        references: f.get("reference").to_vec(),
        labels: f.get("label").to_vec(),
    };
    Ok(ok_json(
        &blocking("list", move || images.list(&filter)).await?,
    ))
}

fn load(images: Arc<dyn Images>, q: &Query, req: Request<Incoming>) -> Result<Response<ApiBody>> {
    let quiet = q.flag("quiet");
    let mut body = body_reader(req.into_body());
    Ok(progress_stream("load", move |emit| {
        images.load(&mut body, quiet, emit)
    }))
}

async fn save(images: Arc<dyn Images>, names: Vec<String>) -> Result<Response<ApiBody>> {
    if names.is_empty() {
        return Err(ApiError::bad("names", "name at least one image to save"));
    }
    let (check, check_names) = (images.clone(), names.clone());
    blocking("save", move || check.check_names(&check_names)).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let mut out = BufWriter::with_capacity(256 << 10, ChannelWriter(tx));
        if let Err(e) = images.save(&names, &mut out) {
            // The archive is cut short: the client sees a truncated tar and fails.
            tracing::warn!("save {names:?}: {e}");
        }
    });
    Ok(response(
        StatusCode::OK,
        "application/x-tar",
        ApiBody::Stream(rx),
    ))
}

fn create(images: Arc<dyn Images>, q: &Query, req: Request<Incoming>) -> Result<Response<ApiBody>> {
    let tag = q.get("tag").unwrap_or("");
    let platform = q
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    if let Some(p) = &platform {
        p.parse::<hull_image::registry::Platform>()
            .map_err(ImagesError::from)?;
    }
    let with_tag = |name: &str| match tag {
        "" => name.to_string(),
        t if t.starts_with("sha256:") => format!("{name}@{t}"),
        t => format!("{name}:{t}"),
    };
    if let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) {
        let reference = with_tag(from);
        Reference::parse(&reference).map_err(ImagesError::from)?;
        let pull = PullRequest {
            reference,
            platform,
            auth: registry_auth(&req)?,
        };
        return Ok(progress_stream("pull", move |emit| {
            images.pull(&pull, emit)
        }));
    }
    match q.get("fromSrc") {
        Some("-") => {
            let reference = q.get("repo").filter(|s| !s.is_empty()).map(with_tag);
            if let Some(r) = &reference {
                Reference::parse(r).map_err(ImagesError::from)?;
            }
            let import = ImportRequest {
                reference,
                changes: q.all("changes"),
                message: q
                    .get("message")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                platform,
            };
            let mut body = body_reader(req.into_body());
            Ok(progress_stream("import", move |emit| {
                images.import(&mut body, &import, emit)
            }))
        }
        Some(src) if !src.is_empty() => Err(ApiError::bad(
            "fromSrc",
            format!(
                "{src:?}: only \"-\" (the request body) is supported; hulld does not fetch URLs"
            ),
        )),
        _ => Err(ApiError::bad(
            "fromImage",
            "fromImage or fromSrc is required",
        )),
    }
}

async fn prune(images: Arc<dyn Images>, q: &Query) -> Result<Response<ApiBody>> {
    let f = q.filters()?;
    f.only(&["dangling"])?;
    let dangling_only = match f.get("dangling") {
        [] => true,
        [v] if v == "true" || v == "1" => true,
        [v] if v == "false" || v == "0" => false,
        _ => {
            return Err(ApiError::bad(
                "filters",
                "dangling takes one of true, false",
            ))
        }
    };
    Ok(ok_json(
        &blocking("prune", move || images.prune(dangling_only)).await?,
    ))
}

/// `POST /auth` (docker login): `{"username", "password", "serveraddress"}`.
pub async fn login(images: Arc<dyn Images>, req: Request<Incoming>) -> Result<Response<ApiBody>> {
    #[derive(serde::Deserialize)]
    struct Login {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        serveraddress: String,
    }
    let l: Login = crate::body::read_json(req.into_body(), 64 << 10).await?;
    if l.username.is_empty() || l.password.is_empty() {
        return Err(ApiError::bad("body", "username and password are required"));
    }
    let creds = Credentials {
        username: l.username,
        password: l.password,
    };
    blocking("login", move || images.login(&l.serveraddress, &creds)).await?;
    Ok(ok_json(
        &serde_json::json!({ "Status": "Login Succeeded", "IdentityToken": "" }),
    ))
}
