//! The runtime's operations on containers, from the caller's side: create, start, state, kill,
//! delete, pause, resume, ps, exec and run.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use crate::channel::{send_one_fd, Channel, Msg};
use crate::error::{Error, Result};
use crate::hooks;
use crate::init::{self, ChildArgs, Mode};
use crate::namespaces::{self, Plan};
use crate::spec::{self, HostLimits};
use crate::state::{self, Record, StateRoot, Status};

/// The runtime: where state lives and where the cgroup filesystem is mounted.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub state: StateRoot,
    pub cgroup_root: PathBuf,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    /// Keep the runtime's session keyring instead of giving the container a new one.
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
}

/// Removes what a failed create made: the init (if any), its cgroup and the state dir.
struct CreateGuard<'a> {
    rt: &'a Runtime,
    id: String,
    manager: Option<Box<dyn hull_cgroups::Manager>>,
    pids: Vec<i32>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for pid in &self.pids {
            let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        if let Some(m) = &self.manager {
            kill_cgroup(m.as_ref());
            let _ = m.destroy();
        }
        let _ = self.rt.state.remove(&self.id);
    }
}

fn kill_cgroup(m: &dyn hull_cgroups::Manager) {
    let _ = m.thaw();
    for pid in m.pids().unwrap_or_default() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Reaps a direct child, returning its exit code (128+signal when killed).
fn reap(pid: Pid) -> i32 {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return -1,
        }
    }
}

impl Runtime {
    pub fn new(state_root: impl Into<PathBuf>) -> Self {
        Runtime {
            state: StateRoot::new(state_root),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        }
    }

    fn manager(
        &self,
        id: &str,
        cgroups_path: Option<&str>,
    ) -> Result<Box<dyn hull_cgroups::Manager>> {
        hull_cgroups::new_manager(&self.cgroup_root, cgroups_path, id).map_err(|source| {
            Error::Cgroup {
                id: id.into(),
                source,
            }
        })
    }

