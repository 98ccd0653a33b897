//! Seccomp for hull: the OCI `linux.seccomp` section compiled to a BPF program with libseccomp,
//! hull's default profile, and Docker-format profiles resolved into OCI ones.
//!
//! The runtime calls [`compile`] in its parent process (all validation and the BPF generation
//! happen there) and [`Filter::load`], one seccomp(2) call, in the container's init. hulld builds `linux.seccomp` with
//! [`default_profile`] or, for `--security-opt seccomp=profile.json`, [`from_docker_json`].

#![forbid(unsafe_code)]

mod arch;
mod compile;
mod docker;
mod error;
mod program;
#[cfg(test)]
mod tests;

use oci_spec::runtime::LinuxSeccomp;

pub use arch::Arch;
pub use compile::{compile, Filter, Program};
pub use docker::{KernelVersion, CAPABILITIES};
pub use error::Error;

use docker::Profile;

/// hull's default profile, in Docker's seccomp JSON format.
pub const DEFAULT_PROFILE_JSON: &str = include_str!("../profiles/default.json");

/// hull's default profile for a container with the capabilities `caps` (bounding set, names like
/// `CAP_CHOWN`) on `arch`.
///
/// The default action is SCMP_ACT_ERRNO (EPERM) with an allow-list close to Docker's default
/// profile, but stricter. Denied whatever the capabilities: keyctl, add_key, request_key,
/// io_uring_*, userfaultfd, bpf, perf_event_open, kexec_*, open_by_handle_at,
/// name_to_handle_at. Denied without CAP_SYS_ADMIN: unshare, setns, mount and the new mount API,
/// clone with CLONE_NEW* flags (clone3 fails with ENOSYS so that libc falls back to clone).
/// ptrace and process_vm_* need CAP_SYS_PTRACE; socket(2) refuses AF_ALG and AF_VSOCK. The
/// comments in `profiles/default.json` say why for each entry.
///
/// Syscall names the linked libseccomp does not know (syscalls newer than the library) are
/// left out, so they get the default action.
pub fn default_profile(caps: &[String], arch: Arch) -> Result<LinuxSeccomp, Error> {
    let profile = Profile::parse(DEFAULT_PROFILE_JSON)?;
    // The default profile uses no minKernel (tested), so it needs no kernel version.
    let mut seccomp = profile.resolve(caps, arch, None)?;
    let mut syscalls = seccomp.syscalls().clone().unwrap_or_default();
    for syscall in &mut syscalls {
        let names: Vec<String> = syscall
            .names()
            .iter()
            .filter(|name| {
                let known = compile::known_syscall(name);
                if !known {
                    tracing::debug!(
                        name,
                        "syscall unknown to libseccomp, left to the default action"
                    );
                }
                known
            })
            .cloned()
            .collect();
        syscall.set_names(names);
    }
    syscalls.retain(|s| !s.names().is_empty());
    seccomp.set_syscalls(Some(syscalls));
    Ok(seccomp)
}

/// Parse a profile in Docker's JSON format and resolve it for the capability set `caps` and
/// `arch` (and, for `minKernel`, the running kernel) into an OCI `LinuxSeccomp`.
///
/// Understands `defaultAction`, `defaultErrnoRet`, `architectures` or `archMap`, `flags`,
/// `listenerPath`, `listenerMetadata` and `syscalls` entries with `names` (or the old `name`),
/// `action`, `errnoRet`, `args`, `comment`, `includes` and `excludes` (`caps`, `arches` with Go
/// architecture names, `minKernel`). Errors name the JSON field (`syscalls[3].names[1]`).
pub fn from_docker_json(json: &str, caps: &[String], arch: Arch) -> Result<LinuxSeccomp, Error> {
    let profile = Profile::parse(json)?;
    let kernel = if profile.uses_min_kernel() {
        Some(KernelVersion::running()?)
    } else {
        None
    };
    resolve_docker(&profile, caps, arch, kernel)
}

/// [`from_docker_json`] for a given kernel version instead of the running kernel's.
pub fn from_docker_json_for_kernel(
    json: &str,
    caps: &[String],
    arch: Arch,
    kernel: KernelVersion,
) -> Result<LinuxSeccomp, Error> {
    resolve_docker(&Profile::parse(json)?, caps, arch, Some(kernel))
}

fn resolve_docker(
    profile: &Profile,
    caps: &[String],
    arch: Arch,
    kernel: Option<KernelVersion>,
) -> Result<LinuxSeccomp, Error> {
    let unknown_harmless: Vec<bool> = (0..profile.syscalls.len())
        .map(|i| profile.entry_only_allows(i))
        .collect();
    // Name the JSON field for a syscall name libseccomp does not know, rather than leaving it
    // to `compile`, which can only name the resolved OCI entry.
    for (i, entry) in profile.syscalls.iter().enumerate() {
        for (j, name) in entry.names.iter().enumerate() {
            if !compile::known_syscall(name) && !profile.entry_only_allows(i) {
                let field = if entry.single_name {
                    format!("syscalls[{i}].name")
                } else {
                    format!("syscalls[{i}].names[{j}]")
                };
                return Err(Error::UnknownSyscall {
                    field,
                    name: name.clone(),
                });
            }
        }
    }
    let mut profile = profile.clone();
    for (i, entry) in profile.syscalls.iter_mut().enumerate() {
        if unknown_harmless[i] {
            entry.names.retain(|name| {
                let known = compile::known_syscall(name);
                if !known {
                    tracing::debug!(
                        name,
                        "syscall unknown to libseccomp left out of an allow rule (it stays denied)"
                    );
                }
                known
            });
        }
    }
    profile.syscalls.retain(|e| !e.names.is_empty());
    profile.resolve(caps, arch, kernel)
}
