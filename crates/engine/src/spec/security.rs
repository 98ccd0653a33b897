//! `--security-opt`, `--cap-add/--cap-drop`, `--privileged` and the seccomp profile.

use oci_spec::runtime::LinuxSeccomp;

use super::SpecBuildError;
use crate::defaults;
use crate::docker_types::HostConfig;

/// What `--security-opt seccomp=` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SeccompChoice {
    /// hull's default profile.
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<profile JSON>` (the docker CLI sends the file's text).
    Profile(String),
}

/// The request's `SecurityOpt` entries, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecurityOpts {
    pub seccomp: SeccompChoice,
    /// `no-new-privileges[:true|false]`; None: hull's default.
    pub no_new_privileges: Option<bool>,
    /// `apparmor=<profile>`; `unconfined` is kept as such.
    pub apparmor: Option<String>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub systempaths_unconfined: bool,
}

impl SecurityOpts {
    /// Parses Docker's `key=value` (or legacy `key:value`) options.
    pub(crate) fn parse(opts: &[String]) -> Result<Self, SpecBuildError> {
        let mut out = SecurityOpts {
            seccomp: SeccompChoice::Default,
            no_new_privileges: None,
            apparmor: None,
            systempaths_unconfined: false,
        };
        for opt in opts {
            let bad = || SpecBuildError::SecurityOpt { opt: opt.clone() };
            if opt == "no-new-privileges" {
                out.no_new_privileges = Some(true);
                continue;
            }
            // The key ends at the first `=` or `:` (a profile's JSON after it has both).
            let (key, value) = match (opt.find('='), opt.find(':')) {
                (Some(e), Some(c)) if c < e => opt.split_at(c),
                (Some(e), _) => opt.split_at(e),
                (None, Some(c)) => opt.split_at(c),
                (None, None) => return Err(bad()),
            };
            let value = &value[1..];
            match key {
                "seccomp" if value == "unconfined" => out.seccomp = SeccompChoice::Unconfined,
                "seccomp" if !value.is_empty() => {
                    out.seccomp = SeccompChoice::Profile(value.to_owned())
                }
                "no-new-privileges" => {
                    out.no_new_privileges = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad()),
                    })
                }
                "apparmor" if !value.is_empty() => out.apparmor = Some(value.to_owned()),
                "systempaths" if value == "unconfined" => out.systempaths_unconfined = true,
                // SELinux labels: hull has no SELinux support; `label=disable` asks for nothing.
                "label" if value == "disable" => {}
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

/// `NET_ADMIN`, `cap_net_admin`, `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`; `ALL` stays `ALL`.
pub(crate) fn normalize_cap(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

fn checked(field: &str, list: &[String]) -> Result<Vec<String>, SpecBuildError> {
    list.iter()
        .enumerate()
        .map(|(i, name)| {
            let cap = normalize_cap(name);
            if cap == "ALL" || defaults::ALL_CAPS.contains(&cap.as_str()) {
                Ok(cap)
            } else {
                Err(SpecBuildError::UnknownCapability {
                    field: format!("{field}[{i}]"),
                    name: name.clone(),
                })
            }
        })
        .collect()
}

/// The container's capability set (bounding = effective = permitted), Docker's rules:
/// `--privileged` is every capability; `--cap-add ALL` is every one but the dropped ones;
/// `--cap-drop ALL` keeps only the added ones; otherwise hull's default minus drops plus adds
/// (an added capability wins over the same one dropped). "Every" is every capability in
/// `bounding` (hulld's own bounding set), as containerd's WithAllCurrentCapabilities.
pub(crate) fn capabilities(
    host: &HostConfig,
    bounding: Option<u64>,
) -> Result<Vec<String>, SpecBuildError> {
    let add = checked("CapAdd", &host.cap_add)?;
    let drop = checked("CapDrop", &host.cap_drop)?;
    // ALL_CAPS is in capability-number order.
    let all = || {
        defaults::ALL_CAPS
            .iter()
            .enumerate()
            .filter(move |(n, _)| bounding.is_none_or(|b| b & (1u64 << n) != 0))
            .map(|(_, c)| c.to_string())
    };
    let caps: Vec<String> = if host.privileged {
        all().collect()
    } else if add.iter().any(|c| c == "ALL") {
        all().filter(|c| !drop.contains(c)).collect()
    } else if drop.iter().any(|c| c == "ALL") {
        add
    } else {
        let mut caps: Vec<String> = defaults::DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drop.contains(c))
            .collect();
        caps.extend(add);
        caps
    };
    let mut out: Vec<String> = Vec::new();
    for c in caps {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}

/// The seccomp section: none for `--privileged` or `seccomp=unconfined`, the request's profile,
/// or hull's default, each resolved for the final capability set.
pub(crate) fn seccomp(
    host: &HostConfig,
    opts: &SecurityOpts,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>, SpecBuildError> {
    if host.privileged {
        return Ok(None);
    }
    match &opts.seccomp {
        SeccompChoice::Unconfined => Ok(None),
        SeccompChoice::Profile(json) => {
            hull_seccomp::from_docker_json(json, caps, hull_seccomp::Arch::native())
                .map(Some)
                .map_err(|source| SpecBuildError::SeccompProfile { source })
        }
        SeccompChoice::Default => defaults::seccomp(caps)
            .map(Some)
            .map_err(|source| SpecBuildError::DefaultSeccomp { source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_capability_means_every_one_hulld_has() {
        let host: HostConfig = serde_json::from_str(r#"{"Privileged": true}"#).unwrap();
        let all = capabilities(&host, None).unwrap();
        assert_eq!(all.len(), defaults::ALL_CAPS.len());
        // hulld without CAP_SYS_RESOURCE (24), as in a container that lacks it.
        let bounding = ((1u64 << 41) - 1) & !(1 << 24);
        let caps = capabilities(&host, Some(bounding)).unwrap();
        assert_eq!(caps.len(), defaults::ALL_CAPS.len() - 1);
        assert!(!caps.iter().any(|c| c == "CAP_SYS_RESOURCE"));
        let host: HostConfig =
            serde_json::from_str(r#"{"CapAdd": ["ALL"], "CapDrop": ["CHOWN"]}"#).unwrap();
        let caps = capabilities(&host, Some(bounding)).unwrap();
        assert!(!caps
            .iter()
            .any(|c| c == "CAP_SYS_RESOURCE" || c == "CAP_CHOWN"));
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        // The default set is not widened or narrowed by the bounding set.
        let host: HostConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(capabilities(&host, Some(bounding)).unwrap().len(), 11);
    }
}
