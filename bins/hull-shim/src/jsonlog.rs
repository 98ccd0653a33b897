//! Docker's json-file log format: one JSON object per line,
//! `{"log":"hello\n","stream":"stdout","time":"2026-01-01T00:00:00.000000000Z"}`. A line longer
//! than 16 KiB is split (as Docker does); the last piece of a stream may lack its newline.

use std::fs::File;
use std::io::{Read, Write};
use std::sync::Mutex;

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

/// Copies `from` into `log` as entries of `stream` until end of file.
pub fn copy(mut from: File, stream: &str, log: Option<&Mutex<File>>) {
    let mut buf = vec![0u8; MAX_ENTRY];
    let mut pending: Vec<u8> = Vec::new();
    let write = |piece: &[u8]| {
        if let Some(l) = log {
            let e = entry(stream, piece, &hull_runtime::state::now_rfc3339());
            if let Ok(mut f) = l.lock() {
                let _ = f.write_all(&e);
            }
        }
    };
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(i) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            write(&line);
        }
        while pending.len() >= MAX_ENTRY {
            let piece: Vec<u8> = pending.drain(..MAX_ENTRY).collect();
            write(&piece);
        }
    }
    if !pending.is_empty() {
        write(&pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let src = dir.path().join("src");
        std::fs::write(&src, b"a\nbc\nlast").unwrap();
        let out = dir.path().join("log");
        let log = Mutex::new(File::create(&out).unwrap());
        copy(File::open(&src).unwrap(), "stderr", Some(&log));
        let text = std::fs::read_to_string(&out).unwrap();
        let logs: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["log"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(logs, ["a\n", "bc\n", "last"]);
    }
}
