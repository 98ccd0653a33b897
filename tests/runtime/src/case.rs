//! One test's sandbox: a bundle, a state dir, a container id, and a guard that cleans up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cmd::{self, Out, TIMEOUT};
use crate::{fixture, host, spec};

/// One test's container: its bundle (config.json + rootfs), its runtime `--root`, its id and
/// spec. Dropping it deletes the container (`delete --force`) and fails the test if a state dir,
/// a cgroup, a mount or a process of it is left.
pub struct Case {
    /// The container id (unique per test and process).
    pub id: String,
    /// The per-test temp dir holding everything below.
    pub dir: PathBuf,
    /// The bundle dir (config.json, rootfs/).
    pub bundle: PathBuf,
    /// The container's rootfs (a copy of the base busybox rootfs with /probe).
    pub rootfs: PathBuf,
    /// The runtime's `--root` state dir.
    pub state_root: PathBuf,
    /// The spec written to config.json by `run` and `create` (unless Null: then config.json is
    /// left as the test wrote it).
    pub spec: Value,
    /// Global options given to every runtime command after `--root` (e.g. `--log F`).
    pub globals: Vec<String>,
    tmp: Option<tempfile::TempDir>,
}

impl Case {
    /// A fresh case named `name` whose process runs `args`.
    pub fn new(name: &str, args: &[&str]) -> Case {
        // Fail early (and only once) when there is no runtime to test.
        crate::runtime();
        let tmp = tempfile::Builder::new()
            .prefix(&format!("hull-e2e-{name}-"))
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().to_path_buf();
        // Traversable by a user-namespaced root (host uid 100000).
        chmod(&dir, 0o755);
        let bundle = dir.join("bundle");
        std::fs::create_dir(&bundle).expect("mkdir bundle");
        chmod(&bundle, 0o755);
        let rootfs = bundle.join("rootfs");
        fixture::copy_rootfs(&rootfs);
        let state_root = dir.join("state");
        let id = format!("{name}-{}", std::process::id());
        let spec = spec::default_spec(args, &format!("/hull-e2e/{id}"));
        Case {
            id,
            dir,
            bundle,
            rootfs,
            state_root,
            spec,
            globals: Vec::new(),
            tmp: Some(tmp),
        }
    }

    /// The cgroup path of the container relative to each hierarchy root.
    pub fn cgroup_rel(&self) -> String {
        format!("hull-e2e/{}", self.id)
    }

