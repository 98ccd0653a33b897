//! hull's OCI runtime library: turns a bundle (config.json + rootfs) into an isolated,
//! hardened process, following the OCI runtime spec for Linux.
//!
//! The container's init is a fork of the caller (no re-exec of a runtime binary); see
//! [`init`] for the order of steps inside the container, and [`container`] for the operations.

#![forbid(unsafe_code)]

pub mod caps;
pub mod channel;
pub mod container;
pub mod devices;
pub mod error;
pub mod hooks;
pub mod init;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp_cache;
pub mod spec;
pub mod state;

pub use container::{CreateOptions, ExecOptions, Runtime};
pub use error::{Error, Result};
pub use state::Status;
