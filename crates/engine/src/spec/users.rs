//! `User` (`name|uid[:group|gid]`) and `GroupAdd` resolved against the image's /etc/passwd and
//! /etc/group, the way runc's `GetExecUser` does for Docker.

use super::SpecBuildError;

/// The ids the container's process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The home directory from /etc/passwd, for `HOME`.
    pub home: Option<String>,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f[3].split(',').filter(|m| !m.is_empty()).collect(),
        })
    })
}

/// A group name or number: numbers need no /etc/group entry (as in Docker).
fn resolve_group(field: &str, group: &str, groups: &str) -> Result<u32, SpecBuildError> {
    if let Some(g) = group_entries(groups).find(|g| g.name == group) {
        return Ok(g.gid);
    }
    group.parse().map_err(|_| SpecBuildError::UnknownGroup {
        field: field.to_owned(),
        group: group.to_owned(),
    })
}

/// Resolves `user` (empty: root) and `group_add`. `passwd` and `group` are the image's files
/// (None: the image has none, and only numeric ids work).
pub(super) fn resolve(
    user: &str,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
    ngroups_max: usize,
) -> Result<ExecUser, SpecBuildError> {
    let passwd = passwd.unwrap_or("");
    let groups = group.unwrap_or("");
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    if group_part.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(SpecBuildError::UserFormat {
            user: user.to_owned(),
        });
    }
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    // A name, or a number that may or may not have an entry.
    let entry =
        passwd_entries(passwd).find(|e| e.name == user_part || e.uid.to_string() == user_part);
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), Some(e.home.to_owned())),
        (None, Ok(uid)) => (uid, 0, None, None),
        (None, Err(_)) => {
            return Err(SpecBuildError::UnknownUser {
                user: user_part.to_owned(),
            })
        }
    };
    let mut additional = Vec::new();
    match group_part {
        Some(g) => gid = resolve_group("User", g, groups)?,
        // No explicit group: the user's supplementary groups from /etc/group.
        None => {
            if let Some(name) = name {
                additional.extend(
                    group_entries(groups)
                        .filter(|g| g.members.contains(&name))
                        .map(|g| g.gid),
                );
            }
        }
    }
    for g in group_add {
        additional.push(resolve_group("GroupAdd", g, groups)?);
    }
    additional.sort_unstable();
    additional.dedup();
    if additional.len() > ngroups_max {
        return Err(SpecBuildError::TooManyGroups {
            count: additional.len(),
            max: ngroups_max,
        });
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
        home: home.filter(|h| !h.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nadm:x:4:www,other\nvideo:x:44:\n";

    fn r(user: &str, add: &[&str]) -> Result<ExecUser, SpecBuildError> {
        let add: Vec<String> = add.iter().map(|s| s.to_string()).collect();
        resolve(user, &add, Some(PASSWD), Some(GROUP), 65536)
    }

    #[test]
    fn names_numbers_and_groups() {
        let u = r("", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_deref()), (0, 0, Some("/root")));
        let u = r("www", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (33, 33, vec![4]));
        let u = r("www:video", &["adm", "1234"]).unwrap();
        assert_eq!((u.uid, u.gid, u.additional_gids), (33, 44, vec![4, 1234]));
        let u = r("1000:1000", &[]).unwrap();
        assert_eq!((u.uid, u.gid, u.home), (1000, 1000, None));
        let u = r("33", &[]).unwrap();
        assert_eq!(u.gid, 33, "a uid with an entry takes its group");
    }

    #[test]
    fn unknown_names_are_named() {
        let e = r("nobody", &[]).unwrap_err().to_string();
        assert!(e.contains("User") && e.contains("\"nobody\""), "{e}");
        let e = r("www:wheel", &[]).unwrap_err().to_string();
        assert!(e.contains("\"wheel\""), "{e}");
        let e = r("root", &["docker"]).unwrap_err().to_string();
        assert!(e.starts_with("GroupAdd") && e.contains("\"docker\""), "{e}");
        assert!(r("root:", &[]).is_err());
        let add: Vec<String> = (0..3).map(|i| i.to_string()).collect();
        assert!(matches!(
            resolve("0", &add, None, None, 2),
            Err(SpecBuildError::TooManyGroups { count: 3, max: 2 })
        ));
    }
}
