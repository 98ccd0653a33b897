//! Docker's seccomp profile format (what `docker run --security-opt seccomp=profile.json`
//! accepts), resolved for a capability set, an architecture and a kernel into an OCI
//! `LinuxSeccomp`, the way moby's `setupSeccomp` does.
//!
//! The JSON is walked by hand so that every error names its field (`syscalls[3].args[0].op`).
//! Unlike Docker, unknown fields are errors (apart from `comment`): a typo such as `exclude`
//! would otherwise silently change what the profile allows.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};

use crate::{Arch, Error};

/// A kernel version as `minKernel` compares it: major and minor only, like Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// The running kernel's version, from uname(2).
    pub fn running() -> Result<Self, Error> {
        let uts = nix::sys::utsname::uname().map_err(|e| Error::KernelVersion(e.to_string()))?;
        let release = uts.release().to_string_lossy();
        parse_version(&release, true)
            .ok_or_else(|| Error::KernelVersion(format!("unparsable release {release:?}")))
    }
}

/// Linux's capabilities, to catch typos in `includes.caps` / `excludes.caps`.
pub const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Architecture names `includes.arches` / `excludes.arches` may use: Go's (what Docker compares
/// against), plus the libseccomp-style names Docker's own profile also lists.
const FILTER_ARCHES: [&str; 19] = [
    "386",
    "amd64",
    "arm",
    "arm64",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64n32",
    "mipsel64n32",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv64",
    "s390",
    "s390x",
    "x32",
    "x86",
];

/// A parsed Docker-format profile.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    default_action: LinuxSeccompAction,
    default_errno_ret: Option<u32>,
    architectures: Vec<OciArch>,
    arch_map: Vec<(OciArch, Vec<OciArch>)>,
    flags: Vec<LinuxSeccompFilterFlag>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
    pub(crate) syscalls: Vec<Entry>,
}

/// One entry of `syscalls`.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) names: Vec<String>,
    /// The entry used the old `name` field instead of `names`.
    pub(crate) single_name: bool,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
    includes: Option<Condition>,
    excludes: Option<Condition>,
}

/// `includes` / `excludes`.
#[derive(Debug, Clone, Default)]
struct Condition {
    caps: Vec<String>,
    arches: Vec<String>,
    min_kernel: Option<KernelVersion>,
}

impl Profile {
    /// Whether `syscalls[i]` allows what the default action denies. An unknown name there is
    /// harmless (the syscall stays denied) and is left out, as runc skips every unknown name:
    /// a profile written for a newer libseccomp still loads. An unknown name elsewhere (a
    /// deny rule with a typo would leave the syscall allowed) is an error.
    pub(crate) fn entry_only_allows(&self, i: usize) -> bool {
        let allowing = |a: LinuxSeccompAction| {
            matches!(
                a,
                LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
            )
        };
        !allowing(self.default_action) && self.syscalls.get(i).is_some_and(|e| allowing(e.action))
    }

    pub(crate) fn parse(json: &str) -> Result<Self, Error> {
        let value: Value = serde_json::from_str(json).map_err(Error::ParseJson)?;
        let top = Obj::new(&value, String::new())?;
        top.only(&[
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "archMap",
            "syscalls",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "comment",
        ])?;

        let default_action = top
            .enum_field("defaultAction", |f, v| Error::UnknownAction {
                field: f,
                value: v,
            })?
            .ok_or_else(|| Error::MissingField {
                field: "defaultAction".into(),
            })?;
        let default_errno_ret = top.errno_ret("defaultErrnoRet", default_action)?;

        let architectures = top.arches("architectures")?;
        let mut arch_map = Vec::new();
        for item in top.array("archMap")? {
            item.only(&["architecture", "subArchitectures", "comment"])?;
            let main = item
                .enum_field("architecture", unknown_arch)?
                .ok_or_else(|| Error::MissingField {
                    field: item.path("architecture"),
                })?;
            arch_map.push((main, item.arches("subArchitectures")?));
        }
        if !architectures.is_empty() && !arch_map.is_empty() {
            return Err(Error::ConflictingFields {
                field: "architectures".into(),
                other: "archMap".into(),
            });
        }

        let mut flags = Vec::new();
        for (i, flag) in top.strings("flags")?.into_iter().enumerate() {
            let field = format!("flags[{i}]");
            flags.push(parse_enum(&flag).ok_or(Error::UnknownFlag { field, value: flag })?);
        }

        let syscalls = top
            .array("syscalls")?
            .into_iter()
            .map(|item| Entry::parse(&item))
            .collect::<Result<_, _>>()?;

        Ok(Profile {
            default_action,
            default_errno_ret,
            architectures,
            arch_map,
            flags,
            listener_path: top.string("listenerPath")?,
            listener_metadata: top.string("listenerMetadata")?,
            syscalls,
        })
    }

