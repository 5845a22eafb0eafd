//! The caller's side of process.terminal: a console socket that receives the pty master
//! (as `--console-socket` does for containerd and Podman), and a relay between our own
//! stdio and that master for `run`/`exec` in the foreground.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A listening console socket in a private temporary path, removed on drop.
pub struct ConsoleListener {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleListener {
    pub fn bind(dir: &Path, id: &str) -> std::io::Result<ConsoleListener> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!(".console-{id}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(ConsoleListener { path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept the runtime's connection and take the pty master it sends.
    pub fn accept_master(&self) -> std::io::Result<OwnedFd> {
        let (conn, _) = self.listener.accept()?;
        let mut buf = [0u8; 4096];
        let mut cbuf = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cbuf), MsgFlags::MSG_CMSG_CLOEXEC)?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                if let Some(&fd) = fds.first() {
                    // SAFETY: the kernel just installed this fd for us.
                    return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        Err(std::io::Error::other("console socket: no pty master received"))
    }
}

impl Drop for ConsoleListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Puts our stdin in raw mode while alive, if it is a terminal.
struct RawMode {
    saved: Option<termios::Termios>,
}

impl RawMode {
    fn new() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, s);
        }
    }
}

fn copy_winsize(from: RawFd, to: RawFd) {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::zeroed();
    // SAFETY: TIOCGWINSZ fills a winsize; TIOCSWINSZ reads it. Both fds are ours.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, ws.as_mut_ptr()) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, ws.as_ptr());
        }
    }
}

fn write_all(fd: RawFd, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing from a valid buffer to an fd we hold.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        data = &data[n as usize..];
    }
}

/// Relay stdin → master and master → stdout until process `pid` (our child) exits;
/// signals in `signals` (blocked by the caller) go to it, SIGWINCH resizes the pty.
/// Returns the exit code as a shell reports it.
pub fn relay(master: OwnedFd, pid: i32, signals: &SigSet) -> std::io::Result<u8> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let _raw = RawMode::new();
    let (stdin, stdout, m) = (0, 1, master.as_raw_fd());
    copy_winsize(stdin, m);
    let mut stdin_open = true;
    let mut buf = vec![0u8; 32 * 1024];
    let read = |fd: RawFd, buf: &mut [u8]| {
        // SAFETY: reading into a valid buffer from an fd we hold.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) }
    };
    loop {
        // SAFETY: fd 0 is our stdin for the whole call.
        let stdin_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(stdin) };
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin_fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            r => r?,
        };
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let (m_ready, s_ready, in_ready) = (ready(0), ready(1), stdin_open && ready(2));
        drop(fds);
        if m_ready {
            let n = read(m, &mut buf);
            if n > 0 {
                write_all(stdout, &buf[..n as usize]);
            }
        }
        if in_ready {
            let n = read(stdin, &mut buf);
            if n > 0 {
                write_all(m, &buf[..n as usize]);
            } else {
                stdin_open = false;
            }
        }
        if s_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGCHLD) => {}
                    Some(Signal::SIGWINCH) => copy_winsize(stdin, m),
                    Some(s) => {
                        let _ = nix::sys::signal::kill(Pid::from_raw(pid), s);
                    }
                    None => {}
                }
            }
            match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, c)) => return Ok(drain(m, stdout, &mut buf, c as u8)),
                Ok(WaitStatus::Signaled(_, s, _)) => return Ok(drain(m, stdout, &mut buf, 128 + s as u8)),
                Err(nix::Error::ECHILD) => return Ok(drain(m, stdout, &mut buf, 0)),
                _ => {}
            }
        }
    }
}

/// Copy what the pty still holds after the process exited.
fn drain(m: RawFd, out: RawFd, buf: &mut [u8], code: u8) -> u8 {
    // SAFETY: switching our own master fd to non-blocking.
    unsafe { libc::fcntl(m, libc::F_SETFL, libc::O_NONBLOCK) };
    loop {
        // SAFETY: reading into a valid buffer.
        let n = unsafe { libc::read(m, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return code;
        }
        write_all(out, &buf[..n as usize]);
    }
}
