//! `hull run`/`hull create` flags and the `POST /containers/create` body they make (Docker's
//! Config + HostConfig shapes).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct ContainerOpts {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Run in the background and print the container ID.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Environment variable (KEY=VALUE, or KEY to take it from here).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Bind mount or volume: SRC:DST[:ro], or DST for an anonymous volume.
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Publish a port: [IP:][HOST:]CONTAINER[/PROTO].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    #[arg(long)]
    pub expose: Vec<String>,
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// IPv4 address on the --network (a user network with a subnet).
    #[arg(long)]
    pub ip: Option<String>,
    /// Another DNS name of the container on the --network.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "read-only")]
    pub read_only: bool,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long)]
    pub userns: Option<String>,
    /// no, always, unless-stopped, on-failure[:N].
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(long)]
    pub mount: Vec<String>,
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    /// Run an init inside the container (hull has none yet: refused).
    #[arg(long)]
    pub init: bool,
    #[arg(long)]
    pub dns: Vec<String>,
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    #[arg(long = "stop-timeout")]
    pub stop_timeout: Option<i64>,
    /// Command to run to check health (in the container's shell).
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h).
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h).
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before failures count (ms|s|m|h).
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Consecutive failures needed to report unhealthy.
    #[arg(long = "health-retries")]
    pub health_retries: Option<i64>,
    /// Disable any container-specified HEALTHCHECK.
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    #[arg(long)]
    pub sysctl: Vec<String>,
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Attach to STDIN, STDOUT or STDERR.
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// missing (default), always or never.
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// docker's RAMInBytes: "512m", "1g", "100k", "1024" (binary units).
pub fn ram_in_bytes(s: &str) -> anyhow::Result<i64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l.strip_suffix('b').unwrap_or(&l);
    let (num, mult) = match l.chars().last() {
        Some('k') => (&l[..l.len() - 1], 1i64 << 10),
        Some('m') => (&l[..l.len() - 1], 1 << 20),
        Some('g') => (&l[..l.len() - 1], 1 << 30),
        Some('t') => (&l[..l.len() - 1], 1 << 40),
        _ => (l, 1),
    };
    let v: f64 = num.parse().map_err(|_| {
        anyhow!("invalid size: {s:?} (expected a number with an optional unit b, k, m, g)")
    })?;
    Ok((v * mult as f64) as i64)
}

fn kv_map(items: &[String]) -> Map<String, Value> {
    items
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
            None => (l.clone(), Value::String(String::new())),
        })
        .collect()
}

fn env_list(o: &ContainerOpts) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut push = |e: &str| {
        if e.contains('=') {
            out.push(e.to_string());
        } else if let Ok(v) = std::env::var(e) {
            out.push(format!("{e}={v}"));
        }
    };
    for f in &o.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("--env-file {}", f.display()))?;
        for l in text.lines() {
            let l = l.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            push(l);
        }
    }
    for e in &o.env {
        push(e);
    }
    Ok(out)
}

/// `-p` into (ExposedPorts key, binding).
fn port_binding(p: &str) -> anyhow::Result<(String, Value)> {
    let (spec, proto) = match p.rsplit_once('/') {
        Some((s, pr)) => (s, pr),
        None => (p, "tcp"),
    };
    // [ip:][host:]container, with [v6] addresses bracketed.
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .ok_or_else(|| anyhow!("invalid -p {p:?}"))?;
        (ip.to_string(), r.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), spec.to_string()),
            3 => (parts[0].to_string(), format!("{}:{}", parts[1], parts[2])),
            _ => bail!("invalid -p {p:?}: expected [IP:][HOST:]CONTAINER[/PROTO]"),
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (h.to_string(), c.to_string()),
        None => (String::new(), rest),
    };
    if container.is_empty() || container.parse::<u16>().is_err() {
        bail!("invalid -p {p:?}: the container port must be a number (ranges are not supported)");
    }
    Ok((
        format!("{container}/{proto}"),
        json!({"HostIp": ip, "HostPort": host}),
    ))
}

fn restart_policy(s: &str) -> anyhow::Result<Value> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            c.parse::<i64>()
                .map_err(|_| anyhow!("--restart {s:?}: the retry count must be a number"))?,
        ),
        None => (s, 0),
    };
    if !["no", "always", "unless-stopped", "on-failure"].contains(&name) {
        bail!("--restart {s:?}: expected no, always, unless-stopped or on-failure[:N]");
    }
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

