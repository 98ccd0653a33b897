//! Bind sources as the host will see them: symlinks resolved through the daemon's view of the
//! host, the rest lexically normalised (`/../`, `//`, `.`, a trailing `/`), so that
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

/// The real filesystem, for hulld.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostFs;

impl HostPaths for HostFs {
    fn canonicalize(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path).ok()
    }
    fn is_block_device(&self, path: &Path) -> bool {
        use std::os::unix::fs::FileTypeExt;
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
    }
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

/// The path the host will mount, resolved component by component as the kernel walks it:
/// each existing prefix through `paths` (so `link/..` is the link target's parent), and the
/// part that does not exist yet appended lexically.
pub fn resolve(path: &Path, paths: &dyn HostPaths) -> PathBuf {
    let mut current = paths
        .canonicalize(Path::new("/"))
        .unwrap_or_else(|| PathBuf::from("/"));
    let mut components = path.components();
    while let Some(c) = components.next() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            // `current` has no symlinks left, so `..` is its parent.
            Component::ParentDir => {
                current.pop();
            }
            Component::Normal(name) => {
                let next = current.join(name);
                match paths.canonicalize(&next) {
                    Some(real) => current = normalize(&real),
                    None => {
                        let rest: PathBuf = components.collect();
                        return normalize(&next.join(rest));
                    }
                }
            }
        }
    }
    current
}
