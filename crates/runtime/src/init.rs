//! The container side of create and exec: what the forked children do, in order.
//!
//! stage 1 (a fork of the runtime): waits until the parent has put it in its cgroup, joins the
//! namespaces given by path (user first), creates a user namespace and waits for its id maps,
//! creates the other namespaces, and forks stage 2, which is the container's pid 1 in a new
//! pid namespace. Stage 1 reports that pid and exits.
//!
//! stage 2 (init): sets up the rootfs, hostname, console, limits and privileges, reports Ready,
//! waits for `start`, runs startContainer hooks, and execs the container's program. Every step
//! before Ready reports its failure to the parent, which turns it into create's error.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::{setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{Process, Spec};

use crate::channel::{Channel, Msg};
use crate::namespaces::Plan;
use crate::{hooks, process, rootfs};

/// Create a container, or exec a process into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Exec,
}

/// Everything the children need, prepared (and validated) by the parent before fork.
pub struct ChildArgs<'a> {
    pub mode: Mode,
    pub spec: &'a Spec,
    pub process: &'a Process,
    pub plan: &'a Plan,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub seccomp: Option<&'a hull_seccomp::Program>,
    pub cgroup_sources: Vec<(String, PathBuf)>,
    pub cgroup_v2_only: bool,
    /// Create only: where `start` connects to release the init.
    pub start_listener: Option<&'a UnixListener>,
    pub preserve_fds: u32,
    pub no_pivot: bool,
    /// Give the container a new session keyring (runc's default; --no-new-keyring turns it off).
    pub new_keyring: bool,
    pub has_runtime_hooks: bool,
    /// Create only: the sysfs mount the runtime made for a joined network namespace.
    pub sysfs: Option<(usize, &'a OwnedFd)>,
}

/// Stage 1. Returns the exit code of the stage-1 process.
pub fn stage1(a: &ChildArgs<'_>, chan: &mut Channel) -> i32 {
    // CVE-2019-5736: until execve, this process is an image of the runtime binary; make
    // /proc/<pid>/exe and ptrace unreachable for anything inside the container.
    let _ = nix::sys::prctl::set_dumpable(false);
    match stage1_steps(a, chan) {
        Ok(()) => 0,
        Err(e) => {
            let _ = chan.send(&Msg::Error(e));
            1
        }
    }
}

