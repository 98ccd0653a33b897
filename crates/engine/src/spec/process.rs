//! The container's process: command, environment, working directory, user, terminal,
//! capabilities, rlimits, no_new_privs, oom_score_adj.

use std::str::FromStr;

use oci_spec::runtime::{
    BoxBuilder, Capabilities, Capability, LinuxCapabilitiesBuilder, PosixRlimit, PosixRlimitType,
    Process, ProcessBuilder, UserBuilder,
};

use super::namespaces::NsPlan;
use super::security::SecurityOpts;
use super::{users, BuildContext, SpecBuildError};
use crate::defaults;
use crate::docker_types::{ContainerConfig, HostConfig, ImageConfigSubset};

/// Entrypoint and Cmd merged with the image's, as Docker does: a request Entrypoint replaces
/// the image's and drops the image's Cmd; a request Cmd replaces the image's Cmd;
/// `Entrypoint: []` (or `[""]`) clears the image's entrypoint.
pub(super) fn command(cfg: &ContainerConfig, image: &ImageConfigSubset) -> Vec<String> {
    let reset = |ep: &Vec<String>| ep.is_empty() || (ep.len() == 1 && ep[0].is_empty());
    let (entrypoint, cmd) = match &cfg.entrypoint {
        Some(ep) if !reset(ep) => (ep.clone(), cfg.cmd.clone().unwrap_or_default()),
        given => {
            let cmd = match &cfg.cmd {
                Some(c) if !c.is_empty() => c.clone(),
                _ => image.cmd.clone().unwrap_or_default(),
            };
            let ep = if given.is_some() {
                Vec::new()
            } else {
                image.entrypoint.clone().unwrap_or_default()
            };
            (ep, cmd)
        }
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// Docker's ReplaceOrAppendEnvValues: `NAME=value` replaces or appends, a bare `NAME` removes.
fn apply_env(env: &mut Vec<String>, entry: &str) {
    let name = entry.split('=').next().unwrap_or(entry);
    let pos = env.iter().position(|e| e.split('=').next() == Some(name));
    match (pos, entry.contains('=')) {
        (Some(i), true) => env[i] = entry.to_owned(),
        (None, true) => env.push(entry.to_owned()),
        (Some(i), false) => {
            env.remove(i);
        }
        (None, false) => {}
    }
}

/// HOSTNAME (and TERM for a tty), then the image's env, then the request's (later wins); PATH
/// defaults to Docker's, HOME to the user's home directory.
pub(super) fn environment(
    cfg: &ContainerConfig,
    image: &ImageConfigSubset,
    hostname: &str,
    home: Option<&str>,
) -> Result<Vec<String>, SpecBuildError> {
    let mut env = vec![format!("HOSTNAME={hostname}")];
    if cfg.tty {
        env.push("TERM=xterm".to_owned());
    }
    for e in image.env.iter().filter(|e| !e.starts_with('=')) {
        apply_env(&mut env, e);
    }
    for (index, e) in cfg.env.iter().enumerate() {
        if e.is_empty() || e.starts_with('=') {
            return Err(SpecBuildError::EnvEntry {
                index,
                entry: e.clone(),
            });
        }
        apply_env(&mut env, e);
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, defaults::PATH_ENV.to_owned());
    }
    if let Some(home) = home {
        if !env.iter().any(|e| e.starts_with("HOME=")) {
            env.push(format!("HOME={home}"));
        }
    }
    Ok(env)
}

fn working_dir(cfg: &ContainerConfig, image: &ImageConfigSubset) -> Result<String, SpecBuildError> {
    if !cfg.working_dir.is_empty() {
        if !cfg.working_dir.starts_with('/') {
            return Err(SpecBuildError::WorkingDir {
                dir: cfg.working_dir.clone(),
            });
        }
        return Ok(cfg.working_dir.clone());
    }
    Ok(match image.working_dir.as_str() {
        "" => "/".to_owned(),
        d if d.starts_with('/') => d.to_owned(),
        d => format!("/{d}"),
    })
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    use PosixRlimitType as T;
    Some(match name {
        "as" => T::RlimitAs,
        "core" => T::RlimitCore,
        "cpu" => T::RlimitCpu,
        "data" => T::RlimitData,
        "fsize" => T::RlimitFsize,
        "locks" => T::RlimitLocks,
        "memlock" => T::RlimitMemlock,
        "msgqueue" => T::RlimitMsgqueue,
        "nice" => T::RlimitNice,
        "nofile" => T::RlimitNofile,
        "nproc" => T::RlimitNproc,
        "rss" => T::RlimitRss,
        "rtprio" => T::RlimitRtprio,
        "rttime" => T::RlimitRttime,
        "sigpending" => T::RlimitSigpending,
        "stack" => T::RlimitStack,
        _ => return None,
    })
}

/// hull's default rlimits with the request's `Ulimits` on top, each checked against the
/// host's hard limit.
pub(super) fn rlimits(
    host: &HostConfig,
    ctx: &BuildContext,
) -> Result<Vec<PosixRlimit>, SpecBuildError> {
    let mut out = defaults::rlimits(ctx.host.hard_limit(PosixRlimitType::RlimitNofile));
    for (index, u) in host.ulimits.iter().enumerate() {
        let name = u.name.to_ascii_lowercase();
        let typ = rlimit_type(&name).ok_or_else(|| SpecBuildError::UlimitName {
            index,
            name: u.name.clone(),
        })?;
        let value = |which: &'static str, v: i64| match v {
            -1 => Ok(u64::MAX),
            v if v >= 0 => Ok(v as u64),
            _ => Err(SpecBuildError::UlimitValue {
                index,
                name: name.clone(),
                which,
                value: v,
            }),
        };
        let soft = value("soft", u.soft)?;
        let hard = value("hard", u.hard)?;
        if soft > hard {
            return Err(SpecBuildError::UlimitSoftAboveHard {
                index,
                name,
                soft,
                hard,
            });
        }
        if let Some(limit) = ctx.host.hard_limit(typ) {
            if hard > limit {
                return Err(SpecBuildError::UlimitAboveHost {
                    index,
                    name,
                    hard,
                    host: limit,
                });
            }
        }
        out.retain(|r| r.typ() != typ);
        out.push(defaults::rlimit(typ, soft, hard));
    }
    Ok(out)
}