fn mount_spec(s: &str) -> anyhow::Result<Value> {
    let mut m = Map::new();
    let mut ty = "volume".to_string();
    let mut ro = false;
    let mut bind_opts = Map::new();
    let mut tmpfs_opts = Map::new();
    for part in s.split(',') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k {
            "type" => ty = v.to_string(),
            "source" | "src" => {
                m.insert("Source".into(), v.into());
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), v.into());
            }
            "readonly" | "ro" => ro = v.is_empty() || v == "true" || v == "1",
            "bind-propagation" => {
                bind_opts.insert("Propagation".into(), v.into());
            }
            "tmpfs-size" => {
                tmpfs_opts.insert("SizeBytes".into(), ram_in_bytes(v)?.into());
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(v, 8)
                    .map_err(|_| anyhow!("--mount {s:?}: tmpfs-mode must be octal"))?;
                tmpfs_opts.insert("Mode".into(), mode.into());
            }
            other => bail!("--mount {s:?}: unknown key {other:?}"),
        }
    }
    if !m.contains_key("Target") {
        bail!("--mount {s:?}: target is required");
    }
    m.insert("Type".into(), ty.into());
    m.insert("ReadOnly".into(), ro.into());
    if !bind_opts.is_empty() {
        m.insert("BindOptions".into(), bind_opts.into());
    }
    if !tmpfs_opts.is_empty() {
        m.insert("TmpfsOptions".into(), tmpfs_opts.into());
    }
    Ok(m.into())
}

