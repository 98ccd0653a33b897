//! The container's mounts: hull's kernel filesystems, then `-v`/`--mount` binds and volumes,
//! `--tmpfs`, anonymous volumes of the image, and the daemon's resolv.conf/hosts/hostname.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::namespaces::NsPlan;
use super::{BuildContext, SpecBuildError};
use crate::defaults::{self, MountPlan};
use crate::docker_types::{ContainerConfig, HostConfig, ImageConfigSubset, MountSpec};

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn mount(dest: &str, typ: &str, source: &Path, options: Vec<String>) -> Mount {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options)
        .build()
        .expect("all mount fields are set")
}

fn absolute(field: String, value: &str) -> Result<(), SpecBuildError> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(SpecBuildError::RelativePath {
            field,
            value: value.to_owned(),
        })
    }
}

/// A bind of `source` at `target`: recursive unless asked, private unless asked.
fn bind(target: &str, source: &Path, ro: bool, propagation: &str, recursive: bool) -> Mount {
    let mut options = vec![
        if recursive { "rbind" } else { "bind" }.to_owned(),
        if propagation.is_empty() {
            defaults::BIND_PROPAGATION
        } else {
            propagation
        }
        .to_owned(),
    ];
    if ro {
        options.push("ro".to_owned());
    }
    mount(target, "bind", source, options)
}

fn volume(
    ctx: &BuildContext,
    field: String,
    name: &str,
    target: &str,
) -> Result<PathBuf, SpecBuildError> {
    ctx.host
        .volume_path(name, target)
        .ok_or_else(|| SpecBuildError::VolumeNotFound {
            field,
            name: name.to_owned(),
        })
}

/// `-v SOURCE:TARGET[:OPTIONS]`: SOURCE is a host path (absolute) or a volume name.
fn parse_bind(index: usize, spec: &str, ctx: &BuildContext) -> Result<Mount, SpecBuildError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, opts) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, o] => (*s, *t, *o),
        _ => {
            return Err(SpecBuildError::BindFormat {
                index,
                bind: spec.to_owned(),
            })
        }
    };
    if source.is_empty() {
        return Err(SpecBuildError::BindFormat {
            index,
            bind: spec.to_owned(),
        });
    }
    absolute(format!("Binds[{index}]"), target)?;
    let (mut ro, mut propagation) = (false, "");
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => ro = true,
            "rw" => ro = false,
            // SELinux relabelling and volume copy-up: nothing to do for hull's spec.
            "z" | "Z" | "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => propagation = p,
            _ => {
                return Err(SpecBuildError::BindOption {
                    field: format!("Binds[{index}]"),
                    option: o.to_owned(),
                })
            }
        }
    }
    let host_path = if source.starts_with('/') {
        PathBuf::from(source)
    } else {
        volume(ctx, format!("Binds[{index}]"), source, target)?
    };
    Ok(bind(target, &host_path, ro, propagation, true))
}

fn tmpfs(target: &str, extra: &[String]) -> Mount {
    let mut options: Vec<String> = defaults::TMPFS_OPTIONS.map(String::from).to_vec();
    options.extend(extra.iter().cloned());
    mount(target, "tmpfs", Path::new("tmpfs"), options)
}

