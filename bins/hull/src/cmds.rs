//! The commands.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::{json, Value};

use crate::client::{json_lines, q, ApiError, Client};
use crate::fmt::{self, table};
use crate::more;
use crate::opts::{create_body, ContainerOpts};
use crate::progress::Progress;
use crate::stream::{self, RawMode};
use crate::Exit;

#[derive(Subcommand)]
pub enum Cmd {
    /// Create and run a new container from an image.
    Run(ContainerOpts),
    /// Create a new container.
    Create(ContainerOpts),
    /// Start stopped containers.
    Start {
        /// Attach STDOUT/STDERR and forward signals.
        #[arg(short = 'a', long)]
        attach: bool,
        /// Attach the container's STDIN.
        #[arg(short = 'i', long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// List containers.
    Ps(PsArgs),
    /// Fetch the logs of a container.
    Logs {
        #[arg(short = 'f', long)]
        follow: bool,
        /// Number of lines from the end (or "all").
        #[arg(short = 'n', long, default_value = "all")]
        tail: String,
        /// Logs since a UNIX time or a relative time (10m, 2h).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(short = 't', long)]
        timestamps: bool,
        container: String,
    },
    /// Run a command in a running container.
    Exec(ExecArgs),
    /// Stop running containers.
    Stop {
        /// Seconds to wait before killing.
        #[arg(short = 't', long = "time")]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill running containers.
    Kill {
        #[arg(short = 's', long = "signal")]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove containers.
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        /// Remove anonymous volumes too.
        #[arg(short = 'v', long)]
        volumes: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart containers.
    Restart {
        #[arg(short = 't', long = "time")]
        time: Option<i64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within containers.
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within containers.
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Block until containers stop, then print their exit codes.
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Display the running processes of a container.
    Top {
        container: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// The host addresses of a container's published ports.
    Port {
        container: String,
        /// PRIVATE_PORT[/PROTO]
        private: Option<String>,
    },
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Changes to a container's filesystem (A added, C changed, D deleted).
    Diff { container: String },
    /// Create an image from a container's changes.
    Commit {
        #[arg(short = 'm', long)]
        message: Option<String>,
        #[arg(short = 'a', long)]
        author: Option<String>,
        /// Dockerfile instructions for the image's config (CMD, ENV, LABEL, ...).
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        /// Pause the container while committing (default true).
        #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
        pause: bool,
        container: String,
        reference: Option<String>,
    },
    /// Copy files between a container and the local filesystem.
    Cp {
        /// Keep the files' uid/gid from the archive (copy in).
        #[arg(short = 'a', long)]
        archive: bool,
        /// CONTAINER:SRC_PATH, or a local path (- for a tar on stdin).
        src: String,
        /// CONTAINER:DEST_PATH, or a local path (- for a tar on stdout).
        dst: String,
    },
    /// A container's filesystem as a tar archive.
    Export {
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        container: String,
    },
    /// An image from a filesystem tarball (FILE or - for stdin).
    Import {
        #[arg(short = 'm', long)]
        message: Option<String>,
        #[arg(short = 'c', long = "change")]
        change: Vec<String>,
        file: String,
        reference: Option<String>,
    },
    /// Low-level information on containers, images, volumes or networks (JSON).
    Inspect {
        #[arg(short = 'f', long)]
        format: Option<String>,
        /// container, image, volume or network.
        #[arg(long = "type")]
        kind: Option<String>,
        #[arg(short = 's', long)]
        size: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// List images.
    Images(ImagesArgs),
    /// Download an image from a registry.
    Pull {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(short = 'a', long = "all-tags")]
        all_tags: bool,
        #[arg(long)]
        platform: Option<String>,
        name: String,
    },
    /// Upload an image to a registry.
    Push {
        #[arg(short = 'q', long)]
        quiet: bool,
        name: String,
    },
    /// Load an image from a tar archive (a file or STDIN).
    Load {
        #[arg(short = 'i', long)]
        input: Option<PathBuf>,
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Save images to a tar archive (a file or STDOUT).
    Save {
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Remove images.
    Rmi {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(long = "no-prune")]
        no_prune: bool,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Resource usage of containers.
    Stats {
        #[arg(short = 'a', long)]
        all: bool,
        #[arg(long = "no-stream")]
        no_stream: bool,
        #[arg(long = "no-trunc")]
        no_trunc: bool,
        /// A Go-like template over .Container .ID .Name .CPUPerc .MemUsage .MemPerc .NetIO
        /// .BlockIO .PIDs, one line per container.
        #[arg(long)]
        format: Option<String>,
        containers: Vec<String>,
    },
    /// The daemon's events.
    Events {
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        format: Option<String>,
    },
    /// Manage volumes.
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage hull.
    #[command(subcommand)]
    System(SystemCmd),
    /// System-wide information.
    Info {
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    /// Client and server versions.
    Version {
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
}

#[derive(Args)]
pub struct PsArgs {
    #[arg(short = 'a', long)]
    all: bool,
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    #[arg(long)]
    format: Option<String>,
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// The latest container only.
    #[arg(short = 'l', long)]
    latest: bool,
    #[arg(short = 'n', long)]
    last: Option<i64>,
    #[arg(short = 's', long)]
    size: bool,
}

#[derive(Args)]
pub struct ImagesArgs {
    #[arg(short = 'a', long)]
    all: bool,
    #[arg(short = 'q', long)]
    quiet: bool,
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    #[arg(long)]
    format: Option<String>,
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    #[arg(long)]
    digests: bool,
    reference: Option<String>,
}

#[derive(Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[arg(short = 'd', long)]
    detach: bool,
    #[arg(short = 'i', long)]
    interactive: bool,
    #[arg(short = 't', long)]
    tty: bool,
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    #[arg(short = 'u', long)]
    user: Option<String>,
    #[arg(short = 'w', long = "workdir")]
    workdir: Option<String>,
    #[arg(long)]
    privileged: bool,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
pub enum VolumeCmd {
    Create {
        #[arg(short = 'd', long, default_value = "local")]
        driver: String,
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        #[arg(long = "label")]
        label: Vec<String>,
        name: Option<String>,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        #[arg(long)]
        format: Option<String>,
    },
    Inspect {
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(short = 'a', long)]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum NetworkCmd {
    Create {
        #[arg(short = 'd', long, default_value = "bridge")]
        driver: String,
        #[arg(long)]
        subnet: Vec<String>,
        #[arg(long)]
        gateway: Vec<String>,
        #[arg(long)]
        internal: bool,
        #[arg(long = "label")]
        label: Vec<String>,
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        name: String,
    },
    #[command(alias = "list")]
    Ls {
        #[arg(short = 'q', long)]
        quiet: bool,
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        #[arg(long)]
        format: Option<String>,
        #[arg(long = "no-trunc")]
        no_trunc: bool,
    },
    Inspect {
        #[arg(short = 'f', long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Connect {
        #[arg(long)]
        alias: Vec<String>,
        #[arg(long)]
        ip: Option<String>,
        network: String,
        container: String,
    },
    Disconnect {
        #[arg(short = 'f', long)]
        force: bool,
        network: String,
        container: String,
    },
    Prune {
        #[arg(short = 'f', long)]
        force: bool,
    },
}

#[derive(Subcommand)]
pub enum SystemCmd {
    /// Disk usage of images, containers, volumes and build cache.
    Df,
    Info {
        #[arg(short = 'f', long)]
        format: Option<String>,
    },
    Events {
        #[arg(short = 'f', long = "filter")]
        filter: Vec<String>,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        format: Option<String>,
    },
}

/// `--filter k=v` (repeatable) as the API's `filters` query value.
fn filters(items: &[String]) -> anyhow::Result<String> {
    let mut m = serde_json::Map::new();
    for f in items {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("--filter {f:?}: expected KEY=VALUE"))?;
        m.entry(k.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(v.to_string(), Value::Bool(true));
    }
    Ok(q(&Value::Object(m).to_string()))
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// A relative ("10m") or absolute time for `since`/`until` as UNIX seconds.
fn time_arg(s: &str) -> anyhow::Result<String> {
    if s.parse::<f64>().is_ok() {
        return Ok(s.to_string());
    }
    if let Some(t) = fmt::parse_rfc3339(s) {
        return Ok(t.to_string());
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().map_err(|_| {
        anyhow!("{s:?}: expected a UNIX time, RFC 3339 time or a duration (10m, 2h)")
    })?;
    let mult = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "ms" => 0.001,
        _ => bail!("{s:?}: unknown duration unit {unit:?}"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    Ok(format!("{:.9}", (now - n * mult).max(0.0)))
}

fn is_api(e: &anyhow::Error, status: u16) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.status.as_u16() == status)
}

/// Runs `f` over each name, printing the name on success and the error on failure (docker's
/// way for stop, rm, kill, ...): exit 1 if any failed.
async fn each<F, Fut>(names: &[String], mut f: F) -> anyhow::Result<u8>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<String>>>,
{
    let mut failed = false;
    for n in names {
        match f(n.clone()).await {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => {}
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `POST /containers/{name}/{action}` for each name (`action` with its query), printing
/// each name done, as docker's stop/kill/pause/... do.
async fn post_each(c: &Client, names: &[String], action: &str) -> anyhow::Result<u8> {
    each(names, |n| async move {
        c.post(&format!("/containers/{}/{action}", q(&n)), None)
            .await?;
        Ok(Some(n))
    })
    .await
}

fn print_json_array(items: &[Value]) {
    let mut out = Vec::new();
    let f = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, f);
    let _ = serde::Serialize::serialize(&Value::Array(items.to_vec()), &mut ser);
    println!("{}", String::from_utf8_lossy(&out));
}

fn print_formatted(items: &[Value], format: &Option<String>) {
    match format {
        Some(f) => {
            for v in items {
                println!("{}", fmt::template(f, &[], v));
            }
        }
        None => print_json_array(items),
    }
}

/// `volume inspect` / `network inspect`: each `/<collection>/<name>`, printed together as
/// docker does (one JSON array, or `--format` per object); exit 1 if any failed.
async fn inspect_each(
    c: &Client,
    collection: &str,
    names: &[String],
    format: &Option<String>,
) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in names {
        match c.get(&format!("/{collection}/{}", q(n))).await {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("{e:#}");
                failed = true;
            }
        }
    }
    print_formatted(&out, format);
    Ok(if failed { 1 } else { 0 })
}

pub async fn run(c: &Client, cmd: Cmd) -> anyhow::Result<u8> {
    match cmd {
        Cmd::Run(o) => run_container(c, o).await,
        Cmd::Create(o) => {
            let id = create(c, &o).await?;
            println!("{id}");
            Ok(0)
        }
        Cmd::Start {
            attach,
            interactive,
            containers,
        } => start(c, attach, interactive, containers).await,
        Cmd::Ps(a) => ps(c, a).await,
        Cmd::Logs {
            follow,
            tail,
            since,
            until,
            timestamps,
            container,
        } => {
            let info = c
                .get(&format!("/containers/{}/json", q(&container)))
                .await?;
            let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
            let mut path = format!(
                "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}&tail={}",
                q(&container),
                flag(follow),
                flag(timestamps),
                q(&tail)
            );
            if let Some(s) = since {
                path.push_str(&format!("&since={}", time_arg(&s)?));
            }
            if let Some(u) = until {
                path.push_str(&format!("&until={}", time_arg(&u)?));
            }
            let resp = c.call(Method::GET, &path, None).await?;
            let body = http_body_util::BodyStream::new(resp.into_body());
            let rd = tokio_util_reader(body);
            if tty {
                stream::raw_out(rd).await?;
            } else {
                stream::demux(rd).await?;
            }
            Ok(0)
        }
        Cmd::Exec(a) => exec(c, a).await,
        Cmd::Stop { time, containers } => {
            let t = time.map(|t| format!("?t={t}")).unwrap_or_default();
            post_each(c, &containers, &format!("stop{t}")).await
        }
        Cmd::Restart { time, containers } => {
            let t = time.map(|t| format!("?t={t}")).unwrap_or_default();
            post_each(c, &containers, &format!("restart{t}")).await
        }
        Cmd::Kill { signal, containers } => {
            let s = signal
                .map(|s| format!("?signal={}", q(&s)))
                .unwrap_or_default();
            post_each(c, &containers, &format!("kill{s}")).await
        }
        Cmd::Rm {
            force,
            volumes,
            containers,
        } => {
            each(&containers, |n| async move {
                c.delete(&format!(
                    "/containers/{}?force={}&v={}",
                    q(&n),
                    flag(force),
                    flag(volumes)
                ))
                .await?;
                Ok(Some(n))
            })
            .await
        }
        Cmd::Pause { containers } => post_each(c, &containers, "pause").await,
        Cmd::Unpause { containers } => post_each(c, &containers, "unpause").await,
        Cmd::Wait { containers } => {
            each(&containers, |n| async move {
                let v = c.post(&format!("/containers/{}/wait", q(&n)), None).await?;
                Ok(Some(v["StatusCode"].as_i64().unwrap_or(-1).to_string()))
            })
            .await
        }
        Cmd::Top { container, ps_args } => {
            let mut path = format!("/containers/{}/top", q(&container));
            if !ps_args.is_empty() {
                path.push_str(&format!("?ps_args={}", q(&ps_args.join(" "))));
            }
            let v = c.get(&path).await?;
            let mut rows = vec![strings(&v["Titles"])];
            for p in v["Processes"].as_array().into_iter().flatten() {
                rows.push(strings(p));
            }
            print!("{}", table(&rows));
            Ok(0)
        }
        Cmd::Inspect {
            format,
            kind,
            size,
            names,
        } => inspect(c, format, kind, size, names).await,
        Cmd::Images(a) => images(c, a).await,
        Cmd::Pull {
            quiet,
            all_tags,
            platform,
            name,
        } => {
            if all_tags {
                bail!("pull --all-tags is not supported by hull");
            }
            pull(c, &name, quiet, platform.as_deref()).await?;
            Ok(0)
        }
        Cmd::Push { quiet, name } => {
            let (repo, tag) = split_ref(&name);
            let mut path = format!("/images/{}/push", q(&repo));
            if let Some(t) = tag {
                path.push_str(&format!("?tag={}", q(&t)));
            } else {
                println!("Using default tag: latest");
                path.push_str("?tag=latest");
            }
            let auth = [("X-Registry-Auth", crate::auth::header_for(&name))];
            let resp = c.call_with(Method::POST, &path, None, &auth).await?;
            let mut p = Progress::new(quiet);
            json_lines(resp, |v| p.show(&v).map(|_| true)).await?;
            p.finish();
            Ok(0)
        }
        Cmd::Load { input, quiet } => {
            let data = match &input {
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                None => {
                    if stream::stdin_is_tty() {
                        bail!(
                            "requested load from stdin, but stdin is empty (use -i FILE or a pipe)"
                        );
                    }
                    let mut v = Vec::new();
                    std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)?;
                    v
                }
            };
            let quiet = quiet || !stream::stdout_is_tty();
            let resp = c
                .call(
                    Method::POST,
                    &format!("/images/load?quiet={}", flag(quiet)),
                    Some((Bytes::from(data), "application/x-tar")),
                )
                .await?;
            let mut p = Progress::new(quiet);
            json_lines(resp, |v| p.show(&v).map(|_| true)).await?;
            p.finish();
            Ok(0)
        }
        Cmd::Save { output, images } => {
            if output.is_none() && stream::stdout_is_tty() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let names: Vec<String> = images.iter().map(|i| format!("names={}", q(i))).collect();
            let resp = c
                .call(
                    Method::GET,
                    &format!("/images/get?{}", names.join("&")),
                    None,
                )
                .await?;
            let mut body = resp.into_body();
            let mut out: Box<dyn std::io::Write> = match &output {
                Some(p) => Box::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                ),
                None => Box::new(std::io::stdout().lock()),
            };
            while let Some(f) = body.frame().await {
                if let Some(d) = f?.data_ref() {
                    out.write_all(d)?;
                }
            }
            out.flush()?;
            Ok(0)
        }
        Cmd::Tag { source, target } => {
            let (repo, tag) = split_ref(&target);
            c.post(
                &format!(
                    "/images/{}/tag?repo={}&tag={}",
                    q(&source),
                    q(&repo),
                    q(tag.as_deref().unwrap_or("latest"))
                ),
                None,
            )
            .await?;
            Ok(0)
        }
        Cmd::Rmi {
            force,
            no_prune,
            images,
        } => {
            each(&images, |n| async move {
                let v = c
                    .delete(&format!(
                        "/images/{}?force={}&noprune={}",
                        q(&n),
                        flag(force),
                        flag(no_prune)
                    ))
                    .await?;
                let mut lines = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    if let Some(u) = item["Untagged"].as_str() {
                        lines.push(format!("Untagged: {u}"));
                    }
                    if let Some(d) = item["Deleted"].as_str() {
                        lines.push(format!("Deleted: {d}"));
                    }
                }
                Ok((!lines.is_empty()).then(|| lines.join("\n")))
            })
            .await
        }
        Cmd::Stats {
            all,
            no_stream,
            no_trunc,
            containers,
            format,
        } => stats(c, all, no_stream, no_trunc, format, containers).await,
        Cmd::Events {
            filter,
            since,
            until,
            format,
        }
        | Cmd::System(SystemCmd::Events {
            filter,
            since,
            until,
            format,
        }) => events(c, filter, since, until, format).await,
        Cmd::Volume(v) => volume(c, v).await,
        Cmd::Network(n) => network(c, n).await,
        Cmd::Info { format } | Cmd::System(SystemCmd::Info { format }) => info(c, format).await,
        Cmd::Version { format } => version(c, format).await,
        Cmd::System(SystemCmd::Df) => more::df(c).await,
        Cmd::Port { container, private } => more::port(c, &container, private.as_deref()).await,
        Cmd::Rename {
            container,
            new_name,
        } => more::rename(c, &container, &new_name).await,
        Cmd::Diff { container } => more::diff(c, &container).await,
        Cmd::Commit {
            message,
            author,
            change,
            pause,
            container,
            reference,
        } => {
            more::commit(
                c,
                more::CommitArgs {
                    container: &container,
                    reference: reference.as_deref(),
                    message: message.as_deref(),
                    author: author.as_deref(),
                    changes: &change,
                    pause,
                },
            )
            .await
        }
        Cmd::Cp { archive, src, dst } => crate::cp::cp(c, &src, &dst, archive).await,
        Cmd::Export { output, container } => more::export(c, &container, output.as_ref()).await,
        Cmd::Import {
            message,
            change,
            file,
            reference,
        } => more::import(c, &file, reference.as_deref(), message.as_deref(), &change).await,
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            s.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s.to_string())
        })
        .collect()
}

/// An AsyncRead over a body's data frames.
fn tokio_util_reader(
    body: http_body_util::BodyStream<hyper::body::Incoming>,
) -> impl tokio::io::AsyncRead + Unpin {
    BodyReader {
        body,
        buf: Bytes::new(),
    }
}

struct BodyReader {
    body: http_body_util::BodyStream<hyper::body::Incoming>,
    buf: Bytes,
}

impl tokio::io::AsyncRead for BodyReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if !self.buf.is_empty() {
                let n = self.buf.len().min(out.remaining());
                let chunk = self.buf.split_to(n);
                out.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            let next = {
                let body = std::pin::Pin::new(&mut self.body);
                futures_poll_next(body, cx)
            };
            match next {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(d) = frame.into_data() {
                        self.buf = d;
                    }
                }
            }
        }
    }
}

fn futures_poll_next(
    body: std::pin::Pin<&mut http_body_util::BodyStream<hyper::body::Incoming>>,
    cx: &mut std::task::Context<'_>,
) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, hyper::Error>>> {
    // BodyStream is a Stream; poll it through http_body's poll_frame on the inner body.
    use hyper::body::Body as _;
    let inner = body.get_mut();
    std::pin::Pin::new(inner).poll_frame(cx)
}

/// Splits "repo[:tag]" (a ':' after the last '/') and "repo@digest".
fn split_ref(r: &str) -> (String, Option<String>) {
    if let Some((repo, digest)) = r.split_once('@') {
        return (repo.to_string(), Some(digest.to_string()));
    }
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    match r[slash..].rfind(':') {
        Some(i) => (
            r[..slash + i].to_string(),
            Some(r[slash + i + 1..].to_string()),
        ),
        None => (r.to_string(), None),
    }
}

async fn pull(c: &Client, name: &str, quiet: bool, platform: Option<&str>) -> anyhow::Result<()> {
    let (repo, tag) = split_ref(name);
    let tag = match tag {
        Some(t) => t,
        None => {
            if !quiet {
                println!("Using default tag: latest");
            }
            "latest".into()
        }
    };
    let mut path = format!("/images/create?fromImage={}&tag={}", q(&repo), q(&tag));
    if let Some(p) = platform {
        path.push_str(&format!("&platform={}", q(p)));
    }
    let auth = [("X-Registry-Auth", crate::auth::header_for(name))];
    let resp = c.call_with(Method::POST, &path, None, &auth).await?;
    let mut p = Progress::new(quiet);
    json_lines(resp, |v| p.show(&v).map(|_| true)).await?;
    p.finish();
    let full = if repo.contains('/') {
        repo.clone()
    } else {
        format!("docker.io/library/{repo}")
    };
    let sep = if tag.starts_with("sha256:") { "@" } else { ":" };
    println!("{full}{sep}{tag}");
    Ok(())
}

/// Creates the container (pulling a missing image as docker does); daemon errors are exit
/// 125.
async fn create(c: &Client, o: &ContainerOpts) -> anyhow::Result<String> {
    let (image, body) = create_body(o).map_err(|e| {
        eprintln!("hull: {e:#}");
        Exit(125)
    })?;
    let mut path = "/containers/create".to_string();
    if let Some(n) = &o.name {
        path.push_str(&format!("?name={}", q(n)));
    }
    if o.pull == "always" {
        pull_for_run(c, &image, o.quiet).await?;
    }
    let v = match c.post(&path, Some(body.clone())).await {
        Ok(v) => v,
        Err(e) if is_api(&e, 404) && o.pull != "never" && e.to_string().contains("image") => {
            eprintln!("Unable to find image '{image}' locally");
            pull_for_run(c, &image, o.quiet).await?;
            c.post(&path, Some(body)).await.map_err(|e| exit125(&e))?
        }
        Err(e) => return Err(exit125(&e)),
    };
    for w in v["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    v["Id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the daemon returned no container ID"))
}

async fn pull_for_run(c: &Client, image: &str, quiet: bool) -> anyhow::Result<()> {
    // docker writes the run-time pull's progress to stderr; keep stdout for the container.
    let (repo, tag) = split_ref(image);
    let path = format!(
        "/images/create?fromImage={}&tag={}",
        q(&repo),
        q(tag.as_deref().unwrap_or("latest"))
    );
    let auth = [("X-Registry-Auth", crate::auth::header_for(image))];
    let resp = c
        .call_with(Method::POST, &path, None, &auth)
        .await
        .map_err(|e| exit125(&e))?;
    let r = json_lines(resp, |v| {
        if let Some(e) = v["error"].as_str() {
            return Err(anyhow!("{e}"));
        }
        if !quiet {
            if let Some(s) = v["status"].as_str() {
                if v["progressDetail"]["current"].is_null() {
                    match v["id"].as_str() {
                        Some(id) => eprintln!("{id}: {s}"),
                        None => eprintln!("{s}"),
                    }
                }
            }
        }
        Ok(true)
    })
    .await;
    r.map_err(|e| exit125(&e))
}

fn exit125(e: &anyhow::Error) -> anyhow::Error {
    eprintln!("hull: {e:#}");
    Exit(125).into()
}

/// docker's exit code for a failed start: 126 when the command cannot be run, 127 when it
/// does not exist, else 125.
fn start_error_code(msg: &str) -> u8 {
    let m = msg.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not found")
    {
        127
    } else if m.contains("permission denied") || m.contains("not executable") {
        126
    } else {
        125
    }
}

async fn start_container(c: &Client, id: &str) -> anyhow::Result<()> {
    match c.post(&format!("/containers/{id}/start"), None).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let code = start_error_code(&e.to_string());
            eprintln!("hull: {e:#}");
            Err(Exit(code).into())
        }
    }
}

/// Starts `POST /containers/ID/wait?condition=...` and returns its exit code later.
fn spawn_wait(
    c: &Client,
    id: &str,
    condition: &str,
) -> tokio::task::JoinHandle<anyhow::Result<i64>> {
    let c = c.clone();
    let path = format!("/containers/{id}/wait?condition={condition}");
    tokio::spawn(async move {
        let v = c.post(&path, None).await?;
        if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
            bail!("waiting for the container: {m}");
        }
        Ok(v["StatusCode"].as_i64().unwrap_or(-1))
    })
}

/// `HULL_TRACE=1`: the time since the CLI started at each step of `run` (stderr), to see
/// where a `run` spends its time.
fn trace(step: &str) {
    use std::sync::OnceLock;
    static START: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    let start =
        START.get_or_init(|| std::env::var_os("HULL_TRACE").map(|_| std::time::Instant::now()));
    if let Some(t) = start {
        eprintln!(
            "[hull {:>8.2} ms] {step}",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
}

async fn run_container(c: &Client, o: ContainerOpts) -> anyhow::Result<u8> {
    trace("run");
    if o.detach && o.rm && o.restart.as_deref().is_some_and(|r| r != "no") {
        eprintln!("hull: conflicting options: --restart and --rm");
        return Ok(125);
    }
    let id = create(c, &o).await?;
    trace("created");
    if o.detach {
        start_container(c, &id).await?;
        println!("{id}");
        return Ok(0);
    }
    let stdin = o.interactive;
    let io = c
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
                flag(stdin)
            ),
            None,
        )
        .await
        .map_err(|e| exit125(&e))?;
    trace("attached");
    let waiter = spawn_wait(c, &id, if o.rm { "removed" } else { "next-exit" });
    let _raw = (o.tty && stdin && stream::stdin_is_tty())
        .then(RawMode::enter)
        .flatten();
    if let Err(e) = start_container(c, &id).await {
        if o.rm {
            // Docker's daemon removes an --rm container whose start failed; make sure.
            let _ = c.delete(&format!("/containers/{id}?force=1&v=1")).await;
        }
        return Err(e);
    }
    trace("started");
    if o.tty && stream::stdout_is_tty() {
        stream::follow_resize(c, format!("/containers/{id}"));
    }
    if !o.tty {
        proxy_signals(c, &id);
    }
    stream::pump(io, o.tty, stdin).await?;
    trace("output ended");
    let code = waiter.await?.map_err(|e| exit125(&e))?;
    trace("wait returned");
    Ok(code.clamp(0, 255) as u8)
}

/// docker's --sig-proxy: SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1/2 sent to the CLI go to
/// the container (without a TTY; with one, the terminal sends ^C itself).
fn proxy_signals(c: &Client, id: &str) {
    use tokio::signal::unix::{signal, SignalKind};
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ] {
        let Ok(mut sig) = signal(kind) else { continue };
        let c = c.clone();
        let path = format!("/containers/{id}/kill?signal={name}");
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                let _ = c.post(&path, None).await;
            }
        });
    }
}

