//! The container's root filesystem, set up inside its new mount namespace, in order:
//! make "/" non-shared, bind the rootfs onto itself, make every spec mount (targets resolved
//! inside the rootfs), create /dev nodes and links, run createContainer hooks, pivot_root,
//! then sysctls, masked paths, read-only paths and the read-only root.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{fchmodat, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{chdir, fchdir, pivot_root};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::mounts::{self, locked_flags, mount_on, parse_options, prepare_target, TargetKind};

/// A failed step of the rootfs setup. Each variant names the step and the path.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("making / {flags:?} in the container's mount namespace: {source}")]
    RootPropagation { flags: MsFlags, source: nix::Error },
    #[error("bind-mounting the rootfs {path} onto itself: {source}")]
    BindRootfs { path: PathBuf, source: nix::Error },
    #[error("opening the rootfs {path}: {source}")]
    OpenRootfs { path: PathBuf, source: nix::Error },
    #[error("mounts[{index}] ({typ} on {dest}): resolving the target inside the rootfs: {source}")]
    MountTarget {
        index: usize,
        typ: String,
        dest: PathBuf,
        source: io::Error,
    },
    #[error("mounts[{index}] ({typ} on {dest}): {source}")]
    Mount {
        index: usize,
        typ: String,
        dest: PathBuf,
        source: nix::Error,
    },
    #[error("mounts[{index}]: bind source {source_path}: {source}")]
    BindSource {
        index: usize,
        source_path: PathBuf,
        source: io::Error,
    },
    #[error("creating device {path}: {source}")]
    Device { path: PathBuf, source: io::Error },
    #[error("creating the /dev link {path}: {source}")]
    DevSymlink { path: PathBuf, source: nix::Error },
    #[error("pivot_root into {path}: {source}")]
    PivotRoot { path: PathBuf, source: nix::Error },
    #[error("moving the rootfs {path} to / (no-pivot): {source}")]
    MoveRoot { path: PathBuf, source: nix::Error },
    #[error("detaching the old root: {source}")]
    DetachOldRoot { source: nix::Error },
    #[error("linux.sysctl.{key}: writing {path}: {source}")]
    Sysctl {
        key: String,
        path: PathBuf,
        source: io::Error,
    },
    #[error("masking {path}: {source}")]
    Mask { path: String, source: nix::Error },
    #[error("making {path} read-only: {source}")]
    ReadonlyPath { path: String, source: nix::Error },
    #[error("remounting the root read-only: {source}")]
    ReadonlyRoot { source: nix::Error },
    #[error("joining the container's cgroup: {0}")]
    Cgroup(String),
    #[error("createContainer hook: {0}")]
    Hook(String),
}

/// What the rootfs setup needs to know beyond the spec.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container runs in a new user namespace: device nodes are bind-mounted, not created.
    pub userns: bool,
    pub no_pivot: bool,
    /// (name, host dir) of this container's cgroups, for "cgroup" mounts.
    pub cgroup_sources: Vec<(String, PathBuf)>,
    pub cgroup_v2_only: bool,
    /// A sysfs mount for `mounts[index]`, made by the runtime ([`sysfs_for_joined_netns`]).
    pub sysfs: Option<(usize, std::os::fd::BorrowedFd<'a>)>,
}

