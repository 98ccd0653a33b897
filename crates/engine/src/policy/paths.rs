//! Bind sources as the host will see them: lexically normalised (`/../`, `//`, `.`, a
//! trailing `/`), then with symlinks resolved through the daemon's view of the host, so that
//! `/tmp/x/../../etc`, `//etc/` and a symlink to `/` are all checked as what they reach.

use std::path::{Component, Path, PathBuf};

/// The host filesystem, as far as the policy check needs it. hulld passes one backed by the
/// real filesystem; tests pass a map.
pub trait HostPaths {
    /// The path with every symlink resolved (realpath(3)); None when it does not exist.
    fn canonicalize(&self, path: &Path) -> Option<PathBuf>;
    /// Whether `path` (already resolved) is a block device.
    fn is_block_device(&self, path: &Path) -> bool;
}

/// Lexical normalisation of an absolute path: `.` and empty components dropped, `..` removes
/// the previous component (and stays at `/` at the root, as the kernel does).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The path the host will mount: the longest existing ancestor resolved through `paths`, the
/// rest appended, and the result normalised again (a resolved link may be followed by `..`).
pub fn resolve(path: &Path, paths: &dyn HostPaths) -> PathBuf {
    let lexical = normalize(path);
    // Resolve the whole path as given first: `link/..` means the link's parent to the kernel.
    if let Some(real) = paths.canonicalize(path) {
        return normalize(&real);
    }
    let mut head = lexical.clone();
    let mut tail: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Some(real) = paths.canonicalize(&head) {
            let mut out = real;
            for name in tail.iter().rev() {
                out.push(name);
            }
            return normalize(&out);
        }
        match (head.file_name().map(|n| n.to_owned()), head.parent()) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                head = parent.to_owned();
            }
            _ => return lexical,
        }
    }
}
