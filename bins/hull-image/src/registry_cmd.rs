//! registry subcommands: `pull` and `push`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use hull_image::registry::{self, Platform, Progress, RegistryOptions};
use hull_image::{Digest, Reference};

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Pull an image from a registry into the store.
    Pull(PullArgs),
    /// Push an image from the store to a registry.
    Push(PushArgs),
}

#[derive(Args, Debug)]
pub struct Common {
    /// A registry (host[:port]) that may be reached over plain HTTP (loopback ones always
    /// may). Repeatable.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// Trust the PEM CA certificates in PATH for the registry HOST. Repeatable.
    #[arg(long = "ca-file", value_name = "HOST=PATH")]
    ca_files: Vec<String>,
    /// Directory holding the Docker config.json with credentials (default: $DOCKER_CONFIG,
    /// else ~/.docker).
    #[arg(long = "config", value_name = "DIR")]
    config: Option<PathBuf>,
    /// Blobs transferred at once.
    #[arg(long, default_value_t = 3)]
    parallel: usize,
    /// Print Docker's JSON progress messages, one a line.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    #[command(flatten)]
    common: Common,
    /// The platform to select from a multi-platform image (default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<Platform>,
    /// Only download the blobs; unpack the layers later (`unpack`, or a container's first run).
    #[arg(long)]
    no_unpack: bool,
    /// Image reference, e.g. busybox, localhost:5000/app:1, repo@sha256:...
    reference: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    common: Common,
    /// Push this manifest (or index) from the content store instead of the image named REF.
    #[arg(long, value_name = "sha256:...")]
    manifest: Option<Digest>,
    /// Repositories of the same registry to mount the blobs from ("team/base"). Repeatable.
    #[arg(long = "mount-from", value_name = "REPO")]
    mount_from: Vec<String>,
    /// Target reference, e.g. localhost:5000/app:1.
    reference: String,
}

pub fn run(cmd: Cmd, ctx: &crate::Ctx) -> anyhow::Result<()> {
    match cmd {
        Cmd::Pull(a) => pull(a, ctx),
        Cmd::Push(a) => push(a, ctx),
    }
}

fn options(c: &Common) -> anyhow::Result<RegistryOptions> {
    let mut ca_files = Vec::new();
    for s in &c.ca_files {
        let (host, path) = s
            .split_once('=')
            .with_context(|| format!("--ca-file {s:?}: expected HOST=PATH"))?;
        ca_files.push((host.to_string(), PathBuf::from(path)));
    }
    Ok(RegistryOptions {
        insecure: c.insecure.clone(),
        ca_files,
        docker_config: c.config.clone(),
        parallel: c.parallel.max(1),
        ..RegistryOptions::default()
    })
}

/// Prints progress as `docker pull` does without a terminal (or as JSON lines).
fn printer(json: bool) -> impl Fn(&Progress) + Sync {
    move |p: &Progress| {
        let mut out = std::io::stdout().lock();
        if json {
            let _ = writeln!(out, "{}", serde_json::to_string(p).unwrap_or_default());
        } else if p.progress_detail.is_none() {
            let _ = match &p.id {
                Some(id) => writeln!(out, "{id}: {}", p.status),
                None => writeln!(out, "{}", p.status),
            };
        }
    }
}

fn pull(a: PullArgs, ctx: &crate::Ctx) -> anyhow::Result<()> {
    let reference = Reference::parse(&a.reference)?;
    let opts = options(&a.common)?;
    let platform = a.platform.unwrap_or_else(Platform::host);
    let snap = if a.no_unpack {
        None
    } else {
        Some(hull_image::layers::open_snapshotter(
            &ctx.store,
            Default::default(),
        )?)
    };
    let out = registry::pull_image(
        &ctx.store,
        snap.as_ref(),
        &reference,
        &platform,
        &opts,
        &printer(a.common.json),
    )?;
    if let Some(Err(e)) = out.unpack {
        return Err(e).context(crate::unpack_failed(&out.record.id));
    }
    if !a.common.json {
        println!("{}", reference.familiar());
    }
    Ok(())
}

fn push(a: PushArgs, ctx: &crate::Ctx) -> anyhow::Result<()> {
    let target = Reference::parse(&a.reference)?;
    let opts = options(&a.common)?;
    let mut mount_from = a.mount_from.clone();
    let manifest = match a.manifest {
        Some(d) => d,
        None => {
            let record = ctx.store.resolve(&a.reference)?;
            // Same-registry names this image already has are mount candidates.
            for name in record.repo_digests.iter().chain(&record.repo_tags) {
                if let Ok(r) = Reference::parse(name) {
                    if r.domain == target.domain && !mount_from.contains(&r.path) {
                        mount_from.push(r.path);
                    }
                }
            }
            record.manifest
        }
    };
    let pushed = registry::push(
        &ctx.store.content,
        &manifest,
        &target,
        &mount_from,
        &opts,
        &printer(a.common.json),
    )?;
    if !a.common.json {
        eprintln!(
            "hull-image: {} blobs uploaded, {} mounted, {} already there",
            pushed.uploaded, pushed.mounted, pushed.existing
        );
    }
    Ok(())
}