async fn start(
    c: &Client,
    attach: bool,
    interactive: bool,
    containers: Vec<String>,
) -> anyhow::Result<u8> {
    if !attach && !interactive {
        return post_each(c, &containers, "start").await;
    }
    if containers.len() != 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let info = c
        .get(&format!("/containers/{}/json", q(&containers[0])))
        .await?;
    let id = info["Id"].as_str().unwrap_or_default().to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let io = c
        .hijack(
            &format!(
                "/containers/{id}/attach?stream=1&stdout=1&stderr=1&stdin={}",
                flag(interactive)
            ),
            None,
        )
        .await?;
    let waiter = spawn_wait(c, &id, "next-exit");
    let _raw = (tty && interactive && stream::stdin_is_tty())
        .then(RawMode::enter)
        .flatten();
    start_container(c, &id).await?;
    stream::pump(io, tty, interactive).await?;
    Ok(waiter.await??.clamp(0, 255) as u8)
}

async fn exec(c: &Client, a: ExecArgs) -> anyhow::Result<u8> {
    let container = &a.args[0];
    let body = json!({
        "AttachStdin": a.interactive && !a.detach,
        "AttachStdout": !a.detach,
        "AttachStderr": !a.detach,
        "Tty": a.tty,
        "Env": a.env,
        "Cmd": a.args[1..],
        "Privileged": a.privileged,
        "User": a.user.clone().unwrap_or_default(),
        "WorkingDir": a.workdir.clone().unwrap_or_default(),
    });
    let v = c
        .post(&format!("/containers/{}/exec", q(container)), Some(body))
        .await?;
    let id = v["Id"]
        .as_str()
        .ok_or_else(|| anyhow!("the daemon returned no exec ID"))?
        .to_string();
    if a.detach {
        c.post(
            &format!("/exec/{id}/start"),
            Some(json!({"Detach": true, "Tty": a.tty})),
        )
        .await?;
        return Ok(0);
    }
    let io = c
        .hijack(
            &format!("/exec/{id}/start"),
            Some(json!({"Detach": false, "Tty": a.tty})),
        )
        .await?;
    let _raw = (a.tty && a.interactive && stream::stdin_is_tty())
        .then(RawMode::enter)
        .flatten();
    if a.tty && stream::stdout_is_tty() {
        stream::follow_resize(c, format!("/exec/{id}"));
    }
    stream::pump(io, a.tty, a.interactive).await?;
    drop(_raw);
    let info = c.get(&format!("/exec/{id}/json")).await?;
    Ok(info["ExitCode"].as_i64().unwrap_or(126).clamp(0, 255) as u8)
}