    /// Creates a container: everything up to (not including) running the user's program.
    pub fn create(&self, o: &CreateOptions) -> Result<Record> {
        let id = o.id.as_str();
        let io_err = |step: &'static str| {
            move |source| Error::Io {
                id: id.into(),
                step,
                source,
            }
        };
        self.state.dir(id)?;
        let bundle =
            std::fs::canonicalize(&o.bundle).map_err(io_err("resolving the bundle path"))?;
        let spec = spec::load(&bundle)?;
        let host = HostLimits::probe();
        spec::validate(&spec, &bundle, &host)?;
        let linux = spec.linux().as_ref().expect("validated");
        if !spec::new_ns(linux, oci_spec::runtime::LinuxNamespaceType::Mount)
            && !linux
                .namespaces()
                .iter()
                .flatten()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount)
        {
            return Err(spec::SpecError::Invalid {
                field: "linux.namespaces".into(),
                message: "hull needs a mount namespace for the container".into(),
            }
            .into());
        }
        let process = spec.process().as_ref().expect("validated");
        let seccomp = match linux.seccomp() {
            Some(s) => Some(crate::seccomp_cache::program(&self.state.root, s)?),
            None => None,
        };
        let listener_path = linux
            .seccomp()
            .as_ref()
            .and_then(|s| s.listener_path().clone());
        if seccomp.as_ref().is_some_and(|f| f.uses_notify()) && listener_path.is_none() {
            return Err(Error::NotifyWithoutListener { id: id.into() });
        }
        if process.terminal().unwrap_or(false) && o.console_socket.is_none() {
            return Err(Error::NeedConsoleSocket { id: id.into() });
        }
        let console = Console::connect(id, process, o.console_socket.as_deref())?;
        let root = spec.root().as_ref().expect("validated").path();
        let rootfs = std::fs::canonicalize(if root.is_absolute() {
            root.clone()
        } else {
            bundle.join(root)
        })
        .map_err(io_err("resolving root.path"))?;
        let plan = Plan::for_create(linux).map_err(|source| Error::Namespaces {
            id: id.into(),
            source,
        })?;
        let cgroups_path = linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.display().to_string());
        let manager = self.manager(id, cgroups_path.as_deref())?;

        let dir = self.state.create_dir(id)?;
        let mut guard = CreateGuard {
            rt: self,
            id: id.into(),
            manager: None,
            pids: vec![],
            armed: true,
        };
        let listener = bind_start_socket(&dir).map_err(io_err("binding the start socket"))?;
        let hooks = spec.hooks().clone().unwrap_or_default();
        let has_runtime_hooks = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
            || hooks
                .create_runtime()
                .as_ref()
                .is_some_and(|h| !h.is_empty());

        let sysfs = crate::rootfs::sysfs_for_joined_netns(&spec, &plan);
        let (mut parent, child) = Channel::pair().map_err(io_err("creating the sync socket"))?;
        let args = ChildArgs {
            mode: Mode::Create,
            spec: &spec,
            process,
            plan: &plan,
            rootfs: &rootfs,
            bundle: &bundle,
            seccomp: seccomp.as_ref(),
            cgroup_sources: manager.mount_sources(),
            cgroup_v2_only: matches!(manager.hierarchy(), hull_cgroups::Hierarchy::V2),
            start_listener: Some(&listener),
            preserve_fds: o.preserve_fds,
            no_pivot: o.no_pivot,
            new_keyring: !o.no_new_keyring,
            has_runtime_hooks,
            sysfs: sysfs.as_ref().map(|(i, fd)| (*i, fd)),
        };
        crate::caps::prime();
        let parent_fd = parent.raw_fd();
        let stage1 = {
            let mut child = child;
            hull_sys::process::fork(move || {
                let _ = nix::unistd::close(parent_fd);
                init::stage1(&args, &mut child)
            })
            .map_err(io_err("forking the container process"))?
        };
        guard.pids.push(stage1.as_raw());
        drop(listener);
        guard.manager = Some(manager);
        parent
            .send(&Msg::Go)
            .map_err(io_err("releasing the container process"))?;
        // Limits (device rules included) are complete before the init joins the cgroup: a
        // half-written device list would refuse the init's mknod. The init is moved in when
        // its pid is known, while it sets up its rootfs: a cgroup v1 attach waits for an RCU
        // grace period (~10 ms), which this overlaps.
        let manager = guard.manager.as_ref().expect("just set");
        if let Some(r) = crate::devices::effective_resources(linux) {
            manager.set(&r).map_err(|source| Error::Cgroup {
                id: id.into(),
                source,
            })?;
        }

        let mut rec = Record {
            id: id.into(),
            pid: 0,
            pid_start: 0,
            bundle: bundle.clone(),
            rootfs: rootfs.clone(),
            created: state::now_rfc3339(),
            started: false,
            annotations: spec.annotations().clone().unwrap_or_default(),
            cgroups_path,
            owner: String::new(),
            hooks: spec.hooks().clone(),
        };
        let setup_err = |message: String| Error::Setup {
            id: id.into(),
            message,
        };
        loop {
            let msg = recv_setup(&mut parent, id, "container")?;
            match msg {
                Msg::RequestIdMap => {
                    namespaces::write_id_maps(stage1.as_raw(), linux)
                        .map_err(|e| setup_err(e.to_string()))?;
                    parent.send(&Msg::IdMapDone).map_err(io_err("sync"))?;
                }
                Msg::InitPid(pid) => {
                    guard.pids.push(pid);
                    rec.pid = pid;
                    rec.pid_start = state::proc_start_time(pid).map(|(s, _)| s).unwrap_or(0);
                    let manager = guard.manager.as_ref().expect("set before Go");
                    manager.apply(pid).map_err(|source| Error::Cgroup {
                        id: id.into(),
                        source,
                    })?;
                    parent.send(&Msg::CgroupDone).map_err(io_err("sync"))?;
                    reap(stage1);
                }
                Msg::RunCreateRuntimeHooks => {
                    // runtime-tools (the OCI conformance suite) expects "created" here.
                    let st = oci_state(&rec, Status::Created, &spec);
                    let res =
                        hooks::run_all("prestart", hooks.prestart().as_deref().unwrap_or(&[]), &st)
                            .and_then(|_| {
                                hooks::run_all(
                                    "createRuntime",
                                    hooks.create_runtime().as_deref().unwrap_or(&[]),
                                    &st,
                                )
                            });
                    if let Err(source) = res {
                        let _ = parent.send(&Msg::Error(source.to_string()));
                        return Err(Error::Hook {
                            id: id.into(),
                            source,
                        });
                    }
                    parent.send(&Msg::HooksDone).map_err(io_err("sync"))?;
                }
                Msg::ConsoleFd => Console::forward(console.as_ref(), id, &mut parent)?,
                Msg::SeccompFd => {
                    let fd = parent
                        .recv_fd()
                        .map_err(io_err("receiving the seccomp notify fd"))?;
                    let path = listener_path.clone().expect("checked above");
                    send_seccomp_fd(&path, &rec, &spec, fd.as_fd())
                        .map_err(io_err("sending the seccomp fd to listenerPath"))?;
                }
                Msg::Ready => break,
                Msg::Error(e) => return Err(setup_err(e)),
                other => return Err(setup_err(format!("unexpected sync message {other:?}"))),
            }
        }
        self.state.save(&rec)?;
        if let Some(p) = &o.pid_file {
            write_pid_file(p, rec.pid).map_err(io_err("writing the pid file"))?;
        }
        guard.armed = false;
        Ok(rec)
    }

    /// Current OCI status of a container record.
    pub fn status(&self, rec: &Record) -> Status {
        if !state::init_alive(rec) {
            return Status::Stopped;
        }
        if let Ok(m) = self.manager(&rec.id, rec.cgroups_path.as_deref()) {
            if m.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        if rec.started {
            Status::Running
        } else {
            Status::Created
        }
    }

    /// Releases a created container's init to exec the user's program.
    pub fn start(&self, id: &str) -> Result<()> {
        let mut rec = self.state.load(id)?;
        let status = self.status(&rec);
        if status != Status::Created {
            return Err(Error::WrongStatus {
                id: id.into(),
                status,
                what: "only a created container can be started",
            });
        }
        self.start_record(&mut rec)
    }

    /// Starts a container whose record the caller has just checked (or created).
    fn start_record(&self, rec: &mut Record) -> Result<()> {
        let id = rec.id.as_str();
        let dir = self.state.dir(id)?;
        let sock = dir.join("start.sock");
        let mut conn = connect_start_socket(&dir).map_err(|source| Error::Io {
            id: id.into(),
            step: "connecting to the container's start socket",
            source,
        })?;
        let st =
            serde_json::to_vec(&self.oci_state_value(rec, Status::Running)).unwrap_or_default();
        use std::io::{Read, Write};
        let step_err = |source| Error::Io {
            id: id.into(),
            step: "starting the container",
            source,
        };
        conn.write_all(&st).map_err(step_err)?;
        conn.shutdown(std::net::Shutdown::Write).map_err(step_err)?;
        // EOF: the program was exec'd (the init's end is close-on-exec). Text: why it was not.
        let mut reply = String::new();
        conn.read_to_string(&mut reply).map_err(step_err)?;
        if !reply.is_empty() {
            let _ = std::fs::remove_file(&sock);
            return Err(Error::Setup {
                id: id.into(),
                message: format!("starting the process: {reply}"),
            });
        }
        let _ = std::fs::remove_file(&sock);
        rec.started = true;
        self.state.save(rec)?;
        if let Some(h) = rec.hooks.as_ref().and_then(|h| h.poststart().clone()) {
            for e in hooks::run_each("poststart", &h, &st) {
                eprintln!("hull-runtime: warning: container {id:?}: {e}");
            }
        }
        Ok(())
    }

    /// The OCI state document of a container.
    pub fn state_json(&self, id: &str) -> Result<serde_json::Value> {
        let rec = self.state.load(id)?;
        let status = self.status(&rec);
        Ok(self.oci_state_value(&rec, status))
    }

    fn oci_state_value(&self, rec: &Record, status: Status) -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "id": rec.id,
            "status": status,
            "pid": if status == Status::Stopped { 0 } else { rec.pid },
            "bundle": rec.bundle,
            "rootfs": rec.rootfs,
            "created": rec.created,
            "owner": rec.owner,
            "annotations": rec.annotations,
        })
    }

    /// Sends `signal` to the init (or with `all`, to every process in the container's cgroup).
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let rec = self.state.load(id)?;
        if all {
            let m = self.manager(id, rec.cgroups_path.as_deref())?;
            for pid in m.pids().map_err(|source| Error::Cgroup {
                id: id.into(),
                source,
            })? {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
            }
            return Ok(());
        }
        if !state::init_alive(&rec) {
            return Err(Error::NotRunning { id: id.into() });
        }
        let sig_err = |source| Error::Signal {
            id: id.into(),
            signal: signal.to_string(),
            source,
        };
        let fd = hull_sys::pidfd::open(rec.pid).map_err(sig_err)?;
        // The pidfd pins the process: check it is still our init before signalling.
        if !state::init_alive(&rec) {
            return Err(Error::NotRunning { id: id.into() });
        }
        hull_sys::pidfd::send_signal(fd.as_fd(), signal as i32).map_err(sig_err)
    }

    /// Deletes a container's resources. A running container needs `force` (it is killed).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let rec = match self.state.load(id) {
            Ok(r) => r,
            Err(state::StateError::NotFound { .. }) if force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let status = self.status(&rec);
        // The spec: deleting a container that is not stopped (created included) is an error
        // without effect; --force kills it first.
        if status != Status::Stopped && !force {
            return Err(Error::WrongStatus {
                id: id.into(),
                status,
                what: "stop it first, or delete with --force",
            });
        }
        let m = self.manager(id, rec.cgroups_path.as_deref())?;
        if status != Status::Stopped {
            let _ = nix::sys::signal::kill(Pid::from_raw(rec.pid), Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            kill_cgroup(m.as_ref());
            let empty = m.pids().map(|p| p.is_empty()).unwrap_or(true);
            if empty && !state::init_alive(&rec) || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        m.destroy().map_err(|source| Error::Cgroup {
            id: id.into(),
            source,
        })?;
        if let Some(h) = rec.hooks.as_ref().and_then(|h| h.poststop().clone()) {
            let st = serde_json::to_vec(&self.oci_state_value(&rec, Status::Stopped))
                .unwrap_or_default();
            for e in hooks::run_each("poststop", &h, &st) {
                eprintln!("hull-runtime: warning: container {id:?}: {e}");
            }
        }
        self.state.remove(id)?;
        Ok(())
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let rec = self.state.load(id)?;
        let status = self.status(&rec);
        if status != Status::Running && status != Status::Created {
            return Err(Error::WrongStatus {
                id: id.into(),
                status,
                what: "only a running container can be paused",
            });
        }
        self.with_cgroup(&rec, |m| m.freeze())
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let rec = self.state.load(id)?;
        let status = self.status(&rec);
        if status != Status::Paused {
            return Err(Error::WrongStatus {
                id: id.into(),
                status,
                what: "only a paused container can be resumed",
            });
        }
        self.with_cgroup(&rec, |m| m.thaw())
    }

    /// Pids of every process in the container.
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        self.with_cgroup(&self.state.load(id)?, |m| m.pids())
    }

    /// Resource statistics of the container's cgroup.
    pub fn stats(&self, id: &str) -> Result<hull_cgroups::Stats> {
        self.with_cgroup(&self.state.load(id)?, |m| m.stats())
    }

    /// Runs one cgroup operation on a container's cgroup, its error naming the container.
    fn with_cgroup<T>(
        &self,
        rec: &Record,
        op: impl FnOnce(&dyn hull_cgroups::Manager) -> std::result::Result<T, hull_cgroups::Error>,
    ) -> Result<T> {
        let m = self.manager(&rec.id, rec.cgroups_path.as_deref())?;
        op(m.as_ref()).map_err(|source| Error::Cgroup {
            id: rec.id.clone(),
            source,
        })
    }

    /// Runs `process` inside a running container. Returns the pid and, unless detached, the
    /// exit code.
    pub fn exec(&self, id: &str, process: &Process, o: &ExecOptions) -> Result<(i32, Option<i32>)> {
        let io_err = |step: &'static str| {
            move |source| Error::Io {
                id: id.into(),
                step,
                source,
            }
        };
        let rec = self.state.load(id)?;
        let status = self.status(&rec);
        if !matches!(status, Status::Running | Status::Created) {
            return Err(Error::WrongStatus {
                id: id.into(),
                status,
                what: "cannot exec in a container that is not running",
            });
        }
        let spec = spec::load(&rec.bundle)?;
        spec::validate_process(process, &HostLimits::probe(), "process")?;
        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(crate::seccomp_cache::program(&self.state.root, s)?),
            None => None,
        };
        if process.terminal().unwrap_or(false) && o.console_socket.is_none() {
            return Err(Error::NeedConsoleSocket { id: id.into() });
        }
        let console = Console::connect(id, process, o.console_socket.as_deref())?;
        let plan = Plan::for_exec(rec.pid).map_err(|source| Error::Namespaces {
            id: id.into(),
            source,
        })?;
        let manager = self.manager(id, rec.cgroups_path.as_deref())?;
        if !o.detach {
            let _ = nix::sys::prctl::set_child_subreaper(true);
        }
        let (mut parent, child) = Channel::pair().map_err(io_err("creating the sync socket"))?;
        let args = ChildArgs {
            mode: Mode::Exec,
            spec: &spec,
            process,
            plan: &plan,
            rootfs: &rec.rootfs,
            bundle: &rec.bundle,
            seccomp: seccomp.as_ref(),
            cgroup_sources: vec![],
            cgroup_v2_only: false,
            start_listener: None,
            preserve_fds: o.preserve_fds,
            no_pivot: false,
            new_keyring: false,
            has_runtime_hooks: false,
            sysfs: None,
        };
        crate::caps::prime();
        let parent_fd = parent.raw_fd();
        let stage1 = {
            let mut child = child;
            hull_sys::process::fork(move || {
                let _ = nix::unistd::close(parent_fd);
                init::stage1(&args, &mut child)
            })
            .map_err(io_err("forking the exec process"))?
        };
        let kill_stage1 = |e: Error| {
            let _ = nix::sys::signal::kill(stage1, Signal::SIGKILL);
            reap(stage1);
            e
        };
        manager.apply(stage1.as_raw()).map_err(|source| {
            kill_stage1(Error::Cgroup {
                id: id.into(),
                source,
            })
        })?;
        parent
            .send(&Msg::Go)
            .map_err(io_err("releasing the exec process"))?;
        let mut pid = 0;
        let setup_err = |message: String| Error::Setup {
            id: id.into(),
            message,
        };
        loop {
            let msg = recv_setup(&mut parent, id, "exec")?;
            match msg {
                Msg::InitPid(p) => {
                    pid = p;
                    reap(stage1);
                }
                Msg::ConsoleFd => Console::forward(console.as_ref(), id, &mut parent)?,
                Msg::SeccompFd => {
                    let _ = parent.recv_fd();
                }
                Msg::Ready => break,
                Msg::Error(e) => {
                    if pid > 0 {
                        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                    return Err(setup_err(e));
                }
                other => return Err(setup_err(format!("unexpected sync message {other:?}"))),
            }
        }
        if let Some(p) = &o.pid_file {
            write_pid_file(p, pid).map_err(io_err("writing the pid file"))?;
        }
        if o.detach {
            return Ok((pid, None));
        }
        Ok((pid, Some(reap(Pid::from_raw(pid)))))
    }

    /// create + start + wait + delete. Signals sent to the runtime are forwarded to the
    /// container's init. Returns the container's exit code.
    pub fn run(&self, o: &CreateOptions, detach: bool) -> Result<i32> {
        use nix::sys::signal::{SigSet, SigmaskHow};
        if detach {
            self.create(o)?;
            self.start(&o.id)?;
            return Ok(0);
        }
        let _ = nix::sys::prctl::set_child_subreaper(true);
        let forwarded = [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGCHLD,
        ];
        let mut set = SigSet::empty();
        for s in forwarded {
            set.add(s);
        }
        // The children unblock everything before exec (process::exec resets the signal state).
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None);
        let mut rec = self.create(o)?;
        if let Err(e) = self.start_record(&mut rec) {
            let _ = self.delete(&o.id, true);
            return Err(e);
        }
        let init = Pid::from_raw(rec.pid);
        let code = loop {
            // Reap whatever exited; stop when the init did.
            let mut done = None;
            loop {
                match waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(p, c)) if p == init => done = Some(c),
                    Ok(WaitStatus::Signaled(p, s, _)) if p == init => done = Some(128 + s as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            if let Some(c) = done {
                break c;
            }
            match set.wait() {
                Ok(Signal::SIGCHLD) => {}
                Ok(s) => {
                    let _ = nix::sys::signal::kill(init, s);
                }
                Err(_) => {}
            }
        };
        self.delete(&o.id, true)?;
        Ok(code)
    }
}

