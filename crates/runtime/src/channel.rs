//! The parent/child sync protocol: length-prefixed JSON messages over a socketpair, plus file
//! descriptors passed with SCM_RIGHTS.
//!
//! The runtime (parent) and the container's stage-1 and init processes (children) talk over
//! one socketpair. Every step that one side waits for is a message, so a child that dies is seen
//! as end-of-file instead of a hang.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

/// One message of the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// parent -> stage 1: you are in your cgroup; go on.
    Go,
    /// stage 1 -> parent: I unshared a user namespace; write my uid/gid maps.
    RequestIdMap,
    /// parent -> stage 1: the maps are written.
    IdMapDone,
    /// stage 1 -> parent: the container init's pid, as the parent sees it.
    InitPid(i32),
    /// parent -> init: the init is in its cgroup and the limits are set.
    CgroupDone,
    /// init -> parent: namespaces are set up; run the prestart and createRuntime hooks.
    RunCreateRuntimeHooks,
    /// parent -> init: hooks done.
    HooksDone,
    /// init -> parent: a pty master follows as an fd.
    ConsoleFd,
    /// init -> parent: a seccomp notify fd follows as an fd.
    SeccompFd,
    /// init -> parent: the container is created and waits for start (or, for exec, is about to exec).
    Ready,
    /// child -> parent: a step failed; the text says which and why.
    Error(String),
}

/// One end of the socketpair.
#[derive(Debug)]
pub struct Channel {
    sock: UnixStream,
}

impl Channel {
    /// A connected pair: (parent end, child end). Both are close-on-exec.
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel { sock: a }, Channel { sock: b }))
    }

    pub fn from_stream(sock: UnixStream) -> Self {
        Channel { sock }
    }

    pub fn try_clone(&self) -> io::Result<Channel> {
        Ok(Channel {
            sock: self.sock.try_clone()?,
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    pub fn send(&mut self, msg: &Msg) -> io::Result<()> {
        let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&body);
        self.sock.write_all(&frame)
    }

    /// Receives the next message; end-of-file (the other side died) is `UnexpectedEof`.
    pub fn recv(&mut self) -> io::Result<Msg> {
        let mut len = [0u8; 4];
        self.sock.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len > 1 << 20 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sync message too large",
            ));
        }
        let mut body = vec![0u8; len];
        self.sock.read_exact(&mut body)?;
        serde_json::from_slice(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Receives a message and fails unless it is `want`; an `Error` from the child becomes the error.
    pub fn expect(&mut self, want: &Msg) -> io::Result<()> {
        match self.recv()? {
            m if &m == want => Ok(()),
            Msg::Error(e) => Err(io::Error::other(e)),
            m => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("sync protocol: expected {want:?}, got {m:?}"),
            )),
        }
    }

    /// Sends an fd (with a one-byte payload) after announcing it with `announce`.
    pub fn send_fd(&mut self, announce: &Msg, fd: RawFd) -> io::Result<()> {
        self.send(announce)?;
        let fds = [fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(b"F")];
        sendmsg::<()>(self.sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)?;
        Ok(())
    }

    /// Receives an fd sent with `send_fd` (after its announcement was read with `recv`).
    pub fn recv_fd(&mut self) -> io::Result<OwnedFd> {
        recv_one_fd(self.sock.as_raw_fd())
    }
}

/// Receives one fd passed with SCM_RIGHTS on `sock`.
pub fn recv_one_fd(sock: RawFd) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                return hull_sys::fd::take_ownership(fd)
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad fd received"));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "expected a file descriptor, got none",
    ))
}

/// Sends one fd with SCM_RIGHTS on a connected socket (console socket protocol of runc).
pub fn send_one_fd(sock: RawFd, fd: RawFd, name: &str) -> io::Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(sock, &iov, &cmsg, MsgFlags::empty(), None)?;
    Ok(())
}