    /// Whether any entry needs the kernel version.
    pub(crate) fn uses_min_kernel(&self) -> bool {
        self.syscalls.iter().any(|e| {
            [&e.includes, &e.excludes]
                .into_iter()
                .flatten()
                .any(|c| c.min_kernel.is_some())
        })
    }

    /// Resolves the profile as moby's `setupSeccomp` does. `kernel` may be `None` only when
    /// [`Profile::uses_min_kernel`] is false.
    pub(crate) fn resolve(
        &self,
        caps: &[String],
        arch: Arch,
        kernel: Option<KernelVersion>,
    ) -> Result<LinuxSeccomp, Error> {
        let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
        let has_cap = |c: &String| caps.contains(c);
        let newer = |min: KernelVersion| -> Result<bool, Error> {
            kernel
                .map(|k| k >= min)
                .ok_or_else(|| Error::KernelVersion("minKernel used but no kernel given".into()))
        };

        let mut architectures = self.architectures.clone();
        if let Some((main, subs)) = self
            .arch_map
            .iter()
            .find(|(main, _)| *main == arch.seccomp_arch())
        {
            architectures.push(*main);
            architectures.extend(subs);
        }

        let mut syscalls = Vec::new();
        for entry in &self.syscalls {
            if let Some(ex) = &entry.excludes {
                if ex.arches.iter().any(|a| a == arch.go_name())
                    || ex.caps.iter().any(has_cap)
                    || ex.min_kernel.map(newer).transpose()? == Some(true)
                {
                    continue;
                }
            }
            if let Some(inc) = &entry.includes {
                if (!inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch.go_name()))
                    || !inc.caps.iter().all(has_cap)
                    || inc.min_kernel.map(newer).transpose()? == Some(false)
                {
                    continue;
                }
            }
            let mut syscall = LinuxSyscall::default();
            syscall
                .set_names(entry.names.clone())
                .set_action(entry.action)
                .set_errno_ret(entry.errno_ret)
                .set_args((!entry.args.is_empty()).then(|| entry.args.clone()));
            syscalls.push(syscall);
        }

        let mut seccomp = LinuxSeccomp::default();
        seccomp
            .set_default_action(self.default_action)
            .set_default_errno_ret(self.default_errno_ret)
            .set_architectures((!architectures.is_empty()).then_some(architectures))
            .set_flags((!self.flags.is_empty()).then(|| self.flags.clone()))
            .set_listener_path(self.listener_path.as_ref().map(Into::into))
            .set_listener_metadata(self.listener_metadata.clone())
            .set_syscalls(Some(syscalls));
        Ok(seccomp)
    }
}

impl Entry {
    fn parse(item: &Obj<'_>) -> Result<Self, Error> {
        item.only(&[
            "name", "names", "action", "errnoRet", "args", "comment", "includes", "excludes",
        ])?;
        let mut names = item.strings("names")?;
        let single_name = item.get("name").is_some();
        if let Some(name) = item.string("name")? {
            if !names.is_empty() {
                return Err(Error::ConflictingFields {
                    field: item.path("name"),
                    other: item.path("names"),
                });
            }
            names.push(name);
        }
        if names.is_empty() {
            return Err(Error::MissingField {
                field: item.path("names"),
            });
        }
        let action = item
            .enum_field("action", |f, v| Error::UnknownAction { field: f, value: v })?
            .ok_or_else(|| Error::MissingField {
                field: item.path("action"),
            })?;
        let errno_ret = item.errno_ret("errnoRet", action)?;

        let mut args = Vec::new();
        for arg in item.array("args")? {
            arg.only(&["index", "value", "valueTwo", "op"])?;
            let index = arg.u64("index")?.ok_or_else(|| Error::MissingField {
                field: arg.path("index"),
            })?;
            if index >= 6 {
                return Err(Error::ArgIndexOutOfRange {
                    field: arg.path("index"),
                    index,
                });
            }
            let op: LinuxSeccompOperator = arg
                .enum_field("op", |f, v| Error::UnknownOperator { field: f, value: v })?
                .ok_or_else(|| Error::MissingField {
                    field: arg.path("op"),
                })?;
            let mut parsed = LinuxSeccompArgBuilder::default()
                // index < 6
                .index(index as usize)
                .value(arg.u64("value")?.unwrap_or(0))
                .op(op);
            if let Some(two) = arg.u64("valueTwo")? {
                parsed = parsed.value_two(two);
            }
            let parsed = parsed
                .build()
                .expect("every field of LinuxSeccompArg has a default");
            args.push(parsed);
        }

        Ok(Entry {
            names,
            single_name,
            action,
            errno_ret,
            args,
            includes: item
                .object("includes")?
                .map(|c| c.condition())
                .transpose()?,
            excludes: item
                .object("excludes")?
                .map(|c| c.condition())
                .transpose()?,
        })
    }
}