/// For a container in a user namespace that joins a network namespace it does not own
/// (hulld's bridge networks: the namespace is made and wired before the container): a
/// sysfs mount of that network namespace, made here by the runtime, which is root where
/// the network namespace belongs, on a thread that enters it. The container's init moves
/// it onto /sys. Without it the init cannot mount sysfs (EPERM) and binds the host's /sys
/// read-only, whose /sys/class/net lists the host's interfaces, not the container's.
/// Returns the index of the spec's sysfs mount with the detached mount, or None when
/// there is nothing to do, or the kernel cannot (no fsopen): then the fallback stays.
pub fn sysfs_for_joined_netns(
    spec: &Spec,
    plan: &crate::namespaces::Plan,
) -> Option<(usize, OwnedFd)> {
    use nix::sched::CloneFlags;
    if !(plan.new_user || plan.joins_user()) {
        return None;
    }
    let netns = plan
        .joins
        .iter()
        .find(|j| j.flag == CloneFlags::CLONE_NEWNET)?;
    let (index, m) = spec
        .mounts()
        .as_ref()?
        .iter()
        .enumerate()
        .find(|(_, m)| m.typ().as_deref() == Some("sysfs"))?;
    let opts = parse_options(Some("sysfs"), m.options().as_deref().unwrap_or(&[]));
    let mut attrs = 0;
    for (flag, attr) in [
        (MsFlags::MS_RDONLY, hull_sys::mount::MOUNT_ATTR_RDONLY),
        (MsFlags::MS_NOSUID, hull_sys::mount::MOUNT_ATTR_NOSUID),
        (MsFlags::MS_NODEV, hull_sys::mount::MOUNT_ATTR_NODEV),
        (MsFlags::MS_NOEXEC, hull_sys::mount::MOUNT_ATTR_NOEXEC),
    ] {
        if opts.flags.contains(flag) {
            attrs |= attr;
        }
    }
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<OwnedFd> {
            // only this thread changes namespace, and it ends here
            nix::sched::setns(netns.fd.as_fd(), CloneFlags::CLONE_NEWNET)?;
            let fs = hull_sys::mount::fsopen("sysfs")?;
            hull_sys::mount::fsconfig_set_string(fs.as_fd(), "source", "sysfs")?;
            hull_sys::mount::fs_create_and_mount(fs.as_fd(), attrs)
        })
        .join()
    });
    match made {
        Ok(Ok(fd)) => Some((index, fd)),
        _ => None,
    }
}

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Sets up the rootfs up to (and including) pivot_root. `create_container_hooks` runs after the
/// mounts are made and before pivot_root, as the runtime spec orders.
pub fn setup(
    ctx: &RootfsContext<'_>,
    wait_cgroup: &mut dyn FnMut() -> Result<(), String>,
    create_container_hooks: impl FnOnce() -> Result<(), String>,
) -> Result<(), RootfsError> {
    let linux = ctx.spec.linux().as_ref();
    let prop = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(mounts::propagation_flag)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    // Never let the container's mounts propagate back to the host: "/" is at most a slave here;
    // the spec's shared propagation is applied to the new root after pivot_root.
    // (unbindable would also forbid the rootfs bind below; it is applied after pivot_root.)
    let first = if prop.contains(MsFlags::MS_PRIVATE) {
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    } else {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    };
    mount(None::<&str>, "/", None::<&str>, first, None::<&str>).map_err(|source| {
        RootfsError::RootPropagation {
            flags: first,
            source,
        }
    })?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| RootfsError::BindRootfs {
        path: ctx.rootfs.into(),
        source,
    })?;
    let root = open(
        ctx.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| RootfsError::OpenRootfs {
        path: ctx.rootfs.into(),
        source,
    })?;

    let spec_mounts: &[Mount] = ctx.spec.mounts().as_deref().unwrap_or(&[]);
    // The parent moves us into our cgroup while we mount; cgroup mounts (and the cgroup
    // namespace they show) must wait for it, so they go last when nothing later nests
    // under them: the longer the overlap, the less the attach costs.
    let is_cgroup = |m: &Mount| matches!(m.typ().as_deref(), Some("cgroup") | Some("cgroup2"));
    let deferrable = |i: usize| {
        let dest = spec_mounts[i].destination();
        !spec_mounts[i + 1..]
            .iter()
            .any(|later| later.destination().starts_with(dest))
    };
    let mut deferred = Vec::new();
    let mut in_cgroup = false;
    for (index, m) in spec_mounts.iter().enumerate() {
        if is_cgroup(m) {
            if deferrable(index) {
                deferred.push(index);
                continue;
            }
            if !in_cgroup {
                wait_cgroup().map_err(RootfsError::Cgroup)?;
                in_cgroup = true;
            }
        }
        mount_one(ctx, &root, index, m)?;
    }
    let has_dev_mount = spec_mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev"));
    if has_dev_mount || open_dir_in_root(&root, "/dev").is_some() {
        create_devices(ctx, &root, has_dev_mount)?;
        dev_symlinks(&root, spec_mounts)?;
    }
    if !in_cgroup {
        wait_cgroup().map_err(RootfsError::Cgroup)?;
    }
    for index in deferred {
        mount_one(ctx, &root, index, &spec_mounts[index])?;
    }
    create_container_hooks().map_err(RootfsError::Hook)?;
    enter_root(ctx)?;
    Ok(())
}

fn open_dir_in_root(root: &OwnedFd, path: &str) -> Option<OwnedFd> {
    mounts::open_in_root(root, Path::new(path)).ok()
}

