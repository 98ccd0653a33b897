//! Attached streams: the local terminal in raw mode for `-t`, stdin copied into a hijacked
//! connection, and the container's output (raw with a TTY, else Docker's multiplexed frames:
//! 8-byte header [stream, 0, 0, 0, size BE32], then the payload) copied out.

use std::io::Write as _;
use std::os::fd::AsFd;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::{Client, Upgraded};

/// The terminal's settings, restored on drop.
pub struct RawMode(Termios);

impl RawMode {
    /// Puts stdin's terminal in raw mode; None when stdin is not a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let old = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = old.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.0);
    }
}

pub fn stdout_is_tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
}

pub fn stdin_is_tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdin())
}

/// The local terminal's size (rows, columns).
pub fn term_size() -> Option<(u16, u16)> {
    hull_sys::tty::window_size(std::io::stdout().as_fd())
        .ok()
        .filter(|(h, w)| *h > 0 && *w > 0)
}

/// Keeps the container's TTY the size of ours: now and on every SIGWINCH. `path` is
/// `/containers/ID` or `/exec/ID`.
pub fn follow_resize(c: &Client, path: String) {
    let c = c.clone();
    tokio::spawn(async move {
        let resize = |c: Client, path: String| async move {
            if let Some((h, w)) = term_size() {
                let _ = c.post(&format!("{path}/resize?h={h}&w={w}"), None).await;
            }
        };
        resize(c.clone(), path.clone()).await;
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            resize(c.clone(), path.clone()).await;
        }
    });
}

/// Copies our stdin into `wr` until EOF, then closes the write side (the container sees EOF).
fn copy_stdin<W: AsyncWrite + Unpin + Send + 'static>(mut wr: W) {
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if wr.write_all(&buf[..n]).await.is_err() || wr.flush().await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = wr.shutdown().await;
    });
}

/// The daemon closing the stream, however abruptly, ends the output (as in docker).
fn ended(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe)
}

/// Demultiplexes Docker's frames from `rd` to stdout/stderr until EOF.
pub async fn demux<R: AsyncRead + Unpin>(mut rd: R) -> anyhow::Result<()> {
    let mut header = [0u8; 8];
    let mut buf = Vec::new();
    loop {
        match rd.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if ended(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let n = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        buf.resize(n, 0);
        match rd.read_exact(&mut buf).await {
            Ok(_) => {}
            Err(e) if ended(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        if header[0] == 2 {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&buf);
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            if o.write_all(&buf).and_then(|_| o.flush()).is_err() {
                return Ok(());
            }
        }
    }
}

/// Copies `rd` raw to stdout until EOF.
pub async fn raw_out<R: AsyncRead + Unpin>(mut rd: R) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if ended(&e) => 0,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Ok(());
        }
        let mut o = std::io::stdout().lock();
        if o.write_all(&buf[..n]).and_then(|_| o.flush()).is_err() {
            return Ok(());
        }
    }
}

/// Runs a hijacked session: stdin in (when `stdin`), output out, until the daemon closes it.
pub async fn pump(io: Upgraded, tty: bool, stdin: bool) -> anyhow::Result<()> {
    let (rd, wr) = tokio::io::split(io);
    if stdin {
        copy_stdin(wr);
    } else {
        drop(wr);
    }
    if tty {
        raw_out(rd).await
    } else {
        demux(rd).await
    }
}