/// The terminal hand-off: the init sends its pty master, which goes on to the caller's
/// --console-socket (runc's protocol: the fd with SCM_RIGHTS).
struct Console {
    sock: UnixStream,
    path: PathBuf,
}

impl Console {
    fn connect(id: &str, process: &Process, path: Option<&Path>) -> Result<Option<Console>> {
        match path {
            Some(p) if process.terminal().unwrap_or(false) => {
                let sock = UnixStream::connect(p).map_err(|source| Error::ConsoleSocket {
                    id: id.into(),
                    path: p.into(),
                    source,
                })?;
                Ok(Some(Console {
                    sock,
                    path: p.into(),
                }))
            }
            _ => Ok(None),
        }
    }

    fn forward(console: Option<&Console>, id: &str, chan: &mut Channel) -> Result<()> {
        let fd = chan.recv_fd().map_err(|source| Error::Io {
            id: id.into(),
            step: "receiving the console",
            source,
        })?;
        let c = console.ok_or_else(|| Error::NeedConsoleSocket { id: id.into() })?;
        send_one_fd(c.sock.as_raw_fd(), fd.as_raw_fd(), "console").map_err(|source| {
            Error::ConsoleSocket {
                id: id.into(),
                path: c.path.clone(),
                source,
            }
        })
    }
}

