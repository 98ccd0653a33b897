//! Per-container uid/gid ranges from /etc/subuid (and /etc/subgid, same format) for the
//! `hull` user: each container gets its own 65536 ids, so two containers' roots are different
//! host users and cannot touch each other's files or processes.
//!
//! The caller reads the file, hands the text here, and persists which index each container
//! got (so the range survives a daemon restart); this module only does the arithmetic.

use crate::defaults::UserNamespacePlan;

/// The ids one container gets.
pub const RANGE_SIZE: u32 = 65536;

/// The /etc/subuid user whose ranges hull hands out.
pub const SUBID_USER: &str = "hull";

/// Why the subordinate id ranges cannot be read or handed out.
#[derive(Debug, thiserror::Error)]
pub enum SubidError {
    /// A line is not `name:start:count` with numbers.
    #[error("{file} line {line}: {text:?} is not NAME:START:COUNT")]
    ParseLine {
        file: String,
        line: usize,
        text: String,
    },
    /// The file gives the user no range of at least 65536 ids.
    #[error(
        "{file} gives user {user:?} no range of {RANGE_SIZE} ids or more; add a line such as \
         \"{user}:1000000:65536000\" (65536000 ids is room for 1000 containers)"
    )]
    NoRange { file: String, user: String },
    /// Every range is taken.
    #[error(
        "container index {index} is beyond the {capacity} user-namespace ranges {file} gives \
         {user:?}; give the user more ids in {file} or remove containers"
    )]
    Exhausted {
        file: String,
        user: String,
        index: u32,
        capacity: u32,
    },
}

/// hull's own range when /etc/subuid has none: 1000 slices of [`RANGE_SIZE`] from 1,000,000
/// (or, if other entries use that, from the first id after all of them).
pub const DEFAULT_START: u32 = 1_000_000;
pub const DEFAULT_COUNT: u32 = 1000 * RANGE_SIZE;

/// The line to append to /etc/subuid (or /etc/subgid) text `text` so that `user` has a
/// range, or None if it has one already. The new range overlaps no other entry. Lines that
/// do not parse are left to [`SubidRanges::parse`] to report, and count as no overlap.
pub fn missing_entry(text: &str, user: &str) -> Option<String> {
    let mut end_of_others: u64 = 0;
    let mut overlaps_default = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.split(':');
        let (Some(name), Some(start), Some(count)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if name == user {
            return None;
        }
        let (Ok(start), Ok(count)) = (start.parse::<u64>(), count.parse::<u64>()) else {
            continue;
        };
        end_of_others = end_of_others.max(start + count);
        let (ds, de) = (
            u64::from(DEFAULT_START),
            u64::from(DEFAULT_START) + u64::from(DEFAULT_COUNT),
        );
        if start < de && start + count > ds {
            overlaps_default = true;
        }
    }
    let start = if overlaps_default {
        // the next multiple of RANGE_SIZE after every other entry
        end_of_others.div_ceil(u64::from(RANGE_SIZE)) * u64::from(RANGE_SIZE)
    } else {
        u64::from(DEFAULT_START)
    };
    if start + u64::from(DEFAULT_COUNT) > u64::from(u32::MAX) {
        return None;
    }
    Some(format!("{user}:{start}:{DEFAULT_COUNT}"))
}

/// The ranges /etc/subuid gives a user, cut into per-container slices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubidRanges {
    file: String,
    user: String,
    /// (start, count) as listed, each with at least one whole slice.
    ranges: Vec<(u32, u32)>,
}

impl SubidRanges {
    /// Parses /etc/subuid-format `text` (`name:start:count` lines, `#` comments) and keeps the
    /// ranges of `user` (a numeric uid line is not matched; hull's user is named). `file` is
    /// only for messages.
    pub fn parse(file: &str, text: &str, user: &str) -> Result<Self, SubidError> {
        let mut ranges = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || SubidError::ParseLine {
                file: file.to_owned(),
                line: i + 1,
                text: line.to_owned(),
            };
            let mut parts = line.split(':');
            let (Some(name), Some(start), Some(count), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let start: u32 = start.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            // The last id must fit in 32 bits (and (uid_t)-1 is not a valid id).
            if u64::from(start) + u64::from(count) > u64::from(u32::MAX) {
                return Err(bad());
            }
            if name == user && count >= RANGE_SIZE {
                ranges.push((start, count));
            }
        }
        if ranges.is_empty() {
            return Err(SubidError::NoRange {
                file: file.to_owned(),
                user: user.to_owned(),
            });
        }
        Ok(SubidRanges {
            file: file.to_owned(),
            user: user.to_owned(),
            ranges,
        })
    }

