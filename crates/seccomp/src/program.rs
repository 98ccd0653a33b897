//! What a compiled filter hands to seccomp(2): the BPF program libseccomp generated and the
//! kernel's `SECCOMP_FILTER_FLAG_*` bits for the spec's flags.
//!
//! Both are worked out in [`crate::compile`], in the runtime's parent, so that
//! [`crate::Filter::load`] in the container's init is one seccomp(2) call: no libseccomp, no
//! BPF generation, no allocation.

use hull_sys::seccomp::{
    filter_flags_supported, SockFilter, FILTER_FLAG_LOG, FILTER_FLAG_NEW_LISTENER,
    FILTER_FLAG_SPEC_ALLOW, FILTER_FLAG_TSYNC, FILTER_FLAG_TSYNC_ESRCH, MAX_INSNS,
};
use oci_spec::runtime::LinuxSeccompFilterFlag;

use crate::Error;

/// Size of one `struct sock_filter`.
const INSN_SIZE: usize = std::mem::size_of::<SockFilter>();

/// The instructions of the raw program `seccomp_export_bpf` wrote (native byte order).
pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Vec<SockFilter>, Error> {
    let chunks = bytes.chunks_exact(INSN_SIZE);
    if bytes.is_empty() || !chunks.remainder().is_empty() {
        return Err(Error::ExportBpf(format!(
            "libseccomp wrote {} bytes, not a whole number of {INSN_SIZE}-byte instructions",
            bytes.len()
        )));
    }
    if chunks.len() > MAX_INSNS {
        return Err(Error::ProgramTooLong {
            instructions: chunks.len(),
            max: MAX_INSNS,
        });
    }
    Ok(chunks
        .map(|insn| {
            let mut b = [0u8; INSN_SIZE];
            b.copy_from_slice(insn);
            SockFilter::from_ne_bytes(b)
        })
        .collect())
}

/// The seccomp(2) flags for the spec's `flags` (libseccomp has already checked that the kernel
/// supports each of them) and for a filter that uses SCMP_ACT_NOTIFY or not.
///
/// As libseccomp's `seccomp_load` does: SCMP_ACT_NOTIFY asks for a listener fd
/// (NEW_LISTENER), and TSYNC comes with TSYNC_ESRCH where the kernel has it (Linux 5.7), which
/// the kernel requires when TSYNC and NEW_LISTENER are combined.
pub(crate) fn kernel_flags(
    flags: &[LinuxSeccompFilterFlag],
    uses_notify: bool,
) -> Result<u32, Error> {
    let mut bits = if uses_notify {
        FILTER_FLAG_NEW_LISTENER
    } else {
        0
    };
    let mut tsync_field = None;
    for (i, flag) in flags.iter().enumerate() {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                tsync_field.get_or_insert(i);
                FILTER_FLAG_TSYNC
            }
        };
    }
    if let Some(i) = tsync_field {
        if filter_flags_supported(bits | FILTER_FLAG_TSYNC_ESRCH) {
            bits |= FILTER_FLAG_TSYNC_ESRCH;
        } else if uses_notify {
            return Err(Error::TsyncWithNotify {
                field: format!("linux.seccomp.flags[{i}]"),
            });
        }
    }
    Ok(bits)
}
