//! hull's engine core: a Docker Engine API create-container request turned into the OCI
//! runtime spec hull-runtime runs, with hull's secure defaults, and the policy check that
//! runs before it.
//!
//! - [`docker_types`]: the request and image-config types, as Docker clients send them.
//! - [`defaults`]: every secure default, each with its reason. Start reading here.
//! - [`spec`]: [`build_spec`], Docker's semantics on top of the defaults.
//! - [`policy`]: [`policy::check`], what a caller may not ask for.
//! - [`userns`]: per-container uid/gid ranges from /etc/subuid.
//!
//! Nothing here touches the host: what the daemon knows comes in as values and lookups.

#![forbid(unsafe_code)]

pub mod defaults;
pub mod docker_types;
pub mod policy;
pub mod spec;
pub mod userns;

pub use defaults::UserNamespacePlan;
pub use docker_types::{parse_create_body, ContainerConfig, HostConfig, ImageConfigSubset};
pub use policy::{Policy, PolicyViolation};
pub use spec::{
    build_spec, resolve_exec_user, BuildContext, HostDevice, HostLookup, SpecBuildError,
};
