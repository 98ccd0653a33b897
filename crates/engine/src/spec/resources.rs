//! cgroup limits (memory, CPU, pids, blkio) and devices (`--device`, `--device-cgroup-rule`).

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, Mount, MountBuilder,
};

use super::namespaces::NsPlan;
use super::{BuildContext, SpecBuildError};
use crate::defaults;
use crate::docker_types::HostConfig;

/// The smallest memory limit Docker accepts: below it a container cannot even start.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` uses.
const CPU_PERIOD: i64 = 100_000;

fn range(
    field: &'static str,
    value: i64,
    ok: bool,
    expected: &'static str,
) -> Result<(), SpecBuildError> {
    if ok {
        Ok(())
    } else {
        Err(SpecBuildError::ResourceRange {
            field,
            value,
            expected,
        })
    }
}

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

fn valid_access(a: &str) -> bool {
    !a.is_empty() && a.chars().all(|c| "rwm".contains(c))
}

fn valid_cpuset(s: &str) -> bool {
    s.split(',').all(|part| {
        let mut ends = part.splitn(2, '-');
        let ok = |x: Option<&str>| {
            x.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        };
        let first = ends.next();
        match ends.next() {
            None => ok(first),
            Some(last) => ok(first) && ok(Some(last)),
        }
    })
}

