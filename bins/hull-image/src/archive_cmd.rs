//! Archives and names: load, save, import, images, inspect, history, tag, rmi, prune.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Context;
use clap::Subcommand;
use hull_image::archive::{self, ImportOptions, LoadOptions};
use hull_image::layers::{self, LayerEvent};
use hull_image::progress::{JsonLines, Message, Progress};
use hull_image::remove::DeleteItem;
use hull_image::Reference;

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Load images from a docker-save or OCI archive (stdin without -i).
    Load {
        #[arg(short, long)]
        input: Option<PathBuf>,
        /// Print Docker JSON progress messages instead of text.
        #[arg(long)]
        json: bool,
        #[arg(short, long)]
        quiet: bool,
        /// Only store the blobs; unpack the layers later (`unpack`, or a container's first run).
        #[arg(long)]
        no_unpack: bool,
    },
    /// Save images to an archive that `docker load` accepts (stdout without -o).
    Save {
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Import a rootfs tarball ("-" for stdin) as a one-layer image.
    Import {
        file: String,
        reference: Option<String>,
        /// Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME, STOPSIGNAL.
        #[arg(short, long = "change")]
        changes: Vec<String>,
        #[arg(short, long)]
        message: Option<String>,
        /// Only store the blob; unpack the layer later.
        #[arg(long)]
        no_unpack: bool,
    },
    /// List images.
    Images {
        #[arg(short, long)]
        quiet: bool,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Show images' Docker inspect data as JSON.
    Inspect {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Show an image's history.
    History {
        image: String,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Name SOURCE also TARGET.
    Tag { source: String, target: String },
    /// Remove images or names; blobs only they used go now, their snapshots at the next prune.
    Rmi {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove blobs no image uses, then snapshots no image and no container uses.
    Prune,
}

struct Text;

impl Progress for Text {
    fn emit(&self, m: Message) {
        if let Message::Stream { stream } = m {
            print!("{stream}");
        }
    }
}

fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{:.3}", v)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + units[i]
    }
}

fn age(created: Option<&str>) -> String {
    match created.and_then(hull_image::time::parse_rfc3339) {
        Some(t) => hull_image::time::human_age(hull_image::time::now_unix() - t),
        None => "N/A".into(),
    }
}

pub fn run(cmd: Cmd, ctx: &crate::Ctx) -> anyhow::Result<()> {
    let store = &ctx.store;
    match cmd {
        Cmd::Load {
            input,
            json,
            quiet,
            no_unpack,
        } => {
            let mut opts = LoadOptions::default();
            if !no_unpack {
                // Unpack while loading (the bytes are read once); what is left is done below.
                let snap = hull_image::layers::open_snapshotter(store, Default::default())?;
                opts.unpack = Some(std::sync::Arc::new(snap));
            }
            let jl = JsonLines(Mutex::new(io::stdout()));
            let quiet_sink = |_: Message| {};
            let progress: &dyn Progress = match (json, quiet) {
                (true, _) => &jl,
                (false, true) => &quiet_sink,
                _ => &Text,
            };
            let recs = match input {
                Some(p) => archive::load_file(store, &p, &opts, progress)
                    .with_context(|| format!("loading {}", p.display()))?,
                None => archive::load(store, io::stdin().lock(), &opts, progress)
                    .context("loading from stdin")?,
            };
            if !no_unpack {
                // docker load shows a layer's unpack as "Loading layer" progress.
                let on = |e: LayerEvent| {
                    if let LayerEvent::Extracting {
                        blob,
                        current,
                        total,
                    } = e
                    {
                        progress.emit(Message::status(
                            "Loading layer",
                            blob.short(),
                            current,
                            total,
                        ));
                    }
                };
                for r in &recs {
                    crate::unpack_registered(ctx, r, &on)?;
                }
            }
        }
        Cmd::Save { output, images } => {
            let names: Vec<&str> = images.iter().map(String::as_str).collect();
            match output {
                Some(p) => {
                    let tmp = p.with_extension("tmp-hull-save");
                    let f = File::create(&tmp)
                        .with_context(|| format!("creating {}", tmp.display()))?;
                    let res = archive::save(store, &names, BufWriter::new(f));
                    if res.is_err() {
                        let _ = std::fs::remove_file(&tmp);
                    }
                    res?;
                    std::fs::rename(&tmp, &p)
                        .with_context(|| format!("writing {}", p.display()))?;
                }
                None => {
                    anyhow::ensure!(
                        !io::IsTerminal::is_terminal(&io::stdout()),
                        "refusing to write an archive to a terminal; use -o FILE or redirect"
                    );
                    archive::save(store, &names, BufWriter::new(io::stdout().lock()))?;
                }
            }
        }
        Cmd::Import {
            file,
            reference,
            changes,
            message,
            no_unpack,
        } => {
            let name = reference.as_deref().map(Reference::parse).transpose()?;
            let opts = ImportOptions {
                changes,
                message,
                ..Default::default()
            };
            let quiet = |_: Message| {};
            let rec = if file == "-" {
                archive::import(store, io::stdin().lock(), "-", name.as_ref(), &opts, &quiet)?
            } else {
                let f = File::open(&file).with_context(|| format!("opening {file}"))?;
                archive::import(store, f, &file, name.as_ref(), &opts, &quiet)?
            };
            println!("{}", rec.id);
            if !no_unpack {
                crate::unpack_registered(ctx, &rec, &|_| {})?;
            }
        }
        Cmd::Images { quiet, no_trunc } => {
            let out = io::stdout();
            let mut w = out.lock();
            let id = |d: &hull_image::Digest| {
                if no_trunc {
                    d.to_string()
                } else {
                    d.short().to_string()
                }
            };
            if !quiet {
                writeln!(
                    w,
                    "{:<30} {:<15} {:<15} {:<24} SIZE",
                    "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
                )?;
            }
            for r in store.list()? {
                if quiet {
                    writeln!(w, "{}", id(&r.id))?;
                    continue;
                }
                let mut rows: Vec<(String, String)> = r
                    .repo_tags
                    .iter()
                    .filter_map(|t| Reference::parse(t).ok())
                    .map(|t| (t.familiar_repository(), t.tag.unwrap_or_default()))
                    .collect();
                if rows.is_empty() {
                    rows.push(("<none>".into(), "<none>".into()));
                }
                for (repo, tag) in rows {
                    writeln!(
                        w,
                        "{:<30} {:<15} {:<15} {:<24} {}",
                        repo,
                        tag,
                        id(&r.id),
                        age(r.created.as_deref()),
                        human_size(r.size)
                    )?;
                }
            }
        }
        Cmd::Inspect { images } => {
            let mut all = Vec::new();
            for i in &images {
                all.push(store.inspect(i)?);
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        Cmd::History { image, no_trunc } => {
            println!(
                "{:<15} {:<24} {:<45} {:<10} COMMENT",
                "IMAGE", "CREATED", "CREATED BY", "SIZE"
            );
            for h in store.history(&image)? {
                let id = if h.id.starts_with("sha256:") && !no_trunc {
                    h.id[7..19].to_string()
                } else {
                    h.id.clone()
                };
                let mut by = h.created_by.clone();
                if !no_trunc && by.chars().count() > 44 {
                    by = by.chars().take(43).collect::<String>() + "…";
                }
                let created = hull_image::time::human_age(hull_image::time::now_unix() - h.created);
                println!(
                    "{:<15} {:<24} {:<45} {:<10} {}",
                    id,
                    created,
                    by,
                    human_size(h.size),
                    h.comment
                );
            }
        }
        Cmd::Tag { source, target } => {
            store.tag(&source, &target)?;
        }
        Cmd::Rmi { force, images } => {
            // hull-image has no containers: nothing is in use.
            let mut failed = false;
            for i in &images {
                match store.remove(i, force, &|_| false) {
                    Ok(items) => {
                        for it in items {
                            match it {
                                DeleteItem::Untagged(n) => println!("Untagged: {n}"),
                                DeleteItem::Deleted(d) => println!("Deleted: {d}"),
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("hull-image: rmi {i}: {e}");
                        failed = true;
                    }
                }
            }
            anyhow::ensure!(!failed, "some images were not removed");
        }
        Cmd::Prune => {
            let snap = layers::open_snapshotter(store, Default::default())?;
            let r = hull_image::gc::gc_all(store, &snap)?;
            for (d, size) in &r.blobs.freed {
                println!("deleted: {d} ({})", human_size(*size));
            }
            for p in &r.blobs.stale_ingest {
                println!("deleted: {} (left by a dead process)", p.display());
            }
            for (c, size) in &r.snapshots {
                println!("deleted snapshot: {c} ({})", human_size(*size));
            }
            println!(
                "Freed {} blobs ({}) and {} snapshots ({})",
                r.blobs.freed.len(),
                human_size(r.blobs.freed_bytes),
                r.snapshots.len(),
                human_size(r.snapshot_bytes)
            );
            println!("Total reclaimed space: {}", human_size(r.freed_bytes()));
        }
    }
    Ok(())
}