    /// The runtime's state dir for this container.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join(&self.id)
    }

    /// Set the process args.
    pub fn args(&mut self, args: &[&str]) -> &mut Self {
        self.spec["process"]["args"] = args.into();
        self
    }

    /// Append a mount to the spec.
    /// A new user namespace mapping container ids 0-65535 to host ids from `host_id`.
    pub fn user_namespace(&mut self, host_id: u32) -> &mut Self {
        self.spec["linux"]["namespaces"]
            .as_array_mut()
            .expect("the spec has a namespace list")
            .push(serde_json::json!({ "type": "user" }));
        let map = serde_json::json!([{ "containerID": 0, "hostID": host_id, "size": 65536 }]);
        self.spec["linux"]["uidMappings"] = map.clone();
        self.spec["linux"]["gidMappings"] = map;
        self
    }

    pub fn mount(&mut self, m: Value) -> &mut Self {
        self.spec["mounts"].as_array_mut().expect("mounts").push(m);
        self
    }

    /// Write the spec to config.json (unless it is Null).
    pub fn write_spec(&self) {
        if self.spec.is_null() {
            return;
        }
        let text = serde_json::to_string_pretty(&self.spec).expect("spec to json");
        std::fs::write(self.bundle.join("config.json"), text).expect("write config.json");
    }

    /// A runtime command with this case's `--root`.
    pub fn rt(&self) -> Command {
        let mut c = Command::new(&crate::runtime().bin);
        c.arg("--root").arg(&self.state_root).args(&self.globals);
        c
    }

    /// Run the runtime with `args` (after `--root`).
    #[track_caller]
    pub fn cmd(&self, args: &[&str]) -> Out {
        cmd::run(self.rt().args(args), TIMEOUT)
    }

    /// Write the spec and `run` the container in the foreground.
    #[track_caller]
    pub fn run(&self) -> Out {
        self.write_spec();
        let mut c = self.rt();
        c.arg("run").arg("--bundle").arg(&self.bundle).arg(&self.id);
        cmd::run(&mut c, TIMEOUT)
    }

    /// Write the spec and `create` the container, with `extra` options before the id. The
    /// runtime's and the container's stdout/stderr go to files (see [`Case::output`]).
    #[track_caller]
    pub fn create(&self, extra: &[&str]) -> Out {
        self.write_spec();
        let mut c = self.rt();
        c.arg("create")
            .arg("--bundle")
            .arg(&self.bundle)
            .args(extra)
            .arg(&self.id);
        cmd::run_to_files(
            &mut c,
            &self.dir.join("out"),
            &self.dir.join("err"),
            TIMEOUT,
        )
    }

    /// What the created container has written to stdout so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.dir.join("out")).unwrap_or_default()
    }

    #[track_caller]
    pub fn start(&self) -> Out {
        self.cmd(&["start", &self.id])
    }

    /// `state ID` parsed; panics unless it succeeds.
    #[track_caller]
    pub fn state(&self) -> Value {
        let out = self.cmd(&["state", &self.id]).ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state output is not JSON ({e}): {}", out.stdout))
    }

    /// The `status` field of `state ID`, or None if `state` fails.
    pub fn status(&self) -> Option<String> {
        let out = self.cmd(&["state", &self.id]);
        if !out.success() {
            return None;
        }
        let v: Value = serde_json::from_str(&out.stdout).ok()?;
        v["status"].as_str().map(str::to_string)
    }

    /// Poll `state` until the status is `want`.
    #[track_caller]
    pub fn wait_status(&self, want: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let st = self.status();
            if st.as_deref() == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "status {st:?}, want {want:?} after {timeout:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `exec ID args...`.
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Out {
        let mut c = self.rt();
        c.arg("exec").arg(&self.id).args(args);
        cmd::run(&mut c, TIMEOUT)
    }

    /// Everything of this container still present: state dir, cgroup dirs, mounts, processes.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.state_dir().exists() {
            left.push(format!("state dir {}", self.state_dir().display()));
        }
        for d in host::cgroup_dirs(&self.cgroup_rel()) {
            left.push(format!("cgroup {}", d.display()));
        }
        for m in host::mounts_under(&self.dir) {
            left.push(format!("mount {m}"));
        }
        for p in host::procs_under(&self.dir) {
            left.push(format!("process {p} ({})", host::cmdline(p as i64)));
        }
        left
    }

    /// Wait (briefly) for [`Case::leftovers`] to be empty and return what is still there.
    pub fn settle(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let left = self.leftovers();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Assert that nothing of the container is left (call after `delete`).
    #[track_caller]
    pub fn assert_clean(&self) {
        let left = self.settle();
        assert!(left.is_empty(), "left behind after delete: {left:#?}");
    }
}

fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

impl Drop for Case {
    fn drop(&mut self) {
        if crate::try_runtime().is_ok() {
            let _ = cmd::try_run(self.rt().args(["delete", "--force", &self.id]), TIMEOUT);
        }
        let left = self.settle();
        // Clean up whatever leaked so that the temp dir can go and the host stays usable.
        for p in host::procs_under(&self.dir) {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        let mut mounts = host::mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            host::umount_detach(m);
        }
        for d in host::cgroup_dirs(&self.cgroup_rel()) {
            let _ = std::fs::remove_dir(&d);
        }
        // The shared parent /hull-e2e stays: removing it would race with other tests' runtimes
        // creating their cgroups under it.
        if mounts.is_empty() {
            drop(self.tmp.take());
        } else {
            // Never recurse into a leaked mount: keep the dir for inspection.
            let _ = self.tmp.take().map(tempfile::TempDir::keep);
        }
        if !left.is_empty() && !thread::panicking() {
            panic!("container {} left behind: {left:#?}", self.id);
        }
    }
}
