//! The device cgroup rules a container gets: the spec's rules, then allow rules for the
//! devices every container has (/dev/null, zero, full, random, urandom, tty, console, ptmx,
//! pts) and for the devices the spec creates, as runc adds them.

use oci_spec::runtime::{Linux, LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

fn rule(typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some("rwm".into()));
    r
}

/// The resources to apply: the spec's, with the default device allow rules appended.
pub fn effective_resources(linux: &Linux) -> Option<LinuxResources> {
    let mut res = linux.resources().clone()?;
    let Some(spec_rules) = res.devices().clone() else {
        return Some(res);
    };
    let mut rules = spec_rules;
    let c = LinuxDeviceType::C;
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(rule(c, Some(major), Some(minor)));
    }
    rules.push(rule(c, Some(136), None));
    for d in linux.devices().iter().flatten() {
        rules.push(rule(d.typ(), Some(d.major()), Some(d.minor())));
    }
    res.set_devices(Some(rules));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_spec_rules() {
        let linux: Linux = serde_json::from_str(
            r#"{"resources":{"devices":[{"allow":false,"access":"rwm"}]},
                "devices":[{"path":"/dev/fuse","type":"c","major":10,"minor":229}]}"#,
        )
        .unwrap();
        let r = effective_resources(&linux).unwrap();
        let d = r.devices().as_ref().unwrap();
        assert!(!d[0].allow(), "the spec's deny-all stays first");
        assert!(d
            .iter()
            .any(|x| x.allow() && x.major() == Some(1) && x.minor() == Some(3)));
        assert!(d
            .iter()
            .any(|x| x.allow() && x.major() == Some(10) && x.minor() == Some(229)));
    }
}
