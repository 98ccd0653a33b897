//! What the image routes need from an image service: one small trait, blocking (the routes
//! run it on tokio's blocking pool), and the request and response types of the Docker API.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use hull_image::inspect::{HistoryItem, InspectData};
use hull_image::registry::Credentials;
use hull_image::remove::DeleteItem;

use crate::images_service::ImagesError;

/// Receives one JSON progress message (without its newline).
pub type Emit<'a> = &'a (dyn Fn(String) + Sync);

/// One row of `GET /images/json`, with Docker's field names.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub virtual_size: u64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `GET /images/json` filters.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only images without (true) or with (false) a tag.
    pub dangling: Option<bool>,
    /// Globs over familiar names ("busybox", "busybox:1.*"): any may match.
    pub references: Vec<String>,
    /// "key" or "key=value": all must match.
    pub labels: Vec<String>,
}

/// `POST /images/create?fromSrc=-`.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// "repo[:tag]" to name the image, if any.
    pub reference: Option<String>,
    pub changes: Vec<String>,
    pub message: Option<String>,
    /// "os/arch[/variant]".
    pub platform: Option<String>,
}

/// `POST /images/create?fromImage=`.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// "repo[:tag]" or "repo@sha256:...".
    pub reference: String,
    pub platform: Option<String>,
    pub auth: Option<Credentials>,
}

/// `POST /images/{name}/push`.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The repository, maybe with a tag.
    pub name: String,
    /// Empty: every tag of the repository.
    pub tag: String,
    pub auth: Option<Credentials>,
}

/// `POST /images/prune`.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<DeleteItem>,
    pub space_reclaimed: u64,
}

/// The image operations behind the routes. Every method blocks.
pub trait Images: Send + Sync + 'static {
    fn count(&self) -> Result<usize, ImagesError>;
    fn list(&self, filter: &ListFilter) -> Result<Vec<ImageSummary>, ImagesError>;
    fn inspect(&self, name: &str) -> Result<InspectData, ImagesError>;
    fn history(&self, name: &str) -> Result<Vec<HistoryItem>, ImagesError>;
    /// Names image `name` also `repo:tag`.
    fn tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ImagesError>;
    fn remove(&self, name: &str, force: bool) -> Result<Vec<DeleteItem>, ImagesError>;
    fn load(&self, src: &mut dyn Read, quiet: bool, emit: Emit) -> Result<(), ImagesError>;
    /// Fails (not found, ambiguous) unless every name resolves: checked before a save's
    /// response starts.
    fn check_names(&self, names: &[String]) -> Result<(), ImagesError>;
    fn save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ImagesError>;
    fn import(
        &self,
        src: &mut dyn Read,
        req: &ImportRequest,
        emit: Emit,
    ) -> Result<(), ImagesError>;
    fn pull(&self, req: &PullRequest, emit: Emit) -> Result<(), ImagesError>;
    fn push(&self, req: &PushRequest, emit: Emit) -> Result<(), ImagesError>;
    /// Checks credentials against a registry (`docker login`); `server` is Docker's
    /// `serveraddress` ("127.0.0.1:5000", "https://index.docker.io/v1/").
    fn login(&self, server: &str, auth: &Credentials) -> Result<(), ImagesError>;
    /// Removes dangling images (all images when `dangling_only` is false) and unused blobs.
    fn prune(&self, dangling_only: bool) -> Result<PruneReport, ImagesError>;
}