/// The next setup message from the children; their death is a clear error.
fn recv_setup(chan: &mut Channel, id: &str, who: &str) -> Result<Msg> {
    chan.recv().map_err(|e| Error::Setup {
        id: id.into(),
        message: if e.kind() == std::io::ErrorKind::UnexpectedEof {
            format!("the {who} process exited during setup without saying why")
        } else {
            format!("sync socket: {e}")
        },
    })
}

fn oci_state(rec: &Record, status: Status, spec: &Spec) -> Vec<u8> {
    let v = serde_json::json!({
        "ociVersion": spec.version(),
        "id": rec.id,
        "status": status,
        "pid": rec.pid,
        "bundle": rec.bundle,
        "annotations": rec.annotations,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

fn send_seccomp_fd(
    path: &Path,
    rec: &Record,
    spec: &Spec,
    fd: std::os::fd::BorrowedFd<'_>,
) -> std::io::Result<()> {
    let meta = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .and_then(|s| s.listener_metadata().clone())
        .unwrap_or_default();
    let v = serde_json::json!({
        "ociVersion": spec.version(),
        "fds": ["seccompFd"],
        "pid": rec.pid,
        "metadata": meta,
        "state": {
            "ociVersion": spec.version(),
            "id": rec.id,
            "status": "creating",
            "pid": rec.pid,
            "bundle": rec.bundle,
            "annotations": rec.annotations,
        }
    });
    let sock = UnixStream::connect(path)?;
    send_one_fd(sock.as_raw_fd(), fd.as_raw_fd(), &v.to_string())
}

/// The start socket lives in the container's state dir. Its path can exceed the 108 bytes a
/// socket address holds (dockerd's state dirs are deep, ids are 64 characters), so it is
/// reached through a short /proc/self/fd path of an fd of the dir.
fn bind_start_socket(dir: &Path) -> std::io::Result<UnixListener> {
    let d = std::fs::File::open(dir)?;
    UnixListener::bind(format!("/proc/self/fd/{}/start.sock", d.as_raw_fd()))
}

fn connect_start_socket(dir: &Path) -> std::io::Result<UnixStream> {
    let d = std::fs::File::open(dir)?;
    UnixStream::connect(format!("/proc/self/fd/{}/start.sock", d.as_raw_fd()))
}

fn write_pid_file(path: &Path, pid: i32) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())?;
    std::fs::rename(&tmp, path)
}