fn cap_set(caps: &[String]) -> Capabilities {
    caps.iter()
        .filter_map(|c| Capability::from_str(c.trim_start_matches("CAP_")).ok())
        .collect()
}

/// The whole process section.
pub(super) fn build(
    cfg: &ContainerConfig,
    host: &HostConfig,
    image: &ImageConfigSubset,
    ctx: &BuildContext,
    caps: &[String],
    opts: &SecurityOpts,
    ns: &NsPlan,
) -> Result<Process, SpecBuildError> {
    let args = command(cfg, image);
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecBuildError::NoCommand);
    }
    let user_spec = if cfg.user.is_empty() {
        &image.user
    } else {
        &cfg.user
    };
    let passwd = ctx.host.rootfs_file("/etc/passwd");
    let group = ctx.host.rootfs_file("/etc/group");
    let user = users::resolve(
        user_spec,
        &host.group_add,
        passwd.as_deref(),
        group.as_deref(),
        ctx.ngroups_max,
    )?;
    let env = environment(cfg, image, &ns.hostname, user.home.as_deref())?;
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(SpecBuildError::ResourceRange {
            field: "OomScoreAdj",
            value: host.oom_score_adj,
            expected: "use -1000..1000",
        });
    }
    let set = cap_set(caps);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .inheritable(Capabilities::new())
        .ambient(Capabilities::new())
        .build()
        .expect("all capability sets are set");
    let no_new_privileges = opts
        .no_new_privileges
        .unwrap_or(defaults::NO_NEW_PRIVILEGES && !host.privileged);
    let mut process = ProcessBuilder::default()
        .terminal(cfg.tty)
        .user(
            UserBuilder::default()
                .uid(user.uid)
                .gid(user.gid)
                .additional_gids(user.additional_gids)
                .build()
                .expect("all user fields are set"),
        )
        .args(args)
        .env(env)
        .cwd(working_dir(cfg, image)?)
        .capabilities(capabilities)
        .rlimits(rlimits(host, ctx)?)
        .no_new_privileges(no_new_privileges)
        .build()
        .expect("all process fields are set");
    if let [height, width] = host.console_size[..] {
        if cfg.tty && height > 0 && width > 0 {
            process.set_console_size(Some(
                BoxBuilder::default()
                    .height(height as u64)
                    .width(width as u64)
                    .build()
                    .expect("all console size fields are set"),
            ));
        }
    }
    if host.oom_score_adj != 0 {
        process.set_oom_score_adj(Some(host.oom_score_adj as i32));
    }
    if let Some(profile) = opts.apparmor.as_deref().filter(|p| *p != "unconfined") {
        process.set_apparmor_profile(Some(profile.to_owned()));
    }
    Ok(process)
}
