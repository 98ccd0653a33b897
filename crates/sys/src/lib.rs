//! hull-sys: the only crate in hull that contains `unsafe`.
//!
//! Each function is a thin wrapper over one syscall (or one libc call) that owns the file
//! descriptors it returns, maps failures to `std::io::Error`, and documents why its `unsafe`
//! block is sound in a `// SAFETY:` comment. Everything above this crate is
//! `#![forbid(unsafe_code)]`.

pub mod bpf;
pub mod fd;
pub mod mount;
pub mod pidfd;
pub mod process;
pub mod seccomp;
pub mod tty;
