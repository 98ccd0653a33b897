//! hulld: hull's daemon. Serves the Docker Engine API (system and image endpoints so far) on
//! UNIX sockets, with state under `--data-root` and private runtime files under
//! `--exec-root`. Flags are dockerd's where they mean the same (see `config`).

#![forbid(unsafe_code)]

mod config;
mod listen;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use hull_api::containers::{ContainerPaths, ContainerService, ShimCommand};
use hull_api::{Daemon, Events, ImageService, RegistrySettings, SystemConfig};
use tokio::signal::unix::{signal, SignalKind};

fn private_dir(p: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .with_context(|| format!("creating {}", p.display()))
}

/// This daemon's persistent ID (`<data-root>/engine-id`), made on first start.
fn engine_id(data_root: &Path) -> anyhow::Result<String> {
    let path = data_root.join("engine-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .context("reading a random uuid from /proc")?
        .trim()
        .to_string();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &id).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(id)
}

/// How to start a hull-shim: `$HULL_SHIM`, else `hull-shim` next to hulld, else hulld itself
/// in shim mode (`hulld __shim DIR`, which runs no async runtime).
fn shim_command() -> anyhow::Result<ShimCommand> {
    if let Some(p) = std::env::var_os("HULL_SHIM") {
        return Ok(ShimCommand {
            program: p.into(),
            args: Vec::new(),
        });
    }
    let me = std::env::current_exe().context("finding hulld's own path")?;
    let next = me.with_file_name("hull-shim");
    if next.exists() {
        return Ok(ShimCommand {
            program: next,
            args: Vec::new(),
        });
    }
    tracing::info!(
        "no hull-shim next to {}: running shims as `hulld __shim`",
        me.display()
    );
    Ok(ShimCommand {
        program: me,
        args: vec![SHIM_ARG.into()],
    })
}

const SHIM_ARG: &str = "__shim";

/// glibc's default mmap threshold, kept fixed (see `hull_sys::process::compact_heap`):
/// larger blocks that the heap cannot serve get their own mapping, and the heap's free top
/// is given back above 128 KiB.
const MMAP_THRESHOLD: usize = 128 * 1024;

/// The bridge network manager, working in hulld's own network namespace; without one
/// (no netlink, say) containers of the default network get an empty namespace.
fn network_manager(state: &Path) -> Option<hull_network::Manager> {
    let ns = hull_network::netns::open(Path::new("/proc/self/ns/net"));
    match ns
        .map_err(|e| e.to_string())
        .and_then(|ns| hull_network::Manager::new(state, ns).map_err(|e| e.to_string()))
    {
        Ok(m) => {
            restore_networks(&m);
            Some(m)
        }
        Err(e) => {
            tracing::warn!("no bridge networking ({e}): the default network is an empty namespace");
            None
        }
    }
}

