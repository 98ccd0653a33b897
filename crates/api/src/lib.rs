//! hull's Docker Engine API: the routes `hulld` serves over HTTP/1 on a UNIX socket.
//!
//! - [`router`]: the `/v1.xx` prefix and version check, dispatch, Docker's headers.
//! - [`system`]: `/_ping`, `/version`, `/info`; [`events`]: `/events`.
//! - [`images_routes`]: `/images/...`, over the [`images_api::Images`] trait, implemented on
//!   hull's image store by [`images_service`] and [`registry_service`].
//! - [`containers_routes`]: `/containers/...`, over [`containers::ContainerService`] (records,
//!   one `hull-shim` per running container, json-file logs).
//! - [`errors`]: the one mapping of error kinds to HTTP status codes and Docker's JSON shape.
//! - [`body`], [`query`]: streamed bodies between async and blocking code; URL parsing.

#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod body;
pub mod containers;
pub mod containers_routes;
pub mod errors;
pub mod events;
pub mod images_api;
pub mod images_routes;
pub mod images_service;
pub mod networks_routes;
pub mod networks_service;
pub mod query;
pub mod registry_service;
pub mod router;
pub mod system;
pub mod volumes;
pub mod volumes_routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;

pub use events::Events;
pub use images_api::Images;
pub use images_service::{ImageService, RegistrySettings};

/// The newest API version served, and the oldest.
pub const API_VERSION: &str = "1.43";
pub const MIN_API_VERSION: &str = "1.24";

/// Facts `/info` reports that the daemon's configuration decides.
#[derive(Debug, Clone, Default)]
pub struct SystemConfig {
    /// This daemon's persistent ID.
    pub id: String,
    pub data_root: String,
    pub insecure_registries: Vec<String>,
    pub debug: bool,
}

/// What the routes serve from.
pub struct Daemon {
    pub images: Arc<dyn Images>,
    pub containers: Arc<containers::ContainerService>,
    pub events: Arc<Events>,
    pub system: SystemConfig,
}

/// Serves connections from `listener` until the task is dropped. A connection that fails
/// (malformed HTTP, a client gone) only ends itself.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let d = daemon.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let d = d.clone();
                async move { Ok::<_, Infallible>(router::handle(d, req).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}
