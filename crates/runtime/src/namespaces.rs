//! Which namespaces a container process creates and which it joins, and how it enters them.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Linux, LinuxNamespaceType};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("linux.namespaces: opening {path} to join it: {source}")]
    Open { path: String, source: nix::Error },
    #[error("joining the {kind} namespace {path}: {source}")]
    Join {
        kind: &'static str,
        path: String,
        source: nix::Error,
    },
    #[error("creating namespaces ({flags:?}): {source}")]
    Unshare {
        flags: CloneFlags,
        source: nix::Error,
    },
    #[error("linux.timeOffsets: writing /proc/self/timens_offsets: {0}")]
    TimeOffsets(std::io::Error),
}

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

fn kind_name(f: CloneFlags) -> &'static str {
    match f {
        f if f == CloneFlags::CLONE_NEWNS => "mnt",
        f if f == CloneFlags::CLONE_NEWCGROUP => "cgroup",
        f if f == CloneFlags::CLONE_NEWUTS => "uts",
        f if f == CloneFlags::CLONE_NEWIPC => "ipc",
        f if f == CloneFlags::CLONE_NEWUSER => "user",
        f if f == CloneFlags::CLONE_NEWPID => "pid",
        f if f == CloneFlags::CLONE_NEWNET => "net",
        _ => "time",
    }
}

/// A namespace to join: its kind, an fd opened before any process was created, and where it came from.
#[derive(Debug)]
pub struct Join {
    pub flag: CloneFlags,
    pub fd: OwnedFd,
    pub path: String,
}

/// What the stage-1 child does with namespaces.
#[derive(Debug)]
pub struct Plan {
    /// Joined in this order (user first).
    pub joins: Vec<Join>,
    /// Created with one unshare, after the user namespace (never contains CLONE_NEWUSER).
    pub unshare: CloneFlags,
    pub new_user: bool,
    /// A new cgroup namespace, created by the init once it is in its cgroup (its root is the
    /// cgroup the process is in when it unshares).
    pub new_cgroup: bool,
    /// "monotonic S N\nboottime S N\n" for a new time namespace.
    pub time_offsets: Option<String>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            joins: Vec::new(),
            unshare: CloneFlags::empty(),
            new_user: false,
            new_cgroup: false,
            time_offsets: None,
        }
    }
}

impl Plan {
    /// From a container's spec: namespaces with a path are joined, the rest are created.
    pub fn for_create(linux: &Linux) -> Result<Plan, NsError> {
        let mut plan = Plan::default();
        for ns in linux.namespaces().iter().flatten() {
            let f = flag(ns.typ());
            match ns.path() {
                Some(p) => {
                    let fd = open(
                        p.as_path(),
                        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|source| NsError::Open {
                        path: p.display().to_string(),
                        source,
                    })?;
                    plan.joins.push(Join {
                        flag: f,
                        fd,
                        path: p.display().to_string(),
                    });
                }
                None if f == CloneFlags::CLONE_NEWUSER => plan.new_user = true,
                None if f == CloneFlags::CLONE_NEWCGROUP => plan.new_cgroup = true,
                None => plan.unshare |= f,
            }
        }
        plan.joins
            .sort_by_key(|j| j.flag != CloneFlags::CLONE_NEWUSER);
        if let Some(offsets) = linux.time_offsets() {
            let mut s = String::new();
            for (clock, o) in offsets {
                s.push_str(&format!(
                    "{clock} {} {}\n",
                    o.secs().unwrap_or(0),
                    o.nanosecs().unwrap_or(0)
                ));
            }
            plan.time_offsets = Some(s);
        }
        Ok(plan)
    }

