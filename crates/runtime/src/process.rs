//! The last steps before the container's program runs, shared by `create` and `exec`:
//! fds, rlimits, capabilities, user and groups, umask, cwd, no_new_privs, seccomp, execve.
//! Read top to bottom: each step is one call with its error mapped to a variant naming it.

use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, execve, setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::Process;

use crate::caps::{self, CapsError};
use crate::spec::rlimit_resource;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("marking inherited file descriptors close-on-exec: {0}")]
    CloseFds(std::io::Error),
    #[error("process.rlimits: setting {resource}: {source}")]
    Rlimit {
        resource: String,
        source: nix::Error,
    },
    #[error("process.oomScoreAdj: writing /proc/self/oom_score_adj: {0}")]
    OomScoreAdj(std::io::Error),
    #[error("process.capabilities: {0}")]
    Caps(#[from] CapsError),
    #[error("process.user: setting supplementary groups {gids:?}: {source}")]
    Setgroups { gids: Vec<u32>, source: nix::Error },
    #[error("process.user: switching to gid {gid}: {source}")]
    Setgid { gid: u32, source: nix::Error },
    #[error("process.user: switching to uid {uid}: {source}")]
    Setuid { uid: u32, source: nix::Error },
    #[error("process.cwd: cannot enter {path}: {source}")]
    Cwd { path: PathBuf, source: nix::Error },
    #[error("process.cwd: {path} is outside the container root (leaked host directory?)")]
    CwdOutside { path: PathBuf },
    #[error("setting no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
    #[error("linux.seccomp: loading the filter: {0}")]
    Seccomp(String),
    #[error("exec {path:?}: {source}")]
    Exec { path: String, source: nix::Error },
    #[error("process.args[0]: {name:?}: executable file not found in $PATH ({path})")]
    NotFound { name: String, path: String },
    #[error("process.args[0]: {name:?}: {reason}")]
    NotExecutable { name: String, reason: String },
    #[error("process: {field} contains a NUL byte")]
    Nul { field: &'static str },
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Finds the program to run, as execvp would, with the container's PATH.
pub fn resolve_executable(p: &Process) -> Result<PathBuf, ProcessError> {
    let name = p
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let check = |path: &Path| -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if m.is_dir() {
            return Err("is a directory".into());
        }
        if m.permissions().mode() & 0o111 == 0 {
            return Err("permission denied (not executable)".into());
        }
        Ok(())
    };
    if name.contains('/') {
        let path = if Path::new(&name).is_absolute() {
            PathBuf::from(&name)
        } else {
            p.cwd().join(&name)
        };
        check(&path).map_err(|reason| ProcessError::NotExecutable {
            name: name.clone(),
            reason,
        })?;
        return Ok(path);
    }
    let path_var = p
        .env()
        .iter()
        .flatten()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(&name);
        if check(&cand).is_ok() {
            return Ok(cand);
        }
    }
    Err(ProcessError::NotFound {
        name,
        path: path_var,
    })
}

/// Applies rlimits and oom_score_adj (these need the runtime's privileges, so they come first).
pub fn apply_limits(p: &Process) -> Result<(), ProcessError> {
    for r in p.rlimits().iter().flatten() {
        nix::sys::resource::setrlimit(rlimit_resource(r.typ()), r.soft(), r.hard()).map_err(
            |source| ProcessError::Rlimit {
                resource: format!("{:?}", r.typ()),
                source,
            },
        )?;
    }
    if let Some(adj) = p.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(ProcessError::OomScoreAdj)?;
    }
    Ok(())
}

/// Drops privileges to what the process spec asks for. `early_seccomp` is loaded before the
/// user switch (needed when no_new_privs is off, since loading then needs CAP_SYS_ADMIN).
/// Returns the notify fd if that filter uses SCMP_ACT_NOTIFY.
pub fn drop_privileges(
    p: &Process,
    preserve_fds: u32,
    early_seccomp: Option<&hull_seccomp::Program>,
) -> Result<Option<OwnedFd>, ProcessError> {
    // CVE-2024-21626: nothing the runtime holds may survive exec.
    hull_sys::process::cloexec_from(3 + preserve_fds).map_err(ProcessError::CloseFds)?;
    if let Some(c) = p.capabilities() {
        caps::drop_bounding(c)?;
    }
    // Check the cwd before any filter is loaded: a profile may deny getcwd.
    enter_cwd(p.cwd())?;
    let notify = match early_seccomp {
        Some(f) => f.load().map_err(|e| ProcessError::Seccomp(e.to_string()))?,
        None => None,
    };
    let user = p.user();
    nix::sys::prctl::set_keepcaps(true).map_err(|source| ProcessError::Setuid {
        uid: user.uid(),
        source,
    })?;
    let gids: Vec<u32> = user.additional_gids().clone().unwrap_or_default();
    let groups: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
    setgroups(&groups).map_err(|source| ProcessError::Setgroups {
        gids: gids.clone(),
        source,
    })?;
    let gid = Gid::from_raw(user.gid());
    setresgid(gid, gid, gid).map_err(|source| ProcessError::Setgid {
        gid: user.gid(),
        source,
    })?;
    let uid = Uid::from_raw(user.uid());
    setresuid(uid, uid, uid).map_err(|source| ProcessError::Setuid {
        uid: user.uid(),
        source,
    })?;
    nix::sys::prctl::set_keepcaps(false).map_err(|source| ProcessError::Setuid {
        uid: user.uid(),
        source,
    })?;
    match p.capabilities() {
        Some(c) => caps::apply(c)?,
        None => caps::apply(&oci_spec::runtime::LinuxCapabilities::default())?,
    }
    if let Some(mask) = user.umask() {
        umask(Mode::from_bits_truncate(mask));
    }
    // Enter it again as the user, so that a cwd the user may not search is refused, as runc does.
    chdir(p.cwd()).map_err(|source| ProcessError::Cwd {
        path: p.cwd().into(),
        source,
    })?;
    Ok(notify)
}

/// chdir into the process cwd and check it is really inside the container (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<(), ProcessError> {
    chdir(cwd).map_err(|source| ProcessError::Cwd {
        path: cwd.into(),
        source,
    })?;
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(ProcessError::CwdOutside { path: cwd.into() }),
    }
}

fn cstrings(v: &[String], field: &'static str) -> Result<Vec<CString>, ProcessError> {
    v.iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ProcessError::Nul { field }))
        .collect()
}

/// The very last steps: no_new_privs, the seccomp filter, execve. Returns only on failure.
pub fn exec(
    p: &Process,
    path: &Path,
    late_seccomp: Option<&hull_seccomp::Program>,
) -> ProcessError {
    let args = match cstrings(p.args().as_deref().unwrap_or(&[]), "process.args") {
        Ok(a) => a,
        Err(e) => return e,
    };
    let env = match cstrings(p.env().as_deref().unwrap_or(&[]), "process.env") {
        Ok(e) => e,
        Err(e) => return e,
    };
    let Ok(cpath) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return ProcessError::Nul {
            field: "process.args",
        };
    };
    hull_sys::process::reset_signals();
    if p.no_new_privileges().unwrap_or(false) {
        if let Err(e) = nix::sys::prctl::set_no_new_privs() {
            return ProcessError::NoNewPrivs(e);
        }
    }
    if let Some(f) = late_seccomp {
        if let Err(e) = f.load() {
            return ProcessError::Seccomp(e.to_string());
        }
    }
    match execve(&cpath, &args, &env) {
        Err(source) => ProcessError::Exec {
            path: path.display().to_string(),
            source,
        },
        Ok(never) => match never {},
    }
}
