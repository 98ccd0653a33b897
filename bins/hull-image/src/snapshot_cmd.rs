//! Layers and snapshots: `unpack`, `mount`, `umount`, `snapshots`, `snapshot-rm`,
//! `snapshot-gc`.
//!
//! Layers are named either by an image in the store (`busybox`, an ID) or by blob digests,
//! each optionally with its diff ID: `sha256:BLOB[=sha256:DIFFID]` (without one, the diff ID
//! is computed from the blob).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use hull_image::snapshot::{mount_to, unmount, IdMap, IdmapMode, Layer, Snapshotter};
use hull_image::unpack::{self, DevicePolicy, UnpackOptions};
use hull_image::Digest;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Devices {
    Skip,
    Refuse,
    Create,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    Auto,
    Idmapped,
    Copy,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Unpack an image's layers (or the given layer blobs, bottom first) into snapshots.
    Unpack {
        /// An image name or ID, or layer blobs `sha256:BLOB[=sha256:DIFFID]`, bottom first.
        #[arg(required = true)]
        layers: Vec<String>,
        /// What to do with device nodes in layers.
        #[arg(long, value_enum, default_value = "skip")]
        devices: Devices,
    },
    /// Make a container rootfs from an image's layers and mount it on a directory.
    Mount {
        /// An image name or ID, or layer blobs `sha256:BLOB[=sha256:DIFFID]`, bottom first.
        #[arg(long, required = true, num_args = 1.., value_delimiter = ',')]
        layers: Vec<String>,
        /// Where to mount the rootfs (an existing directory).
        #[arg(long)]
        target: PathBuf,
        /// Container ID for the writable layer (default: cli-PID).
        #[arg(long)]
        id: Option<String>,
        /// Map container ids to host ids: CONTAINER:HOST:SIZE (uids and gids alike).
        #[arg(long)]
        idmap: Option<String>,
        /// With --idmap: id-mapped layers, owner-shifted copies, or whichever works here.
        #[arg(long, value_enum, default_value = "auto")]
        idmap_mode: Mode,
    },
    /// Unmount a rootfs made by `mount` and remove its writable layer.
    Umount {
        #[arg(long)]
        target: PathBuf,
        #[arg(long)]
        id: String,
    },
    /// List snapshots.
    Snapshots,
    /// Remove a snapshot (refused while a container or a child snapshot uses it).
    SnapshotRm { chain: String },
    /// Remove snapshots that no container and none of the given chains need.
    SnapshotGc {
        #[arg(long)]
        keep: Vec<String>,
    },
}

fn snapshotter(ctx: &crate::Ctx, devices: DevicePolicy) -> anyhow::Result<Snapshotter> {
    let opts = UnpackOptions {
        devices,
        ..Default::default()
    };
    Ok(hull_image::layers::open_snapshotter(&ctx.store, opts)?)
}

/// Layers from an image name, or from `BLOB[=DIFFID]` arguments.
fn layers(ctx: &crate::Ctx, args: &[String]) -> anyhow::Result<Vec<Layer>> {
    if args.len() == 1 && !args[0].starts_with("sha256:") {
        let image = ctx.store.resolve(&args[0])?;
        return Ok(image
            .layers
            .into_iter()
            .zip(image.diff_ids)
            .map(|(blob, diff_id)| Layer { blob, diff_id })
            .collect());
    }
    args.iter()
        .map(|a| {
            let (blob, diff) = match a.split_once('=') {
                Some((b, d)) => (b, Some(d)),
                None => (a.as_str(), None),
            };
            let blob: Digest = blob.parse().with_context(|| format!("layer {a:?}"))?;
            let diff_id = match diff {
                Some(d) => d.parse().with_context(|| format!("layer {a:?}"))?,
                None => {
                    unpack::diff_id(std::io::BufReader::new(ctx.store.content.open_blob(&blob)?))
                        .with_context(|| format!("computing the diff ID of {blob}"))?
                }
            };
            Ok(Layer { blob, diff_id })
        })
        .collect()
}

