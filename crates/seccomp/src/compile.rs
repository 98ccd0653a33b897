//! OCI `linux.seccomp` -> a validated filter and its BPF program.
//!
//! [`compile`] does all the work up front (in the runtime's parent process): it checks the spec,
//! builds a libseccomp context, has libseccomp generate the BPF program and works out the
//! seccomp(2) flags. The `Filter` keeps the program and flags, plus the rules as plain data
//! (resolved syscall numbers, actions and argument comparisons) for [`Filter::export_pfc`].
//! [`Filter::load`] in the container's init is then a single seccomp(2) call through
//! `hull_sys::seccomp`, without libseccomp or allocation, so a `Filter` is
//! `Send + Sync + Clone` and nothing at load time can fail on the profile itself.
//!
//! Semantics, chosen to match runc where it matters for existing profiles:
//! - a syscall name libseccomp knows on none of the filter's architectures is an error; a name
//!   that exists only on some of them (`socketcall` in an x86_64 + x86 filter) applies where it
//!   exists;
//! - a rule whose action equals the default action is dropped (libseccomp refuses it);
//! - the comparisons of one rule are ANDed, except that when two of them test the same argument
//!   the rule is split into one rule per comparison (ORed), as runc does, because libseccomp
//!   cannot AND two comparisons of one argument;
//! - an unconditional rule and another rule with a different action for the same syscall is an
//!   error: libseccomp would silently keep only the unconditional one;
//! - the filter does not set no_new_privs: the runtime does that (or keeps CAP_SYS_ADMIN) as
//!   `process.noNewPrivileges` says.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use libseccomp::{
    get_api, ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch as OciArch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use hull_sys::seccomp::SockFilter;
use libseccomp::error::SeccompError;

use crate::{program, Error};

const EPERM: u32 = 1;
/// Arguments a syscall has (`seccomp_data.args`).
const MAX_ARGS: usize = 6;
/// The libseccomp API level the Rust bindings require for user notification.
const NOTIFY_API: u32 = 6;

