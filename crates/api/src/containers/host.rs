//! What the spec builder asks about the host ([`HostLookup`]), answered from the real host
//! and the container's mounted rootfs.

use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hull_engine::{HostDevice, HostLookup};
use oci_spec::runtime::{LinuxNamespaceType, PosixRlimitType};

pub(crate) struct Host<'a> {
    pub rootfs: &'a Path,
    /// Finds, creates and mounts volumes (None: volumes are refused).
    pub volumes: Option<&'a crate::volumes::VolumeMounter<'a>>,
}

impl HostLookup for Host<'_> {
    fn hard_limit(&self, typ: PosixRlimitType) -> Option<u64> {
        use nix::sys::resource::{getrlimit, Resource};
        let r = match typ {
            PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
            PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
            _ => return None,
        };
        getrlimit(r).ok().map(|(_, hard)| hard)
    }

    fn volume_path(&self, name: &str, target: &str) -> Option<PathBuf> {
        self.volumes?.path(name, target)
    }

    fn device(&self, path: &Path) -> std::io::Result<HostDevice> {
        let m = std::fs::metadata(path)?;
        let ft = m.file_type();
        let kind = if ft.is_char_device() {
            'c'
        } else if ft.is_block_device() {
            'b'
        } else {
            '-'
        };
        let rdev = m.rdev();
        Ok(HostDevice {
            kind,
            major: nix::sys::stat::major(rdev) as i64,
            minor: nix::sys::stat::minor(rdev) as i64,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        })
    }

    fn container_namespace(&self, _id: &str, _typ: LinuxNamespaceType) -> Option<PathBuf> {
        None // joining another container's namespaces is not served yet
    }

    /// Reads `path` inside the rootfs, refusing any symlink on the way: an image must not
    /// make hulld read a host file.
    fn rootfs_file(&self, path: &str) -> Option<String> {
        let mut p = self.rootfs.to_path_buf();
        for c in Path::new(path.trim_start_matches('/')).components() {
            match c {
                std::path::Component::Normal(n) => p.push(n),
                _ => return None,
            }
            if std::fs::symlink_metadata(&p).ok()?.file_type().is_symlink() {
                return None;
            }
        }
        std::fs::read_to_string(p).ok()
    }
}

/// `hull`'s ranges in /etc/subuid, or when it has none a built-in range of 1000 slices from
/// host id 1000000 (the line the engine suggests adding), with a warning.
/// Gives hull's user a range in each of `files` (/etc/subuid, /etc/subgid) that has none,
/// as the issue asks ("created if missing"); a file that cannot be written is reported and
/// hull uses its built-in range (the same numbers) for that run.
pub fn ensure_subid_entries(files: &[&Path]) {
    for file in files {
        match ensure_subid_entry(file) {
            Ok(Some(line)) => tracing::info!(
                "added {line} to {} (containers' user namespaces)",
                file.display()
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!("giving hull a range in {}: {e}", file.display()),
        }
    }
}

/// One file of [`ensure_subid_entries`], under an exclusive lock on it (daemons starting
/// together add one line, not one each).
fn ensure_subid_entry(file: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Read, Seek, Write};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o644)
        .open(file)?;
    let mut f = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| std::io::Error::from(e))?;
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    let Some(line) = hull_engine::userns::missing_entry(&text, hull_engine::userns::SUBID_USER)
    else {
        return Ok(None);
    };
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.seek(std::io::SeekFrom::End(0))?;
    f.write_all(format!("{sep}{line}\n").as_bytes())?;
    f.sync_all()?;
    Ok(Some(line))
}

pub fn subid_ranges(file: &Path) -> hull_engine::userns::SubidRanges {
    use hull_engine::userns::{SubidRanges, SUBID_USER};
    let text = std::fs::read_to_string(file).unwrap_or_default();
    match SubidRanges::parse(&file.display().to_string(), &text, SUBID_USER) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("{e}; using the built-in range hull:1000000:65536000");
            SubidRanges::parse("(built-in)", "hull:1000000:65536000", SUBID_USER)
                .expect("the built-in range parses")
        }
    }
}
