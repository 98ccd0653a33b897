//! Checking credentials against a registry, as `docker login` does: `GET /v2/` with them.

use crate::reference::Reference;

use super::client::{Body, Client, RegistryOptions};
use super::error::Result;

/// Checks that the registry of `reference` accepts the credentials `opts` lead to (its
/// Docker config). Basic registries check them on `/v2/`; token registries when the token
/// is fetched (for pull on the reference's repository, which need not exist).
pub fn login(reference: &Reference, opts: &RegistryOptions) -> Result<()> {
    let client = Client::new(reference, opts, false, &[])?;
    let url = client.resolve_location("/v2/");
    client.send("GET", &url, &[], &[], &Body::Empty)?;
    Ok(())
}