/// `--mount type=bind|volume|tmpfs,...`.
fn parse_mount(index: usize, m: &MountSpec, ctx: &BuildContext) -> Result<Mount, SpecBuildError> {
    let field = |f: &str| format!("Mounts[{index}].{f}");
    absolute(field("Target"), &m.target)?;
    let bind_opts = m.bind_options.clone().unwrap_or_default();
    match m.r#type.as_str() {
        "bind" => {
            absolute(field("Source"), &m.source)?;
            let p = bind_opts.propagation.as_str();
            if !p.is_empty() && !PROPAGATIONS.contains(&p) {
                return Err(SpecBuildError::BindOption {
                    field: field("BindOptions.Propagation"),
                    option: p.to_owned(),
                });
            }
            Ok(bind(
                &m.target,
                Path::new(&m.source),
                m.read_only,
                p,
                !bind_opts.non_recursive,
            ))
        }
        "volume" => {
            let path = volume(ctx, field("Source"), &m.source, &m.target)?;
            Ok(bind(&m.target, &path, m.read_only, "", true))
        }
        "tmpfs" => {
            let t = m.tmpfs_options.clone().unwrap_or_default();
            let mut extra = Vec::new();
            if t.size_bytes < 0 {
                return Err(SpecBuildError::Size {
                    field: field("TmpfsOptions.SizeBytes"),
                    value: t.size_bytes,
                });
            }
            if t.size_bytes > 0 {
                extra.push(format!("size={}", t.size_bytes));
            }
            if t.mode != 0 {
                extra.push(format!("mode={:o}", t.mode & 0o7777));
            }
            if m.read_only {
                extra.push("ro".to_owned());
            }
            Ok(tmpfs(&m.target, &extra))
        }
        other => Err(SpecBuildError::MountType {
            index,
            typ: other.to_owned(),
        }),
    }
}

/// All mounts, kernel filesystems first, then the request's sorted parents-first.
pub(super) fn build(
    cfg: &ContainerConfig,
    host: &HostConfig,
    image: &ImageConfigSubset,
    ctx: &BuildContext,
    ns: &NsPlan,
) -> Result<Vec<Mount>, SpecBuildError> {
    if host.shm_size < 0 {
        return Err(SpecBuildError::Size {
            field: "ShmSize".to_owned(),
            value: host.shm_size,
        });
    }
    let mut user: Vec<Mount> = Vec::new();
    for (i, b) in host.binds.iter().enumerate() {
        user.push(parse_bind(i, b, ctx)?);
    }
    for (i, m) in host.mounts.iter().enumerate() {
        user.push(parse_mount(i, m, ctx)?);
    }
    for (target, opts) in &host.tmpfs {
        absolute(format!("Tmpfs[{target:?}]"), target)?;
        let extra: Vec<String> = opts
            .split(',')
            .filter(|o| !o.is_empty())
            .map(String::from)
            .collect();
        user.push(tmpfs(target, &extra));
    }
    let covered = |mounts: &[Mount], target: &str| {
        mounts.iter().any(|m| m.destination() == Path::new(target))
    };
    // Anonymous volumes (`-v /data`, the image's VOLUME) not already mounted over.
    for target in cfg.volumes.keys().chain(image.volumes.keys()) {
        if !covered(&user, target) {
            absolute(format!("Volumes[{target:?}]"), target)?;
            let path = volume(ctx, format!("Volumes[{target:?}]"), "", target)?;
            user.push(bind(target, &path, false, "", true));
        }
    }
    for (target, file) in [
        ("/etc/resolv.conf", &ctx.resolv_conf),
        ("/etc/hosts", &ctx.hosts),
        ("/etc/hostname", &ctx.hostname_file),
    ] {
        if let Some(file) = file {
            if !covered(&user, target) {
                user.push(bind(target, file, host.readonly_rootfs, "", false));
            }
        }
    }
    for (i, m) in user.iter().enumerate() {
        let dest = m.destination();
        if dest == Path::new("/") {
            return Err(SpecBuildError::MountTarget {
                target: dest.to_owned(),
                reason: "would hide the container's root filesystem",
            });
        }
        if user[..i].iter().any(|other| other.destination() == dest) {
            return Err(SpecBuildError::MountTarget {
                target: dest.to_owned(),
                reason: "is the target of two mounts; keep one",
            });
        }
    }
    user.sort_by_key(|m| m.destination().components().count());

    let shm_size = if host.shm_size == 0 {
        defaults::SHM_SIZE
    } else {
        host.shm_size
    };
    let mut all: Vec<Mount> = defaults::mounts(MountPlan {
        shm_size,
        own_netns: ns.sysfs_mountable,
        host_ipc: ns.host_ipc,
        privileged: host.privileged,
    })
    .into_iter()
    .filter(|m| !covered(&user, &m.destination().to_string_lossy()))
    .collect();
    all.extend(user);
    Ok(all)
}