fn stage1_steps(a: &ChildArgs<'_>, chan: &mut Channel) -> Result<(), String> {
    chan.expect(&Msg::Go)
        .map_err(|e| format!("waiting for the runtime: {e}"))?;
    a.plan.join_all().map_err(|e| e.to_string())?;
    if a.plan.new_user {
        a.plan.unshare_user().map_err(|e| e.to_string())?;
        chan.send(&Msg::RequestIdMap).map_err(|e| e.to_string())?;
        chan.expect(&Msg::IdMapDone)
            .map_err(|e| format!("waiting for uid/gid maps: {e}"))?;
    }
    if a.plan.new_user || a.plan.joins_user() {
        // Become root of the user namespace (host uid/gid of its mapping).
        setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .map_err(|e| format!("becoming gid 0 in the user namespace (is gid 0 mapped?): {e}"))?;
        setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .map_err(|e| format!("becoming uid 0 in the user namespace (is uid 0 mapped?): {e}"))?;
    }
    a.plan.unshare_rest().map_err(|e| e.to_string())?;
    let mut chan2 = chan
        .try_clone()
        .map_err(|e| format!("duplicating the sync socket: {e}"))?;
    let pid = hull_sys::process::fork(move || stage2(a, &mut chan2))
        .map_err(|e| format!("forking the container init: {e}"))?;
    chan.send(&Msg::InitPid(pid.as_raw()))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Stage 2: the container's init (create) or the exec'd process. Never returns on success.
fn stage2(a: &ChildArgs<'_>, chan: &mut Channel) -> i32 {
    let _ = nix::sys::prctl::set_dumpable(false);
    let r = match a.mode {
        Mode::Create => init_create(a, chan),
        Mode::Exec => init_exec(a, chan),
    };
    match r {
        Err(Failure::BeforeReady(e)) => {
            let _ = chan.send(&Msg::Error(e));
            1
        }
        Err(Failure::AfterReady(e, code)) => {
            // The runtime is gone: the container's stderr is the only place left to tell.
            eprintln!("hull-runtime: {e}");
            code
        }
        Ok(()) => 0,
    }
}

enum Failure {
    BeforeReady(String),
    AfterReady(String, i32),
}

fn before<E: std::fmt::Display>(e: E) -> Failure {
    Failure::BeforeReady(e.to_string())
}

fn init_create(a: &ChildArgs<'_>, chan: &mut Channel) -> Result<(), Failure> {
    nix::unistd::setsid().map_err(|e| before(format!("setsid: {e}")))?;
    if a.new_keyring {
        hull_sys::process::join_new_session_keyring()
            .map_err(|e| before(format!("creating the container's session keyring: {e}")))?;
    }
    let mut cgroup_ready = false;
    let mut wait_cgroup = |chan: &mut Channel| -> Result<(), String> {
        if cgroup_ready {
            return Ok(());
        }
        chan.expect(&Msg::CgroupDone)
            .map_err(|e| format!("waiting for the cgroup: {e}"))?;
        a.plan.unshare_cgroup().map_err(|e| e.to_string())?;
        cgroup_ready = true;
        Ok(())
    };
    if a.has_runtime_hooks {
        // Hooks (network setup, for one) expect the init in its cgroup.
        wait_cgroup(chan).map_err(before)?;
        chan.send(&Msg::RunCreateRuntimeHooks).map_err(before)?;
        chan.expect(&Msg::HooksDone)
            .map_err(|e| before(format!("createRuntime hooks: {e}")))?;
    }
    let ctx = rootfs::RootfsContext {
        spec: a.spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        userns: a.plan.new_user || a.plan.joins_user(),
        no_pivot: a.no_pivot,
        cgroup_sources: a.cgroup_sources.clone(),
        cgroup_v2_only: a.cgroup_v2_only,
        sysfs: a.sysfs.map(|(i, fd)| (i, fd.as_fd())),
    };
    let create_container_hooks = || {
        let list = a
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.create_container().clone())
            .unwrap_or_default();
        if list.is_empty() {
            return Ok(());
        }
        hooks::run_all("createContainer", &list, &state_for_hooks(a, "created"))
            .map_err(|e| e.to_string())
    };
    rootfs::setup(&ctx, &mut || wait_cgroup(chan), create_container_hooks).map_err(before)?;
    rootfs::finish(a.spec).map_err(before)?;
    if let Some(h) = a.spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| before(format!("hostname: setting {h:?}: {e}")))?;
    }
    if let Some(d) = a.spec.domainname() {
        hull_sys::process::setdomainname(d)
            .map_err(|e| before(format!("domainname: setting {d:?}: {e}")))?;
    }
    if let Some(p) = a
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.personality().as_ref())
    {
        set_personality(p).map_err(before)?;
    }
    finish_and_exec(a, chan)
}

fn init_exec(a: &ChildArgs<'_>, chan: &mut Channel) -> Result<(), Failure> {
    if a.process.terminal().unwrap_or(false) {
        nix::unistd::setsid().map_err(|e| before(format!("setsid: {e}")))?;
    }
    finish_and_exec(a, chan)
}

/// Console, program lookup, limits and privileges; Ready; wait for start; exec.
fn finish_and_exec(a: &ChildArgs<'_>, chan: &mut Channel) -> Result<(), Failure> {
    let p = a.process;
    if p.terminal().unwrap_or(false) {
        setup_console(p, chan).map_err(before)?;
    }
    if !p.cwd().exists() && a.mode == Mode::Create {
        std::fs::create_dir_all(p.cwd())
            .map_err(|e| before(format!("process.cwd: creating {}: {e}", p.cwd().display())))?;
    }
    let exe = process::resolve_executable(p).map_err(before)?;
    process::apply_limits(p).map_err(before)?;
    let nnp = p.no_new_privileges().unwrap_or(false);
    let (early, late) = match a.seccomp {
        Some(f) if f.uses_notify() || !nnp => (Some(f), None),
        Some(f) => (None, Some(f)),
        None => (None, None),
    };
    let notify = process::drop_privileges(p, a.preserve_fds, early).map_err(before)?;
    if let Some(fd) = notify {
        chan.send_fd(&Msg::SeccompFd, fd.as_raw_fd())
            .map_err(before)?;
    }
    chan.send(&Msg::Ready).map_err(before)?;
    // `start` connects, sends the state, and waits for end-of-file on the connection: the
    // connection is close-on-exec, so EOF means the program is running; an error text
    // written before EOF means it could not be started.
    let mut start_conn = None;
    if let Some(listener) = a.start_listener {
        let (conn, state) = wait_for_start(listener).map_err(|e| Failure::AfterReady(e, 1))?;
        start_conn = Some(conn);
        let list = a
            .spec
            .hooks()
            .as_ref()
            .and_then(|h| h.start_container().clone())
            .unwrap_or_default();
        if let Err(e) = hooks::run_all("startContainer", &list, &state) {
            return Err(report_start_failure(start_conn, e.to_string(), 1));
        }
    }
    let err = process::exec(p, &exe, late);
    let code = match &err {
        process::ProcessError::Exec {
            source: nix::Error::ENOENT,
            ..
        } => 127,
        _ => 126,
    };
    Err(report_start_failure(start_conn, err.to_string(), code))
}

