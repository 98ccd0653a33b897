//! Capabilities: the spec's five sets applied with the `caps` crate.

use std::collections::HashSet;
use std::str::FromStr;

use caps::{CapSet, Capability};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("setting the {set} capability set: {source}")]
    Set {
        set: &'static str,
        source: caps::errors::CapsError,
    },
}

/// Converts the spec's capability names to the caps crate's, skipping those the running kernel
/// does not know (as runc does).
pub fn to_caps(set: &Option<Capabilities>) -> HashSet<Capability> {
    static KNOWN: std::sync::OnceLock<HashSet<Capability>> = std::sync::OnceLock::new();
    let known = KNOWN
        .get_or_init(|| caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::all()));
    set.iter()
        .flatten()
        .filter_map(|c| Capability::from_str(&format!("CAP_{c}")).ok())
        .filter(|c| known.contains(c))
        .collect()
}

/// Reads which capabilities the kernel knows, so that a forked child does not need /proc.
pub fn prime() {
    let _ = to_caps(&None);
}

/// Drops from the bounding set every capability not in the spec's bounding set. Needs
/// CAP_SETPCAP, so it runs before the user switch.
pub fn drop_bounding(spec: &LinuxCapabilities) -> Result<(), CapsError> {
    let keep = to_caps(spec.bounding());
    let current = caps::read(None, CapSet::Bounding).unwrap_or_default();
    for c in current.difference(&keep) {
        caps::drop(None, CapSet::Bounding, *c).map_err(|source| CapsError::Set {
            set: "bounding",
            source,
        })?;
    }
    Ok(())
}

/// Sets permitted, effective and inheritable, then raises the ambient set.
pub fn apply(spec: &LinuxCapabilities) -> Result<(), CapsError> {
    let permitted = to_caps(spec.permitted());
    let effective = to_caps(spec.effective());
    let inheritable = to_caps(spec.inheritable());
    let ambient = to_caps(spec.ambient());
    // Inheritable first, while CAP_SETPCAP is still effective; then shrink effective into the
    // new permitted set (effective must always be a subset of permitted), set permitted, and
    // finally effective.
    caps::set(None, CapSet::Inheritable, &inheritable).map_err(|source| CapsError::Set {
        set: "inheritable",
        source,
    })?;
    let current = caps::read(None, CapSet::Effective).unwrap_or_default();
    let interim: HashSet<Capability> = current.intersection(&permitted).copied().collect();
    caps::set(None, CapSet::Effective, &interim).map_err(|source| CapsError::Set {
        set: "effective",
        source,
    })?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|source| CapsError::Set {
        set: "permitted",
        source,
    })?;
    caps::set(None, CapSet::Effective, &effective).map_err(|source| CapsError::Set {
        set: "effective",
        source,
    })?;
    caps::clear(None, CapSet::Ambient).map_err(|source| CapsError::Set {
        set: "ambient",
        source,
    })?;
    for c in ambient {
        caps::raise(None, CapSet::Ambient, c).map_err(|source| CapsError::Set {
            set: "ambient",
            source,
        })?;
    }
    Ok(())
}
