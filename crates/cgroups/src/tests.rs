use std::path::Path;

use super::*;
use crate::testutil::{fake_v1, fake_v2_dirs, files};

#[test]
fn detect_fake_trees() {
    let d = tempfile::tempdir().unwrap();
    assert!(matches!(detect(d.path()), Err(Error::NoCgroupFs { .. })));
    assert!(matches!(
        detect(&d.path().join("missing")),
        Err(Error::NoCgroupFs { .. })
    ));

    let v2 = tempfile::tempdir().unwrap();
    fake_v2_dirs(v2.path(), "x", "cpu memory", "");
    assert_eq!(detect(v2.path()).unwrap(), Hierarchy::V2);

    let v1 = tempfile::tempdir().unwrap();
    fake_v1(v1.path(), &["memory", "cpu,cpuacct"], "hull/a", false);
    assert_eq!(detect(v1.path()).unwrap(), Hierarchy::V1);

    // An empty unified/ without cgroup.controllers (not mounted) does not make it hybrid.
    std::fs::create_dir(v1.path().join("unified")).unwrap();
    assert_eq!(detect(v1.path()).unwrap(), Hierarchy::V1);
    files(&v1.path().join("unified"), &[("cgroup.controllers", "")]);
    assert_eq!(detect(v1.path()).unwrap(), Hierarchy::Hybrid);
}

#[test]
fn new_manager_path_rules() {
    let d = tempfile::tempdir().unwrap();
    fake_v2_dirs(d.path(), "", "", "");
    let rel = |p: Option<&str>| {
        new_manager(d.path(), p, "abc")
            .map(|m| m.relative_path().to_owned())
            .map_err(|e| e.to_string())
    };
    assert_eq!(rel(None).unwrap(), Path::new("hull/abc"));
    assert_eq!(rel(Some("group/abc")).unwrap(), Path::new("hull/group/abc"));
    assert_eq!(rel(Some("/docker/abc")).unwrap(), Path::new("docker/abc"));
    let e = rel(Some("system.slice:docker:abc")).unwrap_err();
    assert!(e.contains("systemd-style"), "{e}");
    assert!(rel(Some("/../etc")).is_err());
    assert!(rel(Some("/hull")).is_err());
}

#[test]
fn validate_is_exposed_with_field_names() {
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"cpu": {"quota": 10}}"#).unwrap();
    let e = validate(&r).unwrap_err();
    assert!(matches!(e, Error::Validate(_)));
    assert!(
        e.to_string().starts_with("linux.resources.cpu.quota: "),
        "{e}"
    );
}
