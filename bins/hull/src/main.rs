//! hull: the command line people type with docker (`hull run -d -p 8080:80 nginx`), talking
//! to hulld over its UNIX socket (or TCP with mutual TLS). Output tables, times, sizes and
//! exit codes are docker's: 125 when the daemon refuses, 126/127 when the command cannot be
//! run, else the container's own code for `run`.
//!
//! The API client is a small hand-written one over hyper 1 (`client`), not bollard: bollard
//! and its generated bollard-stubs would add a large build (and a second HTTP stack's worth of
//! dependencies) for the few dozen calls the CLI makes; hyper, hyper-util and rustls are
//! already in the tree for hulld.

#![forbid(unsafe_code)]

mod auth;
mod client;
mod cmds;
mod cp;
mod fmt;
mod more;
mod opts;
mod progress;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

pub const DEFAULT_HOST: &str = "unix:///run/hull/hull.sock";

#[derive(Parser)]
#[command(
    name = "hull",
    version,
    about = "hull: run containers with hulld, docker's commands and flags (also as `container X`, `image X`)",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket: unix:///path or tcp://HOST:PORT (with --tlsverify). Default
    /// $HULL_HOST, else $DOCKER_HOST, else unix:///run/hull/hull.sock.
    #[arg(short = 'H', long = "host", global = true, value_name = "ADDR")]
    host: Option<String>,
    /// Verify the daemon's certificate and present ours (mutual TLS; tcp:// only).
    #[arg(long, global = true)]
    tlsverify: bool,
    /// Trust certs signed only by this CA.
    #[arg(long, global = true, value_name = "FILE")]
    tlscacert: Option<PathBuf>,
    /// Our TLS certificate.
    #[arg(long, global = true, value_name = "FILE")]
    tlscert: Option<PathBuf>,
    /// Our TLS key.
    #[arg(long, global = true, value_name = "FILE")]
    tlskey: Option<PathBuf>,
    #[command(subcommand)]
    cmd: cmds::Cmd,
}

impl Cli {
    fn client(&self) -> anyhow::Result<client::Client> {
        let host = self
            .host
            .clone()
            .or_else(|| std::env::var("HULL_HOST").ok().filter(|s| !s.is_empty()))
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let env_verify = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        let tls = client::TlsOpts {
            verify: self.tlsverify || env_verify,
            ca: self.tlscacert.clone(),
            cert: self.tlscert.clone(),
            key: self.tlskey.clone(),
        };
        Ok(client::Client {
            host: client::Host::parse(&host, &tls)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::management_commands;

    fn m(a: &[&str]) -> Vec<String> {
        management_commands(a.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn management_commands_map_to_plain_ones() {
        assert_eq!(m(&["hull", "container", "ls", "-a"]), ["hull", "ps", "-a"]);
        assert_eq!(
            m(&["hull", "-H", "unix:///x", "image", "ls"]),
            ["hull", "-H", "unix:///x", "images"]
        );
        assert_eq!(
            m(&["hull", "image", "rm", "busybox"]),
            ["hull", "rmi", "busybox"]
        );
        assert_eq!(
            m(&["hull", "image", "inspect", "busybox"]),
            ["hull", "inspect", "--type", "image", "busybox"]
        );
        assert_eq!(
            m(&["hull", "container", "stop", "x"]),
            ["hull", "stop", "x"]
        );
        assert_eq!(
            m(&["hull", "run", "image", "ls"]),
            ["hull", "run", "image", "ls"]
        );
    }
}

/// An error carrying the exit code docker would use.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// docker's management commands as the plain ones: `container ls` is `ps`, `image ls`
/// is `images`, `image rm` is `rmi`, `container X`/`image X` is `X` (`image inspect` with
/// `--type image`).
fn management_commands(mut args: Vec<String>) -> Vec<String> {
    const WITH_VALUE: [&str; 5] = ["-H", "--host", "--tlscacert", "--tlscert", "--tlskey"];
    let mut i = 1;
    while i < args.len() && args[i].starts_with('-') {
        i += if WITH_VALUE.contains(&args[i].as_str()) {
            2
        } else {
            1
        };
    }
    if i + 1 >= args.len() {
        return args;
    }
    let group = args[i].clone();
    let sub = args[i + 1].clone();
    let replace: Option<Vec<&str>> = match (group.as_str(), sub.as_str()) {
        ("container", "ls" | "list" | "ps") => Some(vec!["ps"]),
        ("container", "remove") => Some(vec!["rm"]),
        ("container", "inspect") => Some(vec!["inspect", "--type", "container"]),
        ("container", _) => Some(vec![sub.as_str()]),
        ("image", "ls" | "list") => Some(vec!["images"]),
        ("image", "rm" | "remove") => Some(vec!["rmi"]),
        ("image", "inspect") => Some(vec!["inspect", "--type", "image"]),
        ("image", _) => Some(vec![sub.as_str()]),
        _ => None,
    };
    if let Some(r) = replace {
        let r: Vec<String> = r.into_iter().map(String::from).collect();
        args.splice(i..i + 2, r);
    }
    args
}

fn main() -> ExitCode {
    let args = management_commands(std::env::args().collect());
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hull: starting the async runtime: {e}");
            return ExitCode::from(125);
        }
    };
    let result = rt.block_on(async {
        let c = cli.client()?;
        cmds::run(&c, cli.cmd).await
    });
    // Copies of stdin may still block in a reader thread: do not wait for them.
    rt.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
                return ExitCode::from(*code);
            }
            eprintln!("{e:#}");
            ExitCode::from(1)
        }
    }
}