fn ulimit(s: &str) -> anyhow::Result<Value> {
    let (name, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--ulimit {s:?}: expected NAME=SOFT[:HARD]"))?;
    let (soft, hard) = v.split_once(':').unwrap_or((v, v));
    let n = |x: &str| {
        x.parse::<i64>()
            .map_err(|_| anyhow!("--ulimit {s:?}: limits must be numbers"))
    };
    Ok(json!({"Name": name, "Soft": n(soft)?, "Hard": n(hard)?}))
}

/// The image and the create body.
/// `--ip` and `--network-alias` as the endpoint config of the `--network`.
fn endpoints(o: &ContainerOpts) -> anyhow::Result<Value> {
    if o.ip.is_none() && o.network_alias.is_empty() {
        return Ok(json!({}));
    }
    let net = match o.network.as_deref() {
        Some(n) if !n.is_empty() && n != "default" => n,
        _ => bail!("--ip and --network-alias need --network (a user network)"),
    };
    let mut ep = Map::new();
    if let Some(ip) = &o.ip {
        let addr: std::net::Ipv4Addr = ip
            .parse()
            .map_err(|_| anyhow!("--ip {ip:?}: not an IPv4 address"))?;
        ep.insert(
            "IPAMConfig".into(),
            json!({ "IPv4Address": addr.to_string() }),
        );
    }
    if !o.network_alias.is_empty() {
        ep.insert("Aliases".into(), json!(o.network_alias));
    }
    Ok(json!({ net: ep }))
}

pub fn create_body(o: &ContainerOpts) -> anyhow::Result<(String, Value)> {
    if o.init {
        bail!("--init: hull has no init process to run in containers yet; run without --init");
    }
    let image = o.args[0].clone();
    let cmd: Vec<String> = o.args[1..].to_vec();
    let mut exposed = Map::new();
    let mut bindings: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in &o.publish {
        let (key, b) = port_binding(p)?;
        exposed.insert(key.clone(), json!({}));
        bindings.entry(key).or_default().push(b);
    }
    for e in &o.expose {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        exposed.insert(key, json!({}));
    }
    let mut binds = Vec::new();
    let mut anon = Map::new();
    for v in &o.volumes {
        if v.contains(':') {
            binds.push(Value::String(v.clone()));
        } else {
            anon.insert(v.clone(), json!({}));
        }
    }
    let mounts = o
        .mount
        .iter()
        .map(|m| mount_spec(m))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tmpfs: Map<String, Value> = o
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, opts)) => (p.to_string(), Value::String(opts.to_string())),
            None => (t.clone(), Value::String(String::new())),
        })
        .collect();
    let attach_all = !o.detach && o.attach.is_empty();
    let attached = |s: &str| attach_all || o.attach.iter().any(|a| a.eq_ignore_ascii_case(s));
    let mut host = json!({
        "Binds": binds,
        "NetworkMode": o.network.clone().unwrap_or_else(|| "default".into()),
        "PortBindings": bindings,
        "PublishAllPorts": o.publish_all,
        "AutoRemove": o.rm,
        "CapAdd": o.cap_add,
        "CapDrop": o.cap_drop,
        "Privileged": o.privileged,
        "ReadonlyRootfs": o.read_only,
        "SecurityOpt": o.security_opt,
        "Tmpfs": tmpfs,
        "Mounts": mounts,
        "Dns": o.dns,
        "ExtraHosts": o.add_host,
        "Sysctls": kv_map(&o.sysctl),
        "Ulimits": o.ulimit.iter().map(|u| ulimit(u)).collect::<anyhow::Result<Vec<_>>>()?,
        "LogConfig": {"Type": "", "Config": {}},
    });
    let h = host.as_object_mut().expect("object");
    if let Some(r) = &o.restart {
        h.insert("RestartPolicy".into(), restart_policy(r)?);
    }
    if let Some(u) = &o.userns {
        h.insert("UsernsMode".into(), u.clone().into());
    }
    if let Some(m) = &o.memory {
        h.insert("Memory".into(), ram_in_bytes(m)?.into());
    }
    if let Some(c) = o.cpus {
        h.insert("NanoCpus".into(), ((c * 1e9) as i64).into());
    }
    if let Some(p) = o.pids_limit {
        h.insert("PidsLimit".into(), p.into());
    }
    let mut body = json!({
        "Image": image,
        "AttachStdin": o.interactive && attached("stdin"),
        "AttachStdout": attached("stdout"),
        "AttachStderr": attached("stderr"),
        "Tty": o.tty,
        "OpenStdin": o.interactive,
        "StdinOnce": o.interactive && !o.detach,
        "Env": env_list(o)?,
        "Labels": kv_map(&o.labels),
        "ExposedPorts": exposed,
        "Volumes": anon,
        "HostConfig": host,
        "NetworkingConfig": {"EndpointsConfig": endpoints(o)?},
    });
    let b = body.as_object_mut().expect("object");
    if !cmd.is_empty() {
        b.insert("Cmd".into(), json!(cmd));
    }
    if let Some(e) = &o.entrypoint {
        b.insert("Entrypoint".into(), json!([e]));
    }
    for (k, v) in [
        ("Hostname", &o.hostname),
        ("User", &o.user),
        ("WorkingDir", &o.workdir),
        ("StopSignal", &o.stop_signal),
    ] {
        if let Some(v) = v {
            b.insert(k.into(), v.clone().into());
        }
    }
    if let Some(t) = o.stop_timeout {
        b.insert("StopTimeout".into(), t.into());
    }
    if let Some(hc) = healthcheck(o)? {
        b.insert("Healthcheck".into(), hc);
    }
    Ok((image, body))
}

/// `Healthcheck` from the --health-* flags (None without any), as the docker CLI builds it.
fn healthcheck(o: &ContainerOpts) -> anyhow::Result<Option<Value>> {
    let any = o.health_cmd.is_some()
        || o.health_interval.is_some()
        || o.health_timeout.is_some()
        || o.health_start_period.is_some()
        || o.health_retries.is_some();
    if o.no_healthcheck {
        if any {
            anyhow::bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(json!({ "Test": ["NONE"] })));
    }
    if !any {
        return Ok(None);
    }
    let d = |flag: &str, v: &Option<String>| -> anyhow::Result<i64> {
        match v {
            None => Ok(0),
            Some(s) => go_duration_ns(s).ok_or_else(|| {
                anyhow::anyhow!("invalid argument {s:?} for \"--{flag}\": use a duration such as 500ms, 30s or 1m30s")
            }),
        }
    };
    let retries = o.health_retries.unwrap_or(0);
    if retries < 0 {
        anyhow::bail!("--health-retries cannot be negative");
    }
    let test = match &o.health_cmd {
        Some(c) => json!(["CMD-SHELL", c]),
        None => json!([]),
    };
    Ok(Some(json!({
        "Test": test,
        "Interval": d("health-interval", &o.health_interval)?,
        "Timeout": d("health-timeout", &o.health_timeout)?,
        "StartPeriod": d("health-start-period", &o.health_start_period)?,
        "Retries": retries,
    })))
}

