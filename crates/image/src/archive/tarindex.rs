//! A table of a tar file's entries (name -> offset and size), read by seeking over the
//! contents, so that files can then be read in any order without loading any of them.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::ArchiveError;

pub struct TarIndex {
    path: PathBuf,
    file: File,
    files: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

/// "./a/../b/c" -> "b/c".
fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl TarIndex {
    pub fn open(path: &Path) -> Result<TarIndex, ArchiveError> {
        let read_err = |source| ArchiveError::ReadTar {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(|source| ArchiveError::Io {
            path: path.to_path_buf(),
            what: "opening",
            source,
        })?;
        let len = file.metadata().map_err(read_err)?.len();
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let mut ar = tar::Archive::new(&file);
        for e in ar.entries_with_seek().map_err(read_err)? {
            let e = e.map_err(read_err)?;
            let name = clean(&e.path().map_err(read_err)?.to_string_lossy());
            let kind = e.header().entry_type();
            if kind.is_file() {
                let (off, size) = (e.raw_file_position(), e.size());
                if off + size > len {
                    return Err(ArchiveError::Truncated {
                        path: path.to_path_buf(),
                        entry: name,
                        end: off + size,
                        size: len,
                    });
                }
                files.insert(name, (off, size));
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = e
                    .link_name()
                    .map_err(read_err)?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if kind.is_symlink() && !target.starts_with('/') {
                    let dir = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    clean(&format!("{dir}/{target}"))
                } else {
                    clean(&target)
                };
                links.insert(name, target);
            }
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            file,
            files,
            links,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn locate(&self, name: &str) -> Option<(u64, u64)> {
        let mut n = clean(name);
        for _ in 0..8 {
            if let Some(x) = self.files.get(&n) {
                return Some(*x);
            }
            n = self.links.get(&n)?.clone();
        }
        None
    }

    pub fn contains(&self, name: &str) -> bool {
        self.locate(name).is_some()
    }

    /// Size of an entry.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.locate(name).map(|(_, s)| s)
    }

    /// A reader over one entry's contents. It reads at its own offsets (`pread`), so
    /// several entries may be read at once from different threads.
    pub fn open_entry(&self, name: &str) -> Option<std::io::Result<EntryReader<'_>>> {
        let (off, size) = self.locate(name)?;
        Some(Ok(EntryReader {
            file: &self.file,
            pos: off,
            end: off + size,
        }))
    }

    /// Reads a small entry (a manifest or config) whole.
    pub fn read_small(&self, name: &str) -> Option<std::io::Result<Vec<u8>>> {
        let (_, size) = self.locate(name)?;
        if size > 64 << 20 {
            return Some(Err(std::io::Error::other(format!(
                "{name} is {size} bytes, too large for a manifest or config"
            ))));
        }
        let mut r = match self.open_entry(name)? {
            Ok(r) => r,
            Err(e) => return Some(Err(e)),
        };
        let mut v = Vec::with_capacity(size as usize);
        Some(r.read_to_end(&mut v).map(|_| v))
    }
}

/// One archive entry's bytes ([`TarIndex::open_entry`]).
pub struct EntryReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for EntryReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = (self.end - self.pos).min(buf.len() as u64) as usize;
        if left == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..left], self.pos)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the archive ended inside an entry (truncated?)",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}
