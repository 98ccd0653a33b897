//! The container's I/O while it runs: one `poll(2)` loop (no threads, no async runtime) that
//! copies the container's output (a pty master with `Tty`, else stdout/stderr pipes) into the
//! json-file log and to attached clients, feeds the container's stdin from clients, applies
//! window-size changes to the pty, and notices the init's exit through a signalfd.
//!
//! Clients (hulld, for attach) connect to `DIR/io.sock` and speak [`proto`].

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::jsonlog::Log;

/// The attach socket protocol: frames like Docker's multiplexed stream, `[kind, 0, 0, 0,
/// len (u32 big-endian), payload]`. The shim sends kinds 1 (stdout) and 2 (stderr; with a
/// tty everything is 1); a client sends [`STDIN`](proto::STDIN) data,
/// [`STDIN_EOF`](proto::STDIN_EOF) (its stdin ended) and [`RESIZE`](proto::RESIZE)
/// (height and width, u16 big-endian each). The shim closes the connection when the
/// container exits.
pub mod proto {
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const STDIN: u8 = 0;
    pub const STDIN_EOF: u8 = 3;
    pub const RESIZE: u8 = 4;

    pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(8 + payload.len());
        f.extend_from_slice(&[kind, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    pub fn resize(height: u16, width: u16) -> Vec<u8> {
        let mut p = height.to_be_bytes().to_vec();
        p.extend_from_slice(&width.to_be_bytes());
        frame(RESIZE, &p)
    }

    /// Takes the complete frames off the front of `buf`.
    pub fn split(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            if buf.len() < 8 {
                return out;
            }
            let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
            if buf.len() < 8 + len {
                return out;
            }
            let kind = buf[0];
            let payload = buf[8..8 + len].to_vec();
            buf.drain(..8 + len);
            out.push((kind, payload));
        }
    }
}

/// A client's output buffer beyond which it is dropped (it stopped reading).
const CLIENT_BACKLOG: usize = 4 << 20;
/// Stdin buffered for the container beyond which clients are not read.
const STDIN_BACKLOG: usize = 1 << 20;
/// How long output is still read after the init's exit.
const DRAIN: Duration = Duration::from_secs(2);

/// The container's ends, held by the shim.
pub struct Stdio {
    /// (fd, stream index: 0 stdout, 1 stderr); with a tty the master, once.
    pub outputs: Vec<(OwnedFd, usize)>,
    /// Where stdin goes (the pipe's write end, or a copy of the master); None: /dev/null.
    pub stdin: Option<OwnedFd>,
    /// The pty master, for resizes.
    pub master: Option<OwnedFd>,
    /// Close stdin when the first client's stdin ends.
    pub stdin_once: bool,
}

pub struct Client {
    sock: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Nothing more can be sent to it (it closed, or stopped reading).
    gone: bool,
    /// Nothing more comes from it. A client is dropped once this is true too: what it sent
    /// before it closed (a resize) still counts.
    eof: bool,
}

impl Client {
    pub fn new(sock: UnixStream) -> Client {
        let _ = sock.set_nonblocking(true);
        Client {
            sock,
            inbuf: Vec::new(),
            out: Vec::new(),
            gone: false,
            eof: false,
        }
    }

    fn send(&mut self, frame: &[u8]) {
        if self.gone {
            return;
        }
        self.out.extend_from_slice(frame);
        self.flush();
        if self.out.len() > CLIENT_BACKLOG {
            self.gone = true;
            self.eof = true;
        }
    }

    fn flush(&mut self) {
        while !self.out.is_empty() && !self.gone {
            match self.sock.write(&self.out) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => self.gone = true,
            }
        }
    }

    /// Sends what is buffered (blocking, a second at most) and closes.
    fn finish(mut self) {
        let _ = self.sock.set_nonblocking(false);
        let _ = self.sock.set_write_timeout(Some(Duration::from_secs(1)));
        if !self.gone {
            let _ = self.sock.write_all(&self.out);
        }
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(bits) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(bits) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

/// Reaps children; the init's exit code (128+N for signal N) once it has ended.
pub fn reap(pid: i32) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => code = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return code,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("hull-shim: waiting for the container: {e}");
                return code.or(Some(255));
            }
        }
    }
}

