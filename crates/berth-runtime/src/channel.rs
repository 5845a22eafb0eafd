//! The socket between the runtime (parent) and the container's setup processes: small
//! JSON messages, with an optional file descriptor riding along (SCM_RIGHTS).

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("sync socket: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync socket: peer closed the connection (the container's setup process died)")]
    Closed,
    #[error("sync socket: bad message: {0}")]
    Bad(String),
}

pub type Result<T> = std::result::Result<T, ChannelError>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Msg {
    /// Stage 1 unshared a user namespace: the parent writes its id maps.
    MapIds,
    /// Stage 1 forked the init; this is its host pid.
    InitPid(i32),
    /// The init wants the prestart and createRuntime hooks run.
    RunHooks,
    /// The init loaded a seccomp filter with a notify action; its fd rides along.
    SeccompFd,
    /// The init needs the idmapped mount of spec mount N: the parent answers Ack + mount fd.
    IdmapMount(usize),
    /// Setup is complete; the init now waits for `start` (or, for exec, has exec'd).
    Ready,
    Ack,
    Error(String),
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn send(&self, msg: &Msg) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    pub fn send_with_fd(&self, msg: &Msg, fd: Option<RawFd>) -> Result<()> {
        let data = serde_json::to_vec(msg).map_err(|e| ChannelError::Bad(e.to_string()))?;
        let iov = [IoSlice::new(&data)];
        let fds = fd.map(|f| [f]);
        let cmsgs: Vec<ControlMessage> = fds.as_ref().map(|f| ControlMessage::ScmRights(f)).into_iter().collect();
        sendmsg::<()>(self.fd.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)?;
        Ok(())
    }

    pub fn recv(&self) -> Result<(Msg, Option<OwnedFd>)> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut cbuf = nix::cmsg_space!([RawFd; 1]);
        let (n, fd) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let m = loop {
                match recvmsg::<()>(
                    self.fd.as_raw_fd(),
                    &mut iov,
                    Some(&mut cbuf),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                ) {
                    Err(nix::Error::EINTR) => continue,
                    r => break r?,
                }
            };
            let mut fd = None;
            for c in m.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    for f in fds {
                        // SAFETY: the kernel just installed this fd in our table for us.
                        let owned = unsafe { OwnedFd::from_raw_fd(f) };
                        if fd.is_none() {
                            fd = Some(owned);
                        }
                    }
                }
            }
            (m.bytes, fd)
        };
        if n == 0 {
            return Err(ChannelError::Closed);
        }
        let msg = serde_json::from_slice(&buf[..n]).map_err(|e| ChannelError::Bad(e.to_string()))?;
        Ok((msg, fd))
    }

    /// Receive and insist on `want`; an `Error` from the peer becomes ours.
    pub fn expect(&self, want: &Msg) -> Result<()> {
        match self.recv()?.0 {
            m if &m == want => Ok(()),
            Msg::Error(e) => Err(ChannelError::Bad(e)),
            m => Err(ChannelError::Bad(format!("expected {want:?}, got {m:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_with_fd() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        a.send_with_fd(&Msg::SeccompFd, Some(f.as_raw_fd())).unwrap();
        let (m, fd) = b.recv().unwrap();
        assert_eq!(m, Msg::SeccompFd);
        assert!(fd.is_some());
        a.send(&Msg::InitPid(42)).unwrap();
        assert_eq!(b.recv().unwrap().0, Msg::InitPid(42));
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }
}
