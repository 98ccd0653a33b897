//! hull-runtime: the OCI runtime command line over hull's runtime library, compatible with the
//! runc command line that containerd and dockerd drive.

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use hull_runtime::{CreateOptions, ExecOptions, Runtime};
use nix::sys::signal::Signal;

mod spec_cmd;

#[derive(Parser, Debug)]
#[command(
    name = "hull-runtime",
    version,
    about = "hull's OCI runtime (runc-compatible command line)"
)]
struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = "/run/hull-runtime")]
    root: PathBuf,
    /// Append errors (and, with --debug, more) to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility; the systemd cgroup driver is not supported.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility and ignored.
    #[arg(long, global = true)]
    rootless: Option<String>,
    /// Accepted for runc compatibility and ignored (no checkpoint support).
    #[arg(long, global = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Path to the bundle (the directory holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    bundle: PathBuf,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (only for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Keep the runtime's session keyring (by default the container gets a new one).
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra fds (from 3) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal to a container's init (default SIGTERM).
    Kill {
        #[arg(long, short = 'a')]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container and its resources.
    Delete {
        #[arg(long, short = 'f')]
        force: bool,
        id: String,
    },
    /// Create and start a container, wait for it and delete it.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(long, short = 'd')]
        detach: bool,
        /// Accepted for runc compatibility.
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List the processes of a container.
    Ps {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// List containers.
    List {
        #[arg(long, short = 'f', default_value = "table")]
        format: String,
        #[arg(long, short = 'q')]
        quiet: bool,
    },
    /// Print resource statistics of a container as JSON.
    Events {
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Print what this runtime supports (OCI features document).
    Features,
    /// Write hull's hardened default config.json into the bundle (user namespace, seccomp, ...).
    Spec {
        #[arg(long, short = 'b', default_value = ".")]
        bundle: PathBuf,
        /// No terminal (stdio passed through), for scripts.
        #[arg(long = "no-terminal")]
        no_terminal: bool,
        #[arg(long)]
        hostname: Option<String>,
        /// linux.cgroupsPath
        #[arg(long = "cgroups-path")]
        cgroups_path: Option<String>,
        /// The process to run (default: sh).
        #[arg(last = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct ExecArgs {
    /// A JSON file with the process to run (OCI process section).
    #[arg(long, short = 'p')]
    process: Option<PathBuf>,
    #[arg(long, short = 'd')]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long, short = 't')]
    tty: bool,
    #[arg(long)]
    cwd: Option<PathBuf>,
    #[arg(long, short = 'e')]
    env: Vec<String>,
    /// uid[:gid]
    #[arg(long, short = 'u')]
    user: Option<String>,
    #[arg(long = "additional-gids", short = 'g')]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_...) to the process's bounding, effective, permitted sets.
    #[arg(long, short = 'c')]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long)]
    apparmor: Option<String>,
    id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = cli.log.clone();
    let json = cli.log_format == "json";
    match run(cli) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            let msg = render(&e);
            eprintln!("hull-runtime: {msg}");
            if let Some(path) = log {
                log_error(&path, json, &msg);
            }
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, skipping a cause whose text an outer message
/// already includes (our errors embed their source).
fn render(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Appends an error line to --log, in runc's JSON shape when --log-format json (containerd
/// reads the last "msg" of level "error" from it).
fn log_error(path: &PathBuf, json: bool, msg: &str) {
    let time = hull_runtime::state::now_rfc3339();
    let line = if json {
        serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level=error msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("unknown signal number {n}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn create_options(a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported by hull-runtime; configure the cgroupfs driver");
    }
    let rt = Runtime::new(&cli.root);
    match cli.cmd {
        Cmd::Create(a) => {
            rt.create(&create_options(&a))?;
            Ok(0)
        }
        Cmd::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        Cmd::State { id } => {
            let v = rt.state_json(&id)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(&id, sig, all)?;
            Ok(0)
        }
        Cmd::Delete { force, id } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        Cmd::Run {
            create,
            detach,
            keep: _,
        } => Ok(rt.run(&create_options(&create), detach)?),
        Cmd::Exec(a) => exec(&rt, a),
        Cmd::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
        Cmd::Ps {
            format,
            id,
            ps_args: _,
        } => {
            let pids = rt.ps(&id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID   CMD");
                for p in pids {
                    let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                        .unwrap_or_default()
                        .replace('\0', " ");
                    println!("{p:<5} {}", cmd.trim());
                }
            }
            Ok(0)
        }
        Cmd::List { format, quiet } => {
            let mut rows = Vec::new();
            for id in rt.state.list() {
                if let Ok(v) = rt.state_json(&id) {
                    rows.push(v);
                }
            }
            if quiet {
                for r in &rows {
                    println!("{}", r["id"].as_str().unwrap_or_default());
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&rows)?);
            } else {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} CREATED",
                    "ID", "PID", "STATUS", "BUNDLE"
                );
                for r in &rows {
                    println!(
                        "{:<20} {:<8} {:<10} {:<40} {}",
                        r["id"].as_str().unwrap_or_default(),
                        r["pid"].to_string(),
                        r["status"].as_str().unwrap_or_default(),
                        r["bundle"].as_str().unwrap_or_default(),
                        r["created"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        Cmd::Events { stats: _, id } => {
            let s = rt.stats(&id)?;
            println!(
                "{}",
                serde_json::json!({"type": "stats", "id": id, "data": s})
            );
            Ok(0)
        }
        Cmd::Features => {
            println!("{}", serde_json::to_string_pretty(&spec_cmd::features())?);
            Ok(0)
        }
        Cmd::Spec {
            bundle,
            no_terminal,
            hostname,
            cgroups_path,
            args,
        } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} already exists; remove it first", path.display());
            }
            let mut spec = spec_cmd::default_spec(cli.rootless.as_deref() == Some("true"))?;
            if no_terminal {
                spec["process"]["terminal"] = false.into();
            }
            if let Some(h) = hostname {
                spec["hostname"] = h.into();
            }
            if let Some(c) = cgroups_path {
                spec["linux"]["cgroupsPath"] = c.into();
            }
            if !args.is_empty() {
                spec["process"]["args"] = args.into();
            }
            std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(0)
        }
    }
}

fn exec(rt: &Runtime, a: ExecArgs) -> Result<i32> {
    let process: oci_spec::runtime::Process = match &a.process {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("--process: reading {}", path.display()))?;
            hull_runtime::spec::parse_json(&bytes)
                .map_err(|(field, msg)| anyhow!("--process {}: {field}: {msg}", path.display()))?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec: give a command after the container id, or --process FILE");
            }
            let rec = rt.state.load(&a.id)?;
            let spec = hull_runtime::spec::load(&rec.bundle)?;
            let mut p = spec.process().clone().unwrap_or_default();
            p.set_args(Some(a.command.clone()));
            p.set_terminal(Some(a.tty));
            if let Some(cwd) = &a.cwd {
                p.set_cwd(cwd.clone());
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(a.env.iter().cloned());
            p.set_env(Some(env));
            if let Some(u) = &a.user {
                let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
                let mut user = p.user().clone();
                user.set_uid(
                    uid.parse()
                        .with_context(|| format!("--user: bad uid {uid:?}"))?,
                );
                user.set_gid(
                    gid.parse()
                        .with_context(|| format!("--user: bad gid {gid:?}"))?,
                );
                if !a.additional_gids.is_empty() {
                    user.set_additional_gids(Some(a.additional_gids.clone()));
                }
                p.set_user(user);
            }
            if a.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            if !a.cap.is_empty() {
                let mut caps = p.capabilities().clone().unwrap_or_default();
                for c in &a.cap {
                    let cap: oci_spec::runtime::Capability =
                        serde_json::from_value(serde_json::Value::String(c.clone()))
                            .map_err(|_| anyhow!("--cap: unknown capability {c:?}"))?;
                    let add = |s: &Option<oci_spec::runtime::Capabilities>| {
                        let mut s = s.clone().unwrap_or_default();
                        s.insert(cap);
                        Some(s)
                    };
                    caps.set_bounding(add(caps.bounding()));
                    caps.set_effective(add(caps.effective()));
                    caps.set_permitted(add(caps.permitted()));
                }
                p.set_capabilities(Some(caps));
            }
            p
        }
    };
    let opts = ExecOptions {
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
    };
    let (_pid, code) = rt.exec(&a.id, &process, &opts)?;
    Ok(code.unwrap_or(0))
}