/// The members of a valid CPU/node list (`0-3,5`); None if a range is backwards.
fn cpuset_members(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut out = std::collections::BTreeSet::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if a > b || b - a > 65536 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

/// `c 1:3 rwm`, `b 8:* r`, `a *:* rwm`.
fn parse_cgroup_rule(index: usize, text: &str) -> Result<LinuxDeviceCgroup, SpecBuildError> {
    let bad = || SpecBuildError::DeviceCgroupRule {
        index,
        rule: text.to_owned(),
    };
    let f: Vec<&str> = text.split_whitespace().collect();
    let [typ, numbers, access] = f.as_slice() else {
        return Err(bad());
    };
    let typ = match *typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let num = |n: &str| -> Result<Option<i64>, SpecBuildError> {
        if n == "*" {
            Ok(None)
        } else {
            n.parse().map(Some).map_err(|_| bad())
        }
    };
    if !valid_access(access) {
        return Err(bad());
    }
    Ok(rule(true, typ, num(major)?, num(minor)?, access))
}

/// A device node for the runtime to create, or in a user namespace (where it cannot mknod)
/// the host's node bound.
fn add_device(
    ns: &NsPlan,
    host_path: &str,
    target: &str,
    typ: LinuxDeviceType,
    dev: crate::HostDevice,
    nodes: &mut Vec<LinuxDevice>,
    binds: &mut Vec<Mount>,
) {
    if ns.in_userns {
        binds.push(
            MountBuilder::default()
                .destination(target)
                .typ("bind")
                .source(host_path)
                .options(vec!["bind".to_owned(), "rprivate".to_owned()])
                .build()
                .expect("all mount fields are set"),
        );
    } else {
        nodes.push(
            LinuxDeviceBuilder::default()
                .path(target)
                .typ(typ)
                .major(dev.major)
                .minor(dev.minor)
                .file_mode(dev.mode & 0o7777)
                .uid(dev.uid)
                .gid(dev.gid)
                .build()
                .expect("all device fields are set"),
        );
    }
}

/// Resources, device nodes to create, and device binds (in a user namespace, where the
/// runtime cannot mknod, the host's node is bind-mounted instead).
pub(super) fn build(
    host: &HostConfig,
    ctx: &BuildContext,
    ns: &NsPlan,
) -> Result<(LinuxResources, Vec<LinuxDevice>, Vec<Mount>), SpecBuildError> {
    let mut res = LinuxResources::default();

    // Memory.
    let m = host;
    range(
        "Memory",
        m.memory,
        m.memory == 0 || m.memory >= MIN_MEMORY,
        "use 0 (no limit) or at least 6MB",
    )?;
    range(
        "MemoryReservation",
        m.memory_reservation,
        m.memory_reservation >= 0 && (m.memory == 0 || m.memory_reservation <= m.memory),
        "use 0 or a value up to Memory",
    )?;
    let swap = match m.memory_swap {
        0 if m.memory > 0 => Some(m.memory * 2),
        0 => None,
        -1 => Some(-1),
        s if s > 0 && m.memory == 0 => {
            return Err(SpecBuildError::ResourceConflict {
                field: "MemorySwap",
                other: "an unset Memory (set Memory too)",
            });
        }
        s => {
            range(
                "MemorySwap",
                s,
                s >= m.memory,
                "use -1 (unlimited) or at least Memory (memory plus swap)",
            )?;
            Some(s)
        }
    };
    let swappiness = match m.memory_swappiness {
        None | Some(-1) => None,
        Some(s) => {
            range(
                "MemorySwappiness",
                s,
                (0..=100).contains(&s),
                "use 0..100, or -1 for the default",
            )?;
            Some(s as u64)
        }
    };
    if m.memory != 0
        || m.memory_reservation != 0
        || swap.is_some()
        || swappiness.is_some()
        || m.oom_kill_disable.is_some()
    {
        let mut b = LinuxMemoryBuilder::default();
        if m.memory > 0 {
            b = b.limit(m.memory);
        }
        if m.memory_reservation > 0 {
            b = b.reservation(m.memory_reservation);
        }
        if let Some(s) = swap {
            b = b.swap(s);
        }
        if let Some(s) = swappiness {
            b = b.swappiness(s);
        }
        if let Some(d) = m.oom_kill_disable {
            b = b.disable_oom_killer(d);
        }
        res.set_memory(Some(b.build().expect("memory fields are valid")));
    }

    // CPU.
    if host.nano_cpus != 0 && host.cpu_quota != 0 {
        return Err(SpecBuildError::ResourceConflict {
            field: "NanoCpus",
            other: "CpuQuota",
        });
    }
    if host.nano_cpus != 0 && host.cpu_period != 0 {
        return Err(SpecBuildError::ResourceConflict {
            field: "NanoCpus",
            other: "CpuPeriod",
        });
    }
    // Docker: at most as many CPUs as the host has.
    if let Some(online) = ctx.host.online_cpus().as_deref().and_then(cpuset_members) {
        let count = online.len();
        if host.nano_cpus > (count as i64) * 1_000_000_000 {
            return Err(SpecBuildError::TooManyCpus {
                value: host.nano_cpus,
                count,
            });
        }
    }
    let (quota, period) = if host.nano_cpus != 0 {
        let quota = host.nano_cpus / (1_000_000_000 / CPU_PERIOD);
        range(
            "NanoCpus",
            host.nano_cpus,
            quota >= 1000,
            "use at least 0.01 CPUs (10000000)",
        )?;
        (quota, CPU_PERIOD)
    } else {
        (host.cpu_quota, host.cpu_period)
    };
    range(
        "CpuQuota",
        quota,
        quota == 0 || quota == -1 || quota >= 1000,
        "use at least 1000 (1ms), or -1 for none",
    )?;
    range(
        "CpuPeriod",
        period,
        period == 0 || (1000..=1_000_000).contains(&period),
        "use 1000..1000000 (1ms to 1s)",
    )?;
    range(
        "CpuShares",
        host.cpu_shares,
        host.cpu_shares == 0 || (2..=262_144).contains(&host.cpu_shares),
        "use 2..262144",
    )?;
    for (field, value) in [
        ("CpusetCpus", &host.cpuset_cpus),
        ("CpusetMems", &host.cpuset_mems),
    ] {
        if value.is_empty() {
            continue;
        }
        let Some(wanted) = cpuset_members(value).filter(|_| valid_cpuset(value)) else {
            return Err(SpecBuildError::Cpuset {
                field,
                value: value.clone(),
            });
        };
        // Docker refuses CPUs and nodes the host lacks (the cgroup write would fail at
        // start with ERANGE).
        let (online, what) = if field == "CpusetCpus" {
            (ctx.host.online_cpus(), "CPUs")
        } else {
            (ctx.host.online_mems(), "memory nodes")
        };
        if let Some(available) = online {
            if cpuset_members(&available).is_some_and(|a| !wanted.is_subset(&a)) {
                return Err(SpecBuildError::CpusetUnavailable {
                    field,
                    what,
                    value: value.clone(),
                    available,
                });
            }
        }
    }
    if quota != 0
        || period != 0
        || host.cpu_shares != 0
        || !host.cpuset_cpus.is_empty()
        || !host.cpuset_mems.is_empty()
    {
        let mut b = LinuxCpuBuilder::default();
        if quota != 0 {
            b = b.quota(quota);
        }
        if period != 0 {
            b = b.period(period as u64);
        }
        if host.cpu_shares != 0 {
            b = b.shares(host.cpu_shares as u64);
        }
        if !host.cpuset_cpus.is_empty() {
            b = b.cpus(host.cpuset_cpus.clone());
        }
        if !host.cpuset_mems.is_empty() {
            b = b.mems(host.cpuset_mems.clone());
        }
        res.set_cpu(Some(b.build().expect("cpu fields are valid")));
    }

    // Block I/O.
    let w = i64::from(host.blkio_weight);
    range(
        "BlkioWeight",
        w,
        w == 0 || (10..=1000).contains(&w),
        "use 10..1000, or 0 for the default",
    )?;
    if w != 0 {
        res.set_block_io(Some(
            LinuxBlockIoBuilder::default()
                .weight(host.blkio_weight)
                .build()
                .expect("blkio fields are valid"),
        ));
    }

    // Pids: hull's default unless the request says. The docker CLI sends 0 when
    // --pids-limit was not given, so 0 keeps the default; a negative value (-1) asks for
    // unlimited.
    let pids = match host.pids_limit {
        None | Some(0) => Some(defaults::PIDS_LIMIT),
        Some(n) if n < 0 => None,
        Some(n) => Some(n),
    };
    if let Some(limit) = pids {
        res.set_pids(Some(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .expect("pids limit is set"),
        ));
    }

    // Devices: deny everything but the runtime's standard nodes (the runtime adds those
    // rules), then what the request allows.
    let mut rules = vec![rule(host.privileged, LinuxDeviceType::A, None, None, "rwm")];
    let mut nodes = Vec::new();
    let mut binds = Vec::new();
    for (index, d) in host.devices.iter().enumerate() {
        let host_path = d.path_on_host.as_str();
        if !host_path.starts_with('/') {
            return Err(SpecBuildError::RelativePath {
                field: format!("Devices[{index}].PathOnHost"),
                value: host_path.to_owned(),
            });
        }
        let target = if d.path_in_container.is_empty() {
            host_path
        } else {
            d.path_in_container.as_str()
        };
        if !target.starts_with('/') {
            return Err(SpecBuildError::RelativePath {
                field: format!("Devices[{index}].PathInContainer"),
                value: target.to_owned(),
            });
        }
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        if !valid_access(perms) {
            return Err(SpecBuildError::DevicePermissions {
                index,
                perms: perms.to_owned(),
            });
        }
        let dev = ctx.host.device(Path::new(host_path)).map_err(|source| {
            SpecBuildError::DeviceLookup {
                index,
                path: host_path.into(),
                source,
            }
        })?;
        let typ = match dev.kind {
            'c' => LinuxDeviceType::C,
            'b' => LinuxDeviceType::B,
            _ => {
                return Err(SpecBuildError::DeviceNotNode {
                    index,
                    path: host_path.into(),
                })
            }
        };
        rules.push(rule(true, typ, Some(dev.major), Some(dev.minor), perms));
        add_device(ns, host_path, target, typ, dev, &mut nodes, &mut binds);
    }
    // --privileged: the host's device nodes too, as Docker (the cgroup rule above allows all).
    if host.privileged {
        for (path, dev) in ctx.host.host_devices() {
            let typ = if dev.kind == 'b' {
                LinuxDeviceType::B
            } else {
                LinuxDeviceType::C
            };
            let p = path.to_string_lossy().into_owned();
            let taken = nodes.iter().any(|n| n.path() == &path)
                || binds.iter().any(|b| b.destination() == &path);
            if !taken {
                add_device(ns, &p, &p, typ, dev, &mut nodes, &mut binds);
            }
        }
    }
    for (index, text) in host.device_cgroup_rules.iter().enumerate() {
        rules.push(parse_cgroup_rule(index, text)?);
    }
    res.set_devices(Some(rules));
    Ok((res, nodes, binds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_rules_and_cpusets_parse() {
        let r = parse_cgroup_rule(0, "c 10:* rwm").unwrap();
        assert_eq!(
            (r.typ(), r.major(), r.minor()),
            (Some(LinuxDeviceType::C), Some(10), None)
        );
        for bad in ["c 10 rwm", "x 1:1 r", "c 1:1 rwx", "c a:1 r", "c 1:1"] {
            let e = parse_cgroup_rule(3, bad).unwrap_err().to_string();
            assert!(e.starts_with("DeviceCgroupRules[3]"), "{e}");
        }
        assert!(valid_cpuset("0-3,5"));
        assert!(valid_cpuset("7"));
        assert!(!valid_cpuset("0-"));
        assert!(!valid_cpuset("a"));
        assert!(!valid_cpuset("1,,2"));
        assert_eq!(
            cpuset_members("0-2,5")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [0, 1, 2, 5]
        );
        assert!(cpuset_members("3-1").is_none());
    }
}
