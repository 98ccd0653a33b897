//! The hijacked side of attach and interactive exec: bytes between a client's raw
//! connection and a shim speaking [`hull_shim::io::proto`].
//!
//! From the shim come output frames: with a tty their payload goes to the client as is
//! (Docker's raw stream), else the frames (Docker's multiplexed format already) of the
//! streams asked for. From the client come stdin bytes, sent on as STDIN frames (STDIN_EOF
//! when the client closes its write side), unless it typed the detach keys (Ctrl-P Ctrl-Q),
//! which ends the attach. The connection is closed when the shim closes its end (the
//! process exited).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hull_shim::io::proto;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// What the client asked for.
#[derive(Debug, Clone, Copy)]
pub struct Want {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Docker's default detach keys, Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH: [u8; 2] = [0x10, 0x11];

/// Docker's detach-keys format: comma-separated keys, each one character or `ctrl-X`
/// (X one of a-z, @, [, \\, ], ^, _); empty: the default.
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Ok(DEFAULT_DETACH.to_vec());
    }
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.trim();
        if let Some(c) = k.strip_prefix("ctrl-") {
            match c.as_bytes() {
                [b @ b'a'..=b'z'] => out.push(b - b'a' + 1),
                [b @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_')] => out.push(b - b'@'),
                _ => return Err(format!("unknown character {key:?}")),
            }
        } else if k.len() == 1 && k.is_ascii() {
            out.push(k.as_bytes()[0]);
        } else {
            return Err(format!("unknown character {key:?}"));
        }
    }
    Ok(out)
}

/// Finds the detach keys in the input, across reads.
struct Detach {
    keys: Vec<u8>,
    matched: usize,
}

impl Detach {
    /// When the sequence completes in `data`: where it starts in `data` (0 when it began
    /// in an earlier read) and the index just past it.
    fn feed(&mut self, data: &[u8]) -> Option<(usize, usize)> {
        if self.keys.is_empty() {
            return None;
        }
        let mut start = 0;
        for (i, &b) in data.iter().enumerate() {
            if b == self.keys[self.matched] {
                if self.matched == 0 {
                    start = i;
                }
                self.matched += 1;
            } else if b == self.keys[0] {
                self.matched = 1;
                start = i;
            } else {
                self.matched = 0;
            }
            if self.matched == self.keys.len() {
                return Some((start, i + 1));
            }
        }
        None
    }
}

/// Reads the client's stdin into a channel at once (it may come before the process runs);
/// `None` on the channel is its end of input. `failed` is set when the connection broke.
pub fn read_client<R: AsyncRead + Unpin + Send + 'static>(
    mut r: R,
    failed: Arc<AtomicBool>,
) -> (mpsc::Receiver<Option<Bytes>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) => {
                    let _ = tx.send(None).await;
                    return;
                }
                Ok(n) => {
                    if tx
                        .send(Some(Bytes::copy_from_slice(&buf[..n])))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(_) => {
                    failed.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    });
    (rx, task)
}

