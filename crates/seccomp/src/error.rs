//! The one error type of this crate. Each variant names the step that failed; every variant about
//! the input names the offending field (`linux.seccomp.syscalls[3].names[1]` for an OCI spec,
//! `syscalls[3].names[1]` for a Docker-format profile).

use libseccomp::error::SeccompError;

/// Why compiling, loading or resolving a seccomp profile failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Docker-format profile is not JSON at all.
    #[error("seccomp profile is not valid JSON: {0}")]
    ParseJson(#[source] serde_json::Error),

    /// A field of a Docker-format profile has the wrong JSON type.
    #[error("{field}: expected {expected}")]
    FieldType {
        field: String,
        expected: &'static str,
    },

    /// A Docker-format profile has a field hull does not know (a typo such as `exclude` would
    /// otherwise silently widen or narrow the profile).
    #[error("{field}: unknown field")]
    UnknownField { field: String },

    /// A required field is missing.
    #[error("{field}: missing")]
    MissingField { field: String },

    /// Two fields that exclude each other are both set (`name` and `names`, `architectures` and
    /// `archMap`).
    #[error("{field}: cannot be combined with {other}")]
    ConflictingFields { field: String, other: String },

    /// An action name that is not one of the `SCMP_ACT_*` actions.
    #[error("{field}: unknown action {value:?}")]
    UnknownAction { field: String, value: String },

    /// An architecture name that is not one of the `SCMP_ARCH_*` (or, in includes/excludes, Go)
    /// architecture names, or that the linked libseccomp does not support.
    #[error("{field}: unknown architecture {value:?}")]
    UnknownArch { field: String, value: String },

    /// A capability name that is not one of Linux's `CAP_*` capabilities.
    #[error("{field}: unknown capability {value:?}")]
    UnknownCapability { field: String, value: String },

    /// An operator that is not one of the `SCMP_CMP_*` operators.
    #[error("{field}: unknown operator {value:?}")]
    UnknownOperator { field: String, value: String },

    /// A filter flag that is not one of the `SECCOMP_FILTER_FLAG_*` flags hull supports.
    #[error("{field}: unknown flag {value:?}")]
    UnknownFlag { field: String, value: String },

    /// A syscall name that libseccomp knows on none of the filter's architectures (a typo, or a
    /// syscall newer than the linked libseccomp).
    #[error("{field}: unknown syscall {name:?}")]
    UnknownSyscall { field: String, name: String },

    /// `errnoRet` (or `defaultErrnoRet`) given for an action that returns no errno.
    #[error("{field}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {action}")]
    ErrnoRetWithoutErrnoAction { field: String, action: String },

    /// `errnoRet` does not fit the 16 bits seccomp has for it.
    #[error("{field}: errnoRet {value} is out of range (0..=65535)")]
    ErrnoRetOutOfRange { field: String, value: u64 },

    /// A syscall argument index beyond the six arguments a syscall has.
    #[error("{field}: argument index {index} is out of range (0..=5)")]
    ArgIndexOutOfRange { field: String, index: u64 },

    /// `minKernel` is not of the form `MAJOR.MINOR`.
    #[error("{field}: invalid kernel version {value:?} (expected MAJOR.MINOR, e.g. \"4.8\")")]
    InvalidMinKernel { field: String, value: String },

    /// The running kernel's release string could not be read or parsed (needed for `minKernel`).
    #[error("cannot determine the running kernel version: {0}")]
    KernelVersion(String),

    /// The same syscall has an unconditional rule and another rule with a different action.
    /// libseccomp would silently keep only the unconditional one, so the profile would not do
    /// what it says.
    #[error(
        "{field}: syscall {name:?} conflicts with {other}: an unconditional rule and a rule with a \
         different action for the same syscall (libseccomp would silently drop one of them)"
    )]
    ConflictingRules {
        field: String,
        other: String,
        name: String,
    },

    /// SCMP_ACT_NOTIFY is used but the kernel or libseccomp lacks user notification support.
    #[error("{field}: SCMP_ACT_NOTIFY needs libseccomp API level {needed} or later, have {api}")]
    NotifyUnsupported {
        field: String,
        needed: u32,
        api: u32,
    },

    /// libseccomp refused to create a filter context.
    #[error("creating the seccomp filter context: {0}")]
    CreateContext(#[source] SeccompError),

    /// libseccomp refused a filter attribute (no_new_privs handling, bad-arch action).
    #[error("setting seccomp filter attribute {attr}: {source}")]
    SetAttribute {
        attr: &'static str,
        #[source]
        source: SeccompError,
    },

    /// libseccomp refused an architecture.
    #[error("{field}: adding architecture {arch}: {source}")]
    AddArch {
        field: String,
        arch: String,
        #[source]
        source: SeccompError,
    },

    /// libseccomp (or the kernel) does not support a filter flag.
    #[error("{field}: setting flag {flag}: {source}")]
    SetFlag {
        field: String,
        flag: String,
        #[source]
        source: SeccompError,
    },

    /// libseccomp refused a rule.
    #[error("{field}: adding rule for syscall {name:?}: {source}")]
    AddRule {
        field: String,
        name: String,
        #[source]
        source: SeccompError,
    },

    /// SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY on a kernel without
    /// SECCOMP_FILTER_FLAG_TSYNC_ESRCH (before Linux 5.7), which refuses the combination.
    #[error(
        "{field}: SECCOMP_FILTER_FLAG_TSYNC with SCMP_ACT_NOTIFY needs \
         SECCOMP_FILTER_FLAG_TSYNC_ESRCH (Linux 5.7), which the kernel lacks"
    )]
    TsyncWithNotify { field: String },

    /// The generated BPF program is longer than the kernel accepts (BPF_MAXINSNS).
    #[error(
        "the seccomp BPF program has {instructions} instructions, the kernel takes at most {max}"
    )]
    ProgramTooLong { instructions: usize, max: usize },

    /// seccomp(2) refused the filter (EACCES: neither no_new_privs nor CAP_SYS_ADMIN; ESRCH or
    /// a thread id: SECCOMP_FILTER_FLAG_TSYNC could not synchronize a thread).
    #[error("loading the seccomp filter: {0}")]
    Load(#[source] std::io::Error),

    /// Exporting the BPF program failed.
    #[error("exporting the seccomp BPF program: {0}")]
    ExportBpf(String),
}
