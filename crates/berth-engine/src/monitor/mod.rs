//! The per-container monitor (the role of containerd-shim or conmon): one small,
//! single-threaded process per container, detached from berthd. It creates the container
//! through the runtime library in-process (so it is the init's parent), owns its stdio or
//! pty, writes its log, serves attach/exec/wait/resize on a unix socket, and records the
//! exit status durably before it goes away. berthd may die and come back meanwhile.

pub mod buffer;
mod memory;
pub mod proto;
mod serve;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use berth_runtime::console::ConsoleListener;
use berth_runtime::container::{self, CreateOpts};

pub use proto::{ExitInfo, LogTarget, MonitorConfig, Reply, Request};

/// Files in a container's exec-root directory.
pub const CONFIG_FILE: &str = "monitor.json";
pub const SOCKET_FILE: &str = "monitor.sock";

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("monitor of {id}: {what}: {source}")]
    Io {
        id: String,
        what: String,
        source: std::io::Error,
    },
    #[error("monitor of {id}: {source}")]
    Runtime {
        id: String,
        #[source]
        source: container::Error,
    },
    #[error("monitor: bad {path}: {source}")]
    Config { path: PathBuf, source: serde_json::Error },
}

fn io_err(id: &str, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MonitorError + '_ {
    let what = what.into();
    move |source| MonitorError::Io {
        id: id.into(),
        what,
        source,
    }
}

/// The container's standard streams as the monitor holds them.
pub(crate) enum Stdio {
    Pty {
        master: OwnedFd,
    },
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
}

/// Make the standard fds of a child-to-be: pipes (or /dev/null), installed as our own
/// 0/1/2 while the runtime forks (its processes inherit them), restored afterwards.
pub(crate) struct StdioSetup {
    saved: [OwnedFd; 3],
}

impl StdioSetup {
    /// Returns the setup guard and our ends (stdin writer, stdout reader, stderr reader).
    pub(crate) fn pipes(with_stdin: bool) -> std::io::Result<(StdioSetup, Stdio)> {
        let saved = [dup(0)?, dup(1)?, dup(2)?];
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = if with_stdin {
            let (in_r, in_w) = pipe()?;
            dup2(in_r.as_raw_fd(), 0)?;
            Some(in_w)
        } else {
            let null = std::fs::File::open("/dev/null")?;
            dup2(null.as_raw_fd(), 0)?;
            None
        };
        dup2(out_w.as_raw_fd(), 1)?;
        dup2(err_w.as_raw_fd(), 2)?;
        Ok((
            StdioSetup { saved },
            Stdio::Pipes {
                stdin,
                stdout: out_r,
                stderr: err_r,
            },
        ))
    }

    /// For a terminal process: our 0/1/2 stay as they are (/dev/null).
    pub(crate) fn none() -> std::io::Result<StdioSetup> {
        Ok(StdioSetup {
            saved: [dup(0)?, dup(1)?, dup(2)?],
        })
    }
}