/// Makes the bridges, rules and DNS responders of the saved networks again (endpoints of
/// containers that are gone or stopped are cleaned up once the containers are read back),
/// and points the DNS responders at the host's nameservers.
fn restore_networks(m: &hull_network::Manager) {
    match m.restore() {
        Ok(nets) if !nets.is_empty() => tracing::info!("restored {} network(s)", nets.len()),
        Ok(_) => {}
        Err(e) => tracing::error!("restoring the saved networks: {e}"),
    }
    if m.network("bridge").is_err() {
        if let Err(e) = m.ensure_default() {
            tracing::error!("making the default network: {e}");
        }
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let servers: Vec<std::net::SocketAddr> = text
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .collect();
    m.set_dns_upstreams(servers);
}

fn open_containers(
    cfg: &config::Config,
    image_root: &Path,
) -> anyhow::Result<Arc<ContainerService>> {
    let store = hull_image::ImageStore::open(image_root)
        .with_context(|| format!("opening the image store {}", image_root.display()))?;
    let paths = ContainerPaths {
        data: cfg.data_root.join("containers"),
        exec: cfg.exec_root.join("containers"),
        runtime_root: cfg.exec_root.join("runtime"),
    };
    hull_api::containers::host::ensure_subid_entries(&[
        Path::new("/etc/subuid"),
        Path::new("/etc/subgid"),
    ]);
    let subids = hull_api::containers::host::subid_ranges(Path::new("/etc/subuid"));
    ContainerService::open(
        paths,
        store,
        cfg.policy.policy(&cfg.data_root),
        subids,
        shim_command()?,
        if cfg.no_bridge {
            tracing::info!("--bridge none: the default network is an empty namespace");
            None
        } else {
            network_manager(&cfg.data_root.join("network"))
        },
    )
    .context("opening the container service")
}

/// Logs at `level` (config checked it is one of dockerd's: debug, info, warn, error, fatal).
/// A plain level filter, not an `EnvFilter`: the daemon takes no per-target directives,
/// and parsing and matching them costs code pages and heap in a daemon kept small.
fn init_logging(level: &str) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match level {
        "debug" => LevelFilter::DEBUG,
        "warn" => LevelFilter::WARN,
        "error" | "fatal" => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let t2 = tx.clone();
    tokio::spawn(async move {
        term.recv().await;
        let _ = tx.send("SIGTERM").await;
    });
    tokio::spawn(async move {
        int.recv().await;
        let _ = t2.send("SIGINT").await;
    });
    Ok(rx.recv().await.unwrap_or("signal"))
}

fn run(cfg: config::Config) -> anyhow::Result<()> {
    let addrs: Vec<listen::Addr> = cfg
        .hosts
        .iter()
        .map(|h| listen::parse_addr(h, cfg.tls.is_some()))
        .collect::<Result<_, _>>()?;
    let sockets: Vec<PathBuf> = addrs
        .iter()
        .filter_map(|a| match a {
            listen::Addr::Unix(p) => Some(p.clone()),
            listen::Addr::Tcp(_) => None,
        })
        .collect();
    let mut tcp = Vec::new();
    for a in &addrs {
        if let listen::Addr::Tcp(sa) = a {
            let files = cfg.tls.as_ref().expect("parse_addr checked TLS");
            tcp.push((*sa, listen::bind_tcp(*sa)?, listen::tls_acceptor(files)?));
        }
    }
    if cfg.tls.is_some() && tcp.is_empty() {
        tracing::warn!("--tlsverify given but no tcp:// host to serve it on");
    }
    private_dir(&cfg.data_root, 0o700)?;
    private_dir(&cfg.exec_root, 0o700)?;
    let auth_dir = cfg.exec_root.join("auth");
    private_dir(&auth_dir, 0o700)?;
    // The sockets first: a daemon that cannot serve (another one listens there) must fail
    // before it makes anything (the default bridge, nftables rules, records).
    let mut listeners = Vec::new();
    for path in &sockets {
        let (l, grouped) = listen::bind(path, &cfg.group)?;
        if !grouped {
            tracing::warn!(
                "group {:?} not found: {} is root only (0600)",
                cfg.group,
                path.display()
            );
        }
        listeners.push(l);
    }
    let image_root = cfg.data_root.join("image");
    let store = hull_image::ImageStore::open(&image_root)
        .with_context(|| format!("opening the image store {}", image_root.display()))?;
    let events = Arc::new(Events::default());
    let images = ImageService::new(
        store,
        RegistrySettings {
            insecure: cfg.insecure_registries.clone(),
            auth_dir,
        },
        events.clone(),
    );
    let containers = open_containers(&cfg, &image_root)?;
    containers
        .set_log_defaults(cfg.log_driver.clone(), cfg.log_opts.clone())
        .context("daemon.json log-driver/log-opts")?;
    containers.set_events(events.clone());
    let daemon = Arc::new(Daemon {
        images: Arc::new(images),
        containers,
        events,
        system: SystemConfig {
            id: engine_id(&cfg.data_root)?,
            data_root: cfg.data_root.display().to_string(),
            insecure_registries: cfg.insecure_registries.clone(),
            debug: cfg.log_level == "debug",
        },
    });
    let pid_file = cfg.exec_root.join("hulld.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", pid_file.display()))?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_io()
        .enable_time()
        .thread_name("hulld")
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async {
        for (l, path) in listeners.into_iter().zip(&sockets) {
            let l = tokio::net::UnixListener::from_std(l)
                .with_context(|| format!("listening on {}", path.display()))?;
            tracing::info!("API listen on {}", path.display());
            tokio::spawn(hull_api::serve(l, daemon.clone()));
        }
        for (addr, l, acceptor) in tcp {
            let l = tokio::net::TcpListener::from_std(l)
                .with_context(|| format!("listening on {addr}"))?;
            tracing::info!("API listen on tcp://{addr} (mutual TLS)");
            tokio::spawn(listen::serve_tls(l, acceptor, daemon.clone()));
        }
        tracing::info!(
            data_root = %cfg.data_root.display(),
            exec_root = %cfg.exec_root.display(),
            "hulld {} ready (API {})",
            env!("CARGO_PKG_VERSION"),
            hull_api::API_VERSION
        );
        let sig = wait_for_signal().await?;
        tracing::info!("{sig}: shutting down");
        anyhow::Ok(())
    });
    for path in &sockets {
        let _ = std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(&pid_file);
    // In-flight image operations are abandoned; the store is crash-safe.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == SHIM_ARG) {
        return ExitCode::from(hull_shim::main_args(args));
    }
    // Before any thread starts: one malloc arena and a fixed mmap threshold, so that
    // what image loads and container starts free goes back to the kernel (bench/README.md,
    // daemon-memory.sh: 2.4 MB of arenas after one load + run --rm, 0.5 MB with this).
    if !hull_sys::process::compact_heap(MMAP_THRESHOLD) {
        eprintln!(
            "hulld: mallopt refused M_ARENA_MAX/M_MMAP_THRESHOLD; continuing with glibc's defaults"
        );
    }
    let flags = config::Flags::parse();
    let cfg = match config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hulld: {e}");
            return ExitCode::FAILURE;
        }
    };
    init_logging(&cfg.log_level);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