/// A JSON object and its path, for errors.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: String) -> Result<Self, Error> {
        match value {
            Value::Object(map) => Ok(Obj { map, path }),
            _ => Err(Error::FieldType {
                field: if path.is_empty() {
                    "profile".into()
                } else {
                    path
                },
                expected: "an object",
            }),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    fn only(&self, known: &[&str]) -> Result<(), Error> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(Error::UnknownField {
                field: self.path(key),
            }),
            None => Ok(()),
        }
    }

    /// The value at `key`; JSON `null` counts as absent, as in Go.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn type_error(&self, key: &str, expected: &'static str) -> Error {
        Error::FieldType {
            field: self.path(key),
            expected,
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, Error> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| self.type_error(key, "a string"))
            })
            .transpose()
    }

    fn u64(&self, key: &str) -> Result<Option<u64>, Error> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.type_error(key, "a non-negative integer"))
            })
            .transpose()
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, Error> {
        self.get(key)
            .map(|v| Obj::new(v, self.path(key)))
            .transpose()
    }

    fn array(&self, key: &str) -> Result<Vec<Obj<'a>>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| self.type_error(key, "an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| Obj::new(v, format!("{}[{i}]", self.path(key))))
            .collect()
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, Error> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let items = value
            .as_array()
            .ok_or_else(|| self.type_error(key, "an array of strings"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::FieldType {
                        field: format!("{}[{i}]", self.path(key)),
                        expected: "a string",
                    })
            })
            .collect()
    }

    /// A string field holding one of an OCI enum's names (`SCMP_ACT_ALLOW`, ...).
    fn enum_field<T: DeserializeOwned>(
        &self,
        key: &str,
        unknown: impl FnOnce(String, String) -> Error,
    ) -> Result<Option<T>, Error> {
        let Some(value) = self.string(key)? else {
            return Ok(None);
        };
        parse_enum(&value)
            .map(Some)
            .ok_or_else(|| unknown(self.path(key), value))
    }

    fn arches(&self, key: &str) -> Result<Vec<OciArch>, Error> {
        self.strings(key)?
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                parse_enum(&a).ok_or_else(|| unknown_arch(format!("{}[{i}]", self.path(key)), a))
            })
            .collect()
    }

    fn errno_ret(&self, key: &str, action: LinuxSeccompAction) -> Result<Option<u32>, Error> {
        let Some(value) = self.u64(key)? else {
            return Ok(None);
        };
        if !matches!(
            action,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        ) {
            return Err(Error::ErrnoRetWithoutErrnoAction {
                field: self.path(key),
                action: action.to_string(),
            });
        }
        if value > u64::from(u16::MAX) {
            return Err(Error::ErrnoRetOutOfRange {
                field: self.path(key),
                value,
            });
        }
        // <= u16::MAX
        Ok(Some(value as u32))
    }

    fn condition(&self) -> Result<Condition, Error> {
        self.only(&["caps", "arches", "minKernel"])?;
        let caps = self.strings("caps")?;
        for (i, cap) in caps.iter().enumerate() {
            if !CAPABILITIES.contains(&normalize_cap(cap).as_str()) {
                return Err(Error::UnknownCapability {
                    field: format!("{}[{i}]", self.path("caps")),
                    value: cap.clone(),
                });
            }
        }
        let arches = self.strings("arches")?;
        for (i, arch) in arches.iter().enumerate() {
            if !FILTER_ARCHES.contains(&arch.as_str()) {
                return Err(unknown_arch(
                    format!("{}[{i}]", self.path("arches")),
                    arch.clone(),
                ));
            }
        }
        let min_kernel = self
            .string("minKernel")?
            .map(|v| {
                parse_version(&v, false).ok_or_else(|| Error::InvalidMinKernel {
                    field: self.path("minKernel"),
                    value: v,
                })
            })
            .transpose()?;
        Ok(Condition {
            caps: caps.iter().map(|c| normalize_cap(c)).collect(),
            arches,
            min_kernel,
        })
    }
}

fn unknown_arch(field: String, value: String) -> Error {
    Error::UnknownArch { field, value }
}

/// An OCI enum from its JSON name; `None` for an unknown name.
fn parse_enum<T: DeserializeOwned>(name: &str) -> Option<T> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// `CAP_SYS_ADMIN` from `CAP_SYS_ADMIN`, `cap_sys_admin` or `SYS_ADMIN`.
pub(crate) fn normalize_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// `MAJOR.MINOR`; with `release`, whatever follows (`6.1.0-18-amd64`) is ignored.
pub(crate) fn parse_version(s: &str, release: bool) -> Option<KernelVersion> {
    let mut parts = s.splitn(2, '.');
    let major = parts.next()?.parse().ok()?;
    let rest = parts.next()?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if digits == 0 || (!release && digits != rest.len()) {
        return None;
    }
    let minor = rest[..digits].parse().ok()?;
    Some(KernelVersion { major, minor })
}
