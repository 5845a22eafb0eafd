//! The monitor's loop: one `poll` over the socket, SIGCHLD, the processes' outputs and
//! the clients. Nothing here blocks except the runtime calls for start and exec.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::console::ConsoleListener;
use berth_runtime::container::{self, ExecOpts};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::buffer::OutBuf;
use super::memory;
use super::proto::{self, frame_header, ExitInfo, MonitorConfig, Reply, Request, STATUS_STREAM};
use super::{set_winsize, Stdio, StdioSetup};
use crate::logs::{LogWriter, Stream};

/// A client that reads slower than this much buffered output is dropped (the log keeps it).
const MAX_CLIENT_BUFFER: usize = 16 << 20;
/// How long output may still arrive after a process exited (from its leftover children).
const DRAIN: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Main,
    Exec(i32),
}

struct Source {
    /// None once it reached EOF (removed at the next sweep).
    fd: Option<OwnedFd>,
    stream: Stream,
    owner: Owner,
}

struct Proc {
    owner: Owner,
    stdin: Option<OutBuf>,
    /// The pty master, for resize.
    master: Option<RawFd>,
    exec_id: String,
    exit: Option<(i32, Instant)>,
}

#[derive(PartialEq, Eq, Debug)]
enum Role {
    Pending,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Waiter,
    Exec(i32),
    /// Flush what is queued, then close.
    Closing(Instant),
}

struct Conn {
    sock: UnixStream,
    out: OutBuf,
    inbuf: Vec<u8>,
    role: Role,
    read_closed: bool,
}

struct Monitor {
    cfg: MonitorConfig,
    init: i32,
    log: Option<LogWriter>,
    sources: Vec<Source>,
    procs: Vec<Proc>,
    conns: Vec<Conn>,
    main_exit: Option<(ExitInfo, Instant)>,
}

#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Signal,
    Source(usize),
    Conn(usize),
    Stdin(usize),
}

