//! The one place where this crate touches cgroup files: read, write, create and remove.
//!
//! Writes open an existing file (never create one: a missing control file means a missing
//! controller, and should fail loudly) and send the value in one write, as cgroupfs expects.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::Duration;

/// How often `remove_tree` retries an `rmdir` that fails with EBUSY (a cgroup whose last task
/// is still exiting), and the first delay (doubled each time, capped at 100ms).
const REMOVE_ATTEMPTS: u32 = 12;
const REMOVE_FIRST_DELAY: Duration = Duration::from_millis(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("read {path}: {source}")]
    ReadFile { path: PathBuf, source: io::Error },
    #[error("write {value:?} to {path}: {source}")]
    WriteFile {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("create cgroup directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("remove cgroup directory {path}: {source}")]
    RemoveDir { path: PathBuf, source: io::Error },
    #[error("list cgroup directory {path}: {source}")]
    ReadDir { path: PathBuf, source: io::Error },
    #[error("open cgroup directory {path}: {source}")]
    OpenDir { path: PathBuf, source: io::Error },
    #[error("parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
}

impl Error {
    fn io(&self) -> Option<&io::Error> {
        match self {
            Error::ReadFile { source, .. }
            | Error::WriteFile { source, .. }
            | Error::CreateDir { source, .. }
            | Error::RemoveDir { source, .. }
            | Error::ReadDir { source, .. }
            | Error::OpenDir { source, .. } => Some(source),
            Error::Parse { .. } => None,
        }
    }

    /// The errno of the failed syscall, if there was one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io().and_then(io::Error::raw_os_error)
    }

    /// True if the failure was a missing file or directory.
    pub fn is_not_found(&self) -> bool {
        self.io()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    }
}

pub(crate) fn exists(path: &Path) -> bool {
    path.exists()
}

pub(crate) fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_owned(),
        source,
    })
}

/// Reads a file, or `None` when it does not exist (controller absent, older kernel).
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::ReadFile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads a file holding one unsigned number; `None` if the file does not exist. "max" reads as
/// `u64::MAX`.
pub(crate) fn read_u64(path: &Path) -> Result<Option<u64>, Error> {
    let Some(text) = read_if_exists(path)? else {
        return Ok(None);
    };
    let t = text.trim();
    if t == "max" {
        return Ok(Some(u64::MAX));
    }
    t.parse().map(Some).map_err(|_| Error::Parse {
        path: path.to_owned(),
        content: text,
    })
}

pub(crate) fn write(path: &Path, value: &str) -> Result<(), Error> {
    let err = |source| Error::WriteFile {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)
}

/// Creates one directory level; returns whether it was created (false: it already existed).
pub(crate) fn create_dir(path: &Path) -> Result<bool, Error> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(Error::CreateDir {
            path: path.to_owned(),
            source,
        }),
    }
}

pub(crate) fn open_dir(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|source| Error::OpenDir {
        path: path.to_owned(),
        source,
    })
}

/// The subdirectories of `path` (real directories only, not symlinks).
pub(crate) fn subdirs(path: &Path) -> Result<Vec<PathBuf>, Error> {
    let err = |source| Error::ReadDir {
        path: path.to_owned(),
        source,
    };
    let mut out = Vec::new();
    for entry in fs::read_dir(path).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().map_err(err)?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the cgroup directory `path` and every cgroup below it, deepest first, with `rmdir`
/// only (cgroupfs control files cannot be unlinked). A missing directory is fine. EBUSY (tasks
/// still exiting) is retried a bounded number of times.
pub(crate) fn remove_tree(path: &Path) -> Result<(), Error> {
    let children = match subdirs(path) {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in children {
        remove_tree(&child)?;
    }
    let mut delay = REMOVE_FIRST_DELAY;
    let mut attempt = 0;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(nix::errno::Errno::EBUSY as i32)
                    && attempt + 1 < REMOVE_ATTEMPTS =>
            {
                attempt += 1;
                sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
            Err(source) => {
                return Err(Error::RemoveDir {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

/// The pids listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>, Error> {
    let text = read(path)?;
    let mut pids = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        pids.push(line.parse().map_err(|_| Error::Parse {
            path: path.to_owned(),
            content: line.to_owned(),
        })?);
    }
    Ok(pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_needs_existing_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("memory.max");
        let e = write(&p, "1").unwrap_err();
        assert!(e.is_not_found());
        assert!(e.to_string().contains("memory.max"));
        fs::write(&p, "old value").unwrap();
        write(&p, "42").unwrap();
        assert_eq!(read(&p).unwrap(), "42");
        assert_eq!(read_u64(&p).unwrap(), Some(42));
        assert_eq!(read_u64(&d.path().join("nope")).unwrap(), None);
    }

    #[test]
    fn remove_tree_deepest_first_and_missing_ok() {
        let d = tempfile::tempdir().unwrap();
        let top = d.path().join("a");
        fs::create_dir_all(top.join("b/c")).unwrap();
        fs::create_dir_all(top.join("d")).unwrap();
        remove_tree(&top).unwrap();
        assert!(!top.exists());
        remove_tree(&top).unwrap();
    }

    #[test]
    fn pids_parse() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("cgroup.procs");
        fs::write(&p, "1\n23\n\n").unwrap();
        assert_eq!(read_pids(&p).unwrap(), vec![1, 23]);
        fs::write(&p, "x\n").unwrap();
        assert!(read_pids(&p).is_err());
    }
}
