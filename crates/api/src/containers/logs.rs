//! Reading the json-file log back: Docker's multiplexed stream framing (non-TTY), tail,
//! timestamps, and following a log that the shim is still writing. Rotated files
//! (`<log>.N` oldest ... `<log>.1`) are read first ([`rotated_prefix`]); a follow that sees
//! the file rotated under it goes on in the new one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Wakes the pollers (log followers, `wait`) when a container record changes, so an exit is
/// seen at once rather than at the next poll (which cost `run --rm` 25 ms on average).
static CHANGES: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

/// A container record changed (started, exited, removed).
pub(crate) fn changed() {
    let mut g = CHANGES.0.lock().unwrap_or_else(|e| e.into_inner());
    *g = g.wrapping_add(1);
    CHANGES.1.notify_all();
}

/// Sleeps for `max` at most, less when a record changes meanwhile.
pub(crate) fn pause(max: Duration) {
    let g = CHANGES.0.lock().unwrap_or_else(|e| e.into_inner());
    let _ = CHANGES.1.wait_timeout(g, max);
}

/// Which entries and how (`GET /containers/{id}/logs`'s parameters).
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// Only the last n lines ("all": None).
    pub tail: Option<usize>,
    pub follow: bool,
    /// The container has a tty: the payloads without frame headers (Docker's raw stream).
    pub raw: bool,
}

/// One frame of Docker's multiplexed stream: stream type (1 stdout, 2 stderr), three zero
/// bytes, the payload length as a big-endian u32, the payload.
pub fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&[stream, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The frame for one json-file line, if `o` wants it.
pub fn entry_frame(line: &[u8], o: &LogOptions) -> Option<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let log = v.get("log")?.as_str()?;
    let stream = match v.get("stream")?.as_str()? {
        "stdout" if o.stdout => 1,
        "stderr" if o.stderr => 2,
        _ => return None,
    };
    let text = if o.timestamps {
        let time = v.get("time").and_then(|t| t.as_str()).unwrap_or_default();
        format!("{time} {log}")
    } else {
        log.to_string()
    };
    if o.raw {
        return Some(text.into_bytes());
    }
    Some(frame(stream, text.as_bytes()))
}

/// The content of the rotated files of the log at `path`, oldest first.
pub fn rotated_prefix(path: &Path) -> Vec<u8> {
    let mut n = 0;
    while hull_shim::jsonlog::rotated(path, n + 1).exists() {
        n += 1;
    }
    let mut out = Vec::new();
    for i in (1..=n).rev() {
        if let Ok(b) = std::fs::read(hull_shim::jsonlog::rotated(path, i)) {
            out.extend_from_slice(&b);
        }
    }
    out
}

/// Whether `path` is no longer the file `f` (it was rotated).
fn replaced(f: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() != b.ino() || a.dev() != b.dev(),
        _ => false,
    }
}

/// Sends the frames of `prefix` and then `file` from `offset`: what is there (its last
/// `tail` lines), then with `follow` what is appended until `done()` (checked when no more
/// is there, then read once more); when `path` (the file's name) is given and the file is
/// rotated away meanwhile, the new file is followed. Stops early when `send` returns false
/// (the client went away).
pub fn stream(
    mut file: File,
    offset: u64,
    prefix: Vec<u8>,
    path: Option<&Path>,
    o: &LogOptions,
    done: &dyn Fn() -> bool,
    send: &mut dyn FnMut(Vec<u8>) -> bool,
) {
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return;
    }
    let mut pending: Vec<u8> = prefix;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    let mut finishing = false;
    loop {
        let mut got = false;
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    got = true;
                }
            }
        }
        let end = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines: Vec<&[u8]> = pending[..end]
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let skip = match (first, o.tail) {
            (true, Some(n)) => lines.len().saturating_sub(n),
            _ => 0,
        };
        first = false;
        for l in &lines[skip..] {
            if let Some(f) = entry_frame(l, o) {
                if !send(f) {
                    return;
                }
            }
        }
        pending.drain(..end);
        if !o.follow || finishing {
            return;
        }
        if !got {
            if let Some(p) = path.filter(|p| replaced(&file, p)) {
                if let Ok(f) = File::open(p) {
                    file = f;
                    continue;
                }
            }
            if done() {
                finishing = true;
                continue;
            }
            pause(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let f = frame(2, b"hi\n");
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&f[8..], b"hi\n");
    }

    #[test]
    fn tail_and_streams() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut text = String::new();
        for (i, s) in ["stdout", "stderr", "stdout"].iter().enumerate() {
            text.push_str(&format!(
                "{{\"log\":\"l{i}\\n\",\"stream\":\"{s}\",\"time\":\"2026-01-01T00:00:00Z\"}}\n"
            ));
        }
        std::fs::write(&p, text).unwrap();
        let o = LogOptions {
            stdout: true,
            stderr: false,
            tail: Some(2),
            ..Default::default()
        };
        let mut got = Vec::new();
        stream(
            File::open(&p).unwrap(),
            0,
            Vec::new(),
            None,
            &o,
            &|| true,
            &mut |f| {
                got.push(f);
                true
            },
        );
        assert_eq!(got, vec![frame(1, b"l2\n")]);
    }

    #[test]
    fn rotated_files_come_first_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c-json.log");
        let line = |t: &str| {
            format!(
                "{{\"log\":\"{t}\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}}\n"
            )
        };
        std::fs::write(hull_shim::jsonlog::rotated(&p, 2), line("a")).unwrap();
        std::fs::write(hull_shim::jsonlog::rotated(&p, 1), line("b")).unwrap();
        std::fs::write(&p, line("c")).unwrap();
        let o = LogOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut got = Vec::new();
        let prefix = rotated_prefix(&p);
        stream(
            File::open(&p).unwrap(),
            0,
            prefix,
            Some(&p),
            &o,
            &|| true,
            &mut |f| {
                got.push(f);
                true
            },
        );
        assert_eq!(
            got,
            vec![frame(1, b"a\n"), frame(1, b"b\n"), frame(1, b"c\n")]
        );
    }
}
