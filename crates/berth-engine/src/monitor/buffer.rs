//! Non-blocking writes with a bounded buffer, so one slow reader (a client, a process
//! that does not read its stdin) never stalls the monitor's loop.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Bytes waiting for an fd that was not ready.
pub struct OutBuf {
    pub fd: OwnedFd,
    buf: Vec<u8>,
    /// Set once a write failed for good (the reader went away).
    pub broken: bool,
}

impl OutBuf {
    pub fn new(fd: OwnedFd) -> std::io::Result<Self> {
        set_nonblocking(fd.as_fd())?;
        Ok(OutBuf {
            fd,
            buf: Vec::new(),
            broken: false,
        })
    }

    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Queue `data` and write what the fd takes now.
    pub fn push(&mut self, data: &[u8]) {
        if self.broken {
            return;
        }
        self.buf.extend_from_slice(data);
        self.flush();
    }

    /// Write queued bytes until the fd would block.
    pub fn flush(&mut self) {
        while !self.buf.is_empty() && !self.broken {
            match nix::unistd::write(&self.fd, &self.buf) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(nix::Error::EAGAIN) => return,
                Err(nix::Error::EINTR) => {}
                Err(_) => {
                    self.broken = true;
                    self.buf.clear();
                }
            }
        }
    }

    /// Try for up to `limit` to write everything (at the end, before closing).
    pub fn drain_for(&mut self, limit: std::time::Duration) {
        let t = std::time::Instant::now();
        while self.pending() > 0 && !self.broken && t.elapsed() < limit {
            self.flush();
            if self.pending() > 0 {
                let mut p = [nix::poll::PollFd::new(self.fd.as_fd(), nix::poll::PollFlags::POLLOUT)];
                let _ = nix::poll::poll(&mut p, nix::poll::PollTimeout::from(100u16));
            }
        }
    }
}

pub fn set_nonblocking(fd: BorrowedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(fl | OFlag::O_NONBLOCK))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_when_full_and_notices_closed_reader() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut o = OutBuf::new(w).unwrap();
        let big = vec![7u8; 1 << 20];
        o.push(&big);
        assert!(o.pending() > 0, "a pipe holds less than 1 MiB");
        let mut got = vec![0u8; 1 << 16];
        let n = nix::unistd::read(&r, &mut got).unwrap();
        assert!(n > 0);
        drop(r);
        o.flush();
        assert!(o.broken);
    }
}