    /// For `exec`: join every namespace of the container's init that differs from ours.
    pub fn for_exec(init_pid: i32) -> Result<Plan, NsError> {
        let mut plan = Plan::default();
        // user first; mnt last among the rest so that /proc paths still resolve while opening.
        for name in ["user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt"] {
            let theirs = format!("/proc/{init_pid}/ns/{name}");
            let ours = format!("/proc/self/ns/{name}");
            let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
                continue;
            };
            if a.ino() == b.ino() && a.dev() == b.dev() {
                continue;
            }
            let fd = open(
                Path::new(&theirs),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|source| NsError::Open {
                path: theirs.clone(),
                source,
            })?;
            let f = match name {
                "user" => CloneFlags::CLONE_NEWUSER,
                "ipc" => CloneFlags::CLONE_NEWIPC,
                "uts" => CloneFlags::CLONE_NEWUTS,
                "net" => CloneFlags::CLONE_NEWNET,
                "pid" => CloneFlags::CLONE_NEWPID,
                "cgroup" => CloneFlags::CLONE_NEWCGROUP,
                "time" => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
                _ => CloneFlags::CLONE_NEWNS,
            };
            plan.joins.push(Join {
                flag: f,
                fd,
                path: theirs,
            });
        }
        Ok(plan)
    }

    pub fn joins_user(&self) -> bool {
        self.joins
            .iter()
            .any(|j| j.flag == CloneFlags::CLONE_NEWUSER)
    }

    pub fn joins_or_creates_pid(&self) -> bool {
        self.unshare.contains(CloneFlags::CLONE_NEWPID)
            || self
                .joins
                .iter()
                .any(|j| j.flag == CloneFlags::CLONE_NEWPID)
    }

    /// Joins every namespace in `joins`, in order (user first).
    ///
    /// A namespace owned by an ancestor of the user namespace joined (a network namespace
    /// the daemon made and pinned, for one) cannot be joined from inside it (EPERM): as
    /// runc does, the others are tried first, while the caller still holds its own
    /// privileges, and those refused are joined after the user namespace.
    pub fn join_all(&self) -> Result<(), NsError> {
        let join = |j: &Join| {
            setns(j.fd.as_fd(), j.flag).map_err(|source| NsError::Join {
                kind: kind_name(j.flag),
                path: j.path.clone(),
                source,
            })
        };
        let user = CloneFlags::CLONE_NEWUSER;
        let mut early = vec![false; self.joins.len()];
        if self.joins_user() {
            for (i, j) in self.joins.iter().enumerate() {
                if j.flag != user && setns(j.fd.as_fd(), j.flag).is_ok() {
                    early[i] = true;
                }
            }
        }
        for (i, j) in self.joins.iter().enumerate() {
            if !early[i] {
                join(j)?;
            }
        }
        Ok(())
    }

    /// Creates the new user namespace (the caller then asks the parent for its maps).
    pub fn unshare_user(&self) -> Result<(), NsError> {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(|source| NsError::Unshare {
            flags: CloneFlags::CLONE_NEWUSER,
            source,
        })
    }

    /// Creates the cgroup namespace if asked (call once the process is in its cgroup).
    pub fn unshare_cgroup(&self) -> Result<(), NsError> {
        if !self.new_cgroup {
            return Ok(());
        }
        unshare(CloneFlags::CLONE_NEWCGROUP).map_err(|source| NsError::Unshare {
            flags: CloneFlags::CLONE_NEWCGROUP,
            source,
        })
    }

    /// Creates all other new namespaces. A new pid or time namespace applies to children.
    pub fn unshare_rest(&self) -> Result<(), NsError> {
        if self.unshare.is_empty() {
            return Ok(());
        }
        unshare(self.unshare).map_err(|source| NsError::Unshare {
            flags: self.unshare,
            source,
        })?;
        if let Some(o) = &self.time_offsets {
            std::fs::write("/proc/self/timens_offsets", o).map_err(NsError::TimeOffsets)?;
        }
        Ok(())
    }
}

/// Writes a user namespace's uid and gid maps (done by the parent, from outside the namespace).
pub fn write_id_maps(pid: i32, linux: &Linux) -> std::io::Result<()> {
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    if !uid.is_empty() {
        std::fs::write(format!("/proc/{pid}/uid_map"), uid).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("writing /proc/{pid}/uid_map (linux.uidMappings): {e}"),
            )
        })?;
    }
    if !gid.is_empty() {
        std::fs::write(format!("/proc/{pid}/gid_map"), gid).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("writing /proc/{pid}/gid_map (linux.gidMappings): {e}"),
            )
        })?;
    }
    Ok(())
}