fn mount_one(
    ctx: &RootfsContext<'_>,
    root: &OwnedFd,
    index: usize,
    m: &Mount,
) -> Result<(), RootfsError> {
    let typ = m.typ().clone().unwrap_or_else(|| "none".into());
    let dest = m.destination().clone();
    let opts = parse_options(m.typ().as_deref(), m.options().as_deref().unwrap_or(&[]));
    let mount_err = |source| RootfsError::Mount {
        index,
        typ: typ.clone(),
        dest: dest.clone(),
        source,
    };
    let target_err = |source| RootfsError::MountTarget {
        index,
        typ: typ.clone(),
        dest: dest.clone(),
        source,
    };

    if opts.is_bind() {
        let src = m.source().clone().unwrap_or_default();
        let src = if src.is_absolute() {
            src
        } else {
            ctx.bundle.join(src)
        };
        let meta = std::fs::metadata(&src).map_err(|source| RootfsError::BindSource {
            index,
            source_path: src.clone(),
            source,
        })?;
        let kind = if meta.is_dir() {
            TargetKind::Dir
        } else {
            TargetKind::File
        };
        let target = prepare_target(root, &dest, kind).map_err(target_err)?;
        let rec = opts.flags & MsFlags::MS_REC;
        mount_on(Some(&src), &target, None, MsFlags::MS_BIND | rec, None).map_err(mount_err)?;
        // The fd still names the covered directory: reopen to reach the new mount.
        let target = mounts::open_in_root(root, &dest).map_err(target_err)?;
        let extra = opts.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let keep = locked_flags(&mounts::fd_path(&target));
            let flags =
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rec | extra | (keep & !opts.cleared);
            mount_on(None, &target, None, flags, None).map_err(mount_err)?;
        }
        for p in &opts.propagation {
            mount_on(None, &target, None, *p, None).map_err(mount_err)?;
        }
        return Ok(());
    }

    let target = prepare_target(root, &dest, TargetKind::Dir).map_err(target_err)?;
    match typ.as_str() {
        "cgroup" | "cgroup2" => return mount_cgroups(ctx, root, &target, index, m, &opts),
        "sysfs" => {
            if let Some((_, made)) = ctx.sysfs.filter(|(i, _)| *i == index) {
                return hull_sys::mount::move_mount(made, target.as_fd()).map_err(|e| {
                    mount_err(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
                });
            }
        }
        _ => {}
    }
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&typ));
    let res = mount_on(
        Some(&source),
        &target,
        Some(&typ),
        opts.flags,
        Some(&opts.data),
    );
    match res {
        Ok(()) => {}
        // In a user namespace that does not own the network namespace, sysfs cannot be
        // mounted afresh; bind the host's read-only instead (what runc does).
        Err(nix::Error::EPERM) if typ == "sysfs" && ctx.userns => {
            mount_on(
                Some(Path::new("/sys")),
                &target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(mount_err)?;
            let target = mounts::open_in_root(root, &dest).map_err(target_err)?;
            let flags = MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_REC
                | MsFlags::MS_RDONLY
                | locked_flags(&mounts::fd_path(&target));
            mount_on(None, &target, None, flags, None).map_err(mount_err)?;
        }
        // devpts with gid=5 fails when gid 5 is not mapped in the user namespace.
        Err(nix::Error::EINVAL) if typ == "devpts" && opts.data.contains("gid=") => {
            let data: Vec<&str> = opts
                .data
                .split(',')
                .filter(|o| !o.starts_with("gid="))
                .collect();
            mount_on(
                Some(&source),
                &target,
                Some(&typ),
                opts.flags,
                Some(&data.join(",")),
            )
            .map_err(mount_err)?;
        }
        Err(e) => return Err(mount_err(e)),
    }
    let target = mounts::open_in_root(root, &dest).map_err(target_err)?;
    for p in &opts.propagation {
        mount_on(None, &target, None, *p, None).map_err(mount_err)?;
    }
    Ok(())
}