    /// How many containers the ranges have room for.
    pub fn capacity(&self) -> u32 {
        self.ranges
            .iter()
            .map(|&(_, count)| count / RANGE_SIZE)
            .sum()
    }

    /// The range for the container with `index` (0, 1, 2, ...): distinct indexes get
    /// disjoint ranges, in file order.
    pub fn plan(&self, index: u32) -> Result<UserNamespacePlan, SubidError> {
        let mut left = index;
        for &(start, count) in &self.ranges {
            let slices = count / RANGE_SIZE;
            if left < slices {
                return Ok(UserNamespacePlan {
                    host_uid_start: start + left * RANGE_SIZE,
                    size: RANGE_SIZE,
                });
            }
            left -= slices;
        }
        Err(SubidError::Exhausted {
            file: self.file.clone(),
            user: self.user.clone(),
            index,
            capacity: self.capacity(),
        })
    }

    /// The lowest index not in `taken` (the indexes the caller has persisted for live
    /// containers).
    pub fn first_free(&self, taken: &[u32]) -> Result<u32, SubidError> {
        let capacity = self.capacity();
        (0..capacity)
            .find(|i| !taken.contains(i))
            .ok_or_else(|| SubidError::Exhausted {
                file: self.file.clone(),
                user: self.user.clone(),
                index: capacity,
                capacity,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment\nalice:100000:65536\nhull:1000000:131072\nhull:5000000:70000\n";

    #[test]
    fn a_missing_entry_is_made_without_overlap() {
        assert_eq!(missing_entry(TEXT, SUBID_USER), None, "hull has ranges");
        assert_eq!(
            missing_entry("", SUBID_USER).as_deref(),
            Some("hull:1000000:65536000")
        );
        assert_eq!(
            missing_entry("alice:100000:65536\n", SUBID_USER).as_deref(),
            Some("hull:1000000:65536000"),
            "alice's range is below the default"
        );
        let line = missing_entry("bob:2000000:65536\n", SUBID_USER).unwrap();
        assert_eq!(
            line, "hull:2097152:65536000",
            "after bob's range, slice-aligned"
        );
        let r = SubidRanges::parse("x", &format!("bob:2000000:65536\n{line}\n"), SUBID_USER);
        assert_eq!(r.unwrap().capacity(), 1000);
    }

    #[test]
    fn hands_out_disjoint_ranges_in_file_order() {
        let r = SubidRanges::parse("/etc/subuid", TEXT, SUBID_USER).unwrap();
        assert_eq!(r.capacity(), 3);
        let starts: Vec<u32> = (0..3).map(|i| r.plan(i).unwrap().host_uid_start).collect();
        assert_eq!(starts, [1_000_000, 1_065_536, 5_000_000]);
        assert!(r.plan(0).unwrap().size == RANGE_SIZE);
        let e = r.plan(3).unwrap_err().to_string();
        assert!(
            e.contains("index 3") && e.contains("3 user-namespace ranges"),
            "{e}"
        );
        assert_eq!(r.first_free(&[0, 2]).unwrap(), 1);
        assert!(r.first_free(&[0, 1, 2]).is_err());
    }

    #[test]
    fn missing_user_and_bad_lines_are_named() {
        let e = SubidRanges::parse("/etc/subuid", "alice:1:65536\n", "hull").unwrap_err();
        assert!(e.to_string().contains("hull:1000000:65536000"), "{e}");
        let e = SubidRanges::parse("/etc/subuid", "hull:x:65536\n", "hull").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let e = SubidRanges::parse("/etc/subuid", "hull:4294967000:65536\n", "hull").unwrap_err();
        assert!(matches!(e, SubidError::ParseLine { .. }), "{e}");
    }
}
