//! The device allow-list rules of `linux.resources.devices`, in one model shared by the v1
//! writer (devices.allow / devices.deny lines) and the v2 eBPF program compiler.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// The largest major and minor numbers Linux has (12 and 20 bits).
pub const MAX_MAJOR: i64 = (1 << 12) - 1;
pub const MAX_MINOR: i64 = (1 << 20) - 1;

pub const ACCESS_MKNOD: u8 = 1;
pub const ACCESS_READ: u8 = 2;
pub const ACCESS_WRITE: u8 = 4;
pub const ACCESS_ALL: u8 = ACCESS_MKNOD | ACCESS_READ | ACCESS_WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Every device: a rule of this kind resets the list (deny all / allow all), whatever its
    /// numbers and access, as the v1 kernel treats it.
    All,
    Char,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub kind: Kind,
    /// `None`: any.
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACCESS_*` bits.
    pub access: u8,
}

impl Rule {
    /// The v1 line for devices.allow / devices.deny, e.g. "c 1:3 rwm" or "a *:* rwm".
    pub fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => "a",
            Kind::Char => "c",
            Kind::Block => "b",
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_owned(), |n| n.to_string());
        let mut access = String::new();
        for (bit, c) in [(ACCESS_READ, 'r'), (ACCESS_WRITE, 'w'), (ACCESS_MKNOD, 'm')] {
            if self.access & bit != 0 {
                access.push(c);
            }
        }
        format!("{kind} {}:{} {access}", num(self.major), num(self.minor))
    }
}

/// Parses an access string ("rwm", "r", ...); `None` if it holds anything else or repeats a
/// letter. An absent or empty string means "rwm".
pub fn parse_access(access: Option<&str>) -> Option<u8> {
    let s = access.unwrap_or("");
    if s.is_empty() {
        return Some(ACCESS_ALL);
    }
    let mut bits = 0;
    for c in s.chars() {
        let bit = match c {
            'r' => ACCESS_READ,
            'w' => ACCESS_WRITE,
            'm' => ACCESS_MKNOD,
            _ => return None,
        };
        if bits & bit != 0 {
            return None;
        }
        bits |= bit;
    }
    Some(bits)
}

/// A device number from the spec: absent or -1 mean "any".
fn number(n: Option<i64>, max: i64) -> Option<Option<u32>> {
    match n {
        None | Some(-1) => Some(None),
        Some(v) if (0..=max).contains(&v) => Some(Some(v as u32)),
        Some(_) => None,
    }
}

/// Converts one spec rule. `Ok(None)` for a rule that device cgroups cannot express and that
/// is skipped (FIFOs, type "p", are not subject to the device controller); `Err(reason)` for an
/// invalid one. Type "u" (unbuffered character device) is a character device.
pub fn convert(r: &LinuxDeviceCgroup) -> Result<Option<Rule>, String> {
    let kind = match r.typ().unwrap_or_default() {
        LinuxDeviceType::A => Kind::All,
        LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
        LinuxDeviceType::B => Kind::Block,
        LinuxDeviceType::P => return Ok(None),
    };
    let major = number(r.major(), MAX_MAJOR)
        .ok_or_else(|| format!("major {:?} is not -1 or 0..={MAX_MAJOR}", r.major()))?;
    let minor = number(r.minor(), MAX_MINOR)
        .ok_or_else(|| format!("minor {:?} is not -1 or 0..={MAX_MINOR}", r.minor()))?;
    let access = parse_access(r.access().as_deref()).ok_or_else(|| {
        format!(
            "access {:?} is not made of the letters r, w and m (each at most once)",
            r.access().as_deref().unwrap_or("")
        )
    })?;
    Ok(Some(Rule {
        allow: r.allow(),
        kind,
        major,
        minor,
        access,
    }))
}

/// Converts a rule list, skipping what `convert` skips. Callers validate first; an invalid
/// rule here is reported with its index.
pub fn convert_all(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, (usize, String)> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        if let Some(rule) = convert(r).map_err(|e| (i, e))? {
            out.push(rule);
        } else {
            tracing::debug!(
                index = i,
                "device rule for a FIFO skipped: not a cgroup rule"
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxDeviceCgroupBuilder;

    #[test]
    fn converts_and_formats() {
        let r = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        let rule = convert(&r).unwrap().unwrap();
        assert_eq!(rule.v1_line(), "c 1:3 rw");
        let all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .build()
            .unwrap();
        assert_eq!(convert(&all).unwrap().unwrap().v1_line(), "a *:* rwm");
        let u = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::U)
            .major(-1)
            .minor(5)
            .access("m")
            .build()
            .unwrap();
        assert_eq!(convert(&u).unwrap().unwrap().v1_line(), "c *:5 m");
        let p = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::P)
            .build()
            .unwrap();
        assert_eq!(convert(&p).unwrap(), None);
    }

    #[test]
    fn rejects_bad_access_and_numbers() {
        assert_eq!(parse_access(Some("rwm")), Some(ACCESS_ALL));
        assert_eq!(parse_access(Some("mr")), Some(ACCESS_MKNOD | ACCESS_READ));
        assert_eq!(parse_access(Some("rr")), None);
        assert_eq!(parse_access(Some("x")), None);
        let r = LinuxDeviceCgroupBuilder::default()
            .typ(LinuxDeviceType::C)
            .major(-2)
            .build()
            .unwrap();
        assert!(convert(&r).unwrap_err().contains("major"));
    }
}