/// A Go duration ("300ms", "1.5s", "1m30s", "2h") in nanoseconds.
fn go_duration_ns(s: &str) -> Option<i64> {
    const UNITS: [(&str, f64); 6] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
        ("m", 60e9),
        ("h", 3600e9),
    ];
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let (_, scale) = UNITS.iter().find(|(u, _)| *u == &rest[..unit_len])?;
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(total.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn health_flags_build_dockers_healthcheck() {
        assert_eq!(go_duration_ns("300ms"), Some(300_000_000));
        assert_eq!(go_duration_ns("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(go_duration_ns("10"), None);
        assert_eq!(go_duration_ns("5x"), None);
        let b = body(&[
            "--health-cmd",
            "curl -f localhost",
            "--health-interval",
            "2s",
            "--health-retries",
            "4",
            "img",
        ]);
        assert_eq!(
            b["Healthcheck"],
            json!({"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 2_000_000_000i64,
                   "Timeout": 0, "StartPeriod": 0, "Retries": 4})
        );
        assert_eq!(
            body(&["--no-healthcheck", "img"])["Healthcheck"],
            json!({"Test": ["NONE"]})
        );
        assert!(body(&["img"]).get("Healthcheck").is_none());
    }

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        o: ContainerOpts,
    }

    fn body(args: &[&str]) -> Value {
        let t = T::try_parse_from(std::iter::once("run").chain(args.iter().copied())).unwrap();
        create_body(&t.o).unwrap().1
    }

    #[test]
    fn flags_become_docker_shapes() {
        let b = body(&[
            "-d",
            "--rm",
            "-e",
            "A=1",
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "53/udp",
            "-v",
            "/src:/dst:ro",
            "-v",
            "/anon",
            "-m",
            "512m",
            "--cpus",
            "1.5",
            "--restart",
            "on-failure:3",
            "-h",
            "box",
            "--read-only",
            "busybox",
            "ls",
            "-l",
        ]);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["ls", "-l"]));
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["AttachStdout"], false);
        let h = &b["HostConfig"];
        assert_eq!(h["AutoRemove"], true);
        assert_eq!(h["Memory"], 512 << 20);
        assert_eq!(h["NanoCpus"], 1_500_000_000i64);
        assert_eq!(h["ReadonlyRootfs"], true);
        assert_eq!(h["Binds"], json!(["/src:/dst:ro"]));
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(
            h["PortBindings"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(h["PortBindings"]["53/udp"][0]["HostPort"], "");
        assert_eq!(
            h["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
    }

    #[test]
    fn ip_and_aliases_go_to_the_networks_endpoint() {
        let b = body(&[
            "--network",
            "front",
            "--ip",
            "10.9.0.50",
            "--network-alias",
            "db",
            "busybox",
        ]);
        assert_eq!(
            b["NetworkingConfig"]["EndpointsConfig"]["front"],
            json!({ "IPAMConfig": { "IPv4Address": "10.9.0.50" }, "Aliases": ["db"] })
        );
        assert_eq!(
            body(&["busybox"])["NetworkingConfig"]["EndpointsConfig"],
            json!({})
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let t = T::try_parse_from(["run", "--init", "busybox"]).unwrap();
        assert!(create_body(&t.o)
            .unwrap_err()
            .to_string()
            .contains("--init"));
        let t = T::try_parse_from(["run", "--restart", "sometimes", "busybox"]).unwrap();
        assert!(create_body(&t.o).is_err());
        let t = T::try_parse_from(["run", "-p", "a:b:c:d", "busybox"]).unwrap();
        assert!(create_body(&t.o).is_err());
        let t = T::try_parse_from(["run", "--ip", "10.0.0.5", "busybox"]).unwrap();
        assert!(create_body(&t.o)
            .unwrap_err()
            .to_string()
            .contains("--network"));
        let t = T::try_parse_from(["run", "--net", "n", "--ip", "10.0.0.x", "busybox"]).unwrap();
        assert!(create_body(&t.o)
            .unwrap_err()
            .to_string()
            .contains("10.0.0.x"));
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert!(ram_in_bytes("lots").is_err());
    }
}