/// Tells a waiting `start` why the program could not be started.
fn report_start_failure(
    conn: Option<std::os::unix::net::UnixStream>,
    msg: String,
    code: i32,
) -> Failure {
    if let Some(mut c) = conn {
        use std::io::Write;
        let _ = c.write_all(msg.as_bytes());
    }
    Failure::AfterReady(msg, code)
}

/// Blocks until `start` connects; returns the state JSON it sends (for startContainer hooks).
fn wait_for_start(
    listener: &UnixListener,
) -> Result<(std::os::unix::net::UnixStream, Vec<u8>), String> {
    let (mut conn, _) = listener
        .accept()
        .map_err(|e| format!("waiting for start: {e}"))?;
    let mut state = Vec::new();
    conn.read_to_end(&mut state)
        .map_err(|e| format!("reading the start request: {e}"))?;
    Ok((conn, state))
}

fn state_for_hooks(a: &ChildArgs<'_>, status: &str) -> Vec<u8> {
    let v = serde_json::json!({
        "ociVersion": a.spec.version(),
        "id": "",
        "status": status,
        "pid": std::process::id(),
        "bundle": a.bundle,
        "annotations": a.spec.annotations().clone().unwrap_or_default(),
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

fn set_personality(p: &oci_spec::runtime::LinuxPersonality) -> Result<(), String> {
    use nix::sys::personality::Persona;
    use oci_spec::runtime::LinuxPersonalityDomain as D;
    let persona = match p.domain() {
        D::PerLinux32 => Persona::from_bits_retain(0x0008),
        D::PerLinux => Persona::empty(),
    };
    nix::sys::personality::set(persona)
        .map(|_| ())
        .map_err(|e| format!("linux.personality: {e}"))
}

/// Opens a pty from the container's /dev/ptmx, hands the master to the runtime (which passes it
/// on to the console socket), and makes the slave our stdio and controlling terminal.
fn setup_console(p: &Process, chan: &mut Channel) -> Result<(), String> {
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(|e| format!("console: opening /dev/ptmx in the container: {e}"))?;
    grantpt(&master).map_err(|e| format!("console: grantpt: {e}"))?;
    unlockpt(&master).map_err(|e| format!("console: unlockpt: {e}"))?;
    let name = ptsname_r(&master).map_err(|e| format!("console: ptsname: {e}"))?;
    let slave: OwnedFd = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("console: opening {name}: {e}"))?;
    if let Some(size) = p.console_size() {
        hull_sys::tty::set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)
            .map_err(|e| format!("console: setting the window size: {e}"))?;
    }
    chan.send_fd(&Msg::ConsoleFd, master.as_raw_fd())
        .map_err(|e| format!("console: passing the pty: {e}"))?;
    drop(master);
    nix::unistd::dup2_stdin(&slave).map_err(|e| format!("console: stdin: {e}"))?;
    nix::unistd::dup2_stdout(&slave).map_err(|e| format!("console: stdout: {e}"))?;
    nix::unistd::dup2_stderr(&slave).map_err(|e| format!("console: stderr: {e}"))?;
    hull_sys::tty::set_controlling_terminal(slave.as_fd())
        .map_err(|e| format!("console: TIOCSCTTY: {e}"))?;
    Ok(())
}