pub fn run(cmd: Cmd, ctx: &crate::Ctx) -> anyhow::Result<()> {
    match cmd {
        Cmd::Unpack {
            layers: args,
            devices,
        } => {
            let policy = match devices {
                Devices::Skip => DevicePolicy::Skip,
                Devices::Refuse => DevicePolicy::Refuse,
                Devices::Create => DevicePolicy::Create,
            };
            let s = snapshotter(ctx, policy)?;
            let layers = layers(ctx, &args)?;
            let start = Instant::now();
            // Shared with loads and pulls; a prune waits (and never takes the blobs read here).
            let gc = ctx.store.gc_lock(false)?;
            let chains = s.ensure(&layers)?;
            drop(gc);
            for c in &chains {
                let info = s.info(c)?;
                println!(
                    "{c}  {} entries, {} warnings, {} setuid",
                    info.report.entries,
                    info.report.warnings.len(),
                    info.report.setuid.len()
                );
            }
            eprintln!("unpacked in {:.1} ms", start.elapsed().as_secs_f64() * 1e3);
        }
        Cmd::Mount {
            layers: args,
            target,
            id,
            idmap,
            idmap_mode,
        } => {
            let s = snapshotter(ctx, DevicePolicy::Skip)?;
            let layers = layers(ctx, &args)?;
            let id = id.unwrap_or_else(|| format!("cli-{}", std::process::id()));
            let map: Option<IdMap> = idmap.as_deref().map(str::parse).transpose()?;
            let mode = match idmap_mode {
                Mode::Auto => IdmapMode::Auto,
                Mode::Idmapped => IdmapMode::Idmapped,
                Mode::Copy => IdmapMode::Copy,
            };
            let start = Instant::now();
            let gc = ctx.store.gc_lock(false)?;
            let mounts = s.prepare(&id, &layers, map, mode)?;
            drop(gc);
            let prepared = start.elapsed();
            for m in &mounts {
                if let Err(e) = mount_to(m, &target) {
                    let _ = s.remove_container_layer(&id);
                    return Err(e.into());
                }
            }
            let total = start.elapsed();
            println!("{}", serde_json::to_string(&mounts)?);
            eprintln!(
                "container {id}: rootfs at {} in {:.2} ms (prepare {:.2} ms, mount {:.2} ms)",
                target.display(),
                total.as_secs_f64() * 1e3,
                prepared.as_secs_f64() * 1e3,
                (total - prepared).as_secs_f64() * 1e3
            );
        }
        Cmd::Umount { target, id } => {
            let s = snapshotter(ctx, DevicePolicy::Skip)?;
            unmount(&target)?;
            s.remove_container_layer(&id)?;
        }
        Cmd::Snapshots => {
            let s = snapshotter(ctx, DevicePolicy::Skip)?;
            println!(
                "{:<71}  {:<19}  {:>10}  WARNINGS",
                "CHAIN ID", "PARENT", "SIZE"
            );
            for i in s.list()? {
                let parent = i
                    .parent
                    .as_ref()
                    .map_or("-".to_string(), |p| p.short().to_string());
                println!(
                    "{:<71}  {:<19}  {:>10}  {}",
                    i.chain_id.to_string(),
                    parent,
                    i.report.size,
                    i.report.warnings.len()
                );
            }
        }
        Cmd::SnapshotRm { chain } => {
            let s = snapshotter(ctx, DevicePolicy::Skip)?;
            s.remove(&chain.parse()?)?;
        }
        Cmd::SnapshotGc { keep } => {
            let s = snapshotter(ctx, DevicePolicy::Skip)?;
            let keep: Vec<Digest> = keep.iter().map(|k| k.parse()).collect::<Result<_, _>>()?;
            for c in s.gc(&keep)? {
                println!("removed {c}");
            }
        }
    }
    Ok(())
}