pub(crate) fn serve(cfg: MonitorConfig, init: i32, stdio: Stdio, listener: UnixListener, sigfd: SignalFd) {
    let log = match cfg.log.options() {
        None => None,
        Some(opts) => LogWriter::open(&cfg.log.path, &opts).ok(),
    };
    let mut m = Monitor {
        cfg,
        init,
        log,
        sources: Vec::new(),
        procs: Vec::new(),
        conns: Vec::new(),
        main_exit: None,
    };
    m.add_stdio(Owner::Main, stdio, String::new());
    // Set by any work; cleared when memory is released after `memory::IDLE` of nothing.
    let mut dirty = true;
    loop {
        if let Some((_, at)) = &m.main_exit {
            let drained = !m.sources.iter().any(|s| s.owner == Owner::Main);
            if drained || at.elapsed() > DRAIN {
                break;
            }
        }
        let mut slots = vec![Slot::Listener, Slot::Signal];
        let mut fds = vec![
            PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        for (i, s) in m.sources.iter().enumerate() {
            // Back-pressure for execs: their client must keep up (nothing else keeps the data).
            if let Owner::Exec(pid) = s.owner {
                if m.exec_conn(pid).is_some_and(|c| m.conns[c].out.pending() > 1 << 20) {
                    continue;
                }
            }
            if let Some(fd) = &s.fd {
                slots.push(Slot::Source(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
        }
        for (i, c) in m.conns.iter().enumerate() {
            let mut ev = PollFlags::empty();
            if !c.read_closed && m.wants_input(c) {
                ev |= PollFlags::POLLIN;
            }
            if c.out.pending() > 0 {
                ev |= PollFlags::POLLOUT;
            }
            slots.push(Slot::Conn(i));
            fds.push(PollFd::new(c.sock.as_fd(), ev));
        }
        for (i, p) in m.procs.iter().enumerate() {
            if let Some(b) = &p.stdin {
                if b.pending() > 0 {
                    slots.push(Slot::Stdin(i));
                    fds.push(PollFd::new(b.fd.as_fd(), PollFlags::POLLOUT));
                }
            }
        }
        let exiting = m.main_exit.is_some() || m.procs.iter().any(|p| p.exit.is_some());
        // Waiting out the idle period before giving memory back (not while draining).
        let idle_wait = dirty && !exiting;
        let timeout = if exiting {
            PollTimeout::from(100u16)
        } else if idle_wait {
            PollTimeout::try_from(memory::IDLE).unwrap_or(PollTimeout::MAX)
        } else {
            PollTimeout::NONE
        };
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) if idle_wait => {
                memory::release();
                dirty = false;
            }
            Ok(_) | Err(nix::Error::EINTR) => dirty = true,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        let ready: Vec<(Slot, PollFlags)> = slots
            .into_iter()
            .zip(fds.iter().map(|f| f.revents().unwrap_or(PollFlags::empty())))
            .filter(|(_, r)| !r.is_empty())
            .collect();
        drop(fds);
        // Sources and conns are removed only after the whole batch (indices stay valid).
        for (slot, rev) in ready {
            match slot {
                Slot::Listener => m.accept(&listener),
                Slot::Signal => m.reap(&sigfd),
                Slot::Source(i) => m.read_source(i),
                Slot::Conn(i) => {
                    if rev.contains(PollFlags::POLLOUT) {
                        m.conns[i].out.flush();
                    }
                    if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        m.read_conn(i, rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR));
                    }
                }
                Slot::Stdin(i) => {
                    if let Some(b) = m.procs[i].stdin.as_mut() {
                        b.flush();
                    }
                }
            }
        }
        m.sweep();
    }
    m.finish();
}

impl Monitor {
    fn add_stdio(&mut self, owner: Owner, stdio: Stdio, exec_id: String) {
        let mut proc = Proc {
            owner,
            stdin: None,
            master: None,
            exec_id,
            exit: None,
        };
        match stdio {
            Stdio::Pty { master } => {
                let _ = super::buffer::set_nonblocking(master.as_fd());
                proc.master = Some(master.as_raw_fd());
                if let Ok(w) = master.try_clone() {
                    proc.stdin = OutBuf::new(w).ok();
                }
                self.sources.push(Source {
                    fd: Some(master),
                    stream: Stream::Stdout,
                    owner,
                });
            }
            Stdio::Pipes { stdin, stdout, stderr } => {
                proc.stdin = stdin.and_then(|f| OutBuf::new(f).ok());
                for (fd, stream) in [(stdout, Stream::Stdout), (stderr, Stream::Stderr)] {
                    let _ = super::buffer::set_nonblocking(fd.as_fd());
                    self.sources.push(Source {
                        fd: Some(fd),
                        stream,
                        owner,
                    });
                }
            }
        }
        self.procs.push(proc);
    }

    fn proc_index(&self, owner: Owner) -> Option<usize> {
        self.procs.iter().position(|p| p.owner == owner)
    }

    fn exec_conn(&self, pid: i32) -> Option<usize> {
        self.conns.iter().position(|c| c.role == Role::Exec(pid))
    }

    fn wants_input(&self, c: &Conn) -> bool {
        let target = match c.role {
            Role::Pending | Role::Waiter => return true,
            Role::Closing(_) => return false,
            Role::Attach { stdin, .. } => {
                if !stdin {
                    return true; // only to notice the client leaving
                }
                Owner::Main
            }
            Role::Exec(pid) => Owner::Exec(pid),
        };
        // Stop reading stdin while the process is not taking it.
        self.proc_index(target)
            .and_then(|i| self.procs[i].stdin.as_ref())
            .is_none_or(|b| b.pending() < 1 << 16)
    }

    fn accept(&mut self, listener: &UnixListener) {
        while let Ok((sock, _)) = listener.accept() {
            let _ = sock.set_nonblocking(true);
            let Ok(out) = sock.try_clone().map(OwnedFd::from).and_then(OutBuf::new) else {
                continue;
            };
            self.conns.push(Conn {
                sock,
                out,
                inbuf: Vec::new(),
                role: Role::Pending,
                read_closed: false,
            });
        }
    }

    fn reap(&mut self, sigfd: &SignalFd) {
        while let Ok(Some(_)) = sigfd.read_signal() {}
        loop {
            let (pid, code) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, c)) => (p.as_raw(), c),
                Ok(WaitStatus::Signaled(p, s, _)) => (p.as_raw(), 128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            };
            if pid == self.init {
                self.main_exit = Some((
                    ExitInfo {
                        exit_code: code,
                        finished_at: berth_runtime::state::now_rfc3339(),
                        ..Default::default()
                    },
                    Instant::now(),
                ));
            } else if let Some(i) = self.proc_index(Owner::Exec(pid)) {
                self.procs[i].exit = Some((code, Instant::now()));
            }
        }
    }

    // Not inlined: its 32 KiB buffer must live below the loop's frame, where memory::release reaches it.
    #[inline(never)]
    fn read_source(&mut self, i: usize) {
        let mut buf = [0u8; 32 * 1024];
        let Some(fd) = &self.sources[i].fd else { return };
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(n) => n,
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => return,
            Err(_) => 0, // EIO: the pty's last slave closed
        };
        let (stream, owner) = (self.sources[i].stream, self.sources[i].owner);
        if n == 0 {
            self.sources[i].fd = None;
            return;
        }
        let data = &buf[..n];
        let mut frame = frame_header(stream.frame_id(), n).to_vec();
        frame.extend_from_slice(data);
        match owner {
            Owner::Main => {
                if let Some(l) = self.log.as_mut() {
                    let _ = l.write(stream, data);
                }
                for c in &mut self.conns {
                    if let Role::Attach { stdout, stderr, .. } = c.role {
                        let wanted = match stream {
                            Stream::Stdout => stdout,
                            Stream::Stderr => stderr,
                        };
                        if wanted {
                            c.out.push(&frame);
                            if c.out.pending() > MAX_CLIENT_BUFFER {
                                c.out.broken = true;
                            }
                        }
                    }
                }
            }
            Owner::Exec(pid) => {
                if let Some(c) = self.exec_conn(pid) {
                    self.conns[c].out.push(&frame);
                }
            }
        }
    }

    // Not inlined: its 32 KiB buffer must live below the loop's frame, where memory::release reaches it.
    #[inline(never)]
    /// `hup`: poll reported the peer gone in both directions (a half-closed client, which
    /// still reads our output, only shows end-of-file).
    fn read_conn(&mut self, i: usize, hup: bool) {
        let mut buf = [0u8; 32 * 1024];
        let n = match (&self.conns[i].sock).read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::Interrupted => {
                return
            }
            Err(_) => 0,
        };
        let c = &mut self.conns[i];
        if n == 0 {
            c.read_closed = true;
            // A half-closed client still reads output; a gone one fails our next write.
            match c.role {
                // As Docker: StdinOnce closes the container's stdin when its client goes,
                // but never a terminal's (a detached `run -it` shell keeps running).
                Role::Attach { stdin: true, .. } => {
                    if self.cfg.stdin_once && !self.cfg.tty {
                        self.close_stdin(Owner::Main);
                    }
                }
                // The same for an exec: a terminal's input is not ended by a departing
                // client (Docker leaves a detached `exec -it` shell running).
                Role::Exec(pid) => {
                    let tty = self
                        .proc_index(Owner::Exec(pid))
                        .is_some_and(|p| self.procs[p].master.is_some());
                    if !tty {
                        self.close_stdin(Owner::Exec(pid));
                    }
                }
                Role::Attach { .. } | Role::Waiter => {}
                Role::Pending | Role::Closing(_) => c.out.broken = true,
            }
            // Nobody left to read what we would send; and poll would report the hang-up
            // again at once, forever (a busy loop once berthd died).
            if hup {
                self.conns[i].out.broken = true;
            }
            return;
        }
        match c.role {
            Role::Pending => {
                c.inbuf.extend_from_slice(&buf[..n]);
                if let Some(p) = c.inbuf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = c.inbuf.drain(..=p).collect();
                    let rest = std::mem::take(&mut c.inbuf);
                    self.request(i, &line, &rest);
                } else if c.inbuf.len() > 1 << 20 {
                    c.out.broken = true;
                }
            }
            Role::Attach { stdin: true, .. } => self.feed_stdin(Owner::Main, &buf[..n]),
            Role::Exec(pid) => self.feed_stdin(Owner::Exec(pid), &buf[..n]),
            _ => {}
        }
    }

    fn feed_stdin(&mut self, owner: Owner, data: &[u8]) {
        if let Some(b) = self.proc_index(owner).and_then(|i| self.procs[i].stdin.as_mut()) {
            b.push(data);
        }
    }

    fn close_stdin(&mut self, owner: Owner) {
        if let Some(i) = self.proc_index(owner) {
            if let Some(mut b) = self.procs[i].stdin.take() {
                // A pty's stdin is its master: send EOF (^D) instead of closing it.
                if self.procs[i].master.is_some() {
                    b.push(&[4]);
                    self.procs[i].stdin = Some(b);
                } else {
                    b.drain_for(Duration::from_secs(1));
                }
            }
        }
    }

    fn reply(&mut self, i: usize, r: &Reply) {
        let mut line = serde_json::to_vec(r).unwrap_or_default();
        line.push(b'\n');
        self.conns[i].out.push(&line);
    }

    fn reply_err(&mut self, i: usize, e: impl std::fmt::Display) {
        let r = Reply {
            error: Some(e.to_string()),
            ..Default::default()
        };
        self.reply(i, &r);
        self.conns[i].role = Role::Closing(Instant::now());
    }

    fn request(&mut self, i: usize, line: &[u8], rest: &[u8]) {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return self.reply_err(i, format!("bad request: {e}")),
        };
        let running = self.main_exit.is_none();
        match req {
            Request::Start => match container::start(&self.cfg.runtime_root, &self.cfg.id) {
                Ok(()) => {
                    self.reply(i, &Reply::default());
                    self.conns[i].role = Role::Closing(Instant::now());
                }
                Err(e) => self.reply_err(i, e),
            },
            Request::Attach { stdin, stdout, stderr } => {
                if !running {
                    return self.reply_err(i, format!("container {} is not running", self.cfg.id));
                }
                self.reply(i, &Reply::default());
                self.conns[i].role = Role::Attach { stdin, stdout, stderr };
                if stdin && !rest.is_empty() {
                    self.feed_stdin(Owner::Main, rest);
                }
            }
            Request::Wait => self.conns[i].role = Role::Waiter,
            Request::Resize { height, width, exec_id } => {
                let p = match exec_id {
                    None => self.proc_index(Owner::Main),
                    Some(e) => self.procs.iter().position(|p| p.exec_id == e),
                };
                match p.and_then(|p| self.procs[p].master) {
                    Some(fd) => {
                        set_winsize(fd, height, width);
                        self.reply(i, &Reply::default());
                        self.conns[i].role = Role::Closing(Instant::now());
                    }
                    None => self.reply_err(i, "no terminal to resize"),
                }
            }
            Request::Exec {
                exec_id,
                process,
                stdin,
                console_size,
            } => {
                if !running {
                    return self.reply_err(i, format!("container {} is not running", self.cfg.id));
                }
                match self.exec(&exec_id, process, stdin, console_size) {
                    Ok(pid) => {
                        self.reply(
                            i,
                            &Reply {
                                pid: Some(pid),
                                ..Default::default()
                            },
                        );
                        self.conns[i].role = Role::Exec(pid);
                        if stdin && !rest.is_empty() {
                            self.feed_stdin(Owner::Exec(pid), rest);
                        }
                    }
                    Err(e) => self.reply_err(i, e),
                }
            }
        }
    }

    fn exec(
        &mut self,
        exec_id: &str,
        process: serde_json::Value,
        stdin: bool,
        console_size: Option<(u16, u16)>,
    ) -> Result<i32, String> {
        let process: oci_spec::runtime::Process =
            serde_json::from_value(process).map_err(|e| format!("exec {exec_id}: process: {e}"))?;
        let tty = process.terminal().unwrap_or(false);
        let mut opts = ExecOpts {
            root: self.cfg.runtime_root.clone(),
            id: self.cfg.id.clone(),
            process,
            console_socket: None,
            pid_file: None,
            preserve_fds: 0,
            ignore_paused: false,
            seccomp: proto::load_program(&self.cfg),
        };
        let err = |e: &dyn std::fmt::Display| format!("exec {exec_id} in {}: {e}", self.cfg.id);
        let (pid, stdio) = if tty {
            let short = &exec_id[..exec_id.len().min(12)];
            let console = ConsoleListener::bind(Path::new("."), short).map_err(|e| err(&e))?;
            opts.console_socket = Some(console.path().to_path_buf());
            let pid = {
                let _g = StdioSetup::none().map_err(|e| err(&e))?;
                container::exec(&opts).map_err(|e| err(&e))?
            };
            let master = console.accept_master().map_err(|e| err(&e))?;
            if let Some((h, w)) = console_size {
                set_winsize(master.as_raw_fd(), h, w);
            }
            (pid, Stdio::Pty { master })
        } else {
            let (guard, stdio) = StdioSetup::pipes(stdin).map_err(|e| err(&e))?;
            let pid = container::exec(&opts).map_err(|e| err(&e))?;
            drop(guard);
            (pid, stdio)
        };
        self.add_stdio(Owner::Exec(pid), stdio, exec_id.to_string());
        Ok(pid)
    }

    /// Drop closed sources and clients; finish execs whose output is complete.
    fn sweep(&mut self) {
        self.sources.retain(|s| s.fd.is_some());
        let done: Vec<(i32, i32, String)> = self
            .procs
            .iter()
            .filter_map(|p| match (p.owner, p.exit) {
                (Owner::Exec(pid), Some((code, at))) => {
                    let drained = !self.sources.iter().any(|s| s.owner == p.owner);
                    (drained || at.elapsed() > DRAIN).then_some((pid, code, p.exec_id.clone()))
                }
                _ => None,
            })
            .collect();
        for (pid, code, exec_id) in done {
            // For a berthd that was away when the exec ended (it reads this at restore).
            let f = self.cfg.bundle.join(proto::exec_exit_file(&exec_id));
            let _ = berth_runtime::fsutil::atomic_write(&f, code.to_string().as_bytes());
            self.sources.retain(|s| s.owner != Owner::Exec(pid));
            self.procs.retain(|p| p.owner != Owner::Exec(pid));
            if let Some(c) = self.exec_conn(pid) {
                let status = serde_json::json!({ "exit_code": code }).to_string();
                let mut frame = frame_header(STATUS_STREAM, status.len()).to_vec();
                frame.extend_from_slice(status.as_bytes());
                self.conns[c].out.push(&frame);
                self.conns[c].role = Role::Closing(Instant::now());
            }
        }
        self.conns.retain(|c| {
            if c.out.broken {
                return false;
            }
            match c.role {
                Role::Closing(at) => c.out.pending() > 0 && at.elapsed() < DRAIN,
                _ => true,
            }
        });
    }

    /// The main process has exited: record it, delete the container, tell everyone.
    fn finish(mut self) {
        if let Some(l) = self.log.as_mut() {
            let _ = l.flush_partial();
        }
        let mut info = self.main_exit.take().map(|(i, _)| i).unwrap_or_default();
        let root = self.cfg.runtime_root.clone();
        let id = self.cfg.id.clone();
        if let Ok(cg) = container::with_container(&root, &id, |_, st, _| Ok(st.cgroup.clone())) {
            info.oom_killed = cg.oom_kill_count().unwrap_or(0) > 0;
        }
        if let Err(e) = container::delete(&root, &id, true) {
            info.error = e.to_string();
        }
        if let Ok(bytes) = serde_json::to_vec(&info) {
            if let Err(e) = berth_runtime::fsutil::atomic_write(&self.cfg.exit_file, &bytes) {
                info.error = format!("record exit: {e}");
            }
        }
        let status = serde_json::json!({ "exit_code": info.exit_code }).to_string();
        let mut frame = frame_header(STATUS_STREAM, status.len()).to_vec();
        frame.extend_from_slice(status.as_bytes());
        let reply = Reply {
            exit: Some(info),
            ..Default::default()
        };
        for c in &mut self.conns {
            match c.role {
                Role::Waiter => {
                    let _ = proto::write_line(&mut LineOut(&mut c.out), &reply);
                }
                Role::Attach { .. } | Role::Exec(_) => c.out.push(&frame),
                _ => {}
            }
        }
        for c in &mut self.conns {
            c.out.drain_for(Duration::from_millis(500));
        }
        let _ = std::fs::remove_file(super::SOCKET_FILE);
    }
}

/// `Write` over an `OutBuf`, for `write_line`.
struct LineOut<'a>(&'a mut OutBuf);

impl std::io::Write for LineOut<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.push(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