/// A "cgroup"/"cgroup2" mount: on a pure v2 host a cgroup2 mount (rooted at the container's
/// cgroup through its cgroup namespace); on v1 and hybrid hosts a tmpfs with one bind mount
/// per hierarchy of the container's own cgroup dirs.
fn mount_cgroups(
    ctx: &RootfsContext<'_>,
    root: &OwnedFd,
    target: &OwnedFd,
    index: usize,
    m: &Mount,
    opts: &mounts::MountOptions,
) -> Result<(), RootfsError> {
    let typ = m.typ().clone().unwrap_or_default();
    let dest = m.destination().clone();
    let mount_err = |source| RootfsError::Mount {
        index,
        typ: typ.clone(),
        dest: dest.clone(),
        source,
    };
    let ro = opts.flags & MsFlags::MS_RDONLY;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if ctx.cgroup_v2_only {
        let r = mount_on(
            Some(Path::new("cgroup2")),
            target,
            Some("cgroup2"),
            opts.flags | base,
            None,
        );
        if r.is_err() {
            if let Some((_, dir)) = ctx.cgroup_sources.first() {
                mount_on(
                    Some(dir),
                    target,
                    None,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None,
                )
                .map_err(mount_err)?;
                if !ro.is_empty() {
                    let target = reopen(root, &dest, index, &typ)?;
                    mount_on(
                        None,
                        &target,
                        None,
                        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | ro | base,
                        None,
                    )
                    .map_err(mount_err)?;
                }
            }
        }
        return Ok(());
    }
    mount_on(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        base,
        Some("mode=755"),
    )
    .map_err(mount_err)?;
    for (name, host_dir) in &ctx.cgroup_sources {
        let dir_name = name.strip_prefix("name=").unwrap_or(name);
        let sub = dest.join(dir_name);
        let t = prepare_target(root, &sub, TargetKind::Dir).map_err(|source| {
            RootfsError::MountTarget {
                index,
                typ: typ.clone(),
                dest: sub.clone(),
                source,
            }
        })?;
        mount_on(
            Some(host_dir),
            &t,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .map_err(mount_err)?;
        let t = reopen(root, &sub, index, &typ)?;
        mount_on(
            None,
            &t,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_REC | ro | base,
            None,
        )
        .map_err(mount_err)?;
        if dir_name.contains(',') {
            for part in dir_name.split(',') {
                let parent = mounts::open_in_root(root, &dest).map_err(|source| {
                    RootfsError::MountTarget {
                        index,
                        typ: typ.clone(),
                        dest: dest.clone(),
                        source,
                    }
                })?;
                let _ = nix::unistd::symlinkat(dir_name, parent.as_fd(), part);
            }
        }
    }
    if !ro.is_empty() {
        let target = reopen(root, &dest, index, &typ)?;
        mount_on(
            None,
            &target,
            None,
            MsFlags::MS_REMOUNT | ro | base,
            Some("mode=755"),
        )
        .map_err(mount_err)?;
    }
    Ok(())
}

/// Reopens a mount target after something was mounted on it: an fd opened before the mount
/// names the covered directory, not the new mount.
fn reopen(root: &OwnedFd, dest: &Path, index: usize, typ: &str) -> Result<OwnedFd, RootfsError> {
    mounts::open_in_root(root, dest).map_err(|source| RootfsError::MountTarget {
        index,
        typ: typ.to_string(),
        dest: dest.to_path_buf(),
        source,
    })
}

fn dev_err(path: &Path) -> impl Fn(io::Error) -> RootfsError + '_ {
    move |source| RootfsError::Device {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the default devices (when /dev is a fresh tmpfs) and the spec's devices.
fn create_devices(
    ctx: &RootfsContext<'_>,
    root: &OwnedFd,
    fresh_dev: bool,
) -> Result<(), RootfsError> {
    if fresh_dev {
        for (name, major, minor) in DEFAULT_DEVICES {
            let path = PathBuf::from("/dev").join(name);
            make_device(
                ctx,
                root,
                &path,
                SFlag::S_IFCHR,
                *major,
                *minor,
                0o666,
                Some((0, 0)),
            )?;
        }
    }
    let devices: &[LinuxDevice] = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for d in devices {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let mode = d.file_mode().unwrap_or(0o666);
        let owner = Some((d.uid().unwrap_or(0), d.gid().unwrap_or(0)));
        make_device(
            ctx,
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            mode,
            owner,
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    ctx: &RootfsContext<'_>,
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> Result<(), RootfsError> {
    let err = dev_err(path);
    if ctx.userns {
        // mknod is not allowed in a user namespace: bind the host's node onto an empty file.
        let target = prepare_target(root, path, TargetKind::File).map_err(&err)?;
        mount_on(Some(path), &target, None, MsFlags::MS_BIND, None).map_err(|e| err(e.into()))?;
        return Ok(());
    }
    let parent_path = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .ok_or_else(|| err(io::Error::from(io::ErrorKind::InvalidInput)))?;
    let parent = prepare_target(root, parent_path, TargetKind::Dir).map_err(&err)?;
    let parent = nix::fcntl::openat(
        parent.as_fd(),
        ".",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let dev = nix::sys::stat::makedev(major, minor);
    match mknodat(
        parent.as_fd(),
        name,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        dev,
    ) {
        Ok(()) => {}
        Err(nix::Error::EEXIST) => {
            // Something is already there (an image's /dev/null): replace it only if it is not a symlink.
            let st = nix::sys::stat::fstatat(
                parent.as_fd(),
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err(e.into()))?;
            if (st.st_mode & libc::S_IFMT) == libc::S_IFLNK {
                return Err(err(io::Error::other(
                    "refusing to replace a symlink with a device node",
                )));
            }
            nix::unistd::unlinkat(
                parent.as_fd(),
                name,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(|e| err(e.into()))?;
            mknodat(
                parent.as_fd(),
                name,
                kind,
                Mode::from_bits_truncate(mode & 0o7777),
                dev,
            )
            .map_err(|e| err(e.into()))?;
        }
        Err(e) => return Err(err(e.into())),
    }
    fchmodat(
        parent.as_fd(),
        name,
        Mode::from_bits_truncate(mode & 0o7777),
        FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == nix::Error::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .map_err(|e| err(e.into()))?;
    if let Some((uid, gid)) = owner {
        nix::unistd::fchownat(
            parent.as_fd(),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| err(e.into()))?;
    }
    Ok(())
}

fn dev_symlinks(root: &OwnedFd, spec_mounts: &[Mount]) -> Result<(), RootfsError> {
    let dev =
        mounts::open_in_root(root, Path::new("/dev")).map_err(|e| RootfsError::DevSymlink {
            path: "/dev".into(),
            source: nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        })?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    if spec_mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev/pts"))
    {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(source) => {
                return Err(RootfsError::DevSymlink {
                    path: Path::new("/dev").join(name),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Makes the rootfs the process's root: pivot_root, or MS_MOVE + chroot with --no-pivot.
fn enter_root(ctx: &RootfsContext<'_>) -> Result<(), RootfsError> {
    let path = ctx.rootfs.to_path_buf();
    if ctx.no_pivot {
        chdir(&path).map_err(|source| RootfsError::MoveRoot {
            path: path.clone(),
            source,
        })?;
        mount(
            Some(&path),
            "/",
            None::<&str>,
            MsFlags::MS_MOVE,
            None::<&str>,
        )
        .map_err(|source| RootfsError::MoveRoot {
            path: path.clone(),
            source,
        })?;
        nix::unistd::chroot(".").map_err(|source| RootfsError::MoveRoot {
            path: path.clone(),
            source,
        })?;
        chdir("/").map_err(|source| RootfsError::MoveRoot { path, source })?;
        return Ok(());
    }
    let old = open(
        "/",
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| RootfsError::PivotRoot {
        path: "/".into(),
        source,
    })?;
    let new = open(
        &path,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|source| RootfsError::PivotRoot {
        path: path.clone(),
        source,
    })?;
    fchdir(new.as_fd()).map_err(|source| RootfsError::PivotRoot {
        path: path.clone(),
        source,
    })?;
    // pivot_root(".", ".") stacks the old root on top of the new one; unmount it from there.
    pivot_root(".", ".").map_err(|source| RootfsError::PivotRoot {
        path: path.clone(),
        source,
    })?;
    fchdir(old.as_fd()).map_err(|source| RootfsError::DetachOldRoot { source })?;
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|source| RootfsError::DetachOldRoot { source })?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|source| RootfsError::DetachOldRoot { source })?;
    fchdir(new.as_fd()).map_err(|source| RootfsError::DetachOldRoot { source })?;
    chdir("/").map_err(|source| RootfsError::DetachOldRoot { source })?;
    Ok(())
}

/// The steps after pivot_root: sysctls, propagation of the new root, masked and read-only
/// paths, and the read-only root. Paths here are already confined: "/" is the container root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    for (key, value) in linux.sysctl().iter().flatten() {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes()).map_err(|source| RootfsError::Sysctl {
            key: key.clone(),
            path,
            source,
        })?;
    }
    if let Some(p) = linux
        .rootfs_propagation()
        .as_deref()
        .and_then(mounts::propagation_flag)
    {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>)
            .map_err(|source| RootfsError::RootPropagation { flags: p, source })?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        readonly_path(p)?;
    }
    for p in linux.masked_paths().iter().flatten() {
        mask_path(p)?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new("/"));
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .map_err(|source| RootfsError::ReadonlyRoot { source })?;
    }
    Ok(())
}

fn readonly_path(p: &str) -> Result<(), RootfsError> {
    let err = |source| RootfsError::ReadonlyPath {
        path: p.to_string(),
        source,
    };
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(err(e)),
    }
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_REC
        | locked_flags(Path::new(p));
    mount(None::<&str>, p, None::<&str>, flags, None::<&str>).map_err(err)
}

fn mask_path(p: &str) -> Result<(), RootfsError> {
    let err = |source| RootfsError::Mask {
        path: p.to_string(),
        source,
    };
    let meta = match std::fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    if meta.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("mode=755"),
        )
        .map_err(err)
    } else {
        match mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ) {
            Ok(()) | Err(nix::Error::ENOENT) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}
