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
