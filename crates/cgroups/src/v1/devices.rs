//! v1 devices: deny everything ("a" to devices.deny), then each rule in order to
//! devices.allow or devices.deny, as runc does.

use std::path::Path;

use oci_spec::runtime::LinuxDeviceCgroup;

use super::Error;
use crate::{devices, fs};

/// The (file, line) writes for a rule list, in order.
pub(super) fn plan(rules: &[LinuxDeviceCgroup]) -> Result<Vec<(&'static str, String)>, Error> {
    let rules = devices::convert_all(rules)
        .map_err(|(index, reason)| Error::DeviceRule { index, reason })?;
    let mut out = vec![("devices.deny", "a".to_owned())];
    for rule in rules {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push((file, rule.v1_line()));
    }
    Ok(out)
}

pub(super) fn set(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    for (file, line) in plan(rules)? {
        fs::write(&dir.join(file), &line)?;
    }
    Ok(())
}
