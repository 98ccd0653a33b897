//! Compiled seccomp programs, cached by the hash of the spec's seccomp section.
//!
//! Compiling a Docker-sized profile with libseccomp takes about 5 ms, and every container of a
//! daemon uses the same few profiles. The compiled program (BPF + flags) is kept in
//! `<state root>/.seccomp/<sha256>.bpf` (the state root is root-only), so a repeat start only
//! reads it back. A miss, or a file that does not parse, compiles afresh (which is also where
//! every validation error comes from).

use std::path::Path;

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

/// The loadable program for `spec`, from the cache or compiled (and then cached).
pub fn program(
    state_root: &Path,
    spec: &LinuxSeccomp,
) -> Result<hull_seccomp::Program, hull_seccomp::Error> {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION").as_bytes());
    h.update(format!("{:?}", hull_seccomp::Arch::native()).as_bytes());
    h.update(serde_json::to_vec(spec).unwrap_or_default());
    let key = hex::encode(h.finalize());
    let dir = state_root.join(".seccomp");
    let path = dir.join(format!("{key}.bpf"));
    if let Some(p) = std::fs::read(&path)
        .ok()
        .and_then(|b| hull_seccomp::Program::from_bytes(&b))
    {
        return Ok(p);
    }
    let p = hull_seccomp::compile(spec)?.program();
    // A cache that cannot be written only costs time.
    // A private temp name per process: concurrent creators never write one file together.
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = dir.join(format!("{key}.{}.tmp", std::process::id()));
        if std::fs::write(&tmp, p.to_bytes()).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LinuxSeccomp {
        serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn caches_and_recovers_from_a_bad_cache_file() {
        let t = tempfile::tempdir().unwrap();
        let first = program(t.path(), &spec()).unwrap();
        let files: Vec<_> = std::fs::read_dir(t.path().join(".seccomp"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(files.len(), 1, "one cache file, no temp leftovers");
        assert_eq!(
            program(t.path(), &spec()).unwrap(),
            first,
            "a hit gives the same program"
        );
        std::fs::write(files[0].path(), b"not a program").unwrap();
        assert_eq!(
            program(t.path(), &spec()).unwrap(),
            first,
            "a bad file is recompiled"
        );
        let mut bad = spec();
        bad.set_syscalls(Some(vec![serde_json::from_str(
            r#"{"names":["nosuchcall"],"action":"SCMP_ACT_ERRNO"}"#,
        )
        .unwrap()]));
        assert!(
            program(t.path(), &bad).is_err(),
            "validation still happens on a miss"
        );
    }
}
