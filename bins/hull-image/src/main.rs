//! hull-image: hull's image store from the command line.
//!
//! Each group of subcommands lives in its own module: archives and names (`archive_cmd`),
//! registries (`registry_cmd`), layers and snapshots (`snapshot_cmd`).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

mod archive_cmd;
mod registry_cmd;
mod snapshot_cmd;

/// Unpacks a just-registered image's layers; a failure says that the image stays registered
/// and how to retry.
pub fn unpack_registered(
    ctx: &Ctx,
    rec: &hull_image::ImageRecord,
    on: &(dyn Fn(hull_image::layers::LayerEvent) + Sync),
) -> anyhow::Result<()> {
    let snap = hull_image::layers::open_snapshotter(&ctx.store, Default::default())?;
    hull_image::layers::unpack_image(&ctx.store, &snap, rec, on)
        .map(drop)
        .with_context(|| unpack_failed(&rec.id))
}

/// The context of an unpack error after a successful load or pull.
pub fn unpack_failed(id: &hull_image::Digest) -> String {
    format!(
        "image {} is stored and registered, but its layers could not be unpacked \
         (`hull-image unpack {}` retries)",
        id.short(),
        id.short()
    )
}

/// What every subcommand gets.
pub struct Ctx {
    pub store: hull_image::ImageStore,
}

#[derive(Parser, Debug)]
#[command(name = "hull-image", version, about = "hull's image store")]
struct Cli {
    /// Root of the image store.
    #[arg(long, global = true, default_value = "/var/lib/hull/image")]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    #[command(flatten)]
    Archive(archive_cmd::Cmd),
    #[command(flatten)]
    Registry(registry_cmd::Cmd),
    #[command(flatten)]
    Snapshot(snapshot_cmd::Cmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = hull_image::ImageStore::open(&cli.root)
        .map_err(anyhow::Error::from)
        .and_then(|store| {
            let ctx = Ctx { store };
            match cli.cmd {
                Cmd::Archive(c) => archive_cmd::run(c, &ctx),
                Cmd::Registry(c) => registry_cmd::run(c, &ctx),
                Cmd::Snapshot(c) => snapshot_cmd::run(c, &ctx),
            }
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain, leaving out causes an error's own text already includes.
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                let c = cause.to_string();
                if !msg.contains(&c) {
                    msg = format!("{msg}: {c}");
                }
            }
            eprintln!("hull-image: {msg}");
            ExitCode::FAILURE
        }
    }
}
