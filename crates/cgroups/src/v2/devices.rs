//! v2 devices: the rule list compiled into a `BPF_PROG_TYPE_CGROUP_DEVICE` program and attached
//! to the cgroup directory (hull_sys::bpf does the syscalls).
//!
//! The program is runc's devicefilter, hand-assembled: rules are checked from the last to the
//! first and the first match decides (so the last matching rule wins); a type "a" rule resets
//! the list and sets the default (deny all / allow all), as in cgroup v1; with no rule the
//! default is deny.

use std::os::fd::AsFd;
use std::path::Path;

use hull_sys::bpf::{self, Insn};
use oci_spec::runtime::LinuxDeviceCgroup;

use super::Error;
use crate::devices::{self, Kind, Rule, ACCESS_ALL};
use crate::fs;

// Opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K (32-bit)
const ALU_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }: access_type holds
// the device type in its low 16 bits and the access in its high 16 bits.
const DEVCG_DEV_BLOCK: i32 = 1;
const DEVCG_DEV_CHAR: i32 = 2;

const LICENSE: &std::ffi::CStr = c"Apache";

/// The default and the exceptions after the last type "a" rule.
fn effective(rules: &[Rule]) -> (bool, &[Rule]) {
    match rules.iter().rposition(|r| r.kind == Kind::All) {
        Some(i) => (rules[i].allow, &rules[i + 1..]),
        None => (false, rules),
    }
}

/// One rule's block: falls through to the next block unless the device matches, else
/// returns the rule's verdict.
fn block(rule: &Rule) -> Vec<Insn> {
    let kind = if rule.kind == Kind::Block {
        DEVCG_DEV_BLOCK
    } else {
        DEVCG_DEV_CHAR
    };
    // Jumps are patched afterwards to land on the next block: off = block length - (i + 1).
    let mut b = vec![Insn::new(JMP_JNE_K, 2, 0, 0, kind)];
    if rule.access != ACCESS_ALL {
        // if ((access & rule_access) != access) next: every requested bit must be allowed.
        b.push(Insn::new(ALU_MOV_X, 1, 3, 0, 0));
        b.push(Insn::new(ALU_AND_K, 1, 0, 0, i32::from(rule.access)));
        b.push(Insn::new(JMP_JNE_X, 1, 3, 0, 0));
    }
    if let Some(major) = rule.major {
        b.push(Insn::new(JMP_JNE_K, 4, 0, 0, major as i32));
    }
    if let Some(minor) = rule.minor {
        b.push(Insn::new(JMP_JNE_K, 5, 0, 0, minor as i32));
    }
    b.push(Insn::new(ALU_MOV_K, 0, 0, 0, i32::from(rule.allow)));
    b.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    let len = b.len();
    for (i, insn) in b.iter_mut().enumerate() {
        if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
            insn.off = (len - (i + 1)) as i16;
        }
    }
    b
}

/// Compiles the (already converted) rules into the filter program.
pub fn compile(rules: &[Rule]) -> Vec<Insn> {
    let (default_allow, exceptions) = effective(rules);
    let mut p = vec![
        // r2 = type (low 16 bits of access_type)
        Insn::new(LDX_MEM_W, 2, 1, 0, 0),
        Insn::new(ALU_AND_K, 2, 0, 0, 0xffff),
        // r3 = access (high 16 bits of access_type)
        Insn::new(LDX_MEM_W, 3, 1, 0, 0),
        Insn::new(ALU_RSH_K, 3, 0, 0, 16),
        // r4 = major, r5 = minor
        Insn::new(LDX_MEM_W, 4, 1, 4, 0),
        Insn::new(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for rule in exceptions.iter().rev() {
        p.extend(block(rule));
    }
    p.push(Insn::new(ALU_MOV_K, 0, 0, 0, i32::from(default_allow)));
    p.push(Insn::new(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `rules`, attaches it to `dir`, then detaches the programs that were
/// attached before (so an update replaces the filter without a window with none).
pub(super) fn set(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<(), Error> {
    let rules = devices::convert_all(rules)
        .map_err(|(index, reason)| Error::DeviceRule { index, reason })?;
    let insns = compile(&rules);
    let path = || dir.to_owned();
    let prog = bpf::prog_load_cgroup_device(&insns, LICENSE).map_err(|source| {
        Error::LoadDeviceProgram {
            path: path(),
            source,
        }
    })?;
    let cgroup = fs::open_dir(dir)?;
    let old = bpf::prog_query(cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE).map_err(|source| {
        Error::QueryDevicePrograms {
            path: path(),
            source,
        }
    })?;
    bpf::prog_attach(
        prog.as_fd(),
        cgroup.as_fd(),
        bpf::ATTACH_CGROUP_DEVICE,
        bpf::F_ALLOW_MULTI,
    )
    .map_err(|source| Error::AttachDeviceProgram {
        path: path(),
        source,
    })?;
    for id in old {
        let detach = bpf::prog_get_fd_by_id(id).and_then(|old_prog| {
            bpf::prog_detach(old_prog.as_fd(), cgroup.as_fd(), bpf::ATTACH_CGROUP_DEVICE)
        });
        match detach {
            Ok(()) => {}
            // Detached (or freed) concurrently: nothing to do.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(Error::DetachDeviceProgram {
                    path: path(),
                    id,
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