/// Runs the I/O until the init `pid` has exited and its output is drained; its exit code.
/// `stop()` is asked each round whether hulld asked the shim to stop for good (it only
/// matters to the caller; the loop still waits for the exit).
pub fn serve(
    pid: i32,
    sig: &SignalFd,
    listener: Option<&UnixListener>,
    clients: &mut Vec<Client>,
    stdio: &mut Stdio,
    log: &mut Option<Log>,
) -> i32 {
    for (fd, _) in &stdio.outputs {
        set_nonblocking(fd);
    }
    if let Some(fd) = &stdio.stdin {
        set_nonblocking(fd);
    }
    let mut stdin_buf: Vec<u8> = Vec::new();
    let mut close_stdin = false;
    let mut code = reap(pid);
    let mut exited_at = code.map(|_| Instant::now());
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        if let Some(t) = exited_at {
            if stdio.outputs.is_empty() || t.elapsed() > DRAIN {
                break;
            }
        }
        if close_stdin && stdin_buf.is_empty() {
            stdio.stdin = None;
            close_stdin = false;
        }
        // Index layout: 0 signalfd, 1 listener, outputs, stdin, clients.
        let nout = stdio.outputs.len();
        let read_clients = stdin_buf.len() < STDIN_BACKLOG;
        let (ready, stdin_ready, client_ready) = {
            // Without a listener the signalfd stands in its place (index 1), never read there.
            let lfd = listener.map_or(sig.as_fd(), |l| l.as_fd());
            let lev = if listener.is_some() {
                PollFlags::POLLIN
            } else {
                PollFlags::empty()
            };
            let mut fds = vec![
                PollFd::new(sig.as_fd(), PollFlags::POLLIN),
                PollFd::new(lfd, lev),
            ];
            for (fd, _) in &stdio.outputs {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            let want_stdin = !stdin_buf.is_empty() && stdio.stdin.is_some();
            if let (true, Some(fd)) = (want_stdin, &stdio.stdin) {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
            }
            for c in clients.iter() {
                let mut ev = PollFlags::empty();
                if read_clients && !c.eof {
                    ev |= PollFlags::POLLIN;
                }
                if !c.out.is_empty() && !c.gone {
                    ev |= PollFlags::POLLOUT;
                }
                fds.push(PollFd::new(c.sock.as_fd(), ev));
            }
            let timeout = if exited_at.is_some() {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            match nix::poll::poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => {
                    eprintln!("hull-shim: poll: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let ev: Vec<PollFlags> = fds
                .iter()
                .map(|f| f.revents().unwrap_or(PollFlags::empty()))
                .collect();
            let base = 2 + nout;
            let stdin_ready = if want_stdin { Some(ev[base]) } else { None };
            let cbase = base + usize::from(want_stdin);
            (ev[..base].to_vec(), stdin_ready, ev[cbase..].to_vec())
        };
        if !ready[0].is_empty() {
            while let Ok(Some(_)) = sig.read_signal() {}
        }
        if code.is_none() {
            code = reap(pid);
            if code.is_some() {
                exited_at = Some(Instant::now());
            }
        }
        if let (true, Some(listener)) = (ready[1].contains(PollFlags::POLLIN), listener) {
            while let Ok((s, _)) = listener.accept() {
                clients.push(Client::new(s));
            }
        }
        // Output, newest state first so that a hang-up after data still reads the data.
        let mut ended = Vec::new();
        for (i, ev) in ready[2..].iter().enumerate() {
            if ev.is_empty() {
                continue;
            }
            let (fd, stream) = &stdio.outputs[i];
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => ended.push(i),
                Ok(n) => {
                    if let Some(l) = log {
                        l.write(*stream, &buf[..n]);
                    }
                    let frame = proto::frame(*stream as u8 + 1, &buf[..n]);
                    for c in clients.iter_mut() {
                        c.send(&frame);
                    }
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EIO: the pty's last slave is closed.
                Err(_) => ended.push(i),
            }
        }
        for i in ended.into_iter().rev() {
            stdio.outputs.remove(i);
        }
        if let (Some(ev), Some(fd)) = (stdin_ready, &stdio.stdin) {
            if !ev.is_empty() {
                match nix::unistd::write(fd, &stdin_buf) {
                    Ok(n) => {
                        stdin_buf.drain(..n);
                    }
                    Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                    Err(_) => {
                        stdin_buf.clear();
                        stdio.stdin = None;
                    }
                }
            }
        }
        for (c, ev) in clients.iter_mut().zip(client_ready) {
            if ev.contains(PollFlags::POLLOUT) {
                c.flush();
            }
            let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
            if !c.eof && ev.intersects(readable) {
                loop {
                    match c.sock.read(&mut buf) {
                        Ok(0) => {
                            c.eof = true;
                            break;
                        }
                        Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => {
                            c.eof = true;
                            break;
                        }
                    }
                }
                for (kind, payload) in proto::split(&mut c.inbuf) {
                    match kind {
                        proto::STDIN if stdio.stdin.is_some() => {
                            stdin_buf.extend_from_slice(&payload)
                        }
                        proto::STDIN_EOF if stdio.stdin_once => close_stdin = true,
                        proto::RESIZE if payload.len() == 4 => {
                            let h = u16::from_be_bytes([payload[0], payload[1]]);
                            let w = u16::from_be_bytes([payload[2], payload[3]]);
                            match &stdio.master {
                                Some(m) => {
                                    if let Err(e) = hull_sys::tty::set_window_size(m.as_fd(), h, w)
                                    {
                                        eprintln!(
                                            "hull-shim: setting the window size {h}x{w}: {e}"
                                        );
                                    }
                                }
                                None => eprintln!("hull-shim: window size {h}x{w} without a tty"),
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        // Try to write stdin at once (most writes do not block).
        if !stdin_buf.is_empty() {
            if let Some(fd) = &stdio.stdin {
                if let Ok(n) = nix::unistd::write(fd, &stdin_buf) {
                    stdin_buf.drain(..n);
                }
            }
        }
        // A client that closed is dropped once its output is sent (or cannot be).
        clients.retain(|c| !(c.eof && (c.gone || c.out.is_empty())));
    }
    if let Some(l) = log {
        l.flush();
    }
    for c in clients.drain(..) {
        c.finish();
    }
    stdio.stdin = None;
    code.unwrap_or(255)
}

#[cfg(test)]
mod tests {
    use super::proto;

    #[test]
    fn frames_split_back_whole_and_keep_a_partial_one() {
        let mut buf = proto::frame(proto::STDIN, b"abc");
        buf.extend(proto::resize(40, 120));
        let third = proto::frame(proto::STDIN_EOF, b"");
        buf.extend(&third[..5]);
        let got = proto::split(&mut buf);
        assert_eq!(
            got,
            vec![
                (proto::STDIN, b"abc".to_vec()),
                (proto::RESIZE, vec![0, 40, 0, 120]),
            ]
        );
        assert_eq!(buf, third[..5].to_vec(), "the partial frame stays");
        buf.extend(&third[5..]);
        assert_eq!(proto::split(&mut buf), vec![(proto::STDIN_EOF, Vec::new())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn output_frames_are_dockers_multiplexed_format() {
        let f = proto::frame(proto::STDERR, b"hi\n");
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
    }
}
