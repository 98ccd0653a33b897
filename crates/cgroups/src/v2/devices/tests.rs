use super::*;
use crate::devices::{ACCESS_MKNOD, ACCESS_READ, ACCESS_WRITE};
use oci_spec::runtime::LinuxDeviceCgroup;

/// Runs the subset of eBPF the compiler emits against one device access request.
fn run(prog: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
    let ctx = [(kind as u32) | (u32::from(access) << 16), major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..10_000 {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                r[dst] = u64::from(ctx[(i.off / 4) as usize]);
            }
            ALU_AND_K => r[dst] = u64::from((r[dst] as u32) & (i.imm as u32)),
            ALU_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
            ALU_MOV_K => r[dst] = u64::from(i.imm as u32),
            ALU_MOV_X => r[dst] = u64::from(r[src] as u32),
            JMP_JNE_K => {
                if r[dst] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            JMP_JNE_X => {
                if r[dst] != r[src] {
                    pc += i.off as usize;
                }
            }
            JMP_EXIT => return r[0],
            op => panic!("unexpected opcode {op:#x}"),
        }
    }
    panic!("program did not exit");
}

/// The reference semantics: walk the rules in order, the last match wins; "a" resets.
fn reference(rules: &[Rule], kind: Kind, access: u8, major: u32, minor: u32) -> bool {
    let mut verdict = false;
    for r in rules {
        let matches = r.kind == Kind::All
            || (r.kind == kind
                && !matches!(r.major, Some(m) if m != major)
                && !matches!(r.minor, Some(m) if m != minor)
                && access & r.access == access);
        if matches {
            verdict = r.allow;
        }
    }
    verdict
}

fn rules(json: &str) -> Vec<Rule> {
    let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
    devices::convert_all(&spec).unwrap()
}

fn check_all(rules: &[Rule]) {
    let prog = compile(rules);
    for (kind, bpf_kind) in [(Kind::Char, DEVCG_DEV_CHAR), (Kind::Block, DEVCG_DEV_BLOCK)] {
        for major in [0, 1, 5, 8, 136, 4095] {
            for minor in [0, 1, 3, 5, 9, 1_048_575] {
                for access in 1..=ACCESS_ALL {
                    let got = run(&prog, bpf_kind, access, major, minor) == 1;
                    let want = reference(rules, kind, access, major, minor);
                    assert_eq!(got, want, "{kind:?} {major}:{minor} access {access}");
                }
            }
        }
    }
}

#[test]
fn empty_list_denies_everything() {
    let prog = compile(&[]);
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_READ, 1, 3), 0);
    check_all(&[]);
}

#[test]
fn docker_default_list() {
    let r = rules(
        r#"[
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"},
        {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rw"},
        {"allow": true, "type": "b", "access": "m"},
        {"allow": true, "type": "c", "access": "m"}
    ]"#,
    );
    let prog = compile(&r);
    assert_eq!(
        run(&prog, DEVCG_DEV_CHAR, ACCESS_READ | ACCESS_WRITE, 1, 3),
        1
    );
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_READ, 1, 9), 0);
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_READ, 5, 1), 1);
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_MKNOD, 5, 1), 1);
    assert_eq!(run(&prog, DEVCG_DEV_BLOCK, ACCESS_READ, 8, 0), 0);
    assert_eq!(run(&prog, DEVCG_DEV_BLOCK, ACCESS_MKNOD, 8, 0), 1);
    check_all(&r);
}

#[test]
fn last_match_wins_and_resets() {
    let r = rules(
        r#"[
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "access": "rwm"},
        {"allow": false, "type": "c", "major": 1, "access": "w"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rw"},
        {"allow": false, "type": "b", "minor": 0}
    ]"#,
    );
    let prog = compile(&r);
    // default allow after the "a" rule
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_READ, 9, 9), 1);
    // c 1:* w denied, but c 1:5 rw allowed again by the later rule
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_WRITE, 1, 3), 0);
    assert_eq!(run(&prog, DEVCG_DEV_CHAR, ACCESS_WRITE, 1, 5), 1);
    assert_eq!(run(&prog, DEVCG_DEV_BLOCK, ACCESS_READ, 8, 0), 0);
    check_all(&r);
    // The rule before the reset is gone.
    let r2 = rules(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3}, {"allow": false}]"#);
    assert_eq!(run(&compile(&r2), DEVCG_DEV_CHAR, ACCESS_READ, 1, 3), 0);
    check_all(&r2);
}

#[test]
fn jumps_land_on_the_next_block() {
    let r = rules(r#"[{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "r"}]"#);
    let prog = compile(&r);
    // 6 preamble + (jne type, mov, and, jne access, jne major, jne minor, mov, exit) + 2
    assert_eq!(prog.len(), 6 + 8 + 2);
    for (i, insn) in prog.iter().enumerate().skip(6).take(6) {
        if insn.code == JMP_JNE_K || insn.code == JMP_JNE_X {
            assert_eq!(i + 1 + insn.off as usize, 14, "insn {i}");
        }
    }
}