/// A compiled, validated seccomp filter, ready to be loaded.
#[derive(Debug, Clone)]
pub struct Filter {
    default_action: ScmpAction,
    arches: Vec<ScmpArch>,
    flags: Vec<LinuxSeccompFilterFlag>,
    pub(crate) rules: Vec<Rule>,
    uses_notify: bool,
    /// The BPF program libseccomp generated for the above, which `load` installs.
    pub(crate) program: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` bits for seccomp(2).
    pub(crate) kernel_flags: u32,
}

/// One libseccomp rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    action: ScmpAction,
    syscall: ScmpSyscall,
    pub(crate) conditions: Vec<ScmpArgCompare>,
    /// Where the rule came from, for errors: `linux.seccomp.syscalls[i].names[j]`.
    field: String,
    name: String,
}

/// Compile the OCI spec's `linux.seccomp` into a filter without loading it.
///
/// All validation happens here: syscall names, actions and their `errnoRet`, argument indexes,
/// architectures and flags that libseccomp does not support, conflicting rules. The check that
/// SCMP_ACT_NOTIFY comes with a `listenerPath` is the runtime's.
pub fn compile(spec: &LinuxSeccomp) -> Result<Filter, Error> {
    let default_action = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;

    let mut arches = Vec::new();
    for (i, arch) in spec.architectures().iter().flatten().enumerate() {
        let arch = scmp_arch(*arch).ok_or_else(|| Error::UnknownArch {
            field: format!("linux.seccomp.architectures[{i}]"),
            value: arch.to_string(),
        })?;
        if !arches.contains(&arch) {
            arches.push(arch);
        }
    }
    // libseccomp always filters the native architecture too, as runc's filters do.
    let mut filter_arches = vec![ScmpArch::native()];
    filter_arches.extend(arches.iter().copied().filter(|a| *a != ScmpArch::Native));

    let mut uses_notify = default_action == ScmpAction::Notify;
    let mut notify_field = "linux.seccomp.defaultAction".to_owned();
    let mut rules = Vec::new();
    let mut seen: HashMap<String, Vec<Seen>> = HashMap::new();
    for (i, entry) in spec.syscalls().iter().flatten().enumerate() {
        let base = format!("linux.seccomp.syscalls[{i}]");
        let act = action(
            entry.action(),
            entry.errno_ret(),
            &format!("{base}.action"),
            &format!("{base}.errnoRet"),
        )?;
        let groups = condition_groups(entry.args().as_deref().unwrap_or_default(), &base)?;

        for (j, name) in entry.names().iter().enumerate() {
            let field = format!("{base}.names[{j}]");
            let Some(syscall) = resolve(name, &filter_arches, &field)? else {
                continue;
            };
            if act == default_action {
                tracing::debug!(%field, name, "seccomp rule equals the default action, dropped");
                continue;
            }
            check_conflict(
                &mut seen,
                name,
                &field,
                act,
                groups.iter().all(Vec::is_empty),
            )?;
            if act == ScmpAction::Notify && !uses_notify {
                uses_notify = true;
                notify_field = format!("{base}.action");
            }
            for conditions in &groups {
                rules.push(Rule {
                    action: act,
                    syscall,
                    conditions: conditions.clone(),
                    field: field.clone(),
                    name: name.clone(),
                });
            }
        }
    }

    if uses_notify && get_api() < NOTIFY_API {
        return Err(Error::NotifyUnsupported {
            field: notify_field,
            needed: NOTIFY_API,
            api: get_api(),
        });
    }

    let flags = spec.flags().clone().unwrap_or_default();
    let kernel_flags = program::kernel_flags(&flags, uses_notify)?;
    let mut filter = Filter {
        default_action,
        arches,
        flags,
        rules,
        uses_notify,
        program: Vec::new(),
        kernel_flags,
    };
    // Whatever libseccomp refuses (a flag the kernel lacks, a rule it cannot express) is
    // reported now, and the program is generated once here rather than in each container's init.
    let ctx = filter.context()?;
    filter.program = program::from_bytes(&export(&ctx, |ctx, file| ctx.export_bpf(file))?)?;
    Ok(filter)
}

impl Filter {
    /// Whether any rule or the default action is SCMP_ACT_NOTIFY.
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// Load the filter into the calling thread (and, with SECCOMP_FILTER_FLAG_TSYNC, into all
    /// threads of its process), honouring the spec's flags.
    ///
    /// One seccomp(2) call that installs the program [`compile`] generated: no libseccomp, no
    /// allocation. It does not set no_new_privs: the caller must have set it or hold
    /// CAP_SYS_ADMIN (else the kernel refuses with EACCES). Returns the user-notification fd
    /// (close-on-exec) when [`Filter::uses_notify`].
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        hull_sys::seccomp::install_filter(&self.program, self.kernel_flags).map_err(Error::Load)
    }

    /// The BPF program libseccomp generated for this filter (what `load` installs), as the raw
    /// `struct sock_filter` array in native byte order.
    pub fn export_bpf(&self) -> Result<Vec<u8>, Error> {
        Ok(self.program.iter().flat_map(|i| i.to_ne_bytes()).collect())
    }

    /// libseccomp's human-readable pseudo filter code for this filter, for debugging.
    pub fn export_pfc(&self) -> Result<String, Error> {
        let text = export(&self.context()?, |ctx, file| ctx.export_pfc(file))?;
        String::from_utf8(text).map_err(|e| Error::ExportBpf(format!("pseudo code: {e}")))
    }

    /// A libseccomp context holding this filter.
    pub(crate) fn context(&self) -> Result<ScmpFilterContext, Error> {
        let mut ctx = ScmpFilterContext::new(self.default_action).map_err(Error::CreateContext)?;
        ctx.set_ctl_nnp(false)
            .map_err(|source| Error::SetAttribute {
                attr: "SCMP_FLTATR_CTL_NNP",
                source,
            })?;
        for (i, arch) in self.arches.iter().enumerate() {
            ctx.add_arch(*arch).map_err(|source| Error::AddArch {
                field: format!("linux.seccomp.architectures[{i}]"),
                arch: format!("{arch:?}"),
                source,
            })?;
        }
        for (i, flag) in self.flags.iter().enumerate() {
            let set = match flag {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            };
            set.map_err(|source| Error::SetFlag {
                field: format!("linux.seccomp.flags[{i}]"),
                flag: flag.to_string(),
                source,
            })?;
        }
        for rule in &self.rules {
            let added = if rule.conditions.is_empty() {
                ctx.add_rule(rule.action, rule.syscall)
            } else {
                ctx.add_rule_conditional(rule.action, rule.syscall, &rule.conditions)
            };
            added.map_err(|source| Error::AddRule {
                field: rule.field.clone(),
                name: rule.name.clone(),
                source,
            })?;
        }
        Ok(ctx)
    }
}

/// Runs one of libseccomp's export functions on `ctx` into a memfd and returns what it wrote.
pub(crate) fn export(
    ctx: &ScmpFilterContext,
    write: impl FnOnce(&ScmpFilterContext, &std::fs::File) -> Result<(), SeccompError>,
) -> Result<Vec<u8>, Error> {
    use nix::sys::memfd::{memfd_create, MFdFlags};

    let fd = memfd_create(c"hull-seccomp-export", MFdFlags::MFD_CLOEXEC)
        .map_err(|e| Error::ExportBpf(format!("memfd_create: {e}")))?;
    let mut file = std::fs::File::from(fd);
    write(ctx, &file).map_err(|e| Error::ExportBpf(e.to_string()))?;
    let mut out = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut out))
        .map_err(|e| Error::ExportBpf(format!("reading back: {e}")))?;
    Ok(out)
}

/// What has been added for one syscall name, to find conflicting rules.
struct Seen {
    field: String,
    action: ScmpAction,
    unconditional: bool,
}

fn check_conflict(
    seen: &mut HashMap<String, Vec<Seen>>,
    name: &str,
    field: &str,
    action: ScmpAction,
    unconditional: bool,
) -> Result<(), Error> {
    let earlier = seen.entry(name.to_owned()).or_default();
    if let Some(other) = earlier
        .iter()
        .find(|s| s.action != action && (s.unconditional || unconditional))
    {
        return Err(Error::ConflictingRules {
            field: field.to_owned(),
            other: other.field.clone(),
            name: name.to_owned(),
        });
    }
    earlier.push(Seen {
        field: field.to_owned(),
        action,
        unconditional,
    });
    Ok(())
}

/// Resolves `name` for the filter. `Ok(None)`: libseccomp knows the name on one of the filter's
/// architectures but cannot express it for the native one (skipped, as runc does).
fn resolve(name: &str, arches: &[ScmpArch], field: &str) -> Result<Option<ScmpSyscall>, Error> {
    // For a name absent on the native architecture libseccomp returns a negative pseudo-number
    // that it translates for each architecture of the filter.
    if let Ok(syscall) = ScmpSyscall::from_name(name) {
        return Ok(Some(syscall));
    }
    if arches
        .iter()
        .any(|arch| ScmpSyscall::from_name_by_arch(name, *arch).is_ok())
    {
        tracing::debug!(%field, name, "syscall unknown on the native architecture, skipped");
        return Ok(None);
    }
    Err(Error::UnknownSyscall {
        field: field.to_owned(),
        name: name.to_owned(),
    })
}

/// Whether the linked libseccomp knows `name` on any architecture.
pub(crate) fn known_syscall(name: &str) -> bool {
    ScmpSyscall::from_name(name).is_ok()
}

/// The libseccomp action for an OCI action and its errnoRet.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    action_field: &str,
    errno_field: &str,
) -> Result<ScmpAction, Error> {
    let ret = |default: u32| -> Result<u16, Error> {
        let value = errno_ret.unwrap_or(default);
        u16::try_from(value).map_err(|_| Error::ErrnoRetOutOfRange {
            field: errno_field.to_owned(),
            value: value.into(),
        })
    };
    if errno_ret.is_some()
        && !matches!(
            action,
            LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
        )
    {
        return Err(Error::ErrnoRetWithoutErrnoAction {
            field: errno_field.to_owned(),
            action: format!("{action} ({action_field})"),
        });
    }
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(ret(EPERM)?.into()),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret(EPERM)?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// The rules (as condition lists) one syscall entry becomes: all comparisons in one rule, or one
/// rule per comparison when two of them test the same argument (see the module docs).
fn condition_groups(
    args: &[oci_spec::runtime::LinuxSeccompArg],
    base: &str,
) -> Result<Vec<Vec<ScmpArgCompare>>, Error> {
    let mut per_index = [0usize; MAX_ARGS];
    let mut conditions = Vec::with_capacity(args.len());
    for (k, arg) in args.iter().enumerate() {
        let index = arg.index();
        if index >= MAX_ARGS {
            return Err(Error::ArgIndexOutOfRange {
                field: format!("{base}.args[{k}].index"),
                index: index as u64,
            });
        }
        per_index[index] += 1;
        let (op, datum) = match arg.op() {
            LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
            LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
            LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
            LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
            LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
            LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
            // OCI (like runc and libseccomp): value is the mask, valueTwo the expected value.
            LinuxSeccompOperator::ScmpCmpMaskedEq => (
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            ),
        };
        // index < 6, so the cast is lossless.
        conditions.push(ScmpArgCompare::new(index as u32, op, datum));
    }
    if per_index.iter().any(|n| *n > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

/// The libseccomp architecture for an OCI one; `None` for one the linked libseccomp lacks.
pub(crate) fn scmp_arch(arch: OciArch) -> Option<ScmpArch> {
    let arch = match arch {
        OciArch::ScmpArchNative => ScmpArch::Native,
        OciArch::ScmpArchX86 => ScmpArch::X86,
        OciArch::ScmpArchX86_64 => ScmpArch::X8664,
        OciArch::ScmpArchX32 => ScmpArch::X32,
        OciArch::ScmpArchArm => ScmpArch::Arm,
        OciArch::ScmpArchAarch64 => ScmpArch::Aarch64,
        OciArch::ScmpArchMips => ScmpArch::Mips,
        OciArch::ScmpArchMips64 => ScmpArch::Mips64,
        OciArch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        OciArch::ScmpArchMipsel => ScmpArch::Mipsel,
        OciArch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        OciArch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        OciArch::ScmpArchPpc => ScmpArch::Ppc,
        OciArch::ScmpArchPpc64 => ScmpArch::Ppc64,
        OciArch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        OciArch::ScmpArchS390 => ScmpArch::S390,
        OciArch::ScmpArchS390x => ScmpArch::S390X,
        OciArch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    };
    // Probe: an architecture the C library was built without fails to resolve any name.
    ScmpSyscall::from_name_by_arch("read", arch)
        .is_ok()
        .then_some(arch)
}

/// A filter reduced to what loading needs: the BPF program, the kernel flags and whether it
/// hands out a notify fd. It can be saved and read back, so a runtime can cache compiled
/// filters (compiling a Docker-sized profile with libseccomp takes milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    insns: Vec<SockFilter>,
    kernel_flags: u32,
    uses_notify: bool,
}

const PROGRAM_MAGIC: &[u8; 8] = b"hullbpf1";

impl Program {
    pub fn uses_notify(&self) -> bool {
        self.uses_notify
    }

    /// Installs the program (see [`Filter::load`]).
    pub fn load(&self) -> Result<Option<OwnedFd>, Error> {
        hull_sys::seccomp::install_filter(&self.insns, self.kernel_flags).map_err(Error::Load)
    }

    /// A self-describing byte form: magic, flags, notify, then the instructions.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.insns.len() * 8);
        out.extend_from_slice(PROGRAM_MAGIC);
        out.extend_from_slice(&self.kernel_flags.to_le_bytes());
        out.extend_from_slice(&(self.uses_notify as u32).to_le_bytes());
        for i in &self.insns {
            out.extend_from_slice(&i.to_ne_bytes());
        }
        out
    }

    /// Reads [`Program::to_bytes`] output back; `None` if it is not a well-formed program.
    pub fn from_bytes(b: &[u8]) -> Option<Program> {
        let rest = b.strip_prefix(PROGRAM_MAGIC.as_slice())?;
        if rest.len() < 8 {
            return None;
        }
        let kernel_flags = u32::from_le_bytes(rest[0..4].try_into().ok()?);
        let uses_notify = match u32::from_le_bytes(rest[4..8].try_into().ok()?) {
            0 => false,
            1 => true,
            _ => return None,
        };
        let insns = crate::program::from_bytes(&rest[8..]).ok()?;
        Some(Program {
            insns,
            kernel_flags,
            uses_notify,
        })
    }
}

impl Filter {
    /// The loadable part of this filter.
    pub fn program(&self) -> Program {
        Program {
            insns: self.program.clone(),
            kernel_flags: self.kernel_flags,
            uses_notify: self.uses_notify,
        }
    }
}

#[cfg(test)]
mod program_tests {
    use super::*;

    #[test]
    fn program_bytes_round_trip() {
        let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]}"#,
        )
        .unwrap();
        let p = compile(&spec).unwrap().program();
        let back = Program::from_bytes(&p.to_bytes()).unwrap();
        assert_eq!(back, p);
        let mut bad = p.to_bytes();
        bad.truncate(bad.len() - 3);
        assert!(Program::from_bytes(&bad).is_none());
        assert!(Program::from_bytes(b"garbage").is_none());
    }
}