impl Drop for StdioSetup {
    fn drop(&mut self) {
        for (i, fd) in self.saved.iter().enumerate() {
            let _ = dup2(fd.as_raw_fd(), i as RawFd);
        }
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    Ok(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?)
}

fn dup(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a standard fd; the result is a new fd we own.
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: r is a fresh fd we just created.
    Ok(unsafe { OwnedFd::from_raw_fd(r) })
}

fn dup2(from: RawFd, to: RawFd) -> std::io::Result<()> {
    // SAFETY: dup2 onto a standard fd number; both are valid for this call.
    if unsafe { libc::dup2(from, to) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn set_winsize(fd: RawFd, height: u16, width: u16) {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize on a pty fd we hold.
    unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
}

pub fn load_config(dir: &Path) -> Result<MonitorConfig, MonitorError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(io_err("?", format!("read {}", path.display())))?;
    serde_json::from_slice(&bytes).map_err(|source| MonitorError::Config { path, source })
}

/// The monitor's main: `dir` is the container's exec-root directory, `ready` the pipe on
/// which berthd waits for one `Reply` line (the init's pid, or why create failed).
pub fn run(dir: &Path, ready: OwnedFd) -> i32 {
    let mut ready = std::fs::File::from(ready);
    // Socket paths are relative to this directory: absolute ones could pass the 108-byte limit.
    let cfg = match std::env::set_current_dir(dir)
        .map_err(io_err("?", format!("enter {}", dir.display())))
        .and_then(|()| load_config(Path::new(".")))
    {
        Ok(c) => c,
        Err(e) => {
            let _ = proto::write_line(
                &mut ready,
                &Reply {
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            );
            return 1;
        }
    };
    match setup(&cfg) {
        Ok((pid, stdio, listener, sigfd)) => {
            let _ = proto::write_line(
                &mut ready,
                &Reply {
                    pid: Some(pid),
                    ..Default::default()
                },
            );
            let _ = ready.flush();
            drop(ready);
            serve::serve(cfg, pid, stdio, listener, sigfd);
            0
        }
        Err(e) => {
            let _ = proto::write_line(
                &mut ready,
                &Reply {
                    error: Some(e.to_string()),
                    ..Default::default()
                },
            );
            1
        }
    }
}

type Setup = (
    i32,
    Stdio,
    std::os::unix::net::UnixListener,
    nix::sys::signalfd::SignalFd,
);

fn setup(cfg: &MonitorConfig) -> Result<Setup, MonitorError> {
    let id = cfg.id.as_str();
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes an integer flag.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mask = nix::sys::signal::SigSet::empty();
    mask.add(nix::sys::signal::Signal::SIGCHLD);
    mask.thread_block().map_err(|e| io_err(id, "block SIGCHLD")(e.into()))?;
    let sigfd = nix::sys::signalfd::SignalFd::with_flags(
        &mask,
        nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| io_err(id, "signalfd")(e.into()))?;
    let _ = std::fs::remove_file(SOCKET_FILE);
    let listener = std::os::unix::net::UnixListener::bind(SOCKET_FILE).map_err(io_err(id, "bind monitor socket"))?;
    listener.set_nonblocking(true).map_err(io_err(id, "socket"))?;
    let mut opts = CreateOpts {
        id: id.into(),
        bundle: cfg.bundle.clone(),
        root: cfg.runtime_root.clone(),
        seccomp: proto::load_program(cfg),
        ..Default::default()
    };
    let (pid, stdio) = if cfg.tty {
        let console =
            ConsoleListener::bind(Path::new("."), &id[..id.len().min(12)]).map_err(io_err(id, "console socket"))?;
        opts.console_socket = Some(console.path().to_path_buf());
        let pid = {
            let _g = StdioSetup::none().map_err(io_err(id, "stdio"))?;
            container::create(&opts).map_err(|source| MonitorError::Runtime { id: id.into(), source })?
        };
        let master = console.accept_master().map_err(io_err(id, "receive pty master"))?;
        if let Some((h, w)) = cfg.console_size {
            set_winsize(master.as_raw_fd(), h, w);
        }
        (pid, Stdio::Pty { master })
    } else {
        let (guard, stdio) = StdioSetup::pipes(cfg.open_stdin).map_err(io_err(id, "stdio pipes"))?;
        let pid = container::create(&opts).map_err(|source| MonitorError::Runtime { id: id.into(), source })?;
        // Our copies of the child ends close here, so EOF arrives when the container's do.
        drop(guard);
        (pid, stdio)
    };
    if cfg.loopback_up {
        if let Err(e) = loopback_up(pid) {
            let _ = container::delete(&cfg.runtime_root, id, true);
            return Err(io_err(id, "bring up loopback")(e));
        }
    }
    Ok((pid, stdio, listener, sigfd))
}

/// `ip link set lo up` in the container's network namespace (entered and left again:
/// the monitor is single-threaded).
fn loopback_up(pid: i32) -> std::io::Result<()> {
    use nix::sched::{setns, CloneFlags};
    let own = std::fs::File::open("/proc/self/ns/net")?;
    let target = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    setns(&target, CloneFlags::CLONE_NEWNET)?;
    let r = (|| {
        let sock = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Datagram,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        // SAFETY: ifreq is plain data; zeroed is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *s as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the ifreq we own.
        unsafe {
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    })();
    setns(&own, CloneFlags::CLONE_NEWNET)?;
    r
}
