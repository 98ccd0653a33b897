//! The receiving end of `linux.seccomp.listenerPath`: a Unix socket the runtime connects to,
//! sending the container process state (JSON) and the seccomp notify fd (SCM_RIGHTS), and a
//! thread that answers the notifications with a fixed errno.

use std::io::{ErrorKind, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the runtime sent on the listener socket.
pub struct Received {
    /// The message text (the container process state, JSON).
    pub text: String,
    /// The fds that came with it (SCM_RIGHTS), in order.
    pub fds: Vec<OwnedFd>,
}

/// A seccomp listener socket (SOCK_STREAM) the runtime connects to.
pub struct Listener {
    listener: UnixListener,
}

impl Listener {
    #[track_caller]
    pub fn bind(path: &Path) -> Listener {
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("bind seccomp listener {}: {e}", path.display()));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        Listener { listener }
    }

    /// Accept one connection within `timeout` and read everything it carries until the
    /// runtime closes it.
    pub fn receive(&self, timeout: Duration) -> Result<Received, String> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(format!("no connection on the seccomp listener: {e}")),
            }
        };
        read_all(stream, timeout)
    }
}

fn read_all(mut stream: UnixStream, timeout: Duration) -> Result<Received, String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let (mut data, fds) =
        recv_with_fds(stream.as_raw_fd()).map_err(|e| format!("recvmsg on listener: {e}"))?;
    // The state may span more than one read; the runtime closes the connection when done.
    stream
        .read_to_end(&mut data)
        .map_err(|e| format!("reading the rest of the state: {e}"))?;
    Ok(Received {
        text: String::from_utf8_lossy(&data).into_owned(),
        fds,
    })
}

/// One recvmsg: the bytes read and every fd of every SCM_RIGHTS message.
fn recv_with_fds(sock: i32) -> std::io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut data = vec![0u8; 65536];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a few cmsghdrs with a few fds, aligned for cmsghdr.
    let mut cbuf = [0u64; 32];
    // SAFETY: msghdr is plain old data; all-zero is a valid value that we then fill in.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: msg points at live buffers (data, cbuf) of the sizes it states.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    data.truncate(n as usize);
    let mut fds = Vec::new();
    // SAFETY: msg was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR/CMSG_DATA walk within
    // msg_controllen, and each SCM_RIGHTS payload is an array of fds we now own.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                let p = libc::CMSG_DATA(c) as *const i32;
                for i in 0..len / std::mem::size_of::<i32>() {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(p.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Ok((data, fds))
}

/// One seccomp notification that was answered.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// The caller's pid (in the listener's pid namespace).
    pub pid: u32,
    /// The system call number.
    pub nr: i32,
}

/// A thread answering every notification on a seccomp notify fd with `-errno`.
pub struct Responder {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<Vec<Notification>, String>>,
}

impl Responder {
    /// Answer notifications on `fd` until [`Responder::finish`], until no process uses the
    /// filter any more, or until `timeout` passes.
    pub fn spawn(fd: OwnedFd, errno: i32, timeout: Duration) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = thread::spawn(move || answer(&fd, errno, Instant::now() + timeout, &flag));
        Responder { stop, handle }
    }

    /// Stop answering and return the notifications answered.
    pub fn finish(self) -> Result<Vec<Notification>, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .join()
            .unwrap_or_else(|_| Err("responder panicked".into()))
    }
}

fn answer(
    fd: &OwnedFd,
    errno: i32,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<Vec<Notification>, String> {
    let raw = fd.as_raw_fd();
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let mut p = libc::pollfd {
            fd: raw,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, 50) };
        if r <= 0 {
            continue;
        }
        if p.revents & libc::POLLIN == 0 {
            // POLLHUP: no process uses the filter any more.
            break;
        }
        // SAFETY: seccomp_notif is plain old data; the kernel wants it zeroed.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: req is a valid seccomp_notif the ioctl fills in.
        if unsafe { libc::ioctl(raw, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                // The caller died or the call was interrupted before we got it.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => return Err(format!("SECCOMP_IOCTL_NOTIF_RECV: {e}")),
            }
        }
        seen.push(Notification {
            pid: req.pid,
            nr: req.data.nr,
        });
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: -errno,
            flags: 0,
        };
        // SAFETY: resp is a valid seccomp_notif_resp the ioctl reads.
        if unsafe { libc::ioctl(raw, libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) } < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOENT) {
                return Err(format!("SECCOMP_IOCTL_NOTIF_SEND: {e}"));
            }
        }
    }
    Ok(seen)
}
