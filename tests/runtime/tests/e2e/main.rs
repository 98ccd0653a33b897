//! Root end-to-end tests of the OCI runtime: isolation and hardening as observed from inside and
//! outside the container. Run against hull-runtime (default) or any runc-compatible runtime:
//!
//! ```text
//! cargo build -p hull-runtime-cli && cargo test -p hull-e2e-runtime -- --test-threads=2
//! HULL_RUNTIME=/usr/sbin/runc cargo test -p hull-e2e-runtime -- --test-threads=2
//! ```
//!
//! The tests need root (they print "skipped: needs root" otherwise), gcc with a static libc
//! (libc6-dev) for /probe, and busybox-static. Where runc 1.1 knowingly differs from the spec
//! or from hull's stricter policy, the check is gated behind `is_hull()`:
//! - hooks: poststart runs after the process starts, with status "running" (runc 1.1 runs it
//!   during `create`: opencontainers/runc#4347);
//! - process: `domainname` (runc supports it from 1.2);
//! - rlimits: a limit above the caller's hard limit is refused, naming the rlimit;
//! - bad input: uidMappings without a user namespace and unknown seccomp syscall names are
//!   refused (runc accepts both), and errors name the offending field;
//! - env: `process.env` without PATH still finds the program on a default PATH (runc 1.1 fails);
//! - features: the time namespace is listed (runc supports it from 1.2).

mod bad_input;
mod basic;
mod caps;
mod cgroups;
mod cli;
mod env;
mod exe_protection;
mod exec_errors;
mod fds;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod rlimits;
mod rootfs_cwd;
mod seccomp_notify;
mod security;
mod terminal;
mod userns;
mod userns_exec;