/// Runs the attach over `shim` (a connected std socket) until the process ends or the
/// client detaches. `input` is the client's stdin from [`read_client`]; `extra` more frames
/// for the shim (resizes); `done` is awaited before the client's connection is closed.
pub async fn run<W: AsyncWrite + Unpin + Send + 'static>(
    shim: std::os::unix::net::UnixStream,
    mut client_w: W,
    mut input: mpsc::Receiver<Option<Bytes>>,
    mut extra: Option<mpsc::Receiver<Vec<u8>>>,
    want: Want,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
    detach_keys: Vec<u8>,
) {
    let closer = shim.try_clone().ok();
    if shim.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(shim) = tokio::net::UnixStream::from_std(shim) else {
        return;
    };
    let (mut sr, sw) = shim.into_split();
    // Everything for the shim goes through one writer, so that frames never interleave.
    let (ftx, mut frx) = mpsc::channel::<Vec<u8>>(64);
    // It hands its half back at the end: dropping it would shut the socket's write side,
    // which the shim takes for a client gone.
    let writer = tokio::spawn(async move {
        let mut sw = sw;
        while let Some(f) = frx.recv().await {
            if sw.write_all(&f).await.is_err() {
                break;
            }
        }
        sw
    });
    if let Some(mut ex) = extra.take() {
        let ftx = ftx.clone();
        tokio::spawn(async move {
            while let Some(f) = ex.recv().await {
                if ftx.send(f).await.is_err() {
                    return;
                }
            }
        });
    }
    let stdin_task = tokio::spawn(async move {
        let mut detach = Detach {
            keys: detach_keys,
            matched: 0,
        };
        while let Some(chunk) = input.recv().await {
            let Some(data) = chunk else {
                if want.stdin {
                    let _ = ftx.send(proto::frame(proto::STDIN_EOF, &[])).await;
                }
                return false;
            };
            if !want.stdin {
                continue;
            }
            // The detach keys end the attach (what came before them is sent; keys of the
            // sequence that came in an earlier read have gone to the container already).
            match detach.feed(&data) {
                Some((keep, _)) => {
                    if keep > 0 {
                        let _ = ftx.send(proto::frame(proto::STDIN, &data[..keep])).await;
                    }
                    let _ = ftx.send(proto::frame(proto::STDIN_EOF, &[])).await;
                    // Let the writer send what is queued, then end the shim connection.
                    drop(ftx);
                    return true;
                }
                None => {
                    if ftx.send(proto::frame(proto::STDIN, &data)).await.is_err() {
                        return false;
                    }
                }
            }
        }
        // The connection broke: its input has ended too (StdinOnce closes stdin then).
        if want.stdin {
            let _ = ftx.send(proto::frame(proto::STDIN_EOF, &[])).await;
        }
        false
    });
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let out_task = async {
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            for (kind, payload) in proto::split(&mut pending) {
                let ok = match kind {
                    _ if want.tty => client_w.write_all(&payload).await.is_ok(),
                    proto::STDOUT if want.stdout => client_w
                        .write_all(&proto::frame(kind, &payload))
                        .await
                        .is_ok(),
                    proto::STDERR if want.stderr => client_w
                        .write_all(&proto::frame(kind, &payload))
                        .await
                        .is_ok(),
                    _ => true,
                };
                if !ok {
                    return;
                }
            }
        }
    };
    // The detach: when the stdin task ends because of the keys, the writer ends once its
    // queue is sent; then the shim connection is shut down, which ends the output loop.
    let watcher = {
        let closer = closer.as_ref().and_then(|c| c.try_clone().ok());
        tokio::spawn(async move {
            let detached = matches!(stdin_task.await, Ok(true));
            let half = writer.await;
            if detached {
                if let Some(c) = closer {
                    let _ = c.shutdown(std::net::Shutdown::Both);
                }
            } else {
                // Kept open until the attach ends (this task is aborted then).
                std::future::pending::<()>().await;
            }
            drop(half);
        })
    };
    out_task.await;
    if let Some(d) = done {
        let _ = d.await;
    }
    let _ = client_w.shutdown().await;
    watcher.abort();
    if let Some(c) = closer {
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
}

/// The 101 response of a hijacked endpoint (`Upgrade: tcp`) with Docker's content type:
/// raw with a tty, multiplexed without.
pub fn upgraded_response(tty: bool) -> hyper::Response<crate::body::ApiBody> {
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let mut r = crate::body::response(
        hyper::StatusCode::SWITCHING_PROTOCOLS,
        ct,
        crate::body::ApiBody::empty(),
    );
    let h = r.headers_mut();
    h.insert(
        "Connection",
        hyper::header::HeaderValue::from_static("Upgrade"),
    );
    h.insert("Upgrade", hyper::header::HeaderValue::from_static("tcp"));
    r
}

/// Splits an upgraded connection into tokio halves.
pub fn split(
    u: hyper::upgrade::Upgraded,
) -> (
    tokio::io::ReadHalf<TokioIo<hyper::upgrade::Upgraded>>,
    tokio::io::WriteHalf<TokioIo<hyper::upgrade::Upgraded>>,
) {
    tokio::io::split(TokioIo::new(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_dockers() {
        assert_eq!(parse_detach_keys("").unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), vec![0, 0x1f]);
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("abc").is_err());
    }

    #[test]
    fn detach_sequence_is_found_across_reads() {
        let mut d = Detach {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        assert_eq!(d.feed(b"ab\x10"), None);
        assert_eq!(d.feed(b"\x11rest"), Some((0, 1)));
        let mut d = Detach {
            keys: vec![0x10, 0x11],
            matched: 0,
        };
        assert_eq!(d.feed(b"x\x10\x10\x11"), Some((2, 4)));
        assert_eq!(
            Detach {
                keys: vec![b'q'],
                matched: 0
            }
            .feed(b"xxq"),
            Some((2, 3))
        );
    }
}
