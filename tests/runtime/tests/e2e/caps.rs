//! Capabilities: the five sets in /proc/self/status are the spec's, and dropped ones are gone.

use hull_e2e_runtime::spec::{cap_mask, DEFAULT_CAPS};
use hull_e2e_runtime::{require_root, Case, Out};
use serde_json::json;

const SCRIPT: &str = "grep ^Cap /proc/self/status; /probe raw-socket; /probe mknod /tmp/null; true";

fn cap_line(out: &Out, set: &str) -> u64 {
    let l = out.must_line(&format!("{set}:"));
    u64::from_str_radix(l[set.len() + 1..].trim(), 16).unwrap_or_else(|_| panic!("bad {l}"))
}

fn assert_sets(out: &Out, bnd: &[&str], inh: &[&str], amb: &[&str]) {
    for (set, names) in [
        ("CapEff", bnd),
        ("CapPrm", bnd),
        ("CapBnd", bnd),
        ("CapInh", inh),
    ] {
        let (got, want) = (cap_line(out, set), cap_mask(names));
        assert_eq!(got, want, "{set}: got {got:016x}, want {want:016x}\n{out}");
    }
    let (got, want) = (cap_line(out, "CapAmb"), cap_mask(amb));
    assert_eq!(got, want, "CapAmb: got {got:016x}, want {want:016x}\n{out}");
}

#[test]
fn default_capabilities_match_spec() {
    require_root!();
    let c = Case::new("caps-default", &["sh", "-c", SCRIPT]);
    let out = c.run().ok();
    assert_eq!(cap_mask(DEFAULT_CAPS), 0xa80425fb, "Docker's default set");
    assert_sets(&out, DEFAULT_CAPS, &[], &[]);
    // The default set keeps CAP_NET_RAW and CAP_MKNOD: the probes work.
    assert_eq!(out.must_line("raw-socket:"), "raw-socket: ok");
    assert_eq!(out.must_line("mknod:"), "mknod: ok");
}

#[test]
fn inheritable_and_ambient_capabilities() {
    require_root!();
    let mut c = Case::new("caps-amb", &["sh", "-c", SCRIPT]);
    let bnd = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_SETUID",
        "CAP_SETGID",
    ];
    let (inh, amb) = (
        ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        ["CAP_NET_BIND_SERVICE"],
    );
    c.spec["process"]["capabilities"] = json!({
        "bounding": bnd, "effective": bnd, "permitted": bnd, "inheritable": inh, "ambient": amb
    });
    let out = c.run().ok();
    assert_sets(&out, &bnd, &inh, &amb);
}

#[test]
fn dropped_capabilities_are_enforced() {
    require_root!();
    let mut c = Case::new("caps-drop", &["sh", "-c", SCRIPT]);
    let reduced: Vec<&str> = DEFAULT_CAPS
        .iter()
        .copied()
        .filter(|c| !["CAP_NET_RAW", "CAP_MKNOD"].contains(c))
        .collect();
    for set in ["bounding", "effective", "permitted"] {
        c.spec["process"]["capabilities"][set] = json!(reduced);
    }
    let out = c.run().ok();
    assert_sets(&out, &reduced, &[], &[]);
    assert_eq!(out.must_line("raw-socket:"), "raw-socket: errno=1 (EPERM)");
    assert_eq!(out.must_line("mknod:"), "mknod: errno=1 (EPERM)");
}