async fn ps(c: &Client, a: PsArgs) -> anyhow::Result<u8> {
    let mut path = format!(
        "/containers/json?all={}",
        flag(a.all || a.latest || a.last.is_some())
    );
    if !a.filter.is_empty() {
        path.push_str(&format!("&filters={}", filters(&a.filter)?));
    }
    if a.latest {
        path.push_str("&limit=1");
    } else if let Some(n) = a.last {
        path.push_str(&format!("&limit={n}"));
    }
    if a.size {
        path.push_str("&size=1");
    }
    let v = c.get(&path).await?;
    let list = v.as_array().cloned().unwrap_or_default();
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for ct in &list {
        let full = ct["Id"].as_str().unwrap_or("");
        let id = if a.no_trunc {
            full.to_string()
        } else {
            fmt::short_id(full)
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let command = ct["Command"].as_str().unwrap_or("");
        let command = if a.no_trunc {
            fmt::quote(command)
        } else {
            fmt::quote(&fmt::ellipsis(command, 20))
        };
        let names: Vec<String> = strings(&ct["Names"])
            .into_iter()
            .map(|n| n.trim_start_matches('/').to_string())
            .collect();
        let image = ct["Image"].as_str().unwrap_or("").to_string();
        let image = if !a.no_trunc && image.starts_with("sha256:") {
            fmt::short_id(&image)
        } else {
            image
        };
        let fields = [
            ("ID", id.clone()),
            ("Image", image.clone()),
            ("Command", command.clone()),
            ("CreatedAt", ct["Created"].as_i64().unwrap_or(0).to_string()),
            ("RunningFor", fmt::ago(ct["Created"].as_i64().unwrap_or(0))),
            ("Status", ct["Status"].as_str().unwrap_or("").to_string()),
            ("State", ct["State"].as_str().unwrap_or("").to_string()),
            ("Ports", fmt::ports(&ct["Ports"])),
            ("Names", names.join(",")),
            // docker's `k=v,k2=v2` and network names, not the JSON.
            (
                "Labels",
                ct["Labels"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "Networks",
                ct["NetworkSettings"]["Networks"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ),
        ];
        if let Some(f) = &a.format {
            if !f.starts_with("table") {
                println!("{}", fmt::template(f, &fields, ct));
                continue;
            }
        }
        rows.push(vec![
            id,
            image,
            command,
            fmt::ago(ct["Created"].as_i64().unwrap_or(0)),
            fields[5].1.clone(),
            fields[7].1.clone(),
            fields[8].1.clone(),
        ]);
    }
    if !a.quiet && a.format.as_deref().is_none_or(|f| f.starts_with("table")) {
        print!("{}", table(&rows));
    }
    Ok(0)
}

async fn images(c: &Client, a: ImagesArgs) -> anyhow::Result<u8> {
    let mut f = a.filter.clone();
    if let Some(r) = &a.reference {
        f.push(format!("reference={r}"));
    }
    let mut path = format!("/images/json?all={}", flag(a.all));
    if !f.is_empty() {
        path.push_str(&format!("&filters={}", filters(&f)?));
    }
    if a.digests {
        path.push_str("&digests=1");
    }
    let v = c.get(&path).await?;
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
        .map(String::from)
        .to_vec()];
    let mut seen = std::collections::HashSet::new();
    for img in v.as_array().into_iter().flatten() {
        let full = img["Id"].as_str().unwrap_or("");
        let id = if a.no_trunc {
            full.to_string()
        } else {
            fmt::short_id(full)
        };
        if a.quiet {
            if seen.insert(id.clone()) {
                println!("{id}");
            }
            continue;
        }
        let mut tags = strings(&img["RepoTags"]);
        tags.retain(|t| t != "<none>:<none>");
        if tags.is_empty() {
            tags.push("<none>:<none>".into());
        }
        for t in tags {
            let (repo, tag) = match t.rsplit_once(':') {
                Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                _ => (t.clone(), "<none>".into()),
            };
            let created = img["Created"].as_i64().unwrap_or(0);
            let size = fmt::human_size(img["Size"].as_f64().unwrap_or(0.0));
            let fields = [
                ("ID", id.clone()),
                ("Repository", repo.clone()),
                ("Tag", tag.clone()),
                ("CreatedSince", fmt::ago(created)),
                ("CreatedAt", created.to_string()),
                ("Size", size.clone()),
            ];
            if let Some(fm) = &a.format {
                if !fm.starts_with("table") {
                    println!("{}", fmt::template(fm, &fields, img));
                    continue;
                }
            }
            rows.push(vec![repo, tag, id.clone(), fmt::ago(created), size]);
        }
    }
    if !a.quiet && a.format.as_deref().is_none_or(|f| f.starts_with("table")) {
        print!("{}", table(&rows));
    }
    Ok(0)
}

async fn inspect(
    c: &Client,
    format: Option<String>,
    kind: Option<String>,
    size: bool,
    names: Vec<String>,
) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    let mut failed = false;
    for n in &names {
        let kinds: Vec<&str> = match kind.as_deref() {
            Some(k) => vec![k],
            None => vec!["container", "image", "volume", "network"],
        };
        let mut found = None;
        let mut last_err = None;
        for k in kinds {
            let path = match k {
                "container" => format!("/containers/{}/json?size={}", q(n), flag(size)),
                "image" => format!("/images/{}/json", q(n)),
                "volume" => format!("/volumes/{}", q(n)),
                "network" => format!("/networks/{}", q(n)),
                other => bail!("--type {other:?}: expected container, image, volume or network"),
            };
            match c.get(&path).await {
                Ok(v) => {
                    found = Some(v);
                    break;
                }
                Err(e) if is_api(&e, 404) => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        match found {
            Some(v) => out.push(v),
            None => {
                failed = true;
                let _ = last_err;
                eprintln!("Error: No such object: {n}");
            }
        }
    }
    print_formatted(&out, &format);
    Ok(if failed { 1 } else { 0 })
}

fn cpu_percent(s: &Value) -> f64 {
    let cpu = s["cpu_stats"]["cpu_usage"]["total_usage"]
        .as_f64()
        .unwrap_or(0.0)
        - s["precpu_stats"]["cpu_usage"]["total_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let sys = s["cpu_stats"]["system_cpu_usage"].as_f64().unwrap_or(0.0)
        - s["precpu_stats"]["system_cpu_usage"]
            .as_f64()
            .unwrap_or(0.0);
    let n = s["cpu_stats"]["online_cpus"].as_f64().unwrap_or(1.0);
    if cpu > 0.0 && sys > 0.0 {
        cpu / sys * n * 100.0
    } else {
        0.0
    }
}

async fn stats_rows(
    c: &Client,
    all: bool,
    no_trunc: bool,
    containers: &[String],
) -> anyhow::Result<Vec<Vec<String>>> {
    let names: Vec<String> = if containers.is_empty() {
        let v = c
            .get(&format!("/containers/json?all={}", flag(all)))
            .await?;
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect()
    } else {
        containers.to_vec()
    };
    let mut rows = vec![[
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ]
    .map(String::from)
    .to_vec()];
    for n in names {
        let s = c
            .get(&format!("/containers/{}/stats?stream=0", q(&n)))
            .await?;
        let id = s["id"].as_str().unwrap_or(&n).to_string();
        let mem = s["memory_stats"]["usage"].as_f64().unwrap_or(0.0)
            - s["memory_stats"]["stats"]["inactive_file"]
                .as_f64()
                .unwrap_or(0.0);
        let limit = s["memory_stats"]["limit"].as_f64().unwrap_or(0.0);
        let (mut rx, mut tx) = (0.0, 0.0);
        for (_, nw) in s["networks"].as_object().into_iter().flatten() {
            rx += nw["rx_bytes"].as_f64().unwrap_or(0.0);
            tx += nw["tx_bytes"].as_f64().unwrap_or(0.0);
        }
        let (mut br, mut bw) = (0.0, 0.0);
        for e in s["blkio_stats"]["io_service_bytes_recursive"]
            .as_array()
            .into_iter()
            .flatten()
        {
            match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => br += e["value"].as_f64().unwrap_or(0.0),
                Some("write") => bw += e["value"].as_f64().unwrap_or(0.0),
                _ => {}
            }
        }
        rows.push(vec![
            if no_trunc {
                id.clone()
            } else {
                fmt::short_id(&id)
            },
            s["name"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches('/')
                .to_string(),
            format!("{:.2}%", cpu_percent(&s)),
            format!(
                "{} / {}",
                fmt::bytes_size(mem.max(0.0)),
                fmt::bytes_size(limit)
            ),
            format!(
                "{:.2}%",
                if limit > 0.0 {
                    mem.max(0.0) / limit * 100.0
                } else {
                    0.0
                }
            ),
            format!("{} / {}", fmt::human_size(rx), fmt::human_size(tx)),
            format!("{} / {}", fmt::human_size(br), fmt::human_size(bw)),
            s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string(),
        ]);
    }
    Ok(rows)
}

async fn stats(
    c: &Client,
    all: bool,
    no_stream: bool,
    no_trunc: bool,
    format: Option<String>,
    containers: Vec<String>,
) -> anyhow::Result<u8> {
    loop {
        let rows = stats_rows(c, all, no_trunc, &containers).await?;
        let text = match &format {
            Some(f) => stats_format(f, &rows),
            None => table(&rows),
        };
        if no_stream {
            print!("{text}");
            return Ok(0);
        }
        print!("\x1b[2J\x1b[H{text}");
        let _ = std::io::stdout().flush();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// `stats --format`: the template per row (docker's field names; `.Container` is the name
/// or ID the row was asked by, here the short ID).
fn stats_format(f: &str, rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for r in rows.iter().skip(1) {
        let names = [
            "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
        ];
        let mut fields: Vec<(&str, String)> =
            names.iter().copied().zip(r.iter().cloned()).collect();
        fields.push(("Container", r[0].clone()));
        out.push_str(&fmt::template(f, &fields, &Value::Null));
        out.push('\n');
    }
    out
}

/// RFC 3339 with nanoseconds from UNIX nanoseconds (UTC).
fn rfc3339_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let ns = nanos.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ns:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn events(
    c: &Client,
    filter: Vec<String>,
    since: Option<String>,
    until: Option<String>,
    format: Option<String>,
) -> anyhow::Result<u8> {
    let mut path = "/events?".to_string();
    if !filter.is_empty() {
        path.push_str(&format!("filters={}&", filters(&filter)?));
    }
    if let Some(s) = since {
        path.push_str(&format!("since={}&", time_arg(&s)?));
    }
    if let Some(u) = until {
        path.push_str(&format!("until={}&", time_arg(&u)?));
    }
    let resp = c
        .call(Method::GET, path.trim_end_matches(['&', '?']), None)
        .await?;
    json_lines(resp, |v| {
        if let Some(f) = &format {
            println!("{}", fmt::template(f, &[], &v));
        } else {
            let nanos = v["timeNano"]
                .as_i64()
                .unwrap_or_else(|| v["time"].as_i64().unwrap_or(0) * 1_000_000_000);
            let mut attrs: Vec<(String, String)> = v["Actor"]["Attributes"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            attrs.sort();
            let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "{} {} {} {} ({})",
                rfc3339_nanos(nanos),
                v["Type"].as_str().unwrap_or(""),
                v["Action"].as_str().unwrap_or(""),
                v["Actor"]["ID"].as_str().unwrap_or(""),
                attrs.join(", ")
            );
        }
        let _ = std::io::stdout().flush();
        Ok(true)
    })
    .await?;
    Ok(0)
}

fn kv(items: &[String]) -> serde_json::Map<String, Value> {
    items
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), Value::String(v.to_string()))
        })
        .collect()
}

async fn volume(c: &Client, cmd: VolumeCmd) -> anyhow::Result<u8> {
    match cmd {
        VolumeCmd::Create {
            driver,
            opt,
            label,
            name,
        } => {
            let v = c
                .post(
                    "/volumes/create",
                    Some(json!({
                        "Name": name.unwrap_or_default(),
                        "Driver": driver,
                        "DriverOpts": kv(&opt),
                        "Labels": kv(&label),
                    })),
                )
                .await?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(0)
        }
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let mut path = "/volumes".to_string();
            if !filter.is_empty() {
                path.push_str(&format!("?filters={}", filters(&filter)?));
            }
            let v = c.get(&path).await?;
            let mut rows = vec![vec!["DRIVER".to_string(), "VOLUME NAME".to_string()]];
            for vol in v["Volumes"].as_array().into_iter().flatten() {
                let name = vol["Name"].as_str().unwrap_or("").to_string();
                if quiet {
                    println!("{name}");
                } else if let Some(f) = &format {
                    println!("{}", fmt::template(f, &[], vol));
                } else {
                    rows.push(vec![vol["Driver"].as_str().unwrap_or("").to_string(), name]);
                }
            }
            if !quiet && format.is_none() {
                print!("{}", table(&rows));
            }
            Ok(0)
        }
        VolumeCmd::Inspect { format, names } => inspect_each(c, "volumes", &names, &format).await,
        VolumeCmd::Rm { force, names } => {
            each(&names, |n| async move {
                c.delete(&format!("/volumes/{}?force={}", q(&n), flag(force)))
                    .await?;
                Ok(Some(n))
            })
            .await
        }
        VolumeCmd::Prune { force, all } => {
            if !force && !confirm("WARNING! This will remove anonymous local volumes not used by at least one container.")? {
                return Ok(0);
            }
            let path = if all {
                format!("/volumes/prune?filters={}", filters(&["all=true".into()])?)
            } else {
                "/volumes/prune".into()
            };
            let v = c.post(&path, None).await?;
            let deleted = strings(&v["VolumesDeleted"]);
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for d in deleted {
                    println!("{d}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                fmt::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
            );
            Ok(0)
        }
    }
}

fn confirm(warning: &str) -> anyhow::Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

async fn network(c: &Client, cmd: NetworkCmd) -> anyhow::Result<u8> {
    match cmd {
        NetworkCmd::Create {
            driver,
            subnet,
            gateway,
            internal,
            label,
            opt,
            name,
        } => {
            let config: Vec<Value> = subnet
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut m = json!({"Subnet": s});
                    if let Some(g) = gateway.get(i) {
                        m["Gateway"] = json!(g);
                    }
                    m
                })
                .collect();
            let v = c
                .post(
                    "/networks/create",
                    Some(json!({
                        "Name": name,
                        "Driver": driver,
                        "Internal": internal,
                        "Labels": kv(&label),
                        "Options": kv(&opt),
                        "IPAM": {"Driver": "default", "Config": config},
                    })),
                )
                .await?;
            if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
                eprintln!("WARNING: {w}");
            }
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(0)
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            format,
            no_trunc,
        } => {
            let mut path = "/networks".to_string();
            if !filter.is_empty() {
                path.push_str(&format!("?filters={}", filters(&filter)?));
            }
            let v = c.get(&path).await?;
            let mut rows = vec![["NETWORK ID", "NAME", "DRIVER", "SCOPE"]
                .map(String::from)
                .to_vec()];
            for n in v.as_array().into_iter().flatten() {
                let full = n["Id"].as_str().unwrap_or("");
                let id = if no_trunc {
                    full.to_string()
                } else {
                    fmt::short_id(full)
                };
                if quiet {
                    println!("{id}");
                } else if let Some(f) = &format {
                    println!("{}", fmt::template(f, &[("ID", id)], n));
                } else {
                    rows.push(vec![
                        id,
                        n["Name"].as_str().unwrap_or("").into(),
                        n["Driver"].as_str().unwrap_or("").into(),
                        n["Scope"].as_str().unwrap_or("").into(),
                    ]);
                }
            }
            if !quiet && format.is_none() {
                print!("{}", table(&rows));
            }
            Ok(0)
        }
        NetworkCmd::Inspect { format, names } => inspect_each(c, "networks", &names, &format).await,
        NetworkCmd::Rm { names } => {
            each(&names, |n| async move {
                c.delete(&format!("/networks/{}", q(&n))).await?;
                Ok(Some(n))
            })
            .await
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let mut ep = json!({"Aliases": alias});
            if let Some(ip) = ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            c.post(
                &format!("/networks/{}/connect", q(&network)),
                Some(json!({"Container": container, "EndpointConfig": ep})),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Disconnect {
            force,
            network,
            container,
        } => {
            c.post(
                &format!("/networks/{}/disconnect", q(&network)),
                Some(json!({"Container": container, "Force": force})),
            )
            .await?;
            Ok(0)
        }
        NetworkCmd::Prune { force } => {
            if !force && !confirm("WARNING! This will remove all custom networks not used by at least one container.")? {
                return Ok(0);
            }
            let v = c.post("/networks/prune", None).await?;
            let deleted = strings(&v["NetworksDeleted"]);
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for d in deleted {
                    println!("{d}");
                }
            }
            Ok(0)
        }
    }
}

