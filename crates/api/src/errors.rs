//! The one place where errors become HTTP: each error kind maps to a status code, and every
//! error leaves as Docker's JSON shape `{"message": "..."}`.

use hull_image::images::ErrorKind;
use hull_image::registry::RegistryError;
use hull_image::ImageError;
use hyper::StatusCode;

use crate::body::{json_response, ApiBody};
use crate::containers::ContainersError;
use crate::images_service::ImagesError;
use crate::{API_VERSION, MIN_API_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("page not found")]
    NoRoute,
    #[error("client version {0} is too new. Maximum supported API version is {API_VERSION}")]
    VersionTooNew(String),
    #[error("client version {0} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version")]
    VersionTooOld(String),
    #[error("invalid parameter {name:?}: {reason}")]
    BadParameter { name: &'static str, reason: String },
    #[error("reading the request body: {0}")]
    ReadBody(String),
    #[error("{0} not supported by hulld yet")]
    NotImplemented(&'static str),
    #[error("the {0} operation stopped unexpectedly (see the daemon log)")]
    TaskFailed(&'static str),
    #[error(transparent)]
    Images(#[from] ImagesError),
    #[error(transparent)]
    Containers(#[from] ContainersError),
    #[error(transparent)]
    Volumes(#[from] crate::volumes::VolumeError),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::VersionTooNew(_)
            | ApiError::VersionTooOld(_)
            | ApiError::BadParameter { .. }
            | ApiError::ReadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::TaskFailed(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Images(ImagesError::Registry(RegistryError::Unauthorized { .. })) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Images(ImagesError::Registry(RegistryError::Forbidden { .. })) => {
                StatusCode::FORBIDDEN
            }
            ApiError::Containers(e) => container_status(e),
            ApiError::Volumes(e) => e.status(),
            ApiError::Images(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    pub fn bad(name: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            name,
            reason: reason.into(),
        }
    }

    /// The message clients see. Docker's own wording where clients match on it: docker-py
    /// raises `ImageNotFound` only for "No such image: ...".
    pub fn message(&self) -> String {
        use hull_image::archive::ArchiveError;
        match self {
            ApiError::Images(ImagesError::Image(ImageError::NotFound(n)))
            | ApiError::Images(ImagesError::Archive(ArchiveError::Image(ImageError::NotFound(
                n,
            )))) => format!("No such image: {n}"),
            e => e.to_string(),
        }
    }

    /// Docker's error response: the status code and `{"message": "..."}`.
    pub fn into_response(self) -> hyper::Response<ApiBody> {
        let status = self.status();
        let message = self.message();
        if status.is_server_error() {
            tracing::error!("{message}");
        } else {
            tracing::debug!(%status, "{message}");
        }
        json_response(status, &serde_json::json!({ "message": message }))
    }
}

/// Container errors as Docker's status codes: a refused request is the caller's (400), a
/// policy refusal 403, a clash with the container's state 409.
fn container_status(e: &ContainersError) -> StatusCode {
    use ContainersError as E;
    match e {
        E::NetworkRequest { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        E::NotFound(_) | E::NoSuchImage(_) | E::NoSuchExec(_) | E::PathNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        E::Forbidden(_) => StatusCode::FORBIDDEN,
        E::NameInUse { .. } | E::NotRunning(_) | E::RemoveRunning(_) | E::Conflict(_) => {
            StatusCode::CONFLICT
        }
        E::Invalid(_) => StatusCode::BAD_REQUEST,
        E::Runtime { .. } | E::Failed { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        E::BadName(_)
        | E::BadVolumesFrom { .. }
        | E::BindSourceMissing { .. }
        | E::ExecRequest(_)
        | E::Request(_)
        | E::Spec(_)
        | E::TtyUnsupported
        | E::BadOption(_)
        | E::BadSignal(_) => StatusCode::BAD_REQUEST,
        E::LogsUnsupported(_) => StatusCode::NOT_IMPLEMENTED,
        E::Policy(_) => StatusCode::FORBIDDEN,
        E::Volume(v) => v.status(),
        E::Store(s) if matches!(**s, crate::containers::record::StoreError::NameTaken { .. }) => {
            StatusCode::CONFLICT
        }
        E::Store(_)
        | E::Image { .. }
        | E::ImageConfig { .. }
        | E::Subid(_)
        | E::Snapshot(_)
        | E::Mount { .. }
        | E::Io { .. }
        | E::Unreachable { .. }
        | E::Network { .. }
        | E::SpawnShim { .. }
        | E::Start { .. }
        | E::Signal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The line a JSON progress stream ends with when its operation fails after the response
/// began (Docker's `errorDetail`).
pub fn stream_error_line(e: &ApiError) -> String {
    let m = e.message();
    serde_json::json!({ "errorDetail": { "message": m }, "error": m }).to_string()
}

/// Runs `f` on tokio's blocking pool (the services are synchronous); a task that died is
/// a 500 naming `what`.
pub(crate) async fn spawn_blocking<R: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!("{what}: the blocking task failed: {e}");
        ApiError::TaskFailed(what)
    })
}

/// [`spawn_blocking`] for a service call, whose error becomes its Docker status.
pub(crate) async fn blocking<T: Send + 'static, E: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    ApiError: From<E>,
{
    spawn_blocking(what, f).await?.map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_codes() {
        let nf = ApiError::Images(ImagesError::Image(ImageError::NotFound("x".into())));
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        assert_eq!(nf.message(), "No such image: x");
        assert_eq!(ApiError::NoRoute.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::NotImplemented("x").status(),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(
            ApiError::bad("force", "x").status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn stream_errors_have_docker_shape() {
        let line = stream_error_line(&ApiError::NoRoute);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["error"], "page not found");
        assert_eq!(v["errorDetail"]["message"], "page not found");
    }
}
