//! Docker's json-file log format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-01-01T00:00:00.000000000Z"}`. A line longer
//! than 16 KiB is split (as Docker does); the last piece of a stream may lack its newline.
//!
//! [`Log`] writes it with Docker's rotation (`max-size`, `max-file`): when the next entry
//! would take `<id>-json.log` over max-size, it is renamed to `.1` (`.1` to `.2`, ...), the
//! oldest beyond max-file is dropped, and a new file is started.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The longest piece written as one entry.
pub const MAX_ENTRY: usize = 16 * 1024;

/// One log entry, newline-terminated.
pub fn entry(stream: &str, text: &[u8], time: &str) -> Vec<u8> {
    let v = serde_json::json!({
        "log": String::from_utf8_lossy(text),
        "stream": stream,
        "time": time,
    });
    let mut line = serde_json::to_vec(&v).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Rotation limits (0 max_size: never rotate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rotation {
    pub max_size: u64,
    /// Files kept, the current one included (at least 1).
    pub max_file: u32,
}

/// The path of rotated file `n` (`<path>.n`).
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// A json-file log being written: whole lines per stream, rotated by size.
pub struct Log {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    rotation: Rotation,
    /// Per stream (stdout, stderr): bytes not yet ended by a newline.
    pending: [Vec<u8>; 2],
}

impl Log {
    /// Opens (appends to) the log at `path`; a failure is reported once on stderr and the
    /// output then only goes to attached clients.
    pub fn open(path: &Path, rotation: Rotation) -> Log {
        let file = match File::options().create(true).append(true).open(path) {
            Ok(f) => Some(f),
            Err(e) => {
                eprintln!("hull-shim: opening {}: {e}", path.display());
                None
            }
        };
        let size = file
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        Log {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
            pending: [Vec::new(), Vec::new()],
        }
    }

    fn name(stream: usize) -> &'static str {
        if stream == 0 {
            "stdout"
        } else {
            "stderr"
        }
    }

    /// Output of `stream` (0 stdout, 1 stderr): complete lines and 16 KiB pieces are written.
    pub fn write(&mut self, stream: usize, data: &[u8]) {
        let stream = stream.min(1);
        self.pending[stream].extend_from_slice(data);
        loop {
            let p = &mut self.pending[stream];
            let piece: Vec<u8> = if let Some(i) = p.iter().position(|&b| b == b'\n') {
                p.drain(..=i).collect()
            } else if p.len() >= MAX_ENTRY {
                p.drain(..MAX_ENTRY).collect()
            } else {
                break;
            };
            self.entry(stream, &piece);
        }
    }

    /// Writes what is pending of both streams (at the container's end).
    pub fn flush(&mut self) {
        for s in 0..2 {
            let p = std::mem::take(&mut self.pending[s]);
            if !p.is_empty() {
                self.entry(s, &p);
            }
        }
    }

    fn entry(&mut self, stream: usize, piece: &[u8]) {
        let e = entry(
            Self::name(stream),
            piece,
            &hull_runtime::state::now_rfc3339(),
        );
        let r = self.rotation;
        if r.max_size > 0 && self.size > 0 && self.size + e.len() as u64 > r.max_size {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(&e).is_ok() {
                self.size += e.len() as u64;
            }
        }
    }

    fn rotate(&mut self) {
        let keep = self.rotation.max_file.max(1);
        self.file = None;
        if keep == 1 {
            let _ = File::create(&self.path);
        } else {
            let _ = std::fs::remove_file(rotated(&self.path, keep - 1));
            for n in (1..keep - 1).rev() {
                let _ = std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1));
            }
            if let Err(e) = std::fs::rename(&self.path, rotated(&self.path, 1)) {
                eprintln!("hull-shim: rotating {}: {e}", self.path.display());
            }
        }
        *self = Log {
            pending: std::mem::take(&mut self.pending),
            ..Log::open(&self.path, self.rotation)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(p: &Path) -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn entries_have_docker_shape() {
        let e = entry("stdout", b"hello\n", "2026-01-01T00:00:00.000000000Z");
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["log"], "hello\n");
        assert_eq!(v["stream"], "stdout");
        assert!(e.ends_with(b"}\n"));
    }

    #[test]
    fn splits_lines_and_keeps_a_partial_tail() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("log");
        let mut log = Log::open(&out, Rotation::default());
        log.write(1, b"a\nb");
        log.write(1, b"c\nlast");
        log.flush();
        assert_eq!(logs(&out), ["a\n", "bc\n", "last"]);
    }

    #[test]
    fn rotates_by_size_keeping_max_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("c-json.log");
        let rot = Rotation {
            max_size: 300,
            max_file: 3,
        };
        let mut log = Log::open(&out, rot);
        for i in 0..40 {
            log.write(0, format!("line {i}\n").as_bytes());
        }
        log.flush();
        assert!(out.exists() && rotated(&out, 1).exists() && rotated(&out, 2).exists());
        assert!(!rotated(&out, 3).exists(), "max-file 3 keeps 3 files");
        for p in [out.clone(), rotated(&out, 1), rotated(&out, 2)] {
            assert!(std::fs::metadata(&p).unwrap().len() <= 300, "{p:?} too big");
        }
        // The newest lines are in the current file, in order with the rotated ones.
        let mut all = logs(&rotated(&out, 2));
        all.extend(logs(&rotated(&out, 1)));
        all.extend(logs(&out));
        assert_eq!(all.last().unwrap(), "line 39\n");
        let nums: Vec<u32> = all
            .iter()
            .map(|l| l.trim().trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
    }
}