async fn info(c: &Client, format: Option<String>) -> anyhow::Result<u8> {
    let v = c.get("/info").await?;
    if let Some(f) = format {
        println!("{}", fmt::template(&f, &[], &v));
        return Ok(0);
    }
    let s = |k: &str| match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    println!("Client:\n Context:    default\n Debug Mode: false\n");
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    let sec = strings(&v["SecurityOptions"]);
    if !sec.is_empty() {
        println!(" Security Options:");
        for o in sec {
            println!("  {o}");
        }
    }
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        fmt::bytes_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", s("Debug"));
    Ok(0)
}

async fn version(c: &Client, format: Option<String>) -> anyhow::Result<u8> {
    let client = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": crate::client::API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": std::env::consts::ARCH,
    });
    let server = c.get("/version").await;
    if let Some(f) = format {
        let obj = json!({"Client": client, "Server": server.as_ref().ok()});
        println!("{}", fmt::template(&f, &[], &obj));
        return server.map(|_| 0);
    }
    println!("Client: hull");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", crate::client::API_VERSION);
    println!(
        " OS/Arch:           {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let v = server?;
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    println!();
    println!("Server: hull");
    println!(" Engine:");
    println!("  Version:          {}", s("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s("ApiVersion"),
        s("MinAPIVersion")
    );
    println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
    println!("  Kernel Version:   {}", s("KernelVersion"));
    for comp in v["Components"].as_array().into_iter().flatten() {
        let name = comp["Name"].as_str().unwrap_or("");
        if name != "Engine" {
            println!(" {name}:");
            println!(
                "  Version:          {}",
                comp["Version"].as_str().unwrap_or("")
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_filters() {
        assert_eq!(split_ref("busybox"), ("busybox".into(), None));
        assert_eq!(
            split_ref("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b".into(), Some("v1".into()))
        );
        assert_eq!(
            split_ref("127.0.0.1:5000/a"),
            ("127.0.0.1:5000/a".into(), None)
        );
        assert_eq!(
            filters(&["status=exited".into(), "status=created".into()]).unwrap(),
            q(r#"{"status":{"created":true,"exited":true}}"#)
        );
        assert!(filters(&["nokey".into()]).is_err());
        assert_eq!(
            rfc3339_nanos(86_400_000_000_001),
            "1970-01-02T00:00:00.000000001Z"
        );
        assert_eq!(
            start_error_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_error_code("permission denied"), 126);
        assert_eq!(start_error_code("cgroup trouble"), 125);
    }
}
